"""The grader's time limit (torchmech/learn/limits.py, ``time_limit``): computing time, not the clock, so a
right answer on a loaded machine is still done; an endless loop or a long sleep still ends; on any thread
and without ``signal.setitimer`` (Windows)."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from torchmech.chapter.implementation import Implementation
from torchmech.learn import limits
from torchmech.learn.exercises import check_piece, exercise
from torchmech.learn.limits import WALL_FACTOR, TookTooLong, time_limit

pytestmark = pytest.mark.chapter

#: Slack on the clock for starting, polling and a loaded machine.
MARGIN = 1.5


def _endless() -> None:
    while True:
        pass


def _stopped(seconds: float, body: Callable[[], object]) -> tuple[TookTooLong, float]:
    """Run ``body`` under a limit of ``seconds``: the exception it ended with and the seconds it took."""
    start = time.perf_counter()
    with pytest.raises(TookTooLong) as caught, time_limit(seconds):
        body()
    return caught.value, time.perf_counter() - start


def _watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "torchmech time limit"]


def _in_thread(body: Callable[[], object]) -> object:
    """What ``body`` returns, or the exception it raises, run in a thread of its own."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(body())
        except BaseException as err:  # handed back to the test
            out.append(err)

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive()
    return out[0]


@contextlib.contextmanager
def _crowded(busy: int = 3) -> Iterator[None]:
    """This thread and ``busy`` endless processes on one CPU (Linux's affinity): each gets about a
    ``busy + 1``-th of it, whatever the number of cores, so the clock runs several times faster than
    this thread's CPU time."""
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mask)})
    procs: list[subprocess.Popen] = []
    try:
        code = "import sys\nprint('on', flush=True)\nwhile True:\n    pass\n"
        procs = [subprocess.Popen([sys.executable, "-S", "-c", code], stdout=subprocess.PIPE) for _ in range(busy)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == b"on\n"
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()
        os.sched_setaffinity(0, mask)


needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pins processes to a CPU (Linux)")


def test_an_endless_loop_and_a_long_sleep_end_naming_the_limit() -> None:
    """An endless loop ends after about its limit of computing; a 30-s sleep (no computing) at the wall
    backstop, WALL_FACTOR times the limit; each message names the limit; no watchdog is left behind."""
    err, took = _stopped(0.5, _endless)
    assert "took longer than 0.5 s of computing" in str(err) and err.seconds == 0.5 and err.wall is None
    assert 0.5 <= took < 0.5 * WALL_FACTOR + MARGIN  # CPU limit; crowded: backstop
    err, took = _stopped(0.5, lambda: time.sleep(30))
    assert "took longer than 0.5 s" in str(err) and err.wall == 0.5 * WALL_FACTOR
    assert 0.5 * WALL_FACTOR <= took < 0.5 * WALL_FACTOR + MARGIN
    assert _watchdogs() == []
    assert str(TookTooLong(1)).startswith("took longer than 1 s")  # raised by hand, as before


def test_the_limit_holds_off_the_main_thread() -> None:
    """In a thread of its own (no signal reaches it) an endless loop ends at its limit, and a wait in
    short sleeps at the backstop (one long sleep off the main thread ends only when it returns)."""
    got = _in_thread(lambda: _stopped(0.5, _endless))
    assert isinstance(got, tuple), got
    err, took = got
    assert err.seconds == 0.5 and 0.5 <= took < 0.5 * WALL_FACTOR + MARGIN  # CPU limit; crowded: backstop
    got = _in_thread(lambda: _stopped(0.5, lambda: [time.sleep(0.01) for _ in range(10_000)]))
    assert isinstance(got, tuple), got
    err, took = got
    assert err.wall == 0.5 * WALL_FACTOR and took < 0.5 * WALL_FACTOR + MARGIN
    assert _watchdogs() == []


def test_the_limit_needs_no_timer_and_no_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows' case: no ``setitimer``, no SIGALRM, no ``pthread_kill``, no thread CPU clock; an endless
    loop on the main thread still ends at its limit (the process's CPU time), a wait at the backstop."""
    for name in ("setitimer", "SIGALRM", "pthread_kill"):
        monkeypatch.delattr(signal, name, raising=False)
    monkeypatch.delattr(time, "pthread_getcpuclockid", raising=False)
    monkeypatch.setattr(limits, "WAKE_SIGNAL", None)
    err, took = _stopped(0.5, _endless)
    assert err.wall is None and 0.5 <= took < 0.5 * WALL_FACTOR + MARGIN  # CPU limit; crowded: backstop
    err, took = _stopped(0.5, lambda: [time.sleep(0.01) for _ in range(10_000)])
    assert err.wall == 0.5 * WALL_FACTOR and took < 0.5 * WALL_FACTOR + MARGIN


def test_nested_limits_each_count_and_the_outer_one_wins() -> None:
    """An inner block's limit stops it and the outer block goes on; an outer limit that runs out inside
    an inner block unwinds both with the outer's exception; one watchdog, gone afterwards."""
    with time_limit(20):
        err, _ = _stopped(0.3, _endless)
        assert err.seconds == 0.3 and len(_watchdogs()) == 1
        assert sum(range(1000)) == 499500  # the outer block goes on
    with pytest.raises(TookTooLong) as outer, time_limit(0.5), time_limit(30):
        _endless()
    assert outer.value.seconds == 0.5
    start = time.perf_counter()
    with pytest.raises(TookTooLong) as outer, time_limit(0.5):
        while True:  # an inner block's caller that catches TookTooLong, as the grader's failures() does
            with contextlib.suppress(TookTooLong), time_limit(30):
                _endless()
    assert outer.value.seconds == 0.5 and time.perf_counter() - start < 0.5 * WALL_FACTOR + MARGIN
    assert _watchdogs() == []


@pytest.mark.parametrize("where", ["main thread", "other thread"])
def test_nothing_fires_after_the_block(where: str) -> None:
    """Blocks that end just as their limit runs out: the exception comes inside the ``with`` statement or
    not at all, never in the code after it."""

    def blocks() -> int:
        stopped = 0
        for i in range(30):
            try:
                with time_limit(0.02):
                    start = time.thread_time()
                    while time.thread_time() - start < 0.016 + 0.002 * (i % 4):
                        pass
            except TookTooLong:
                stopped += 1
            start = time.perf_counter()
            while time.perf_counter() - start < 0.02:  # a late exception would land here
                pass
        return stopped

    got = blocks() if where == "main thread" else _in_thread(blocks)
    assert isinstance(got, int), got
    assert _watchdogs() == []


@needs_affinity
def test_a_right_answer_beside_busy_processes_is_still_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking the reference compute_z on its samples over and over (the differential check alone: no
    time limit of its own inside): limited to 3× its CPU time and crowded onto one CPU with three endless
    processes, it takes longer than its limit on the clock, and is still right (a wall-clock limit would
    have stopped it). The wall backstop is put as far off as the default limit's
    is from a right answer (30 s against a fraction of a second), so the crowd, however thick, proves
    nothing about it."""
    monkeypatch.setattr(limits, "WALL_FACTOR", 100.0)
    e, piece = exercise("compute_z"), Implementation().compute_z

    def right_answer(times: int) -> None:
        assert all(check_piece(e, piece) is None for _ in range(times))

    right_answer(1)  # warm up
    start = time.thread_time()
    right_answer(3)
    times = max(3, math.ceil(0.3 / ((time.thread_time() - start) / 3)))
    start = time.thread_time()
    right_answer(times)
    quiet = time.thread_time() - start
    limit = 3 * quiet
    with _crowded(3):
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            with time_limit(limit):
                right_answer(times)
        except TookTooLong as err:
            pytest.fail(f"{err} (quiet: {quiet:.2f} s of CPU; crowded: {time.thread_time() - cpu:.2f} s of CPU, "
                        f"{time.perf_counter() - start:.2f} s on the clock)")
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    assert wall > limit, f"not crowded enough to prove the point: {wall:.2f} s on the clock, limit {limit:.2f} s"
    assert cpu < limit, (cpu, limit)


@needs_affinity
def test_an_endless_loop_beside_busy_processes_still_ends() -> None:
    """Crowded onto one CPU with three endless processes, an endless loop gathers CPU time slowly but still
    ends: by its limit or, at the latest, by the wall backstop."""
    with _crowded(3):
        err, took = _stopped(0.5, _endless)
    assert err.seconds == 0.5 and took < 0.5 * WALL_FACTOR + MARGIN
