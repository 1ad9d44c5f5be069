"""The claim registry as pytest cases: one ``test_claim`` case per claim, in its section's file.

Each section's test file holds::

    @pytest.mark.parametrize("claim", claim_cases("s7"))
    def test_claim(claim, spec): check(claim, spec)

and ``test_exercise`` parametrised over the section's exercises (:func:`exercise_cases`,
:func:`check_exercise`): under ``--impl`` it is ``torchmech learn check``'s verdict on that exercise, word
for word; on the reference it proves the exercise's check catches every catalogued mistake of it, each
named as itself. So ``pytest -m s7`` runs §7's claims and ``pytest -k test_mse`` picks ``s7.mpg.test_mse``. A
failure prints the claim's sentence, the book's value, ours, the rule and its reason.
"""

from __future__ import annotations

import pytest

from torchmech.learn import Workspace
from torchmech.learn.exercises import Exercise, exercises
from torchmech.spec.claims import claims
from torchmech.spec.core import Claim, Context


def claim_cases(section: str) -> list:
    """The section's claims as pytest parameters, with the claim id as the test id; claims that need
    a long run are marked ``slow``."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in claims(section)]


def check(claim: Claim, ctx: Context) -> None:
    """Judge ``claim`` in ``ctx``; fail with the claim's explanation, skip where it cannot run."""
    result = claim.judge(ctx)
    if result.holds in ("skip", "n/a"):
        pytest.skip(result.ours if result.holds == "skip" else f"{result.ours}: {result.rule}")
    assert result.holds not in ("no", "quick"), result.explain()


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
