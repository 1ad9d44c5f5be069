"""Whole chapter: the thread policy (torchmech/runtime/threads.py) — one place resolves how many CPU threads torch
computes with, every command that trains takes ``--threads`` and applies it while it trains, and the chapter's
exact claims print the same digits at one thread and at two."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import pytest
import torch

from torchmech.cli import main
from torchmech.cli.parser import build_parser
from torchmech.runtime.threads import applied, threads
from torchmech.spec.claims import claims
from torchmech.spec.core import Context
from torchmech.spec.runs import Runs

pytestmark = pytest.mark.chapter

#: Every command that trains (or times training), as a command line that parses: each takes ``--threads``.
TRAINING = {
    "chapter": ["chapter"], "mnist": ["mnist"], "mpg": ["mpg"], "xor": ["xor"], "lightning": ["lightning"],
    "ignite": ["ignite"], "conformance": ["conformance"], "diverge": ["diverge"], "bench": ["bench"],
    "learn check": ["learn", "check", "s1"], "learn status": ["learn", "status"], "learn watch": ["learn", "watch"],
}
#: The commands that train nothing: no ``--threads``.
NOT_TRAINING = {"data fetch": ["data", "fetch"], "learn init": ["learn", "init"],
                "learn solution": ["learn", "solution", "compute_z"], "learn mistakes": ["learn", "mistakes"],
                "compare": ["compare", "a.json", "b.json"]}


def _command_lines(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every leaf command of the parser (``xor``, ``learn check``…), found by walking its subparsers."""
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _command_lines(sub, (*prefix, name))
    return found or {" ".join(prefix)}


def test_every_command_is_listed_as_training_or_not() -> None:
    """A new command must say whether it trains (and then take --threads): the two lists cover the parser."""
    assert _command_lines(build_parser()) == set(TRAINING) | set(NOT_TRAINING)


@pytest.mark.parametrize("command", sorted(TRAINING))
def test_threads_is_an_option_of_every_command_that_trains(command: str) -> None:
    """``--threads N`` parses on each training command (absent: ``None``, the policy decides)."""
    parser = build_parser()
    assert parser.parse_args([*TRAINING[command], "--threads", "3"]).threads == 3
    assert parser.parse_args(TRAINING[command]).threads is None


@pytest.mark.parametrize("command", sorted(NOT_TRAINING))
def test_commands_that_train_nothing_take_no_threads(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*NOT_TRAINING[command], "--threads", "2"])
    assert "unrecognized arguments: --threads" in capsys.readouterr().err


@pytest.mark.parametrize(("requested", "environ", "default", "expected"), [
    (None, {}, 1, 1),                                                    # the policy's default
    (None, {}, None, None),                                              # bench: torch's own
    (None, {"OMP_NUM_THREADS": "3"}, 1, 3),
    (None, {"OMP_NUM_THREADS": "3"}, None, 3),
    (None, {"OMP_NUM_THREADS": "4,2"}, 1, 4),                            # OpenMP's nested list: its first level
    (None, {"TORCHMECH_THREADS": "2", "OMP_NUM_THREADS": "3"}, 1, 2),    # torchmech's own variable first
    (None, {"TORCHMECH_THREADS": " 2 "}, 1, 2),
    (None, {"TORCHMECH_THREADS": "", "OMP_NUM_THREADS": "3"}, 1, 3),     # empty: unset
    (4, {"TORCHMECH_THREADS": "2", "OMP_NUM_THREADS": "3"}, 1, 4),       # --threads before both
    (None, {"TORCHMECH_THREADS": "2", "OMP_NUM_THREADS": "abc"}, 1, 2),  # the variable that decides is read
])
def test_threads_precedence(requested: int | None, environ: dict[str, str], default: int | None,
                            expected: int | None) -> None:
    """``--threads``, then ``$TORCHMECH_THREADS``, then ``$OMP_NUM_THREADS``, then the default."""
    assert threads(requested, default=default, environ=environ) == expected


@pytest.mark.parametrize(("name", "value"), [("TORCHMECH_THREADS", "0"), ("TORCHMECH_THREADS", "-2"),
                                             ("TORCHMECH_THREADS", "abc"), ("TORCHMECH_THREADS", "1.5"),
                                             ("OMP_NUM_THREADS", "abc"), ("OMP_NUM_THREADS", "0")])
def test_a_bad_thread_count_is_one_line_naming_its_variable(name: str, value: str, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A bad variable fails the policy (a ValueError naming it) and the command line (one line, exit 2) before
    anything trains."""
    with pytest.raises(ValueError, match=f"^{name}={value!r}: expected a whole number of threads > 0$"):
        threads(environ={name: value})
    monkeypatch.delenv("TORCHMECH_THREADS", raising=False)
    monkeypatch.setenv(name, value)
    monkeypatch.setattr("torchmech.chapter.runs.xor_run", lambda *a, **k: pytest.fail("trained"))
    assert main(["xor", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"torchmech: error: {name}={value!r}: expected a whole number of threads > 0"
    with pytest.raises(ValueError, match="--threads=0"):
        threads(0)


def test_applied_sets_the_count_and_restores_the_callers() -> None:
    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    with applied(other) as used:
        assert used == torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with applied(None) as used:  # torch's own count, untouched
        assert used == torch.get_num_threads() == before
    with pytest.raises(RuntimeError), applied(other):
        raise RuntimeError
    assert torch.get_num_threads() == before


# --- every command trains with the threads it resolved ------------------------------------------------------------
class _Trained(Exception):
    """Raised by a spy in place of the training: the command stops there, having shown its thread count."""


def _spy(seen: list[int]):
    def trains(*args: object, **kwargs: object) -> None:
        seen.append(torch.get_num_threads())
        raise _Trained
    return trains


def _training_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trains) -> dict[str, list[str]]:
    """Each training command's command line, with the function it trains in replaced by ``trains``."""
    from torchmech import learn
    from torchmech.chapter import runs
    from torchmech.check import bench, conformance, diverge
    from torchmech.report import chapter

    for module, name in ((runs, "xor_run"), (runs, "mpg_run"), (runs, "mnist_run"), (chapter, "run_chapter"),
                         (conformance, "run_conformance"), (diverge, "diverge"), (bench, "sweep"),
                         (learn, "check_section"), (learn, "status")):
        monkeypatch.setattr(module, name, trains)
    # Lightning's and Ignite's modules stand in without importing the libraries
    monkeypatch.setitem(sys.modules, "torchmech.chapter.lit", types.SimpleNamespace(fit=trains))
    monkeypatch.setitem(sys.modules, "torchmech.chapter.ignite_bonus", types.SimpleNamespace(ignite_fit=trains))
    monkeypatch.setitem(sys.modules, "torchmech.learn.watch", types.SimpleNamespace(watch=trains))
    monkeypatch.setattr(learn, "remembered", lambda *a, **k: None)  # status grades (nothing remembered)
    assert main(["learn", "init", str(tmp_path / "ws")]) == 0
    out, ws = str(tmp_path / "out"), ["--impl", str(tmp_path / "ws")]
    return {"chapter": ["chapter", "--sections", "s1", "--out", out], "mnist": ["mnist"], "mpg": ["mpg"],
            "xor": ["xor"], "lightning": ["lightning"], "ignite": ["ignite"],
            "conformance": ["conformance", "--backends", "cpu", "--out", out],
            "diverge": ["diverge", "--a", "cpu", "--b", "cpu-fp64", "--out", out],
            "bench": ["bench", "--device", "cpu", "--out", out], "learn check": ["learn", "check", "s1", *ws],
            "learn status": ["learn", "status", *ws], "learn watch": ["learn", "watch", *ws]}


@pytest.mark.parametrize(("environ", "option", "expected"), [
    ({}, [], 1), ({"OMP_NUM_THREADS": "3"}, [], 3), ({"TORCHMECH_THREADS": "2", "OMP_NUM_THREADS": "3"}, [], 2),
    ({"TORCHMECH_THREADS": "2"}, ["--threads", "3"], 3),
], ids=["policy", "omp", "torchmech-env", "option"])
def test_every_training_command_trains_with_the_resolved_threads(
        environ: dict[str, str], option: list[str], expected: int, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """While each command trains, torch has the count the policy resolved (bench with nothing set: torch's own);
    afterwards the caller's count again."""
    for name in ("TORCHMECH_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    seen: list[int] = []
    points = _training_points(monkeypatch, tmp_path, _spy(seen))
    assert set(points) == set(TRAINING)
    with applied(5):  # the caller's own count, unlike every count resolved here
        for command, argv in points.items():
            with pytest.raises(_Trained):
                main([*argv, *option])
            want = 5 if command == "bench" and not environ and not option else expected
            assert seen.pop() == want, command
            assert torch.get_num_threads() == 5, command
    capsys.readouterr()


def test_the_chapters_environment_names_the_threads_it_ran_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`chapter --threads 3 --json`: the environment written names 3, the count §1 was measured with."""
    import json

    monkeypatch.delenv("TORCHMECH_THREADS", raising=False)
    assert main(["chapter", "--sections", "s1", "--json", "--threads", "3", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["environment"]["threads"] == "3"


# --- the digits do not depend on the threads ----------------------------------------------------------------------
#: Sections whose exact claims are quick: §1–§4 and §8's data and first two MNIST epochs (``--quick``), whose
#: 784→32 layer on batches of 64 is large enough for torch to split its kernels between two threads (~3 s per
#: count on a quiet 2-core CPU; beside a busy process the two-thread run takes several times longer, the policy's
#: very reason). §5–§7's runs (~30 s more per count: XOR's notebook runs, MPG) gave the same digits too when
#: measured by hand (their matrices are tiny: batches of 2 and 8, at most 9 features wide).
QUICK_EXACT = ("s1", "s2", "s3", "s4", "s8")
#: What an exact rule says on the reference (``Exact``, and ``Arbiter(Exact)``/``OffReference(Exact, …)`` on the CPU).
EXACT = "exact to the printed digits"


def _exact_digits(count: int, data: Path) -> dict[str, str]:
    """Each exact claim of :data:`QUICK_EXACT` measured afresh (runs of its own) with ``count`` torch threads:
    id → the value as printed."""
    ctx = Context(quick=True, data=data, runs=Runs())
    with applied(count):
        assert torch.get_num_threads() == count
        results = [c.judge(ctx) for s in QUICK_EXACT for c in claims(s) if c.not_measured(ctx) is None]
    return {r.id: r.ours for r in results if r.rule == EXACT}


def test_exact_claims_give_the_same_digits_at_one_and_two_threads(mnist_root: Path) -> None:
    """A claim that holds to the book's digits prints the same digits whatever torch's thread count: the policy
    (one thread) changes the speed, never a printed value. A claim that differed would need its rule to say
    why (as a Band's reason does); none does."""
    one, two = _exact_digits(1, mnist_root), _exact_digits(2, mnist_root)
    assert len(one) >= 15 and "s8.mnist.train_acc.epoch1" in one and set(one) == set(two)
    assert {k: (one[k], two[k]) for k in one if one[k] != two[k]} == {}
