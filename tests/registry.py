"""The claim registry as pytest cases: one ``test_claim`` case per claim, in its section's file.

Each section's test file holds::

    @pytest.mark.parametrize("claim", claim_cases("s7"))
    def test_claim(claim, spec): check(claim, spec)

so ``pytest -m s7`` runs §7's claims and ``pytest -k test_mse`` picks ``s7.mpg.test_mse``. A
failure prints the claim's sentence, the book's value, ours, the rule and its reason.
"""

from __future__ import annotations

import pytest

from torchmech.claims import Claim, Context, claims


def claim_cases(section: str) -> list:
    """The section's claims as pytest parameters, with the claim id as the test id; claims that need
    a long run are marked ``slow``."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in claims(section)]


def check(claim: Claim, ctx: Context) -> None:
    """Judge ``claim`` in ``ctx``; fail with the claim's explanation, skip where it cannot run."""
    if claim.device_free and not ctx.be.is_reference:
        pytest.skip("the value does not depend on the device or backend: checked once, on the CPU")
    result = claim.judge(ctx)
    if result.holds in ("skip", "n/a"):
        pytest.skip(result.ours)
    assert result.holds not in ("no", "quick"), result.explain()
