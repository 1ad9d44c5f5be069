"""The chapter on every supported release: one measured row per environment, and the view that joins them.

``python -m torchmech.check.releases measure ROW FILE [--tests DIR]`` (what each nox session of
``benchmarks/noxfile.py`` runs) records, in this environment, the installed versions, every claim of
``torchmech chapter --json`` (what was measured and how it holds), the console the chapter printed besides
its JSON (any third-party warning; its own progress lines left out), the fast part of the suite, and the time.
``python -m torchmech.check.releases view DIR [--png FILE]`` joins the rows: one line per release with its
counts, the claims whose printed value moves between releases (and the first release where it does), and a heat
map claim × release.

Which release is the newest measured (:data:`~torchmech.runtime.devices.NEWEST_MEASURED`) is a fact of the
environment a result is read in, so it lives with the environment (:mod:`torchmech.runtime.devices`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchmech.runtime.console import PROGRESS_LINE, text_table
from torchmech.runtime.devices import release

#: The distributions whose versions a row records.
PACKAGES = ("torch", "torchvision", "lightning", "torchmetrics", "pandas", "numpy", "scikit-learn", "matplotlib",
            "scipy", "pytorch-ignite")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "-"
    return found


def _pytest_summary(text: str) -> dict[str, int]:
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", text)}
    return {k: counts.get(k, 0) for k in ("passed", "failed", "skipped", "deselected")}


def measure(row: str, path: Path, tests: Path | None = None) -> dict[str, Any]:
    """Run the chapter (and, with ``tests``, §1–§4 of the suite) here and write the row to ``path``."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-m", "torchmech", "chapter", "--json", "--out", out],
                              capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = {"claims": [], "counts": {}}
    result: dict[str, Any] = {
        "row": row, "versions": _versions(), "seconds": round(seconds, 1), "exit_code": done.returncode,
        "console": [line for line in done.stderr.splitlines() if line.strip() and not PROGRESS_LINE.match(line)],
        "counts": report.get("counts", {}),
        "claims": [{"id": c["id"], "ours": c["ours"], "holds": c["holds"]} for c in report.get("claims", [])],
    }
    if tests is not None:
        suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                                "s1 or s2 or s3 or s4", str(tests), f"--rootdir={tests.parent}"],
                               capture_output=True, text=True, check=False, cwd=tests.parent)
        result["tests"] = _pytest_summary(suite.stdout.splitlines()[-1] if suite.stdout else "")
        result["tests"]["exit_code"] = suite.returncode
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


# --- the view ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One measured release: its name, versions, claims (id → (ours, holds)), console lines, suite counts."""

    name: str
    versions: dict[str, str]
    claims: dict[str, tuple[str, str]]
    console: list[str]
    tests: dict[str, int]
    seconds: float
    exit_code: int

    @property
    def holding(self) -> int:
        return sum(h != "no" for _, h in self.claims.values())


def load(directory: Path) -> list[Row]:
    """Every row under ``directory``, oldest torch first (then the lowest other dependencies first)."""
    rows = []
    for file in sorted(Path(directory).glob("*.json")):
        d = json.loads(file.read_text())
        rows.append(Row(d["row"], d["versions"], {c["id"]: (c["ours"], c["holds"]) for c in d["claims"]},
                        d.get("console", []), d.get("tests", {}), d.get("seconds", 0.0), d.get("exit_code", -1)))
    return sorted(rows, key=lambda r: (release(r.versions["torch"]), release(r.versions["numpy"])))


def moving(rows: list[Row]) -> dict[str, list[tuple[str, str]]]:
    """Claims whose measured value differs between rows: id → [(row, value)] in row order."""
    ids = dict.fromkeys(i for r in rows for i in r.claims)
    return {i: [(r.name, r.claims.get(i, ("-", "-"))[0]) for r in rows] for i in ids
            if len({r.claims.get(i, ("-", "-"))[0] for r in rows}) > 1}


def first_change(values: list[tuple[str, str]]) -> str:
    """The first row whose value differs from the first row's."""
    return next((row for row, v in values if v != values[0][1]), "")


def table(rows: list[Row]) -> str:
    """The release table (markdown): one line per row, then the claims whose values move."""
    keys = ("torch", "torchvision", "lightning", "torchmetrics", "pandas", "numpy", "scikit-learn", "matplotlib")
    def cells(r: Row) -> tuple[str, ...]:
        exact = sum(h == "exact" for _, h in r.claims.values())
        tests = f"{r.tests.get('passed', 0)} passed, {r.tests.get('failed', 0)} failed" if r.tests else "-"
        return (r.name, *(r.versions.get(k, "-") for k in keys), f"{r.holding}/{len(r.claims)}", str(exact), tests,
                f"{len(r.console)} lines", f"{r.seconds / 60:.1f}")

    lines = [text_table(("row", *keys, "claims hold", "exact", "§1–§4 tests", "console", "minutes"),
                        map(cells, rows), markdown=True)]
    moved = moving(rows)
    lines += ["", f"Claims whose measured value differs between rows: {len(moved)} of "
                  f"{len(dict.fromkeys(i for r in rows for i in r.claims))}."]
    if moved:
        lines += ["", text_table(("claim", *(r.name for r in rows), "first row that differs"),
                                 [(f"`{i}`", *(v for _, v in values), first_change(values))
                                  for i, values in moved.items()], markdown=True)]
    return "\n".join(lines)


def figure(rows: list[Row], path: Path) -> Path:
    """A heat map claim × row: how each claim holds (exact, band/bound/law/erratum, quick/skip, no)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ids = list(dict.fromkeys(i for r in rows for i in r.claims))
    level = {"exact": 3, "band": 2, "bound": 2, "law": 2, "erratum": 2, "quick": 1, "skip": 1, "n/a": 1, "no": 0}
    grid = np.array([[level.get(r.claims.get(i, ("", "no"))[1], 0) for r in rows] for i in ids], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(rows), 0.16 * len(ids) + 1.5))
    ax.imshow(grid, aspect="auto", cmap="RdYlGn", vmin=0, vmax=3)
    ax.set_xticks(range(len(rows)), [r.name for r in rows], rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(ids)), ids, fontsize=5)
    ax.set_title("the chapter's claims on each release (green: exact; yellow: band/law; red: fails)", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torchmech.check.releases", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="measure this environment as one row")
    m.add_argument("row")
    m.add_argument("file", type=Path)
    m.add_argument("--tests", type=Path, default=None, help="the suite's tests/ folder: also run §1–§4")
    v = sub.add_parser("view", help="join the rows: the release table and the heat map")
    v.add_argument("directory", type=Path)
    v.add_argument("--png", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "measure":
        row = measure(args.row, args.file, args.tests)
        print(f"{row['row']}: {sum(c['holds'] != 'no' for c in row['claims'])}/{len(row['claims'])} claims hold, "
              f"{len(row['console'])} console lines, {row['seconds']:.0f} s")
        return 0 if row["exit_code"] == 0 and not row["console"] else 1
    rows = load(args.directory)
    if not rows:
        print(f"python -m torchmech.check.releases: error: no rows in {args.directory}", file=sys.stderr)
        return 2
    print(table(rows))
    if args.png is not None:
        figure(rows, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
