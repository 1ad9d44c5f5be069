"""`torchmech learn watch` (torchmech/learn/watch.py) and the grades remembered (torchmech/learn/grades.py): a saved
file is graded again and its board shown, the count moves on when a section is done, a syntax error does not end
the watch, Ctrl-C ends it cleanly; `learn status` answers from the remembered grades without importing torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.learners import RIGHT_Z, STUB_Z
from torchmech.learn import remembered
from torchmech.learn.grades import REMEMBERED, Grade, remember
from torchmech.learn.watch import changed_files, snapshot, watch

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(fresh_workspace: Path) -> Path:
    return fresh_workspace


def _save(path: Path, old: str, new: str) -> set[Path]:
    path.write_text(path.read_text().replace(old, new))
    return {path}


def test_each_save_is_graded_and_the_count_moves_on(ws: Path) -> None:
    """Saves, in order: a right compute_z (§1 done, 1/22, next `fans`), a syntax error in §2 (its board fails with
    the file and line; the watch goes on), §2 repaired (back to not started), a file that is no section (ignored)."""
    s1, s2 = ws / "s1_graph.py", ws / "s2_init.py"
    stub2 = s2.read_text()
    shown: list[str] = []

    def saves() -> Iterator[set[Path]]:
        yield _save(s1, STUB_Z, RIGHT_Z)
        s2.write_text(stub2 + "\ndef broken(:\n")
        yield {s2}
        s2.write_text(stub2)
        yield {s2}
        (ws / "notes.py").write_text("x = 1\n")
        yield {ws / "notes.py"}

    result = watch(ws, changes=saves(), show=shown.append)
    assert "[0/22 done]" in shown[0] and "compute_z" in shown[0]
    assert "§1  compute_z" in shown[1] and "✓ done" in shown[1]
    assert "[1/22 done]" in shown[1] and "§1 is done. Next: `fans` in s2_init.py" in shown[1]
    assert "SyntaxError" in shown[2] and "s2_init.py:" in shown[2] and "[1/22 done]" in shown[2]
    assert "✗ failing" not in shown[3] and "· not started" in shown[3]
    assert len(shown) == 4  # notes.py is no section: nothing graded, nothing shown
    assert result.exit_code == 0 and result.done == "1/22 done"


@pytest.mark.parametrize("poll", [False, True], ids=["file-events", "polling"])
def test_a_file_saved_before_the_watcher_listens_is_not_missed(ws: Path, poll: bool) -> None:
    """`watch` takes the files' snapshot before its first grading and hands it to the watcher: a save made while
    the first grading ran (before any file event could be heard) is reported at the watcher's first look."""
    import threading

    before = snapshot(ws)
    _save(ws / "s1_graph.py", STUB_Z, RIGHT_Z)
    stop = threading.Event()
    timer = threading.Timer(10, stop.set)
    timer.start()
    try:
        first = next(changed_files(ws, poll=poll, stop=stop, since=before), set())
    finally:
        timer.cancel()
        stop.set()
    assert first == {ws / "s1_graph.py"}


@pytest.mark.parametrize("poll", [False, True], ids=["file-events", "polling"])
def test_the_watcher_sees_a_save(ws: Path, poll: bool) -> None:
    """The file events (watchfiles) and the polling fallback each report a saved section file."""
    import threading

    stop = threading.Event()
    found: list[set[Path]] = []

    def listen() -> None:
        for files in changed_files(ws, poll=poll, stop=stop, since=before):
            found.append(files)
            stop.set()

    before = snapshot(ws)  # as `watch` hands it over: a save before the watcher listens is still reported
    thread = threading.Thread(target=listen)
    thread.start()
    time.sleep(0.5)  # most often listening by now: the save is then heard as a file event
    _save(ws / "s1_graph.py", STUB_Z, RIGHT_Z)
    thread.join(timeout=10)
    stop.set()
    assert found and (ws / "s1_graph.py") in {Path(p) for p in found[0]}


def test_the_command_regrades_a_save_and_ends_cleanly_on_ctrl_c(ws: Path) -> None:
    """`torchmech learn watch`, as a learner starts it from inside the workspace: a save shows the new board on
    stdout; SIGINT (Ctrl-C) ends it with status 0 and the count, without a traceback."""
    import queue
    import threading

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("TORCHMECH_IMPL", None)
    proc = subprocess.Popen([sys.executable, "-m", "torchmech", "learn", "watch", "--poll"], cwd=ws, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal has it
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("[1/22 done] watching" in line for line in seen):
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            if "[0/22 done] watching" in seen[-1]:
                _save(ws / "s1_graph.py", STUB_Z, RIGHT_Z)
        assert any("§1 is done" in line for line in seen), "".join(seen)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        proc.kill()
    reader.join(timeout=10)  # stdout ended with the process: every line is queued
    out = "".join(seen) + "".join(lines.get() for _ in range(lines.qsize()))
    assert proc.returncode == 0, err
    assert "stopped watching" in out and "1/22 done" in out and "Traceback" not in err


# --- the grades remembered ------------------------------------------------------------------------------------
def test_status_of_an_unchanged_workspace_imports_no_torch(ws: Path) -> None:
    """`learn status` on a fresh workspace (its grades remembered by `learn init`) answers without torch; after a
    save, the changed section alone is graded again."""
    script = ("import sys; from torchmech.cli import main; code = main(['learn', 'status']); "
              "print('TORCH' if 'torch' in sys.modules else 'NO TORCH', code)")
    run = lambda: subprocess.run([sys.executable, "-c", script], cwd=ws, capture_output=True, text=True,  # noqa: E731
                                 env={k: v for k, v in os.environ.items() if k != "TORCHMECH_IMPL"}, check=False)
    first = run()
    assert first.stdout.strip().endswith("NO TORCH 1"), first.stdout + first.stderr
    assert "0/22 done" in first.stdout
    _save(ws / "s1_graph.py", STUB_Z, RIGHT_Z)
    second = run()
    assert second.stdout.strip().endswith("TORCH 1") and "1/22 done" in second.stdout, second.stdout + second.stderr
    state = json.loads((ws / REMEMBERED).read_text())
    assert state["s1"]["grades"][0]["status"] == "done"
    assert run().stdout.strip().endswith("NO TORCH 1")  # remembered again


def test_remembered_grades_follow_everything_they_depend_on(ws: Path) -> None:
    """The section's file and the workspace's helper modules change a section's fingerprint; another section's file
    and a notes file do not; the options do; a grade that ran out of time is never kept."""
    grades = [Grade("compute_z", "s1", "done")]
    remember(ws, "s1", grades)
    assert remembered(ws, "s1") == grades
    (ws / "s2_init.py").write_text("# mine\n")
    (ws / "notes.md").write_text("x\n")
    assert remembered(ws, "s1") == grades
    assert remembered(ws, "s1", full=True) is None and remembered(ws, "s1", timeout=3.0) is None
    (ws / "helpers.py").write_text("K = 2\n")
    assert remembered(ws, "s1") is None
    remember(ws, "s1", grades)
    (ws / "s1_graph.py").write_text((ws / "s1_graph.py").read_text() + "\n")
    assert remembered(ws, "s1") is None
    remember(ws, "s1", [Grade("compute_z", "s1", "failing", "took longer than 10 s", ["time"])])
    assert remembered(ws, "s1") is None
