"""docs/learn.ipynb, the example notebook of learner mode, is committed executed: its outputs are real.

``python -m tests.notebook`` (from the checkout, in the venv: nbclient and ipykernel are test dependencies) runs
it top to bottom in a kernel and writes it back with its outputs, its cell ids kept and no timings; run it after
changing the notebook or what its cells show (the board, a diagnosis, a hint). ``tests/test_learn.py`` checks
that a fresh run shows the same texts as the committed file and that the file is clean (ids, no warning from
nbformat, no path of this machine, no memory address).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "learn.ipynb"

#: What must never be committed in an output: a path of the machine that ran it, a memory address.
MACHINE = re.compile(r"/tmp/|/work/|/home/|/Users/|[A-Z]:\\|\bat 0x[0-9a-f]+|0x[0-9a-f]{8,}")


def execute(path: Path = NOTEBOOK) -> Any:
    """The notebook at ``path``, executed in a fresh ``python3`` kernel from the checkout's root, outside any
    workspace (no ``$TORCHMECH_IMPL``: the hints' rungs are the session's, so every run shows the first); no
    timing metadata, the notebook's own metadata kept as it is."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    metadata = nb.metadata.copy()
    env = {k: v for k, v in os.environ.items() if k != "TORCHMECH_IMPL"}
    NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(ROOT)}}).execute(env=env)
    nb.metadata = metadata
    return nb


def texts(nb: Any) -> list[list[str]]:
    """Per code cell, the text of each output (a stream's text, an error's name and value, each MIME type's data)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        shown = []
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                shown.append(f"{o['name']}: {o['text']}")
            elif o["output_type"] == "error":
                shown.append(f"error: {o['ename']}: {o['evalue']}")
            else:
                shown += [f"{mime}: {data}" for mime, data in sorted(o.get("data", {}).items())]
        out.append(shown)
    return out


def main() -> None:
    import nbformat

    nb = execute()
    nbformat.validate(nb)
    leaked = [m.group(0) for cell in texts(nb) for t in cell for m in [MACHINE.search(t)] if m]
    if leaked:
        raise SystemExit(f"an output shows {leaked[0]!r} (a path of this machine or a memory address): not written")
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK.relative_to(ROOT)}: {sum(c.cell_type == 'code' for c in nb.cells)} code cells executed")


if __name__ == "__main__":
    main()
