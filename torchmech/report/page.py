"""``chapter13.html``: the chapter report as one self-contained page.

One file that opens in any browser, offline: every figure embedded as a base64 ``data:`` URI, no
script, no stylesheet or font from the network. Per section, its claims (the book's value beside
ours, the *holds* column coloured by its verdict) and under them the section's figures; then the
legend and the environment. Every text is escaped (``html.escape``); the CSS prints cleanly
(``@media print``: no navigation, figures and rows kept whole, the verdict colours printed).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from torchmech import SECTIONS
from torchmech.spec.core import HOLDS

if TYPE_CHECKING:
    from torchmech.report.figures import SectionFigure
    from torchmech.spec.core import Result


class ChapterLike(Protocol):
    """What the page reads of a report (:class:`torchmech.report.chapter.ChapterReport` is one): the page sits below
    the report, so it names only what it uses."""

    environment: dict[str, str]
    results: list[Result]
    figures: list[SectionFigure]
    quick: bool

    def counts(self) -> dict[str, int]: ...

    def summary(self) -> str: ...

#: The *holds* column's colours: (background, text) per verdict.
HOLDS_COLOURS: dict[str, tuple[str, str]] = {
    "exact": ("#bbf7d0", "#14532d"),
    "band": ("#d9f99d", "#365314"),
    "bound": ("#ccfbf1", "#134e4a"),
    "law": ("#bfdbfe", "#1e3a8a"),
    "erratum": ("#fde68a", "#78350f"),
    "conforms": ("#a7f3d0", "#064e3b"),
    "arbiter": ("#e9d5ff", "#581c87"),
    "n/a": ("#f3f4f6", "#6b7280"),
    "quick": ("#e5e7eb", "#374151"),
    "skip": ("#f3f4f6", "#6b7280"),
    "no": ("#fecaca", "#7f1d1d"),
}

CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --rule: #e5e7eb; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       max-width: 1180px; margin: 0 auto; padding: 1.5rem 1.5rem 4rem; }
h1 { font-size: 1.9rem; margin: 0 0 .3rem; }
h2 { font-size: 1.35rem; margin: 2.4rem 0 .6rem; padding-bottom: .25rem; border-bottom: 2px solid var(--rule); }
.sub, .env-line, .note, footer { color: var(--muted); }
.summary { font-size: 1.1rem; font-weight: 600; margin: .8rem 0 .4rem; }
.quick-banner { background: #fef9c3; border: 1px solid #fde047; padding: .5rem .8rem; border-radius: 6px; }
nav ol { columns: 3; padding-left: 1.2rem; margin: .6rem 0; }
nav a { color: #1d4ed8; text-decoration: none; }
code, .val { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .86em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--rule); }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
table.claims td.id { white-space: nowrap; }
table.claims .rule { font-size: .8rem; color: var(--muted); margin-top: .2rem; }
table.claims .val { white-space: pre-wrap; overflow-wrap: break-word; display: block; max-width: 24rem; }
td.holds, .badge { font-weight: 600; text-align: center; border-radius: 4px; white-space: nowrap; }
td.holds { vertical-align: middle; }
.badge { display: inline-block; padding: .05rem .5rem; margin: 0 .15rem .25rem 0; }
figure { margin: 1.4rem 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; border: 1px solid var(--rule); }
figcaption { font-size: .9rem; margin-top: .4rem; }
dl.legend { display: grid; grid-template-columns: max-content 1fr; gap: .3rem .8rem; }
dl.legend dd { margin: 0; }
table.env { width: auto; }
@page { size: A4; margin: 14mm; }
@media print {
  body { font-size: 9.5pt; max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; margin-top: 1.2rem; }
  tr, figure, dl.legend { break-inside: avoid; }
  figure img { max-height: 23cm; border: none; }
  td.holds, .badge, .quick-banner { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
"""


#: The colours of a verdict :data:`HOLDS_COLOURS` does not name yet.
OTHER_COLOURS = ("#e5e7eb", "#111827")


def holds_class(verdict: str) -> str:
    """The CSS class of a *holds* cell: ``holds-`` and the verdict, any other character than a letter or
    digit as ``-`` (``n/a`` → ``holds-n-a``)."""
    return "holds-" + re.sub(r"[^a-z0-9]", "-", verdict.lower())


def _holds_css() -> str:
    return "\n".join(f".{holds_class(k)} {{ background: {bg}; color: {fg}; }}"
                     for k, (bg, fg) in ((k, HOLDS_COLOURS.get(k, OTHER_COLOURS)) for k in HOLDS))


def inline(text: str) -> str:
    """``text`` escaped, with markdown's backtick spans as ``<code>``."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: plain text
        return html.escape(text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def data_uri(png: Path) -> str:
    """``png`` as a ``data:image/png;base64,…`` URI."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _badge(holds: str) -> str:
    return f'<span class="badge {holds_class(holds)}">{html.escape(holds)}</span>'


def _claims_table(results: Iterable) -> list[str]:
    rows = ['<table class="claims">',
            "<thead><tr><th>claim</th><th>statement, and the rule it holds by</th><th>book</th><th>measured</th>"
            "<th>holds</th></tr></thead>", "<tbody>"]
    previous = None
    for r in results:
        e = html.escape
        rule = "rule: as above" if r.rule == previous else r.rule  # a family (20 epochs) states its rule once
        previous = r.rule
        rows.append(f'<tr id="{e(r.id)}"><td class="id"><code>{e(r.id)}</code></td>'
                    f'<td>{e(r.statement)}<div class="rule">{e(rule)}</div></td>'
                    f'<td><span class="val">{e(r.book)}</span></td><td><span class="val">{e(r.ours)}</span></td>'
                    f'<td class="holds {holds_class(r.holds)}">{e(r.holds)}</td></tr>')
    return [*rows, "</tbody></table>"]


def _figure(fig: SectionFigure) -> str:
    if fig.path is None or fig.path.suffix != ".png" or not fig.path.is_file():
        return f'<p class="note">{inline(fig.caption)}</p>'
    alt = html.escape(fig.caption.split(":")[0].replace("`", ""), quote=True)
    return (f'<figure><img src="{data_uri(fig.path)}" alt="{alt}">'
            f"<figcaption>{inline(fig.caption)}</figcaption></figure>")


def render(report: ChapterLike) -> str:
    """The whole page, as one string."""
    env = report.environment
    sections = [s for s in SECTIONS if s != "chapter"
                and (any(r.section == s for r in report.results) or any(f.section == s for f in report.figures))]
    counts = " ".join(f"{_badge(k)}{n}" for k, n in report.counts().items())
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>Chapter 13, reproduced — torchmech</title>",
           f"<style>{CSS}{_holds_css()}\n</style>", "</head>", "<body>", "<header>",
           "<h1>Chapter 13, reproduced</h1>",
           '<p class="sub">“Going Deeper – The Mechanics of PyTorch”, chapter 13 of <em>Machine Learning with '
           "PyTorch and Scikit-Learn</em> (Raschka, Liu, Mirjalili, 2022): every claim of the chapter, the book's "
           "printed value beside the value measured by this run, and how it holds.</p>",
           f'<p class="env-line">torch {html.escape(env["torch"])} on {html.escape(env["device"])} '
           f'({html.escape(env["device_name"])}), torchmech {html.escape(env["torchmech"])}</p>',
           f'<p class="summary">{html.escape(report.summary())}</p>', f'<p class="counts">{counts}</p>']
    if report.quick:
        out.append('<p class="quick-banner"><strong>Quick run</strong>: the long trainings were trimmed (MNIST to 2 '
                   "epochs, Lightning and Ignite to one short epoch, no 256-seed ensembles); their claims say "
                   "<code>quick</code> and their figures say so.</p>")
    out += ["<nav><ol>", *(f'<li><a href="#{s}">{html.escape(SECTIONS[s])}</a></li>' for s in sections),
            '<li><a href="#legend">What the holds column says</a></li>',
            '<li><a href="#environment">Environment</a></li>', "</ol></nav>", "</header>", "<main>"]
    for s in sections:
        out += [f'<section id="{s}">', f"<h2>{html.escape(SECTIONS[s])}</h2>"]
        mine = [r for r in report.results if r.section == s]
        if mine:
            out += _claims_table(mine)
        out += [_figure(f) for f in report.figures if f.section == s]
        out.append("</section>")
    out += ['<section id="legend">', "<h2>What the holds column says</h2>", '<dl class="legend">',
            *(f"<dt>{_badge(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in HOLDS.items()), "</dl>", "</section>",
            '<section id="environment">', "<h2>Environment</h2>", '<table class="env"><tbody>',
            *(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>" for k, v in env.items()),
            "</tbody></table>", "</section>", "</main>",
            f"<footer><p>Written by <code>torchmech chapter</code> on "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. The same claims as "
            "<code>chapter13.md</code> and <code>results.json</code>.</p></footer>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
