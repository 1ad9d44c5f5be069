"""Whole chapter: the report's figures (one or more per section, honest to the runs) and its
self-contained page ``chapter13.html`` (torchmech/report/: chapter.py, page.py, plots.py).

One quick chapter run per module (:func:`quick`) feeds every test that needs the runs; the runs are
the session's shared runs, so the claims, these figures and the other sections' tests read the same
trainings.
"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from matplotlib.figure import Figure as MplFigure
from PIL import Image

from torchmech import SECTIONS
from torchmech.chapter.capacity import EnsembleResult
from torchmech.chapter.data.mnist import load_mnist, to_float_images
from torchmech.chapter.graph import grad_fn_dag
from torchmech.report.chapter import ChapterReport, run_chapter
from torchmech.report.figures import CAPACITY_ARCHS, QUICK_NOTE, SectionFigure, _capacity_figure
from torchmech.report.page import holds_class
from torchmech.spec.claims import claims
from torchmech.spec.core import HOLDS, Context, Result
from torchmech.spec.runs import Runs

pytestmark = pytest.mark.chapter

CHAPTER = [s for s in SECTIONS if s != "chapter"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path, runs: Runs
          ) -> tuple[ChapterReport, Path, Context]:
    """`run_chapter(quick=True, out=DIR)` and `write(DIR)`, once for the module."""
    out = tmp_path_factory.mktemp("report")
    ctx = Context(quick=True, data=mnist_root, runs=runs)
    report = run_chapter(out=out, context=ctx)
    report.write(out)
    return report, out, ctx


def _by_file(report: ChapterReport, name: str) -> SectionFigure:
    (fig,) = [f for f in report.figures if f.path is not None and f.path.name == name]
    return fig


def fgsm_caption(report: ChapterReport) -> str:
    return _by_file(report, "s3_fgsm.png").caption


def _result(report: ChapterReport, claim_id: str) -> Result:
    (r,) = [r for r in report.results if r.id == claim_id]
    return r


class _Page(HTMLParser):
    """What the tests read of the page: tags, images and links (with their section), claim rows, holds cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[tuple[str | None, str]] = []  # (section, src)
        self.links: list[str] = []
        self.rows: list[tuple[str | None, str]] = []  # (section, claim id)
        self.holds: list[tuple[str, str]] = []  # (class, text)
        self.section: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.section = a.get("id")
        elif tag == "img":
            self.images.append((self.section, a.get("src") or ""))
        elif tag == "tr" and a.get("id"):
            self.rows.append((self.section, a["id"] or ""))
        elif tag == "td" and "holds" in (a.get("class") or "").split():
            self._cell = a.get("class") or ""
        for key in ("src", "href", "action", "data"):
            if a.get(key) and tag != "img":
                self.links.append(a[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self.holds.append((self._cell, data))
            self._cell = None


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


# --- the figures -------------------------------------------------------------------------------------
def test_every_section_has_a_figure_and_trimmed_runs_say_so(quick: tuple[ChapterReport, Path, Context]) -> None:
    """`--quick`: at least one drawn PNG per section §1–§9; the figures of trimmed runs (§8's MNIST, §3's
    FGSM on it, §9's Lightning) end in the quick note; §5's capacity figure is a caption saying why it is
    not drawn; chapter13.md shows each PNG under its section's heading."""
    report, out, _ = quick
    for s in CHAPTER:
        drawn = [f for f in report.figures if f.section == s and f.path is not None]
        assert drawn, f"no figure drawn for {s}"
        assert all(f.path.read_bytes()[:8] == PNG for f in drawn)
    for name in ("mnist_curve.png", "s8_saliency.png", "s3_fgsm.png", "s9_tensorboard.png"):
        assert _by_file(report, name).caption.endswith(QUICK_NOTE)
    assert not any(f.caption.endswith(QUICK_NOTE) for f in report.figures if f.section in ("s1", "s2", "s4", "s7"))
    (capacity,) = [f for f in report.figures if f.path is None and f.section == "s5"]
    assert "--quick" in capacity.caption
    md = (out / "chapter13.md").read_text()
    for f in report.figures:
        if f.path is not None:
            heading = md.rindex("\n## §", 0, md.index(f"]({f.path.name})"))
            assert md[heading:].startswith(f"\n## {SECTIONS[f.section]}"), f.path.name


def test_figures_draw_the_claims_runs(quick: tuple[ChapterReport, Path, Context], mnist_root: Path) -> None:
    """The numbers each figure drew equal the runs' own: §1's DAG is the graph autograd recorded (the claim's
    chain); §3's autograd curve at the book's x is the claim's measured dL/dw; FGSM's ε = 0 point is the
    MNIST model's clean accuracy, computed here afresh on the same test digits (the caption names the subset);
    §4's closed forms agree with autograd; §7's loss curve is the run's history and its scatter's MSE the run's
    test MSE; §8's always-blank pixels keep their initial weights (as the caption says) and gradient × input
    is 0 there; §9's TensorBoard curve ends at the checkpoint's best valid_acc and its star is the run's
    test_acc."""
    report, _, ctx = quick
    # §1
    dag = _by_file(report, "s1_grad_fn_dag.png").data
    a, b, c = (torch.tensor(v, requires_grad=True) for v in (1.0, 2.0, 3.0))
    nodes = grad_fn_dag(ctx.impl.compute_z(a, b, c), {"a": a, "b": b, "c": c})
    assert dag["edges"] == [(i, j) for j, n in enumerate(nodes) for i in n.inputs]
    assert " → ".join(n for n in dag["nodes"] if n != "AccumulateGrad") == _result(report, "s1.graph.dag").ours
    # §3: the sweep passes through the claim's point; FGSM starts at the clean accuracy
    sweep = _by_file(report, "s3_gradients.png").data
    at_book = sweep["x"].index(1.4)
    assert f"tensor({sweep['autograd']['dL/dw'][at_book]:.4f})" == _result(report, "s3.autograd.dL_dw").ours
    fgsm = _by_file(report, "s3_fgsm.png").data
    model = ctx.mnist().model
    images, labels = load_mnist(mnist_root, train=False)
    images, labels = images[: fgsm["n"]], labels[: fgsm["n"]]
    with torch.no_grad():
        clean = (model(to_float_images(images)).argmax(1) == labels).float().mean().item()
    assert fgsm["epsilon"][0] == 0 and fgsm["n"] >= 1000 and f"first {fgsm['n']:,} of" in fgsm_caption(report)
    assert fgsm["accuracy"][0] == clean
    assert all(later <= earlier for earlier, later in zip(fgsm["accuracy"], fgsm["accuracy"][1:], strict=False))
    # §4: float32 autograd against the closed forms, inputs of size ≤ 6: a few ulps
    assert max(_by_file(report, "s4_loss_gradients.png").data["max_abs_diff"].values()) < 1e-5
    # §7
    mpg = _by_file(report, "s7_mpg.png").data
    assert mpg["train_loss"] == ctx.mpg().history.train_loss
    pred, true = torch.tensor(mpg["y_pred"]), torch.tensor(mpg["y_true"])
    # the scatter's points, summed again here in float32: equal up to the order of the sum
    torch.testing.assert_close(((pred - true) ** 2).mean().item(), ctx.mpg().test_mse, rtol=1e-6, atol=0.0)
    # §8: the caption's explanation, checked: blank pixels keep their initial first-layer weights
    sal = _by_file(report, "s8_saliency.png").data
    from torchmech.chapter.models import mnist_mlp

    torch.manual_seed(1)  # mnist_run builds the model right after torch.manual_seed(1)
    initial = next(m for m in mnist_mlp().modules() if isinstance(m, torch.nn.Linear)).weight
    trained = next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight
    dead = sal["dead"].flatten()
    assert sal["pixels"]["dead"] == int(dead.sum()) > 0
    torch.testing.assert_close(trained[:, dead], initial[:, dead], rtol=0.0, atol=0.0)  # never moved at all
    assert not torch.equal(trained[:, ~dead], initial[:, ~dead])
    assert (sal["product"][:, sal["dead"]] == 0).all()
    # §9
    versions = _by_file(report, "s9_tensorboard.png").data["versions"]
    run = ctx.lightning()
    assert run.log_dir.name in versions
    logged = versions[run.log_dir.name]
    best = run.trainer.checkpoint_callback.best_model_score.item()
    # TensorBoard keeps float32 scalars: the logged valid_acc and test_acc to float32's precision
    torch.testing.assert_close(logged["valid_acc"][-1][2], best, rtol=1e-7, atol=0.0)
    torch.testing.assert_close(logged["test_acc"][-1][2], run.test_acc, rtol=1e-7, atol=0.0)
    assert {"train_loss", "valid_loss", "train_acc"} <= set(logged)


class _Stub:
    """An ensemble's outcome with made-up accuracies (the success rate is EnsembleResult's own)."""

    success_rate = EnsembleResult.success_rate

    def __init__(self, g: torch.Generator, layers: int) -> None:
        self.valid_acc = 0.5 + 0.5 * torch.rand(256, generator=g)
        self.grad_norms = torch.rand(256, layers, generator=g) + 1e-3
        self.n_params = int(torch.randint(3, 400, (1,), generator=g))


def test_capacity_bars_are_the_ensembles_success_rates(tmp_path: Path, saved_figures: list[MplFigure]) -> None:
    """§5's capacity figure (not drawn by --quick): each bar's height is its ensemble's `success_rate(0.9)`
    in percent, read back from the matplotlib figure it saved; the depth panel's points are the medians
    of the first layer's gradient norms; in a quick context it is a caption only."""
    g = torch.Generator().manual_seed(0)
    stubs = {arch: _Stub(g, len(arch.split("x")) + 1 if arch else 1) for arch in CAPACITY_ARCHS}
    fig = _capacity_figure(SimpleNamespace(quick=False, ensemble=stubs.__getitem__), tmp_path)
    rates = [stubs[a].success_rate(0.9) for a in CAPACITY_ARCHS]
    assert fig.data["success_rate"] == rates and len(set(rates)) > 1
    (drawn,) = saved_figures
    bars = [p.get_height() for p in drawn.axes[0].patches]
    torch.testing.assert_close(bars, [100 * r for r in rates], rtol=1e-12, atol=0.0)  # ×100 in double
    medians = [stubs[a].grad_norms[:, 0].median().item() for a in ("", "4", "4x4", "4x4x4", "4x4x4x4")]
    assert fig.data["grad_median"] == medians
    assert list(drawn.axes[1].lines[0].get_ydata()) == medians
    assert fig.path is not None and fig.path.read_bytes()[:8] == PNG
    assert _capacity_figure(SimpleNamespace(quick=True), tmp_path).path is None


# --- the page ------------------------------------------------------------------------------------------
def test_html_is_one_self_contained_page(quick: tuple[ChapterReport, Path, Context]) -> None:
    """chapter13.html parses; every <img> is a data: URI whose base64 is a valid PNG (PIL verifies it),
    one per drawn figure and at least one inside each section's <section>; nothing is fetched (no script,
    no stylesheet link, no http(s) address, no CSS url() or @import); every claim is a row, in registry
    order, under its own section; each holds cell carries the class of its verdict; it prints cleanly
    (@media print)."""
    report, out, _ = quick
    text = (out / "chapter13.html").read_text(encoding="utf-8")
    page = _parse(text)
    assert page.tags[:2] == ["html", "head"] and "script" not in page.tags and "link" not in page.tags
    assert "iframe" not in page.tags and "object" not in page.tags
    assert not [u for u in page.links + [src for _, src in page.images] if u.startswith(("http:", "https:", "//"))]
    assert "url(" not in text and "@import" not in text and "@media print" in text
    assert len(page.images) == sum(f.path is not None for f in report.figures)
    for _, src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:80]
        payload = src.split(",", 1)[1]
        Image.open(io.BytesIO(base64.b64decode(payload, validate=True))).verify()
    assert {s for s, _ in page.images} == set(CHAPTER)
    assert [cid for _, cid in page.rows] == [c.id for c in claims()]
    assert all(section == cid.split(".")[0] for section, cid in page.rows)
    assert len(page.holds) == len(report.results)
    assert all(cls.split() == ["holds", holds_class(verdict)] and verdict in HOLDS for cls, verdict in page.holds)
    assert [v for _, v in page.holds] == [r.holds for r in report.results]
    classes = [holds_class(v) for v in HOLDS]
    assert len(set(classes)) == len(HOLDS) and all(re.fullmatch(r"holds-[a-z0-9-]+", c) for c in classes)
    for c in classes:
        assert f".{c} {{" in text  # each verdict has its colour


def test_html_escapes_every_text(tmp_path: Path) -> None:
    """A statement, a value, a caption or an environment entry holding markup shows as text: the page
    parses to the same single row and figure, and the markup appears only escaped."""
    png = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(png)
    evil = "<script>alert(1)</script> & <img src=http://x>"
    result = Result(id="s1.evil", section="s1", statement=evil, book=evil, ours=evil, holds="exact", rule=evil)
    report = ChapterReport([result], {"torchmech": evil, "torch": "2", "python": "3", "device": "cpu",
                                      "device_name": evil, "threads": "1"}, figures=[SectionFigure("s1", evil, png)])
    text = report.html()
    page = _parse(text)
    assert "script" not in page.tags and [cid for _, cid in page.rows] == ["s1.evil"]
    assert len(page.images) == 1 and page.images[0][1].startswith("data:image/png;base64,")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img" in text
