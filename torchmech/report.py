"""The chapter, claim by claim: a thin view of the claim registry (:mod:`torchmech.claims`).

:func:`run_chapter` judges every claim (or one section's) in a :class:`~torchmech.claims.Context`
and returns a :class:`ChapterReport`: the plain-text table, one JSON schema (``--json`` and
``results.json``), ``chapter13.md`` with the figures, and the exit code. The figures are drawn
from the same shared runs the claims read: nothing trains twice.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from torchmech import SECTIONS, __version__
from torchmech.claims import HOLDS, Context, Result, claims
from torchmech.devices import resolve_device

Figure = tuple[str, str, Path]  # (section, caption, file)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str | torch.device | None = "cpu") -> dict[str, str]:
    """torchmech, torch and Python versions, the device and its name, torch's thread count."""
    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name()
    return {"torchmech": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": str(dev), "device_name": name, "threads": str(torch.get_num_threads())}


# --- figures, from the claims' own runs ------------------------------------------------------------
def _figures_s5(ctx: Context, out: Path) -> list[Figure]:
    from torchmech import plots

    data = ctx.impl.make_xor()
    return [("s5", "Figure 13.2: the XOR data", plots.xor_scatter(data, out / "xor_data.png")),
            ("s5", "Figure 13.3: logistic regression's learning curves",
             plots.learning_curves(ctx.xor_notebook("logistic")[1], out / "xor_logistic_curves.png")),
            ("s5", "Figure 13.4: two hidden layers of 4 units (the notebook's order)",
             plots.learning_curves(ctx.xor_notebook("mlp")[1], out / "xor_mlp_curves.png"))]


def _figures_s6(ctx: Context, out: Path) -> list[Figure]:
    from torchmech import plots

    data = ctx.impl.make_xor()
    return [("s6", "Figure 13.5: MyModule's decision regions (validation points)",
             plots.decision_regions(ctx.xor_notebook("modulelist")[0], data, out / "xor_modulelist_regions.png")),
            ("s6", "Figure 13.6: MyNoisyModule's decision regions",
             plots.decision_regions(ctx.xor("noisy")[0], data, out / "xor_noisy_regions.png"))]


def _figures_s8(ctx: Context, out: Path) -> list[Figure]:
    from torchmech import plots
    from torchmech.claims import MNIST_TRAIN_ACC
    from torchmech.data.mnist import to_float_images

    run = ctx.mnist()
    images, labels = ctx.impl.load_mnist(ctx.data, train=False)
    x = to_float_images(images[:12])
    model = run.model.eval()
    with torch.no_grad():
        preds = model(x.to(ctx.device)).argmax(1).cpu()
    return [("s8", "MNIST: training accuracy per epoch, ours and the book's",
             plots.accuracy_curve(run.history.train_acc, [float(a) for a in MNIST_TRAIN_ACC], out / "mnist_curve.png")),
            ("s8", "MNIST: test digits with the model's predictions (red: wrong)",
             plots.digit_grid(x, labels[:12], preds, out / "mnist_digits.png")),
            ("s8", "§3's side box on MNIST: each digit above its saliency |∂ logit / ∂ pixel|",
             plots.saliency_grid(model, x[:6], labels[:6], out / "mnist_saliency.png"))]


def _figures_s9(ctx: Context, out: Path) -> list[Figure]:
    log_dir = ctx.lightning().log_dir
    return [("s9", f"TensorBoard logs: `tensorboard --logdir {log_dir.parent}`", log_dir)]


FIGURES: dict[str, Callable[[Context, Path], list[Figure]]] = {
    "s5": _figures_s5, "s6": _figures_s6, "s8": _figures_s8, "s9": _figures_s9,
}


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
    figures: list[Figure] = field(default_factory=list)

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
                "figures": [str(p) for _, _, p in self.figures]}

    def table(self) -> str:
        """A plain-text table: section, claim id, the book's value, ours, and how it holds."""
        header = ("§", "claim", "book", "measured", "holds")
        rows = [(SECTIONS[r.section].split(" ")[0], r.id, _one_line(r.book), _one_line(r.ours), r.holds)
                for r in self.results]
        clip = (3, 36, 40, 40, 8)  # long values (reprs, label counts) end in …
        rows = [tuple(v if len(v) <= c else v[: c - 1] + "…" for v, c in zip(r, clip, strict=True)) for r in rows]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
        return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])

    def verdict(self, report_file: Path | None = None) -> str:
        """The closing line: how many claims hold, on what, and where the report went."""
        env, n = self.environment, len(self.results)
        unchecked = sum(r.holds in ("quick", "skip") for r in self.results)
        text = (f"{n - len(self.failed) - unchecked}/{n} claims hold"
                + (f", {unchecked} not checked (--quick or a missing package)" if unchecked else "")
                + (f", {len(self.failed)} FAIL: {', '.join(r.id for r in self.failed)}" if self.failed else "")
                + f" (torch {env['torch']}, {env['device']}: {env['device_name']})")
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
        for section in dict.fromkeys(s for s, _, _ in self.figures):
            lines += ["", f"## {SECTIONS[section]}"]
            for s, caption, path in self.figures:
                if s == section:
                    rel = path.relative_to(out) if path.is_relative_to(out) else path
                    lines += ["", caption, "", f"![{caption}]({rel})" if path.suffix == ".png" else f"`{rel}`"]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> list[Path]:
        """``chapter13.md`` (table and figures) and ``results.json`` (:meth:`to_json`) in ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        md, js = out / "chapter13.md", out / "results.json"
        md.write_text(self.markdown(out))
        js.write_text(json.dumps(self.to_json(), indent=2))
        return [md, js]


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
    report = ChapterReport([], environment(ctx.device), ctx.quick)
    for section in chosen:
        report.results += [c.judge(ctx) for c in claims(section)]
        if out is not None and section in FIGURES:
            report.figures += FIGURES[section](ctx, out)
        if progress is not None:
            progress(section)
    return report
