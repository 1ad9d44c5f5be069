"""The chapter report's figures, at least one per section, drawn from the claims' own runs.

Each ``_figures_sN(ctx, out)`` draws its section's figures with the same shared runs the claims read
(nothing trains twice) and returns :class:`SectionFigure` objects that keep the numbers they drew
(:attr:`SectionFigure.data`), for the tests to compare with those runs. :data:`FIGURES` maps each section to
its function; :mod:`torchmech.report.chapter` calls it when the chapter is written to a folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from torchmech.chapter.data.mnist import to_float_images
from torchmech.chapter.graph import grad_fn_dag
from torchmech.spec.claims import MNIST_TRAIN_ACC, MPG_LOSSES
from torchmech.spec.core import Context


@dataclass
class SectionFigure:
    """One figure of the report, with the numbers it drew.

    Attributes:
        section: the section it stands under (``"s3"``); a figure may be drawn with another
            section's run (§3's FGSM curve uses §8's MNIST model).
        caption: what it shows, in sentences (backticks mark code).
        path: the PNG, or ``None`` for a caption alone (a figure not drawn, and why).
        data: the numbers drawn, by name: what a test compares with the runs.
    """

    section: str
    caption: str
    path: Path | None
    data: dict[str, Any] = field(default_factory=dict)


QUICK_NOTE = " (quick run: trimmed)"

#: §5's capacity bars: ensemble (hidden widths joined by x) → label; all are runs the §5 claims read.
CAPACITY_ARCHS = {"": "logistic", "2": "1×2", "4": "1×4", "8": "1×8", "16": "1×16",
                  "4x4": "2×4", "4x4x4": "3×4", "4x4x4x4": "4×4"}
#: §5's depth panel: 0–4 hidden layers of 4 units.
DEPTH_ARCHS = ("", "4", "4x4", "4x4x4", "4x4x4x4")
#: §6's noise bars: the ensembles ``s6.noisy_module.no_improvement`` reads.
NOISE_ARCHS = {"4x4": "2×4 MLP", "noisy0": "MyNoisyModule, σ = 0", "noisy": "MyNoisyModule, σ = 0.07"}
#: §3's FGSM step sizes (pixels in [0, 1]).
FGSM_EPSILONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
#: §3's FGSM curve runs on the first this many test digits (all 10,000 would cost a second more).
FGSM_DIGITS = 2000


def _trimmed(ctx: Context) -> str:
    return QUICK_NOTE if ctx.quick else ""


def _on(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on ``model``'s device and in its dtype (a backend may train in float64)."""
    p = next(model.parameters())
    return x.to(p.device, p.dtype)


def _figures_s1(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    a, b, c = (torch.tensor(v, requires_grad=True) for v in (1.0, 2.0, 3.0))
    nodes = grad_fn_dag(ctx.impl.compute_z(a, b, c), {"a": a, "b": b, "c": c})
    data = {"nodes": [n.name for n in nodes], "labels": [n.label for n in nodes],
            "edges": [(i, j) for j, n in enumerate(nodes) for i in n.inputs]}
    return [SectionFigure(
        "s1", "Figure 13.1 as PyTorch records it: the `grad_fn` DAG of `compute_z(a, b, c)` = 2·(a − b) + c "
        "for a, b, c that require grad. Arrows point the forward way (an input to the node that uses it); "
        "`backward()` walks them in reverse, from `AddBackward0` to each leaf's `AccumulateGrad`. The "
        "constant 2 is no node: nothing asks for its gradient.",
        plots.grad_fn_graph(nodes, out / "s1_grad_fn_dag.png"), data)]


def _figures_s2(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    shape = (300, 200)  # Linear(200, 300).weight: 60,000 samples per initialiser
    fan_in, fan_out = ctx.impl.fans(shape)
    bound, std = ctx.impl.glorot_bound(fan_in, fan_out), ctx.impl.glorot_std(fan_in, fan_out)
    g = torch.Generator().manual_seed(1)  # its own generator: the claims' global stream is left alone
    uniform = torch.nn.init.xavier_uniform_(torch.empty(shape), generator=g)
    normal = torch.nn.init.xavier_normal_(torch.empty(shape), generator=g)
    law = 2 / (fan_in + fan_out)
    data = {"fans": (fan_in, fan_out), "bound": bound, "std": std, "law_var": law,
            "uniform_range": (uniform.min().item(), uniform.max().item()), "uniform_var": uniform.var().item(),
            "normal_var": normal.var().item()}
    return [SectionFigure(
        "s2", f"§2's Glorot law, drawn: {uniform.numel():,} samples each of `xavier_uniform_` and "
        f"`xavier_normal_` on a `Linear({fan_in}, {fan_out})` weight, over U(−a, a) with a = "
        f"√(6 / (fan_in + fan_out)) = {bound:.4f} and N(0, σ²) with σ = √(2 / (fan_in + fan_out)) = "
        f"{std:.4f}. Both laws have variance 2 / (fan_in + fan_out) = {law:.3e}; the samples' variances: "
        f"{data['uniform_var']:.3e} and {data['normal_var']:.3e}.",
        plots.glorot_histograms(uniform, normal, bound, std, out / "s2_glorot.png"), data)]


def _figures_s3(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    w0, b0, x0, y0 = 1.0, 0.5, 1.4, 2.1  # the chapter's example (§3's claims): the book's point is x = 1.4
    xs = [round(-1.0 + 0.1 * k, 10) for k in range(41)]  # Python floats: x = 1.4 is the claims' float32 1.4
    auto: dict[str, list[float]] = {"dL/dw": [], "dL/db": []}
    exact: dict[str, list[float]] = {"dL/dw": [], "dL/db": []}
    for xv in xs:
        w, b = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
        x, y = torch.tensor([xv]), torch.tensor([y0])
        ctx.impl.linear_loss(w, b, x, y).backward()
        dw, db = ctx.impl.linear_loss_grad(w, b, x, y)
        auto["dL/dw"].append(w.grad.item())
        auto["dL/db"].append(b.grad.item())
        exact["dL/dw"].append(float(dw))
        exact["dL/db"].append(float(db))
    data = {"x": xs, "autograd": auto, "analytic": exact,
            "max_abs_diff": max(abs(p - q) for k in auto for p, q in zip(auto[k], exact[k], strict=True))}
    curves = {k: (auto[k], exact[k]) for k in auto}
    return [SectionFigure(
        "s3", f"§3's example z = wx + b, L = (y − z)² at w = {w0:g}, b = {b0:g}, y = {y0:g}, for {len(xs)} "
        f"inputs x: autograd's gradients (`L.backward()`, dots) on the ones worked out by hand, "
        f"dL/dw = 2x(wx + b − y) and dL/db = 2(wx + b − y) (lines); largest difference "
        f"{data['max_abs_diff']:.1e}. The dotted line is the book's input x = {x0:g}.",
        plots.gradient_sweep(xs, curves, x0, out / "s3_gradients.png"), data)]


def _fgsm_figure(ctx: Context, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 out: Path) -> SectionFigure:
    """§3's side box on §8's model: test accuracy after one FGSM step of each size in :data:`FGSM_EPSILONS`."""
    from torchmech.report import plots

    x, y = _on(model, to_float_images(images)), labels.to(next(model.parameters()).device)
    loss = torch.nn.CrossEntropyLoss(reduction="sum")  # summed: no gradient so small that its sign is lost
    accuracy = []
    for eps in FGSM_EPSILONS:
        x_adv = ctx.impl.fgsm(model, loss, x, y, eps, clamp=(0.0, 1.0))
        with torch.no_grad():
            accuracy.append((model(x_adv).argmax(1) == y).float().mean().item())
    data = {"epsilon": list(FGSM_EPSILONS), "accuracy": accuracy, "n": len(y)}
    return SectionFigure(
        "s3", f"§3's side box on §8's MNIST model: test accuracy after one fast-gradient-sign step "
        f"x + ε·sign(∇ₓ loss), clipped to [0, 1] (`fgsm`), on the first {len(y):,} of the 10,000 test "
        f"digits (a subset, for speed); ε = 0 is the model's clean accuracy on them. ε = 0.1 moves each "
        f"pixel by a tenth of its range at most."
        + _trimmed(ctx), plots.fgsm_curve(FGSM_EPSILONS, accuracy, out / "s3_fgsm.png"), data)


def _figures_s4(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    z = torch.linspace(-6.0, 6.0, 61)
    n = len(z)
    panels = []

    def grad(loss_of: Callable[[torch.Tensor], torch.Tensor], inp: torch.Tensor) -> torch.Tensor:
        inp = inp.detach().requires_grad_(True)
        return torch.autograd.grad(loss_of(inp), inp)[0]

    ones, zeros = torch.ones(n), torch.zeros(n)
    panels.append(("BCELoss(σ(z), y = 1) by the logit z: σ(z) − y", z,
                   grad(lambda t: torch.nn.BCELoss()(torch.sigmoid(t), ones), z) * n,
                   ctx.impl.bce_logit_grad(z, ones) * n))
    logits = torch.stack([z, zeros, zeros], 1)  # three classes, the first logit swept, target 0
    target = torch.zeros(n, dtype=torch.long)
    panels.append(("CrossEntropyLoss(z, 0) by z₀: softmax(z)₀ − 1", z,
                   grad(lambda t: torch.nn.CrossEntropyLoss()(t, target), logits)[:, 0] * n,
                   ctx.impl.cross_entropy_logit_grad(logits, target)[:, 0] * n))
    panels.append(("MSELoss(ŷ, y = 0) by ŷ: 2(ŷ − y)", z,
                   grad(lambda t: torch.nn.MSELoss()(t, zeros), z) * n, ctx.impl.mse_grad(z, zeros) * n))
    diffs = {title.split("(")[0]: (a - e).abs().max().item() for title, _, a, e in panels}
    data = {"max_abs_diff": diffs, "n": n}
    drawn = [(t, x.tolist(), a.tolist(), e.tolist()) for t, x, a, e in panels]
    return [SectionFigure(
        "s4", f"§4's losses: each one's gradient by autograd (dots) on its closed form (lines, "
        f"`torchmech.chapter.losses`), over a batch of {n} inputs and scaled by N = {n} (the losses average "
        f"over the batch). Largest differences: "
        + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + ".",
        plots.loss_gradients(drawn, out / "s4_loss_gradients.png"), data)]


def _capacity_figure(ctx: Context, out: Path) -> SectionFigure:
    """§5 over 256 seeds, from the ensembles the §5 claims read (none in a quick run: a caption says so)."""
    from torchmech.report import plots

    if ctx.quick:
        return SectionFigure("s5", "Capacity over 256 seeds: not drawn, --quick trains no ensembles.", None)
    rates = [ctx.ensemble(a).success_rate(0.9) for a in CAPACITY_ARCHS]
    params = [ctx.ensemble(a).n_params for a in CAPACITY_ARCHS]
    grads = [ctx.ensemble(a).grad_norms[:, 0] for a in DEPTH_ARCHS]
    quartiles = [(torch.quantile(g, 0.25).item(), g.median().item(), torch.quantile(g, 0.75).item()) for g in grads]
    data = {"archs": list(CAPACITY_ARCHS), "success_rate": rates, "n_params": params,
            "depths": list(range(len(DEPTH_ARCHS))), "grad_median": [q[1] for q in quartiles]}
    return SectionFigure(
        "s5", "Capacity over 256 seeds (each model initialised by its own seed, 200 epochs as in the "
        "book). Left: the share of seeds above 0.9 validation accuracy per architecture (hidden layers × "
        "units; parameters under each bar): width helps, depth of 4-unit layers does not. Right: the "
        "first layer's weight-gradient norm in the first epoch falls about 3× per added layer of 4 "
        "units (vanishing gradients).",
        plots.capacity_bars(list(CAPACITY_ARCHS.values()), rates, params, data["depths"], quartiles,
                                      out / "s5_capacity.png"), data)


def _figures_s5(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    data = ctx.impl.make_xor()
    return [SectionFigure("s5", "Figure 13.2: the XOR data", plots.xor_scatter(data, out / "xor_data.png")),
            SectionFigure("s5", "Figure 13.3: logistic regression's learning curves",
                          plots.learning_curves(ctx.xor_notebook("logistic")[1], out / "xor_logistic_curves.png")),
            SectionFigure("s5", "Figure 13.4: two hidden layers of 4 units (the notebook's order)",
                          plots.learning_curves(ctx.xor_notebook("mlp")[1], out / "xor_mlp_curves.png")),
            _capacity_figure(ctx, out)]


def _figures_s6(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    data = ctx.impl.make_xor()
    figures = [SectionFigure("s6", "Figure 13.5: MyModule's decision regions (validation points)",
                             plots.decision_regions(ctx.xor_notebook("modulelist")[0], data,
                                             out / "xor_modulelist_regions.png")),
               SectionFigure("s6", "Figure 13.6: MyNoisyModule's decision regions",
                             plots.decision_regions(ctx.xor("noisy")[0], data, out / "xor_noisy_regions.png"))]
    if ctx.quick:
        return figures
    rates = [ctx.ensemble(a).success_rate(0.9) for a in NOISE_ARCHS]
    params = [ctx.ensemble(a).n_params for a in NOISE_ARCHS]
    return [*figures, SectionFigure(
        "s6", "Did the noise help? The share of 256 seeds above 0.9 validation accuracy: MyNoisyModule with its "
        "noise and without it (σ = 0) are alike; both beat the plain 2×4 MLP because of NoisyLinear's "
        "initialisation, not its noise.",
        plots.success_bars(list(NOISE_ARCHS.values()), rates, params, out / "s6_noise.png"),
        {"archs": list(NOISE_ARCHS), "success_rate": rates})]


def _figures_s7(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    run = ctx.mpg()  # the test metrics and predictions as the run computed them
    mse, mae, y = run.test_mse, run.test_mae, run.test_true
    data = {"train_loss": list(run.history.train_loss), "y_true": list(run.test_true), "y_pred": list(run.test_pred),
            "test_mse": mse, "test_mae": mae}
    book = {e: float(v) for e, v in MPG_LOSSES.items()}
    return [SectionFigure(
        "s7", f"§7: the training loss per epoch (log scale) beside the loss the book prints every 20 "
        f"epochs, and the trained model's MPG for the {len(y)} test cars against their true MPG "
        f"(dotted: a perfect prediction); test MSE {mse:.4f}, MAE {mae:.4f}.",
        plots.mpg_figure(data["train_loss"], book, data["y_true"], data["y_pred"], out / "s7_mpg.png"),
        data)]


#: A pixel inked in fewer than this share of the training images counts as rarely inked (§8's saliency).
RARE_INK = 0.01


def _saliency_figure(ctx: Context, model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor,
                     out: Path) -> SectionFigure:
    """§8: |∂logit/∂x| beside ∂logit/∂x ⊙ x for a few test digits; the never and rarely inked pixels outlined,
    with their first-layer weights' sizes (what the raw gradient shows there)."""
    from torchmech.report import plots

    train_images, _ = ctx.impl.load_mnist(ctx.data, train=True)
    inked = (train_images > 0).float().mean(0)
    dead = inked == 0  # 0 in every training image: their first-layer weights never get a gradient
    rare = (inked < RARE_INK) & ~dead
    inp = _on(model, x).detach().requires_grad_(True)  # detach: ``x`` itself stays without grad
    logit = model(inp).gather(1, labels.to(inp.device)[:, None]).sum()
    (grad,) = torch.autograd.grad(logit, inp)
    grad = grad.detach().reshape(len(x), 28, 28).float().cpu()
    images = x.reshape(len(x), 28, 28).cpu()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight.detach().float().cpu().abs()
    regions = {"dead": dead, "rare": rare, "other": ~(dead | rare)}
    data = {"pixels": {k: int(m.sum()) for k, m in regions.items()}, "grad": grad, "product": grad * images,
            "dead": dead, "rare": rare,
            "grad_mean": {k: grad.abs()[:, m].mean().item() for k, m in regions.items()},
            "weight_mean": {k: first[:, m.flatten()].mean().item() for k, m in regions.items()}}
    n, w = data["pixels"], data["weight_mean"]
    return SectionFigure(
        "s8", f"§3's saliency on §8's model, for {len(x)} test digits: the raw gradient |∂logit/∂x| of "
        f"the true class's logit (middle row) and gradient × input ∂logit/∂x ⊙ x (bottom; red raises the "
        f"logit, blue lowers it). The raw map is speckled out to the border, where digits have no ink. "
        f"That is correct, not a bug: the gradient at a pixel is made of that pixel's first-layer weights, "
        f"and those learn only from images inked there. {n['dead']} pixels (inside the cyan outline) are 0 "
        f"in all {len(train_images):,} training images: their weights never get a gradient and keep their "
        f"random initial values (mean |w| {w['dead']:.3f}). {n['rare']} more (inside the dashed outline) "
        f"are inked in fewer than {RARE_INK:.0%} of them, so their weights (mean |w| {w['rare']:.3f}; the "
        f"other pixels' {w['other']:.3f}) learn from a few images each"
                  + (", and have grown larger than the others: the bright speckles" if w["rare"] > w["other"] else "")
                  + ". The raw map shows these weights; "
                  "gradient × input is 0 wherever the digit has no ink, so the bottom row is what the digit's own "
                  "ink contributes." + _trimmed(ctx),
                  plots.saliency_pair(images, labels.tolist(), grad, dead, rare, out / "s8_saliency.png"), data)


def _figures_s8(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    run = ctx.mnist()
    images, labels = ctx.impl.load_mnist(ctx.data, train=False)
    x = to_float_images(images[:12])
    model = run.model.eval()
    with torch.no_grad():
        preds = model(_on(model, x)).argmax(1).cpu()
    note = _trimmed(ctx)
    return [SectionFigure("s8", "MNIST: training accuracy per epoch, ours and the book's" + note,
                          plots.accuracy_curve(run.history.train_acc, [float(a) for a in MNIST_TRAIN_ACC],
                                        out / "mnist_curve.png"), {"train_acc": list(run.history.train_acc)}),
            SectionFigure("s8", "MNIST: test digits with the model's predictions (red: wrong)" + note,
                          plots.digit_grid(x, labels[:12], preds, out / "mnist_digits.png")),
            _saliency_figure(ctx, model, x[:6], labels[:6], out),
            _fgsm_figure(ctx, model, images[:FGSM_DIGITS], labels[:FGSM_DIGITS], out)]


#: The scalars §9's LightningModule logs, as TensorBoard shows them.
TB_TAGS = ("train_loss", "valid_loss", "train_acc", "valid_acc", "test_acc")


def read_tensorboard_scalars(log_root: Path) -> dict[str, dict[str, list[tuple[int, int, float]]]]:
    """Every ``version_N`` under ``log_root``: tag → ``[(step, epoch, value), …]`` read from its event files.

    The epoch of a point is the ``epoch`` scalar Lightning logged at the same step (or the last one before).

    Raises:
        ImportError: tensorboard is not installed.
    """
    import bisect

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    versions: dict[str, dict[str, list[tuple[int, int, float]]]] = {}
    for folder in sorted(log_root.glob("version_*"), key=lambda p: int(p.name.split("_")[-1])):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
        acc.Reload()
        tags = acc.Tags()["scalars"]
        epochs = sorted((e.step, int(e.value)) for e in acc.Scalars("epoch")) if "epoch" in tags else []
        steps = [s for s, _ in epochs]

        def epoch_at(step: int, epochs: list[tuple[int, int]] = epochs, steps: list[int] = steps) -> int:
            i = bisect.bisect_right(steps, step) - 1
            return epochs[i][1] if i >= 0 else 0

        versions[folder.name] = {t: [(e.step, epoch_at(e.step), e.value) for e in acc.Scalars(t)]
                                 for t in TB_TAGS if t in tags}
    return versions


def _figures_s9(ctx: Context, out: Path) -> list[SectionFigure]:
    from torchmech.report import plots

    log_root = ctx.lightning().log_dir.parent  # each version_N: the 10-epoch run, the resumed one (if run)
    where = f"`tensorboard --logdir {log_root}` shows them live."
    try:
        versions = read_tensorboard_scalars(log_root)
    except ImportError:
        return [SectionFigure("s9", f"TensorBoard scalars not drawn: the tensorboard package is not installed. {where}",
                              None)]
    epochs = {v: sorted({p[1] for p in t.get("valid_acc", [])}) for v, t in versions.items()}
    runs = ", ".join(f"{v}: epoch {e[0]}" if len(e) == 1 else f"{v}: epochs {e[0]}–{e[-1]}" if e else v
                     for v, e in epochs.items())
    return [SectionFigure(
        "s9", f"§9's TensorBoard scalars, read back from the event files of each run ({runs}; a resumed "
        f"run is the next version): losses per training step, accuracies per epoch, the best "
        f"checkpoint's `test_acc` as a star. {where}" + _trimmed(ctx),
        plots.plot_tensorboard_scalars(versions, out / "s9_tensorboard.png"), {"versions": versions})]


FIGURES: dict[str, Callable[[Context, Path], list[SectionFigure]]] = {
    "s1": _figures_s1, "s2": _figures_s2, "s3": _figures_s3, "s4": _figures_s4, "s5": _figures_s5,
    "s6": _figures_s6, "s7": _figures_s7, "s8": _figures_s8, "s9": _figures_s9,
}


