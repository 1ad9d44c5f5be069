"""The chapter, claim by claim: a thin view of the claim registry (:mod:`torchmech.spec.claims`).

:func:`run_chapter` judges every claim (or one section's) in a :class:`~torchmech.spec.claims.Context`
and returns a :class:`ChapterReport`: the plain-text table, one JSON schema (``--json`` and
``results.json``), ``chapter13.md`` with the figures, ``chapter13.html`` (one self-contained page,
:mod:`torchmech.report.page`), and the exit code. The figures — at least one per section — come from
:mod:`torchmech.report.figures`, drawn from the same shared runs the claims read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from torchmech import SECTIONS
from torchmech.report import page
from torchmech.report.figures import FIGURES, SectionFigure
from torchmech.runtime.console import text_table
from torchmech.runtime.devices import NEWEST_MEASURED, calibration, environment, newer_than_measured, resolve_device
from torchmech.spec.claims import claims
from torchmech.spec.core import HOLDS, Context, Result

# --- the report --------------------------------------------------------------------------------------
HOLDS_LEGEND = "*holds*: " + "; ".join(f"`{k}` {v}" for k, v in HOLDS.items()) + "."


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class ChapterReport:
    """Every judged claim of a chapter run, the environment, and the figures drawn from its runs."""

    results: list[Result]
    environment: dict[str, str]
    quick: bool = False
    figures: list[SectionFigure] = field(default_factory=list)
    calibration: dict[str, Any] | None = None  # runtime/devices.calibration, measured before the claims
    seconds: dict[str, float] = field(default_factory=dict)  # section → the seconds its claims took

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.holds == "no"]

    @property
    def exit_code(self) -> int:
        """1 if any claim fails, else 0."""
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        return {k: sum(r.holds == k for r in self.results) for k in HOLDS if any(r.holds == k for r in self.results)}

    def to_json(self) -> dict:
        """One schema for ``--json`` and ``results.json``."""
        return {"environment": self.environment, "quick": self.quick, "seeds": {"torch": 1, "numpy": 1},
                "counts": self.counts(), "claims": [r.as_dict() for r in self.results],
                "figures": [str(f.path) for f in self.figures if f.path is not None],
                "calibration": self.calibration, "seconds": {s: round(t, 3) for s, t in self.seconds.items()}}

    def table(self) -> str:
        """A plain-text table: section, claim id, the book's value, ours, and how it holds."""
        header = ("§", "claim", "book", "measured", "holds")
        rows = [(SECTIONS[r.section].split(" ")[0], r.id, _one_line(r.book), _one_line(r.ours), r.holds)
                for r in self.results]
        clip = (3, 36, 40, 40, 8)  # long values (reprs, label counts) end in …
        rows = [tuple(v if len(v) <= c else v[: c - 1] + "…" for v, c in zip(r, clip, strict=True)) for r in rows]
        return text_table(header, rows)

    def summary(self, report_file: Path | None = None) -> str:
        """The closing line: how many claims hold, on what, and where the report went."""
        env, n = self.environment, len(self.results)
        unchecked = sum(r.holds in ("quick", "skip") for r in self.results)
        text = (f"{n - len(self.failed) - unchecked}/{n} claims hold"
                + (f", {unchecked} not checked (--quick or a missing package)" if unchecked else "")
                + (f", {len(self.failed)} FAIL: {', '.join(r.id for r in self.failed)}" if self.failed else "")
                + f" (torch {env['torch']}, {env['device']}: {env['device_name']})")
        if newer_than_measured(env["torch"]):
            text += (f"; torch {env['torch']} is newer than the newest release measured ({NEWEST_MEASURED}): "
                     "see docs/releases.md")
        return text + (f"; report: {report_file}" if report_file is not None else "")

    def markdown(self, out: Path) -> str:
        env = self.environment
        lines = ["# Chapter 13, reproduced", "",
                 f"torch {env['torch']} on {env['device']} ({env['device_name']}), torchmech {env['torchmech']}"
                 + (" — **quick run**: long trainings trimmed, their claims marked `quick`" if self.quick else ""),
                 "", HOLDS_LEGEND, "", "| § | claim | statement | book | measured | holds | rule |",
                 "|---|---|---|---|---|---|---|"]
        cell = lambda t: _one_line(t).replace("|", "\\|")  # noqa: E731
        lines += [f"| {SECTIONS[r.section].split(' ')[0]} | `{r.id}` | {cell(r.statement)} | {cell(r.book)} | "
                  f"{cell(r.ours)} | {r.holds} | {cell(r.rule)} |" for r in self.results]
        for section in (s for s in SECTIONS if any(f.section == s for f in self.figures)):
            lines += ["", f"## {SECTIONS[section]}"]
            for fig in (f for f in self.figures if f.section == section):
                lines += ["", fig.caption]
                if fig.path is not None:
                    rel = fig.path.relative_to(out) if fig.path.is_relative_to(out) else fig.path
                    alt = fig.caption.split(":")[0].replace("[", "").replace("]", "").replace("`", "")
                    lines += ["", f"![{alt}]({rel})" if fig.path.suffix == ".png" else f"`{rel}`"]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """``chapter13.html``: one self-contained page (:mod:`torchmech.report.page`): figures embedded, no script."""

        return page.render(self)

    def write(self, out: Path) -> list[Path]:
        """``chapter13.md`` (table and figures), ``results.json`` (:meth:`to_json`) and ``chapter13.html``
        (:meth:`html`, the figures embedded) in ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        md, js, page = out / "chapter13.md", out / "results.json", out / "chapter13.html"
        md.write_text(self.markdown(out))
        js.write_text(json.dumps(self.to_json(), indent=2))
        page.write_text(self.html(), encoding="utf-8")
        return [md, js, page]


def run_chapter(device: str | torch.device | None = "cpu", sections: Sequence[str] | None = None,
                quick: bool = False, out: Path | None = None,
                progress: Callable[[str], None] | None = None, data: Path | None = None,
                context: Context | None = None) -> ChapterReport:
    """Judge the registry's claims (or only ``sections``'), in chapter order, on ``device``.

    ``quick`` trims the long trainings (MNIST to 2 epochs, Lightning to one short epoch) and marks
    the claims it could not check ``quick``; ``out`` also draws each section's figures there (and
    keeps the runs' logs there). ``progress(section)`` is called after each section. ``context``
    overrides the whole context (another implementation or backend).
    """
    ctx = context or Context(device=resolve_device(device), quick=quick, data=data)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ctx.runs.use_workdir(out)
    chosen = [s for s in SECTIONS if s != "chapter" and (sections is None or s in sections)]
    report = ChapterReport([], environment(ctx.device), ctx.quick, calibration=calibration(ctx.device))
    for section in chosen:
        start = time.perf_counter()
        report.results += [c.judge(ctx) for c in claims(section)]
        report.seconds[section] = time.perf_counter() - start
        if out is not None and section in FIGURES:
            report.figures += FIGURES[section](ctx, out)
        if progress is not None:
            progress(section)
    return report
