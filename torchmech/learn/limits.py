"""Time limits on a learner's code: computing time, not the clock, on any thread and any platform.

:func:`time_limit` guards a block: a watchdog thread raises :class:`TookTooLong` in the guarded thread once it has
used ``seconds`` of CPU time (its own thread's clock where the platform has one, else the process's), or once
:data:`WALL_FACTOR` × ``seconds`` have passed on the clock (code that sleeps or waits). A loaded machine slows the
clock, not the CPU time, so a right answer is not failed for others' load; no ``setitimer`` or SIGALRM is needed,
so the limit holds on Windows too. The grader (:mod:`torchmech.learn.grader`) and the workspace's loading use it.

Example::

    >>> try:
    ...     with time_limit(0.2):
    ...         while True:
    ...             pass
    ... except TookTooLong as err:
    ...     print(str(err).split(" (")[0])
    took longer than 0.2 s of computing
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: The default time limit of one exercise's check, in seconds of computing (CPU time; ``--timeout``): see
#: :func:`time_limit`.
TIME_LIMIT = 10.0

#: How many times its limit a guarded block may last on the clock (asleep, waiting, or starved of the CPU by
#: other programs) before it is stopped anyway: the limit itself counts computing time only.
WALL_FACTOR = 3.0

#: The signal the watchdog sends the main thread (POSIX) to wake it from a sleep or a blocking read once its
#: limit is reached; ignored by default, so one that arrives after the block has ended does no harm.
WAKE_SIGNAL: int | None = getattr(signal, "SIGURG", None)


class TookTooLong(BaseException):
    """The learner's code ran past the exercise's time limit: ``seconds`` of computing, or, when ``wall``
    is set, ``wall`` seconds on the clock (a sleep or a wait).

    The watchdog of :func:`time_limit` raises it by class (CPython makes an asynchronous exception without
    arguments), so it raises a subclass whose class attributes ``seconds`` and ``wall`` are the defaults.
    """

    seconds: float = TIME_LIMIT
    wall: float | None = None

    def __init__(self, seconds: float | None = None, wall: float | None = None) -> None:
        self.seconds = type(self).seconds if seconds is None else seconds
        self.wall = type(self).wall if wall is None else wall
        if self.wall is None:
            text = f"took longer than {self.seconds:g} s of computing (an endless loop, or far too slow)"
        else:
            text = (f"took longer than {self.seconds:g} s: still not done after {self.wall:g} s on the clock "
                    "(asleep, or waiting for something?)")
        super().__init__(text)


@dataclass(eq=False)
class _Limit:
    """One ``time_limit`` block: its limit, where its clocks started, and whether it has ended or fired."""

    seconds: float
    backstop: float
    cpu0: float
    wall0: float
    done: bool = False
    raised: type[TookTooLong] | None = None
    fired_at: float = 0.0
    delivered: bool = False

    def expired(self, cpu: float, now: float) -> type[TookTooLong] | None:
        """The exception to raise once the limit has run out (the same one ever after), else ``None``."""
        if self.raised is not None:
            return self.raised
        if cpu - self.cpu0 >= self.seconds:
            wall = None
        elif now - self.wall0 >= self.backstop:
            wall = self.backstop
        else:
            return None
        self.raised = type("TookTooLong", (TookTooLong,), {"seconds": self.seconds, "wall": wall,
                                                           "__module__": __name__})
        return self.raised

    def again(self, now: float) -> bool:
        """Whether to raise it again: the block goes on a while after it was raised (caught by the code
        inside: the learner's ``except BaseException``, or an inner block's caller catching TookTooLong)."""
        return now - self.fired_at >= max(0.1, min(1.0, self.seconds / 4))


#: The watchdog of each thread inside a ``time_limit`` block, by thread id; guarded by ``_LOCK``.
_DOGS: dict[int, _Watchdog] = {}
_LOCK = threading.Lock()


def _cpu_clock() -> Callable[[], float]:
    """A reader of the calling thread's CPU time that another thread may call (POSIX: Linux, the BSDs);
    where the platform has none (Windows, macOS), the process's CPU time."""
    try:
        clock = time.pthread_getcpuclockid(threading.get_ident())
        time.clock_gettime(clock)
    except (AttributeError, OSError):
        return time.process_time
    return lambda: time.clock_gettime(clock)


def _set_async_exc(ident: int, exc: type[BaseException] | None) -> int:
    """Have the thread ``ident`` raise ``exc`` at its next bytecode (``None``: take back a pending one); the
    number of threads it reached."""
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                      None if exc is None else ctypes.py_object(exc))


def _on_wake(signum: int, frame: Any) -> None:
    """The main thread's handler of :data:`WAKE_SIGNAL`: raise the limit that fired, once, if its block is on."""
    dog = _DOGS.get(threading.get_ident())
    fired = dog.firing if dog is not None else None
    if fired is not None and fired.raised is not None and not fired.done and not fired.delivered:
        fired.delivered = True
        raise fired.raised()
    previous = dog.previous if dog is not None else None
    if callable(previous):
        previous(signum, frame)


class _Watchdog:
    """Watches one thread's ``time_limit`` blocks (a stack: they may nest) from a thread of its own, and
    raises :class:`TookTooLong` in it when one runs out; one exception in flight at a time."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.cpu = _cpu_clock()
        self.stack: list[_Limit] = []
        self.firing: _Limit | None = None
        self.wake = False
        self.previous: Any = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="torchmech time limit", daemon=True)

    def start(self) -> None:
        """Start watching (from the guarded thread): on POSIX's main thread, the wake signal's handler too."""
        if (WAKE_SIGNAL is not None and hasattr(signal, "pthread_kill")
                and threading.current_thread() is threading.main_thread()):
            try:
                self.previous = signal.signal(WAKE_SIGNAL, _on_wake)
                self.wake = True
            except (ValueError, OSError):  # the main thread of a subinterpreter: the exception alone
                pass
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(self._tick()):
            try:
                cpu, now = self.cpu(), time.perf_counter()
            except OSError:  # the clock is gone with its thread: the block is ending
                continue
            with _LOCK:
                for limit in self.stack:  # outermost first: its exception unwinds the blocks inside it too
                    raised = limit.expired(cpu, now)
                    if raised is not None:
                        if limit is not self.firing or limit.again(now):
                            self._fire(limit, raised, now)
                        break

    def _tick(self) -> float:
        with _LOCK:
            shortest = min((limit.seconds for limit in self.stack), default=1.0)
        return min(0.05, max(0.005, shortest / 20))

    def _fire(self, limit: _Limit, raised: type[TookTooLong], now: float) -> None:  # under _LOCK
        self.firing, limit.fired_at, limit.delivered = limit, now, False
        if self.wake:
            signal.pthread_kill(self.ident, WAKE_SIGNAL)
        elif _set_async_exc(self.ident, raised) != 1:  # 0: no such thread; more: take it back (CPython's advice)
            _set_async_exc(self.ident, None)
            self.stop.set()

    def leave(self, limit: _Limit) -> None:
        """End ``limit``'s block (and any block inside it): nothing of it fires afterwards; the outermost
        block's end also ends the watchdog. Idempotent, so it may be called again if interrupted."""
        with _LOCK:
            if limit in self.stack:
                for inner in self.stack[self.stack.index(limit):]:
                    inner.done = True
                del self.stack[self.stack.index(limit):]
            limit.done = True
            if self.firing is not None and self.firing.done:  # fired, maybe not yet raised: take it back
                if not self.wake:
                    _set_async_exc(self.ident, None)
                self.firing = None
            if not self.stack:
                self.stop.set()
                if _DOGS.get(self.ident) is self:
                    del _DOGS[self.ident]
        if not self.stack:
            if self.thread.ident is not None and self.thread is not threading.current_thread():
                self.thread.join()
            if self.wake:
                signal.signal(WAKE_SIGNAL, self.previous)
                self.wake = False


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TookTooLong` in the calling thread once the block has computed for ``seconds`` of CPU
    time, or has lasted :data:`WALL_FACTOR` times as long on the clock (it sleeps or waits); ``None`` or 0:
    no limit.

    Why CPU time: a wall-clock limit marks a right answer "too slow" on a loaded machine, where other
    programs take the CPU; the block's own CPU time does not grow while it waits its turn. It is the
    guarded thread's CPU time where another thread can read it (``pthread_getcpuclockid``: Linux, the BSDs),
    so torch's intra-op threads do not count; elsewhere (Windows, macOS) the process's, which counts them
    and any other thread busy meanwhile (the grader checks one piece at a time).

    How: a watchdog thread per guarded thread polls the clocks and raises the exception *in* the guarded
    thread with CPython's ``PyThreadState_SetAsyncExc``, so the limit holds off the main thread and on
    every platform; on the main thread of a POSIX system it sends :data:`WAKE_SIGNAL` instead (no timer)
    whose handler raises it, which also wakes a ``time.sleep`` or a blocking read. Not a worker process:
    the block's body cannot move into one, and a child would need torch and the learner's module again
    (seconds of start on Windows and macOS) or a fork after torch's OpenMP threads started.

    Limits: the exception comes at the next bytecode, so it cannot cut a single long C call (one huge
    torch op; a signal cannot either) and, off the main thread or on Windows, a sleep or a blocking
    wait ends only when it returns. Code inside that catches it (``except BaseException``) gets it again
    every quarter of the limit (0.1–1 s) until the block ends. It cannot come after the block: ending the
    block takes back one raised but not yet delivered. Blocks nest: each counts from its own start, an
    outer block's exception unwinds the inner ones (again if an inner block's caller catches it), no
    inner block starts once it is spent, and one watchdog per thread ends with the outermost block.
    """
    if not seconds or seconds <= 0:
        yield
        return
    ident = threading.get_ident()
    with _LOCK:
        dog = _DOGS.get(ident)
        outermost = dog is None
        if outermost:
            dog = _DOGS[ident] = _Watchdog(ident)
        spent = next((outer.raised for outer in dog.stack if outer.raised is not None), None)
        if spent is None:
            limit = _Limit(seconds, seconds * WALL_FACTOR, dog.cpu(), time.perf_counter())
            dog.stack.append(limit)
    if spent is not None:  # an enclosing block's limit has run out: no new block starts inside it
        raise spent()
    try:
        if outermost:
            dog.start()
        yield
    finally:
        try:
            dog.leave(limit)
        except TookTooLong:  # the limit ran out in the block's last instants: finish leaving, then say so
            dog.leave(limit)
            raise
