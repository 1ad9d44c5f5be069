"""The claim registry as pytest cases: one ``test_claim`` case per claim, in its section's file.

Each section's test file holds::

    @pytest.mark.parametrize("claim", claim_cases("s7"))
    def test_claim(claim, spec): check(claim, spec)

and ``test_exercise`` parametrised over the section's exercises (:func:`exercise_cases`,
:func:`check_exercise`): under ``--impl`` it is ``torchmech learn check``'s verdict on that exercise, word
for word; on the reference it proves the exercise's check catches every catalogued mistake of it, each
named as itself. So ``pytest -m s7`` runs §7's claims and ``pytest -k test_mse`` picks ``s7.mpg.test_mse``. A
failure prints the claim's sentence, the book's value, the measured one ("yours" under ``--impl``, "ours" on
torchmech itself), the rule and its reason, and nothing else: no traceback through torchmech.
"""

from __future__ import annotations

import pytest

from torchmech.chapter.implementation import REFERENCE
from torchmech.learn import Workspace
from torchmech.learn.exercises import Exercise, exercises
from torchmech.learn.grader import learner_frame
from torchmech.spec.claims import claims
from torchmech.spec.core import Claim, Context


def claim_cases(section: str) -> list:
    """The section's claims as pytest parameters, with the claim id as the test id; claims that need
    a long run are marked ``slow``."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in claims(section)]


def check(claim: Claim, ctx: Context) -> None:
    """Judge ``claim`` in ``ctx``; fail with the claim's explanation (the measured value is "yours" when a
    learner's implementation is under test), skip where it cannot run. A learner's piece that raises fails in one
    line, as ``torchmech learn check`` says it: the exception and the learner's own line."""
    __tracebackhide__ = True
    yours = ctx.impl is not REFERENCE
    raised = ""
    try:
        result = claim.judge(ctx)
    except Exception as err:
        if not yours:
            raise  # torchmech's own error: its traceback is the report
        at = learner_frame(err.with_traceback(err.__traceback__.tb_next))  # past this frame: not the learner's
        raised = f"{type(err).__name__}: {err}" + (f" at {at}" if at else "")
    if raised:  # failed outside the except block: no "during handling of the above exception"
        pytest.fail(f"{claim.id}: {claim.statement}\n  yours raised {raised}", pytrace=False)
    if result.holds in ("skip", "n/a"):
        pytest.skip(result.ours if result.holds == "skip" else f"{result.ours}: {result.rule}")
    if result.holds in ("no", "quick"):
        pytest.fail(result.explain("yours" if yours else "ours"), pytrace=False)


def exercise_cases(section: str) -> list:
    """The section's exercises as pytest parameters (ids = exercise names)."""
    return [pytest.param(e, id=e.name) for e in exercises(section)]


def check_exercise(e: Exercise, ws: Workspace | None) -> None:
    """``--impl``: the workspace's exercise graded exactly as ``torchmech learn check`` grades it (skipped
    where not started). On the reference (``ws`` None): every catalogued mistake of ``e`` is caught and
    named as itself."""
    from torchmech.learn import grade

    if ws is None:
        from torchmech.learn.mistakes import MISTAKES, catch, named_mistakes

        mine = [m for m in MISTAKES if m.exercise == e.name]
        assert mine, f"no catalogued mistake for {e.name}"
        assert [m.name for m in mine if not catch(m.name)] == [], "mistakes the checks do not catch"
        assert {m.name: [x.name for x in named_mistakes(e.name, m.make())] for m in mine} == {
            m.name: [m.name] for m in mine}
        return
    g = grade(e, ws)
    if g.status == "not started":
        pytest.skip(f"{e.name}: not started in the workspace (the reference stands in)")
    if g.status != "done":
        pytest.fail(f"{e.name}: {g.failure}" + (f"\nlooks like a classic mistake: {g.mistake}" if g.mistake else ""),
                    pytrace=False)
