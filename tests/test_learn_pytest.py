"""What a learner reads from `pytest --impl=DIR`: a failing claim is its sentence, the book's value, yours and the
rule, first thing; a wrong --impl or --backend is one line; a failing property test prints its
`@reproduce_failure` line and no line of NumPy's or torch's own files. Each run here is one short pytest process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from torchmech.learn import init_workspace
from torchmech.spec.claims import claim

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "TORCHMECH_IMPL"}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, check=False, env=base | (env or {}))


def test_a_failing_claim_starts_with_statement_book_yours_and_rule(tmp_path: Path) -> None:
    """A wrong compute_z (2a − b + c) in a fresh workspace: the failing claim's report is the claim's sentence, the
    book's value, the learner's value labelled "yours" and the rule, right under the test's name; no dump of the
    Claim or Context, no traceback through tests/registry.py or torchmech, no "ours"."""
    init_workspace(tmp_path)
    module = tmp_path / "s1_graph.py"
    stub = 'raise NotImplementedError("compute_z: not started (see the docstring)")'
    assert stub in module.read_text()
    module.write_text(module.read_text().replace(stub, "return 2 * a - b + c"))
    done = _pytest(f"--impl={tmp_path}", "tests/test_s1_graph.py::test_claim[cpu-s1.compute_z.rank0]")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = r"_+ test_claim\[cpu-s1\.compute_z\.rank0\] _+"
    head = next(i for i, line in enumerate(lines) if re.fullmatch(header, line))
    c = claim("s1.compute_z.rank0")
    assert lines[head + 1:head + 5] == [f"{c.id}: {c.statement}", f"  book: {c.book}", "  yours: tensor(3)",
                                        "  rule: exact to the printed digits"], done.stdout
    for absent in ("Claim(", "Context(", "registry.py", "torchmech/spec", "Traceback"):
        assert absent not in done.stdout, absent
    assert not re.search(r"\bours\b", done.stdout.split("implementation under test")[0])


@pytest.mark.parametrize(("args", "env", "starts"), [
    (["--impl=nowhere"], {}, "ERROR: --impl=nowhere: no torchmech workspace in nowhere"),
    ([], {"TORCHMECH_IMPL": "EMPTY"}, "ERROR: TORCHMECH_IMPL=EMPTY: no torchmech workspace in EMPTY"),
    (["--backend=foo"], {}, "ERROR: --backend=foo: unknown backend 'foo'"),
], ids=["impl-missing", "env-impl-empty", "backend-unknown"])
def test_a_wrong_impl_or_backend_is_one_line(args: list[str], env: dict[str, str], starts: str,
                                             tmp_path: Path) -> None:
    """`pytest --impl=nowhere`, a $TORCHMECH_IMPL folder that holds no workspace, `pytest --backend=foo`: each is
    one line (usage error, exit 4) before collection; no traceback, no collection error."""
    empty = str(tmp_path)
    env = {k: v.replace("EMPTY", empty) for k, v in env.items()}
    done = _pytest(*args, "tests/test_s1_graph.py", env=env)
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 4 and len(said) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert said[0].startswith(starts.replace("EMPTY", empty)), said


def test_a_failing_property_prints_its_reproduce_line_and_no_library_lines(pytester: pytest.Pytester) -> None:
    """Under the project's hypothesis profiles (its conftest.py), a failing property test prints the smallest
    example and the `@reproduce_failure` line docs/learning-path.md promises, and not hypothesis' explain phase:
    lines "always and only run by failing test cases" inside NumPy's own files."""
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_property='''
        import numpy as np
        from hypothesis import given, strategies as st


        @given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=5))
        def test_printed_array_has_no_minus(xs):
            assert "-" not in str(np.array(xs))
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    out = result.stdout.str()
    assert result.ret == 1 and ("Falsifying example" in out or "Failing test case" in out), out
    assert "@reproduce_failure(" in out, out
    assert "always and only run by failing test cases" not in out and "site-packages" not in out, out


@pytest.mark.parametrize("section", ["s1", "s5"])
def test_one_sections_lesson_collects_exactly_its_tests_and_imports_no_other(section: str) -> None:
    """`pytest -m sN` imports only the files that can hold §N's tests (conftest's `pytest_ignore_collect`), yet
    collects the same tests as a full collection filtered by the same marker (`-m "sN or sN"` turns the shortcut
    off); §5 has tests outside test_s5_xor.py (test_runs_impl.py)."""
    ids = {}
    for expr in (section, f"{section} or {section}"):
        done = _pytest("--co", "-q", "--runslow", "-m", expr, "-W", "ignore")
        ids[expr] = sorted(line for line in done.stdout.splitlines() if "::" in line)
        assert ids[expr], done.stdout[-2000:] + done.stderr[-2000:]
    assert ids[section] == ids[f"{section} or {section}"]
    done = _pytest("--co", "-q", "-m", section, "-p", "tests.imports_seen")
    assert "lightning" not in done.stdout.split("IMPORTED:")[-1]
