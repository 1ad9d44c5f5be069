"""The chapter, claim by claim: each claim with the book's printed value and the value measured now.

Every section contributes a function that runs the book's code through torchmech and returns
its :class:`Claim` rows; :func:`run_chapter` gathers them in chapter order.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from torchmech import SECTIONS, __version__, plots
from torchmech.autodiff import linear_loss, linear_loss_grad
from torchmech.capacity import xor_run
from torchmech.data.mnist import load_mnist
from torchmech.data.xor import make_xor
from torchmech.devices import OFF_CPU_REL, resolve_device
from torchmech.graph import compute_z, op_chain
from torchmech.init import MyModule, MyModuleFixed
from torchmech.layers import NoisyLinear
from torchmech.models import chapter_sequential
from torchmech.projects import MnistResult, mnist_run, mpg_run
from torchmech.train import History


@dataclass
class ChapterRun:
    """What a section runner needs: where to run, whether to trim long trainings, where figures go."""

    device: torch.device
    quick: bool = False
    out: Path | None = None
    figures: list[tuple[str, str, Path]] = field(default_factory=list)  # (section, caption, file)

    def figure(self, section: str, caption: str, path: Path) -> None:
        self.figures.append((section, caption, path))


@dataclass(frozen=True)
class Claim:
    """One row of the chapter table: ``holds`` is ``"exact"``, ``"band"`` (within the documented
    band, named in the claim), ``"law"`` (off the CPU, where the book's digits come from the CPU's
    random generator, the law behind them), ``"quick"`` (not checked: ``--quick`` trimmed the run)
    or ``"no"``."""

    section: str
    claim: str
    book: str
    ours: str
    holds: str


def _row(section: str, claim: str, book: str, ours: str) -> Claim:
    return Claim(section, claim, book, ours, "exact" if ours == book else "no")


def _golden(section: str, claim: str, book: str, ours: float, device: torch.device) -> Claim:
    """A printed number: exact to its four decimals on the CPU; within ``OFF_CPU_REL`` elsewhere."""
    mine = f"{ours:.4f}"
    if mine == book or device.type == "cpu":
        return Claim(section, claim, book, mine, "exact" if mine == book else "no")
    near = abs(ours - float(book)) <= OFF_CPU_REL * abs(float(book))
    return Claim(section, f"{claim} (off the CPU: band ± {OFF_CPU_REL:.0%})", book, mine, "band" if near else "no")


def _trimmed(section: str, claim: str, book: str, ours: str = "not run (--quick)") -> Claim:
    return Claim(section, claim, book, ours, "quick")


def section1(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    rows = []
    for rank, book in ((0, "tensor(1)"), (1, "tensor([1])"), (2, "tensor([[1]])")):
        args = [torch.tensor(v, device=device).reshape((1,) * rank) for v in (1, 2, 3)]
        ours = repr(compute_z(*args).cpu())
        rows.append(_row("s1", f"compute_z(1, 2, 3), rank-{rank} inputs", book, ours))
    a, b, c = (torch.tensor(v, device=device, requires_grad=True) for v in (1.0, 2.0, 3.0))
    chain = " → ".join(op_chain(compute_z(a, b, c)))
    rows.append(_row("s1", "grad_fn DAG of compute_z", "SubBackward0 → MulBackward0 → AddBackward0", chain))
    return rows


def section2(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    rows = [
        _row("s2", "torch.tensor(3.14, requires_grad=True)", "tensor(3.1400, requires_grad=True)",
             repr(torch.tensor(3.14, requires_grad=True))),
    ]
    torch.manual_seed(1)
    w = torch.empty(2, 3)  # the golden values come from the CPU generator
    nn.init.xavier_normal_(w)
    book = "[[0.4183, 0.1688, 0.0390], [0.3930, -0.2858, -0.1051]]"
    ours = "[" + ", ".join("[" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in w.tolist()) + "]"
    rows.append(_row("s2", "seed 1: xavier_normal_ of a 2×3 tensor", book, ours))
    rows.append(_row("s2", "book's MyModule: registered parameters (the trap)", "0",
                     str(len(list(MyModule().parameters())))))
    rows.append(_row("s2", "MyModule with nn.Parameter: registered parameters", "2",
                     str(len(list(MyModuleFixed().to(device).parameters())))))
    return rows


def section3(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    w = torch.tensor(1.0, requires_grad=True, device=device)
    b = torch.tensor(0.5, requires_grad=True, device=device)
    x, y = torch.tensor([1.4], device=device), torch.tensor([2.1], device=device)
    linear_loss(w, b, x, y).backward()
    dw, db = linear_loss_grad(w, b, x, y)
    return [
        _row("s3", "dL/dw by autograd", "tensor(-0.5600)", repr(w.grad.cpu())),
        _row("s3", "dL/db by autograd", "tensor(-0.4000)", repr(b.grad.cpu())),
        _row("s3", "dL/dw = 2x(wx+b-y), by hand", "tensor(-0.5600)", repr(dw.cpu())),
        _row("s3", "dL/db = 2(wx+b-y), by hand (the book's exercise)", "tensor(-0.4000)", repr(db.cpu())),
    ]


def section4(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    model = chapter_sequential().to(device)
    layers = ", ".join(f"Linear({m.in_features},{m.out_features})" if isinstance(m, nn.Linear) else type(m).__name__
                       for m in model)
    rows = [_row("s4", "the chapter's nn.Sequential, layer by layer", "Linear(4,16), ReLU, Linear(16,32), ReLU",
                 layers)]
    n_params = sum(p.numel() for p in model.parameters())
    rows.append(_row("s4", "its parameters: 4·16+16 + 16·32+32", "624", str(n_params)))
    return rows


def _accuracies(h: History) -> str:
    return f"{h.train_acc[-1]:.2f} / {h.valid_acc[-1]:.2f}"


def section5(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    d = make_xor()
    _, logistic = xor_run("logistic", device=device, data=d)
    if ctx.out is not None:
        ctx.figure("s5", "Figure 13.2: the XOR data", plots.xor_scatter(d, ctx.out / "xor_data.png"))
        ctx.figure("s5", "Figure 13.3: logistic regression's learning curves",
                   plots.learning_curves(logistic, ctx.out / "xor_logistic_curves.png"))
        _, mlp_history = xor_run("mlp", device=device, data=d)
        ctx.figure("s5", "Figure 13.4: two hidden layers of 4 units (seeded, not in notebook order)",
                   plots.learning_curves(mlp_history, ctx.out / "xor_mlp_curves.png"))
    return [
        _row("s5", "XOR data, first row (np.random.seed(1))", "-0.16595599, 0.44064899",
             ", ".join(f"{v:.8f}" for v in d.x[0])),
        _row("s5", "XOR class-1 labels, train / valid", "53 / 53",
             f"{int(d.y_train.sum())} / {int(d.y_valid.sum())}"),
        _row("s5", "logistic regression, train / valid acc (200 epochs)", "0.64 / 0.71", _accuracies(logistic)),
    ]


def section6(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    torch.manual_seed(1)
    layer = NoisyLinear(4, 2)  # on the CPU: the printed noise comes from the CPU's generator
    x = torch.zeros(1, 4)
    prints = [", ".join(f"{v:.4f}" for v in layer(x, training=t)[0].tolist()) for t in (True, True, False)]
    noisy_model, noisy = xor_run("noisy", device=device)
    if ctx.out is not None:
        d = make_xor()
        modulelist, _ = xor_run("modulelist", device=device, data=d)
        ctx.figure("s6", "Figure 13.5: MyModule's decision regions (validation points)",
                   plots.decision_regions(modulelist, d, ctx.out / "xor_modulelist_regions.png"))
        ctx.figure("s6", "Figure 13.6: MyNoisyModule's decision regions",
                   plots.decision_regions(noisy_model, d, ctx.out / "xor_noisy_regions.png"))
    return [
        _row("s6", "NoisyLinear(4, 2), seed 1, training=True", "0.1154, -0.0598", prints[0]),
        _row("s6", "  … called again", "0.0432, -0.0375", prints[1]),
        _row("s6", "  … training=False", "0.0000, 0.0000", prints[2]),
    ] + ([_row("s6", "MyNoisyModule, train / valid acc (200 epochs)", "1.00 / 0.96", _accuracies(noisy))]
         if device.type == "cpu" else _noisy_off_cpu(device, noisy))


def _noisy_off_cpu(device: torch.device, noisy: History) -> list[Claim]:
    """Off the CPU the noise comes from the device's generator, so the book's digits become laws:
    each training call draws fresh noise and eval adds none; MyNoisyModule still learns XOR."""
    layer = NoisyLinear(4, 2).to(device)
    x = torch.zeros(1, 4, device=device)
    fresh = not torch.equal(layer(x, training=True), layer(x, training=True))
    quiet = torch.equal(layer(x, training=False), layer(x, training=False))
    accs = _accuracies(noisy)
    learns = noisy.train_acc[-1] >= 0.9 and noisy.valid_acc[-1] >= 0.9
    return [
        Claim("s6", f"  … on {device.type}: fresh noise per training call, none in eval (law)", "differ / same",
              f"{'differ' if fresh else 'same'} / {'same' if quiet else 'differ'}", "law" if fresh and quiet else "no"),
        Claim("s6", "MyNoisyModule, train / valid acc (200 epochs; off the CPU: band ≥ 0.9 both)", "1.00 / 0.96",
              accs, "exact" if accs == "1.00 / 0.96" else "band" if learns else "no"),
    ]


MPG_BOOK_LOSSES = {0: "536.1047", 20: "8.4361", 40: "7.8695", 60: "7.1891", 80: "6.7062",
                   100: "6.7599", 120: "6.3124", 140: "6.6864", 160: "6.7648", 180: "6.2156"}


def section7(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    r = mpg_run(device=device)
    rows = [_golden("s7", f"Auto MPG, epoch {e} loss", book, r.history.train_loss[e], device)
            for e, book in MPG_BOOK_LOSSES.items()]
    rows.append(_band("s7", "Test MSE (9.6133 on torch 2.11)", 9.6130, r.test_mse, 0.0005) if device.type == "cpu"
                else _golden("s7", "Test MSE", "9.6130", r.test_mse, device))
    rows.append(_golden("s7", "Test MAE", "2.1211", r.test_mae, device))
    return rows


MNIST_BOOK_ACC = [0.8531, 0.9287, 0.9413, 0.9506, 0.9558, 0.9592, 0.9627, 0.9650, 0.9674, 0.9691,
                  0.9711, 0.9729, 0.9741, 0.9747, 0.9767, 0.9779, 0.9782, 0.9799, 0.9808, 0.9813]


def _band(section: str, claim: str, book: float, ours: float, band: float) -> Claim:
    b, o = f"{book:.4f}", f"{ours:.4f}"
    return Claim(section, f"{claim} (band ± {band})", b, o,
                 "exact" if b == o else "band" if abs(ours - book) <= band else "no")


def section8(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    r = mnist_run(epochs=2 if ctx.quick else 20, device=device)
    rows = [_row("s8", f"MNIST epoch {e} train accuracy", f"{MNIST_BOOK_ACC[e]:.4f}",
                 f"{r.history.train_acc[e]:.4f}") for e in (0, 1)]
    if ctx.quick:
        rows.append(_trimmed("s8", "MNIST epochs 2–19 (band ± 0.001) and test accuracy (± 0.002)",
                             f"{MNIST_BOOK_ACC[2]:.4f} … {MNIST_BOOK_ACC[-1]:.4f}; 0.9645"))
    else:
        rows += [_band("s8", f"MNIST epoch {e} train accuracy", MNIST_BOOK_ACC[e], r.history.train_acc[e], 0.001)
                 for e in range(2, 20)]
        rows.append(_band("s8", "MNIST test accuracy", 0.9645, r.test_acc, 0.002))
    if ctx.out is not None:
        _mnist_figures(ctx, r)
    return rows


def _mnist_figures(ctx: ChapterRun, r: MnistResult) -> None:
    images, labels = load_mnist(train=False)
    x = images[:12].unsqueeze(1).float().div(255)
    model = r.model.eval()
    with torch.no_grad():
        preds = model(x.to(ctx.device)).argmax(1).cpu()
    ctx.figure("s8", "MNIST: training accuracy per epoch, ours and the book's",
               plots.accuracy_curve(r.history.train_acc, MNIST_BOOK_ACC, ctx.out / "mnist_curve.png"))
    ctx.figure("s8", "MNIST: test digits with the model's predictions (red: wrong)",
               plots.digit_grid(x, labels[:12], preds, ctx.out / "mnist_digits.png"))
    ctx.figure("s8", "§3's side box on MNIST: each digit above its saliency |∂ logit / ∂ pixel|",
               plots.saliency_grid(model, x[:6], labels[:6], ctx.out / "mnist_saliency.png"))


def section9(ctx: ChapterRun) -> list[Claim]:
    device = ctx.device
    import tempfile

    from torchmech.lit import fit

    accelerator = "gpu" if device.type == "cuda" else device.type
    trim = {"limit_train_batches": 100, "limit_val_batches": 20, "limit_test_batches": 20} if ctx.quick else {}
    with tempfile.TemporaryDirectory() as tmp:
        logdir = ctx.out if ctx.out is not None else Path(tmp)
        run = fit(1 if ctx.quick else 10, logdir=logdir, accelerator=accelerator, devices=1, progress=False, **trim)
        best_epoch = int(run.best_checkpoint.name.split("-")[0].removeprefix("epoch="))
    acc = run.test_acc or 0.0
    if ctx.out is not None:
        ctx.figure("s9", f"TensorBoard logs: `tensorboard --logdir {logdir / 'lightning_logs'}`", run.log_dir)
    if ctx.quick:
        return [_trimmed("s9", "Lightning, 10 epochs, test acc of the best checkpoint (quick: 1 short epoch)",
                         "0.9500", f"{acc:.4f}")]
    return [
        Claim("s9", "Lightning, 10 epochs, test acc of the best checkpoint (band: ≥ 0.94)", "0.9500",
              f"{acc:.4f}", "exact" if f"{acc:.4f}" == "0.9500" else "band" if acc >= 0.94 else "no"),
        Claim("s9", "  … from its best epoch (band: another epoch)", "8", str(best_epoch),
              "exact" if best_epoch == 8 else "band"),
    ]


SECTION_RUNNERS: dict[str, Callable[[torch.device], list[Claim]]] = {
    "s1": section1, "s2": section2, "s3": section3, "s4": section4, "s5": section5, "s6": section6,
    "s7": section7, "s8": section8, "s9": section9,
}


def run_chapter(device: str | torch.device | None = "cpu", sections: Sequence[str] | None = None,
                quick: bool = False, out: Path | None = None,
                progress: Callable[[str], None] | None = None) -> tuple[list[Claim], ChapterRun]:
    """Run the chapter's sections (or only ``sections``) in order on ``device``.

    ``quick`` trims the long trainings (MNIST, Lightning) and marks their claims ``quick``;
    ``out`` makes the sections save their figures there. ``progress(section)`` is called
    after each section.
    """
    ctx = ChapterRun(resolve_device(device), quick, out)
    chosen = SECTION_RUNNERS if sections is None else [s for s in SECTION_RUNNERS if s in sections]
    claims = []
    for s in chosen:
        claims += SECTION_RUNNERS[s](ctx)
        if progress is not None:
            progress(s)
    return claims, ctx


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
    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name()
    return {
        "torchmech": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(dev),
        "device_name": name,
        "threads": str(torch.get_num_threads()),
    }


def as_json(claims: list[Claim], device: str | torch.device | None = "cpu") -> dict:
    return {"environment": environment(device), "claims": [asdict(c) for c in claims]}



HOLDS_LEGEND = ("*holds*: `exact` the book's digits; `band` within the band named in the claim; `law` off the "
                "CPU, the law behind digits that come from the CPU's random generator; `quick` not checked "
                "(`--quick`); `no` the claim fails.")


def write_report(claims: list[Claim], ctx: ChapterRun, env: dict[str, str]) -> list[Path]:
    """``chapter13.md`` (the table, the figures, the TensorBoard pointer) and ``results.json``
    (every claim and the environment) in ``ctx.out``."""
    out = ctx.out
    if out is None:
        raise ValueError("write_report needs the run's output folder (ctx.out)")
    lines = ["# Chapter 13, reproduced", "",
             f"torch {env['torch']} on {env['device']} ({env['device_name']}), torchmech {env['torchmech']}"
             + (" — **quick run**: long trainings trimmed, their claims marked `quick`" if ctx.quick else ""), "",
             HOLDS_LEGEND, "", "| § | claim | book | measured | holds |", "|---|---|---|---|---|"]
    lines += [f"| {SECTIONS[c.section].split(' ')[0]} | {c.claim} | {c.book} | {c.ours} | {c.holds} |" for c in claims]
    for section in dict.fromkeys(s for s, _, _ in ctx.figures):
        lines += ["", f"## {SECTIONS[section]}"]
        for s, caption, path in ctx.figures:
            if s == section:
                rel = path.relative_to(out) if path.is_relative_to(out) else path
                lines += ["", f"{caption}", "", f"![{caption}]({rel})" if path.suffix == ".png" else f"`{rel}`"]
    md, js = out / "chapter13.md", out / "results.json"
    md.write_text("\n".join(lines) + "\n")
    js.write_text(json.dumps({"environment": env, "quick": ctx.quick, "seeds": {"torch": 1, "numpy": 1},
                              "claims": [asdict(c) for c in claims],
                              "figures": [str(p) for _, _, p in ctx.figures]}, indent=2))
    return [md, js]


def format_table(claims: list[Claim]) -> str:
    """A plain-text table: section, claim, the book's value, ours, and whether it holds."""
    header = ("§", "claim", "book", "measured", "holds")
    rows = [(SECTIONS[c.section].split(" ")[0], c.claim, c.book, c.ours, c.holds) for c in claims]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])
