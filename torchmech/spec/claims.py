r"""The chapter's claims, each written once: the one registry that ``pytest`` and ``torchmech chapter`` read.

A :class:`Claim` is data, in the spirit of PyTorch's OpInfo:

* a stable ``id`` (``s7.mpg.test_mse``) whose first part is the section;
* the chapter's ``statement`` in one English sentence;
* the ``book``'s printed value, exactly as printed (the book's numbers live here and nowhere else);
* a ``measure``: a function of a :class:`Context` — which carries the implementation under test,
  the device and backend, ``quick``, and the shared runs — returning what was measured;
* a :class:`Rule` for holding: :class:`Exact` to the printed digits, a :class:`Band` (absolute or
  relative), :class:`AtLeast`, a :class:`Law` (a statistical or structural predicate), an
  :class:`Erratum` (the book's statement does not reproduce: the documented finding holds instead),
  :class:`Arbiter` (the book's digits on the reference backend — the CPU in float32, eager — and
  elsewhere the float64 arbiter's rule of :mod:`torchmech.runtime.backends`), or :class:`OffReference` (one rule
  on the reference, another elsewhere: laws where the random draws differ). Every band carries its
  reason: where and on what it was measured.

Families (MPG's ten loss lines, MNIST's 20 epochs, the train means) come from one table each.
``pytest`` turns every claim into a case of ``test_claim`` in its section's test file;
``torchmech chapter`` (:mod:`torchmech.report.chapter`) turns every claim into a row.

Example::

    >>> c = claim("s3.autograd.dL_dw")
    >>> c.book
    'tensor(-0.5600)'
    >>> c.judge(Context()).holds
    'exact'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch

from torchmech.spec.core import (
    Arbiter,
    AtLeast,
    Band,
    Claim,
    Context,
    Erratum,
    Exact,
    Law,
    OffReference,
)

CLAIMS: list[Claim] = []


def _add(*claims: Claim) -> None:
    for c in claims:
        if any(c.id == other.id for other in CLAIMS):
            raise ValueError(f"claim {c.id} declared twice")
        CLAIMS.append(c)


def claims(section: str | None = None) -> list[Claim]:
    """The registry in chapter order, or one section's claims."""
    return [c for c in CLAIMS if section is None or c.section == section]


def claim(claim_id: str) -> Claim:
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r} in the registry")


def book(claim_id: str) -> str:
    """The book's printed value of a claim (tests read the book's numbers here)."""
    return claim(claim_id).book


# --- §1 Computation graphs --------------------------------------------------------------------------
def _compute_z_of_ones(rank: int) -> Callable[[Context], str]:
    def measure(ctx: Context) -> str:
        args = [ctx.tensor(v).reshape((1,) * rank) for v in (1, 2, 3)]
        with ctx.be.autocast_context():
            return repr(ctx.be.function(ctx.impl.compute_z)(*args).cpu())
    return measure


def _dag(ctx: Context) -> str:
    # autograd's record of eager operations: compute_z runs uncompiled on every backend
    a, b, c = (ctx.tensor(v, requires_grad=True) for v in (1.0, 2.0, 3.0))
    with ctx.be.autocast_context():
        return " → ".join(ctx.impl.op_chain(ctx.impl.compute_z(a, b, c)))


_add(*(Claim(f"s1.compute_z.rank{rank}", f"compute_z(1, 2, 3) = 2·(a − b) + c on rank-{rank} integer tensors",
             printed, _compute_z_of_ones(rank), Exact())
       for rank, printed in ((0, "tensor(1)"), (1, "tensor([1])"), (2, "tensor([[1]])"))))
_add(Claim("s1.graph.dag", "PyTorch records compute_z's graph as the grad_fn DAG Sub → Mul → Add (figure 13.1)",
           "SubBackward0 → MulBackward0 → AddBackward0", _dag, Exact()))


# --- §2 Tensors that hold parameters ----------------------------------------------------------------
def _xavier_seed_1(ctx: Context) -> str:
    torch.manual_seed(1)
    w = torch.empty(2, 3)  # the book's digits come from the CPU generator
    torch.nn.init.xavier_normal_(w)
    return "[" + ", ".join("[" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in w.tolist()) + "]"


def _registered(piece: str) -> Callable[[Context], int]:
    def measure(ctx: Context) -> int:
        module = getattr(ctx.impl, piece)()
        return len(list(module.to(ctx.device).parameters()))
    return measure


_add(
    Claim("s2.requires_grad.scalar", "a tensor made with requires_grad=True prints so",
          "tensor(3.1400, requires_grad=True)", lambda ctx: repr(torch.tensor(3.14, requires_grad=True)),
          Exact(), device_free=True),
    Claim("s2.requires_grad.vector", "a vector made with requires_grad=True prints so",
          "tensor([1., 2., 3.], requires_grad=True)",
          lambda ctx: repr(torch.tensor([1.0, 2.0, 3.0], requires_grad=True)), Exact(), device_free=True),
    Claim("s2.xavier.seed1", "torch.manual_seed(1); xavier_normal_ fills a 2×3 tensor with these values",
          "[[0.4183, 0.1688, 0.0390], [0.3930, -0.2858, -0.1051]]", _xavier_seed_1, Exact(), device_free=True),
    Claim("s2.mymodule.trap", "the book's MyModule of torch.empty(..., requires_grad=True) attributes registers "
          "no parameters (the trap)", "0", _registered("RawTensorModule"), Exact()),
    Claim("s2.mymodule.fixed", "MyModule with nn.Parameter registers its two tensors", "2",
          _registered("ParameterModule"), Exact()),
)


# --- §3 Gradients by automatic differentiation ------------------------------------------------------
def _printed(t: torch.Tensor) -> str:
    """A float tensor as the book prints it: in float32 (the arbiter's float64 too), on the CPU."""
    return repr(t.detach().float().cpu())


def _book_gradients(ctx: Context) -> dict[str, str]:
    w, b = ctx.tensor(1.0, requires_grad=True), ctx.tensor(0.5, requires_grad=True)
    x, y = ctx.tensor([1.4]), ctx.tensor([2.1])
    with ctx.be.autocast_context():
        ctx.be.function(ctx.impl.linear_loss)(w, b, x, y).backward()
        # read before the next compiled call: under CUDA graphs (cuda-graphs) autograd's gradients live in the
        # graph's memory, which the next replay may overwrite
        autograd = {"dL_dw": _printed(w.grad), "dL_db": _printed(b.grad)}
        dw, db = ctx.be.function(ctx.impl.linear_loss_grad)(w, b, x, y)
    return autograd | {"by_hand_dw": _printed(dw), "by_hand_db": _printed(db)}


_add(*(Claim(f"s3.{name}", statement, printed, lambda ctx, key=key: _book_gradients(ctx)[key], Exact())
       for name, key, statement, printed in (
           ("autograd.dL_dw", "dL_dw", "z = wx + b, L = Σ(y − z)², w=1, b=0.5, x=1.4, y=2.1: autograd's dL/dw",
            "tensor(-0.5600)"),
           ("autograd.dL_db", "dL_db", "… and autograd's dL/db", "tensor(-0.4000)"),
           ("analytic.dL_dw", "by_hand_dw", "dL/dw = 2x(wx + b − y), worked out by hand", "tensor(-0.5600)"),
           ("analytic.dL_db", "by_hand_db", "dL/db = 2(wx + b − y), by hand (the book's exercise)", "tensor(-0.4000)"),
       )))


# --- §4 torch.nn ------------------------------------------------------------------------------------
_add(
    Claim("s4.sequential.repr", "nn.Sequential(Linear(4, 16), ReLU(), Linear(16, 32), ReLU()) prints so",
          "Sequential(\n  (0): Linear(in_features=4, out_features=16, bias=True)\n  (1): ReLU()\n"
          "  (2): Linear(in_features=16, out_features=32, bias=True)\n  (3): ReLU()\n)",
          lambda ctx: repr(ctx.impl.chapter_sequential().to(ctx.device)), Exact()),
    Claim("s4.sequential.parameters", "… and holds 4·16 + 16 + 16·32 + 32 parameters", "624",
          lambda ctx: ctx.impl.n_parameters(ctx.impl.chapter_sequential()), Exact()),
)


# --- §5 XOR and model capacity -----------------------------------------------------------------------
def _accuracies(history: Any) -> tuple[float, float]:
    return history.train_acc[-1], history.valid_acc[-1]


def _class1_counts(data: Any) -> tuple[int, int]:
    return int(data.y_train.sum()), int(data.y_valid.sum())


def _median(t: torch.Tensor) -> float:
    return t.median().item()


_add(
    Claim("s5.data.first_row", "np.random.seed(1); uniform(−1, 1, (200, 2)): the first point",
          "-0.16595599, 0.44064899", lambda ctx: ", ".join(f"{v:.8f}" for v in ctx.impl.make_xor().x[0]),
          Exact(), device_free=True),
    Claim("s5.data.class1", "class-1 labels (x0·x1 ≥ 0) among the 100 training / 100 validation points", "53 / 53",
          lambda ctx: _class1_counts(ctx.impl.make_xor()),
          Exact(), device_free=True),
    Claim("s5.logistic.accuracy", "logistic regression (SGD lr 0.001, 200 epochs) cannot solve XOR: train / valid acc",
          "0.64 / 0.71", lambda ctx: _accuracies(ctx.xor_notebook("logistic")[1]), Arbiter(Exact(2), digits=2),
          recipe="logistic"),
    Claim("s5.mlp.notebook_order", "two hidden layers of 4 ReLU units (SGD lr 0.015, 200 epochs), run in the "
          "notebook's order without reseeding: train / valid acc (the errata's ≈ 90 % / 85 %; the text's 100 % / 95 % "
          "is an erratum)", "0.89 / 0.85", lambda ctx: _accuracies(ctx.xor_notebook("mlp")[1]),
          Arbiter(Exact(2), digits=2), recipe="mlp"),
    Claim("s5.capacity.linear", "a linear decision boundary cannot solve XOR, whatever the seed; two hidden layers can",
          "cannot solve XOR",
          lambda ctx: (ctx.ensemble("").valid_acc.max().item(), _median(ctx.ensemble("4x4").valid_acc)),
          Law(lambda m, _: m[0] <= 0.8 and m[1] - m[0] >= 0.1,
              "over 256 seeds the best logistic model stays ≤ 0.8 valid acc, ≥ 0.1 below the 2×4 MLPs' median",
              lambda m: f"best logistic {m[0]:.2f}, median 2×4 MLP {m[1]:.2f}"), quick="skip"),
    Claim("s5.capacity.vanishing", "deeper networks are prone to vanishing gradients",
          "vanishing with depth",
          lambda ctx: [_median(ctx.ensemble("x".join(["4"] * d)).grad_norms[:, 0]) for d in (1, 2, 3, 4)],
          Law(lambda m, _: all(deeper < shallower / 2 for shallower, deeper in itertools.pairwise(m)),
              "over 256 seeds, the first layer's median weight-gradient norm in the first epoch at least halves "
              "with each hidden layer of 4 added (1 → 4 layers)",
              lambda m: ", ".join(f"{g:.1e}" for g in m)), quick="skip"),
    Claim("s5.capacity.width", "a single wide hidden layer can approximate any continuous function "
          "(universal approximation): capacity grows with width", "grows with width",
          lambda ctx: [ctx.ensemble(str(w)).success_rate(0.9) for w in (2, 4, 8, 16)],
          Law(lambda m, _: all(b >= a for a, b in itertools.pairwise(m)) and m[-1] >= 0.9,
              "over 256 seeds the share of one-hidden-layer nets above 0.9 valid acc never falls as the "
              "width doubles 2 → 16, and the widest pass for ≥ 90 %",
              lambda m: " → ".join(f"{r:.0%}" for r in m)), quick="skip"),
    Claim("s5.capacity.depth_vs_width", "deeper networks reach comparable capacity with fewer parameters than wider "
          "ones", "deeper: fewer parameters for the same capacity",
          lambda ctx: (ctx.ensemble("8").success_rate(0.9), ctx.ensemble("4x4").success_rate(0.9)),
          Erratum(Law(lambda m, _: m[0] >= m[1] + 0.2,
                      "one hidden layer of 8 (33 parameters) passes 0.9 for ≥ 20 points more seeds than two of 4 (37)",
                      lambda m: f"1×8: {m[0]:.0%}, 2×4: {m[1]:.0%}"),
                  "not on XOR at the book's 200 epochs: the wider, smaller net wins (measured 91 % vs 50 %)"),
          quick="skip"),
)


# --- §6 nn.Module subclasses and custom layers ------------------------------------------------------
def _noisy_prints(ctx: Context) -> list[str]:
    torch.manual_seed(1)
    layer = ctx.impl.NoisyLinear(4, 2)  # on the CPU: the printed noise comes from the CPU's generator
    x = torch.zeros(1, 4)
    return [repr(layer(x, training=t)) for t in (True, True, False)]


def _noisy_law(ctx: Context) -> tuple[bool, bool]:
    torch.manual_seed(1)
    layer = ctx.impl.NoisyLinear(4, 2).to(ctx.device)
    x = torch.zeros(1, 4, device=ctx.device)
    return (not torch.equal(layer(x, training=True), layer(x, training=True)),
            torch.equal(layer(x, training=False), layer(x, training=False)))


def _as_my_module(model: Any) -> str:
    """The model's repr under the book's class name (torchmech's class says what it is: ModuleListModel)."""
    return repr(model).replace(f"{type(model).__name__}(", "MyModule(", 1)


#: How far the noise may raise MyNoisyModule's success rate over σ = 0 and still count as no improvement.
NOISE_MARGIN = 0.05

_add(
    *(Claim(f"s6.noisy_linear.{name}", f"torch.manual_seed(1); NoisyLinear(4, 2) on zeros(1, 4): {statement}",
            printed, lambda ctx, i=i: _noisy_prints(ctx)[i], Exact(), device_free=True)
      for i, (name, statement, printed) in enumerate((
          ("train_1", "training=True", "tensor([[ 0.1154, -0.0598]], grad_fn=<AddBackward0>)"),
          ("train_2", "called again, fresh noise", "tensor([[ 0.0432, -0.0375]], grad_fn=<AddBackward0>)"),
          ("eval", "training=False, no noise", "tensor([[0., 0.]], grad_fn=<AddBackward0>)"),
      ))),
    Claim("s6.noisy_linear.law", "each training call draws fresh noise and evaluation adds none "
          "(the law behind the CPU generator's digits, on the device itself)", "differ / same", _noisy_law,
          Law(lambda m, _: m == (True, True), "two training calls differ; two evaluation calls are equal",
              lambda m: f"{'differ' if m[0] else 'same'} / {'same' if m[1] else 'differ'}")),
    Claim("s6.modulelist.repr", "MyModule keeps its layers in an nn.ModuleList and prints them", (
        "MyModule(\n  (module_list): ModuleList(\n    (0): Linear(in_features=2, out_features=4, bias=True)\n"
        "    (1): ReLU()\n    (2): Linear(in_features=4, out_features=4, bias=True)\n    (3): ReLU()\n"
        "    (4): Linear(in_features=4, out_features=1, bias=True)\n    (5): Sigmoid()\n  )\n)"),
          # torchmech names the class after what it is; the book's name is MyModule
          lambda ctx: _as_my_module(ctx.impl.ModuleListModel()), Exact()),
    Claim("s6.modulelist.accuracy", "MyModule (the same 2×4 MLP on nn.ModuleList), trained next in the notebook's "
          "order without reseeding: train / valid acc", "0.98 / 0.95",
          lambda ctx: _accuracies(ctx.xor_notebook("modulelist")[1]), Arbiter(Exact(2), digits=2),
          recipe="modulelist"),
    Claim("s6.noisy_module.accuracy", "MyNoisyModule (NoisyLinear(2, 4, 0.07) first) reseeded with 1 learns XOR: "
          "train / valid acc after 200 epochs", "1.00 / 0.96", lambda ctx: _accuracies(ctx.xor("noisy")[1]),
          OffReference(Exact(2), AtLeast(0.9, "off the reference the noise comes from another generator or dtype: "
                                              "the law is that it still learns XOR",
                                         digits=2)), recipe="noisy"),
    Claim("s6.noisy_module.no_improvement", "NoisyLinear did not improve results here", "no improvement",
          lambda ctx: tuple(ctx.ensemble(arch).success_rate(0.9) for arch in ("noisy", "noisy0", "4x4")),
          Law(lambda m, _: m[0] <= m[1] + NOISE_MARGIN,
              f"over 256 seeds the noise (σ = 0.07) raises the share of runs above 0.9 valid acc by at most "
              f"{NOISE_MARGIN:.0%} over the same model without noise (σ = 0; one standard error of the difference "
              f"is about 4 points). Both beat the plain 2×4 MLP: NoisyLinear's Xavier-uniform, zero-bias "
              f"initialisation does that, not the noise",
              lambda m: f"σ 0.07: {m[0]:.0%}, σ 0: {m[1]:.0%} (plain 2×4 MLP: {m[2]:.0%})"),
          quick="skip", recipe="noisy"),
)


# --- §7 Project one: fuel efficiency ----------------------------------------------------------------
#: pandas' describe() of the 313 training rows, as the book prints it.
MPG_TRAIN_MEANS = {"MPG": "23.404153", "Cylinders": "5.402556", "Displacement": "189.512780",
                   "Horsepower": "102.929712", "Weight": "2961.198083", "Acceleration": "15.704473",
                   "Model Year": "75.929712", "Origin": "1.591054"}

#: The loss the book prints every 20 epochs.
MPG_LOSSES = {0: "536.1047", 20: "8.4361", 40: "7.8695", 60: "7.1891", 80: "6.7062",
              100: "6.7599", 120: "6.3124", 140: "6.6864", 160: "6.7648", 180: "6.2156"}


def _mpg_table(ctx: Context):  # -> pandas DataFrame
    return ctx.impl.load_auto_mpg()


def _row_counts(df: Any) -> tuple[int, int, int]:
    """Rows, rows with an unknown horsepower, rows left by dropna."""
    return len(df), int(df["Horsepower"].isna().sum()), len(df.dropna())


def _train_split(df):  # the book's split, on any frame with the book's columns
    from sklearn.model_selection import train_test_split

    return train_test_split(df.dropna().reset_index(drop=True), train_size=0.8, random_state=1)


def _origin_columns(ctx: Context) -> str:
    df_train, _ = _train_split(_mpg_table(ctx))
    x = ctx.impl.mpg_features().x_train
    first = {code: list(df_train["Origin"]).index(code) for code in (1, 2, 3)}
    return "; ".join(f"{code}: {[int(v) for v in x[row, 6:]]}" for code, row in first.items())


def _year_repair(ctx: Context) -> tuple[str, str]:
    df = _mpg_table(ctx)
    unrepaired = df.assign(**{"Model Year": df["Model Year"].replace(81, 82)})  # cars.json's slip
    return tuple(f"{_train_split(d)[0]['Model Year'].mean():.6f}" for d in (df, unrepaired))


_add(
    Claim("s7.data.rows", "read_csv(na_values='?', comment='\\t', sep=' ', skipinitialspace=True): rows, unknown "
          "horsepowers, rows after dropna", "398 / 6 / 392",
          lambda ctx: _row_counts(_mpg_table(ctx)), Exact(), device_free=True),
    Claim("s7.data.train_rows", "train_test_split(train_size=0.8, random_state=1): training rows", "313",
          lambda ctx: len(ctx.impl.mpg_features().x_train), Exact(), device_free=True),
    *(Claim(f"s7.data.train_mean.{col.lower().replace(' ', '_')}", f"the training split's mean {col}", value,
            lambda ctx, col=col: ctx.impl.mpg_features().train_stats.loc[col, "mean"], Exact(6), device_free=True)
      for col, value in MPG_TRAIN_MEANS.items()),
    Claim("s7.data.origin", "Origin (1 US, 2 Europe, 3 Japan) becomes one_hot(origin % 3): the feature columns "
          "of each code", "1: [0, 1, 0]; 2: [0, 0, 1]; 3: [1, 0, 0]", _origin_columns, Exact(), device_free=True),
    Claim("s7.data.year81_repair", "the bundled file's one repair (cars.json labels UCI's 29 cars of 1981 as 1982) "
          "is what gives the book's Model Year mean", MPG_TRAIN_MEANS["Model Year"], _year_repair,
          Law(lambda m, book: m[0] == book and m[1] != book,
              "with the repair the train mean is the book's; without it, it is not",
              lambda m: f"{m[0]} (unrepaired: {m[1]})"), device_free=True),
    Claim("s7.mpg.batches", "313 training rows in batches of 8: batches per epoch (the loss divisor)", "40",
          lambda ctx: ctx.mpg().batches, Exact(), recipe="mpg"),
    *(Claim(f"s7.mpg.loss.epoch{e}", f"Linear(9,8) ReLU Linear(8,4) ReLU Linear(4,1), SGD lr 0.001, batch 8: "
            f"training loss at epoch {e}", value, lambda ctx, e=e: ctx.mpg().history.train_loss[e],
            Arbiter(Exact(4)), recipe="mpg")
      for e, value in MPG_LOSSES.items()),
    Claim("s7.mpg.test_mse", "test MSE after 200 epochs", "9.6130", lambda ctx: ctx.mpg().test_mse,
          Arbiter(Band(0.0005, "a later run of the notebook printed 9.6133: the last digit moves with float32 "
                               "summation order")),
          recipe="mpg"),
    Claim("s7.mpg.test_mae", "test MAE after 200 epochs", "2.1211", lambda ctx: ctx.mpg().test_mae,
          Arbiter(Exact(4)), recipe="mpg"),
)


# --- §8 Project two: MNIST ----------------------------------------------------------------------------
#: Training accuracy per epoch as printed: Flatten, 784→32→16→10, Adam 0.001, batch 64, seed 1.
MNIST_TRAIN_ACC = ("0.8531", "0.9287", "0.9413", "0.9506", "0.9558", "0.9592", "0.9627", "0.9650", "0.9674",
                   "0.9691", "0.9711", "0.9729", "0.9741", "0.9747", "0.9767", "0.9779", "0.9782", "0.9799",
                   "0.9808", "0.9813")

MNIST_EPOCH_BAND = Band(0.001, "float summation order differs between builds and devices: after a few epochs a "
                               "few of 60,000 training answers change; twice the largest drift measured")


def _label_counts(train: bool) -> Callable[[Context], str]:
    def measure(ctx: Context) -> str:
        return " ".join(str(n) for n in ctx.impl.load_mnist(ctx.data, train=train)[1].bincount().tolist())
    return measure


_add(
    Claim("s8.data.train_labels", "MNIST's 60,000 training digits per class 0–9",
          "5923 6742 5958 6131 5842 5421 5918 6265 5851 5949", _label_counts(True), Exact(), device_free=True),
    Claim("s8.data.test_labels", "MNIST's 10,000 test digits per class 0–9",
          "980 1135 1032 1010 982 892 958 1028 974 1009", _label_counts(False), Exact(), device_free=True),
    *(Claim(f"s8.mnist.train_acc.epoch{e}", f"training accuracy at epoch {e}", value,
            lambda ctx, e=e: ctx.mnist().history.train_acc[e],
            Arbiter(Exact(4) if e < 2 else MNIST_EPOCH_BAND,
                    earlier=lambda e=e: [claim(f"s8.mnist.train_acc.epoch{i}") for i in range(e)]),
            quick="check" if e < 2 else "skip",
            recipe="mnist")
      for e, value in enumerate(MNIST_TRAIN_ACC)),
    Claim("s8.mnist.test_acc", "test accuracy after 20 epochs, model(test.data / 255.)", "0.9645",
          lambda ctx: ctx.mnist().test_acc,
          Arbiter(Band(0.002, "summation order again: after 20 epochs a few of 10,000 test answers move between "
                              "releases and devices")),
          quick="skip", recipe="mnist"),
)


# --- §9 PyTorch Lightning ---------------------------------------------------------------------------
IGNITE_REASON = ("the bonus notebook trained on all 60,000 images, validated on the test set and kept a stray "
                 "Softmax before CrossEntropyLoss (replayed so: 0.91 → 0.94 exactly); torchmech feeds logits and "
                 "uses the chapter's 55,000 / 5,000 split")


def _split_sizes(ctx: Context) -> tuple[int, int]:
    split = ctx.impl.mnist_split(ctx.data)
    return len(split.train), len(split.valid)


def _accuracy_without_task(ctx: Context) -> str:
    from torchmetrics import Accuracy

    try:
        Accuracy()
    except TypeError as err:
        return f"TypeError: {err}"
    return "no error"


#: Why Lightning's and Ignite's claims run on plain backends only.
LIGHTNING_LOOP = "Lightning trains in its own loop (its own precision and compile settings)"
IGNITE_LOOP = "Ignite trains in its own loop"

#: Off the CPU the notebook's 10-epoch statistic drifts like MNIST's later epochs (§8).
NOTEBOOK_OFF_CPU = Band(0.002, "float order differs between devices, as for §8's test accuracy", digits=5)


def _notebook_test_acc(ctx: Context, run: Any) -> float:
    from torchmech.chapter.lit import notebook_test_acc

    # the run trained the implementation's class: its checkpoint loads into that class
    model = ctx.impl.MultiLayerPerceptron.load_from_checkpoint(run.best_checkpoint, map_location=ctx.device)
    return notebook_test_acc(model, ctx.data)


def _best_epoch(run: Any) -> int:
    return int(run.best_checkpoint.name.split("-")[0].removeprefix("epoch="))


_add(
    Claim("s9.data.split", "the data module's random_split with torch.Generator().manual_seed(1): train / valid",
          "55000 / 5000", _split_sizes, Exact(), device_free=True),
    Claim("s9.torchmetrics.task", "the book's torchmetrics Accuracy() measures accuracy", "Accuracy()",
          _accuracy_without_task,
          Erratum(Law(lambda m, _: m.startswith("TypeError") and "task" in m,
                      "Accuracy() without task= raises TypeError naming 'task'"),
                  "torchmetrics ≥ 0.11 needs Accuracy(task='multiclass', num_classes=10)"), device_free=True),
    Claim("s9.lightning.test_acc", "Trainer(max_epochs=10), tested with the best checkpoint: the test_acc the notebook "
          "printed (Lightning 1.5 logged the running accuracy per test batch and averaged it, weighted by batch size)",
          "0.94996", lambda ctx: _notebook_test_acc(ctx, ctx.lightning()),
          OffReference(Exact(5), NOTEBOOK_OFF_CPU), quick="show", slow=True, plain_only=LIGHTNING_LOOP),
    Claim("s9.lightning.best_epoch", "… whose best checkpoint (monitor valid_acc, mode max) is from epoch", "8",
          lambda ctx: _best_epoch(ctx.lightning()),
          OffReference(Exact(), Band(2, "other kernels can reorder close validation accuracies", digits=0)),
          quick="skip", slow=True, plain_only=LIGHTNING_LOOP),
    Claim("s9.lightning.resume_test_acc", "resumed from that checkpoint to max_epochs=15: the notebook's test_acc of "
          "the resumed run's best checkpoint", "0.9559", lambda ctx: _notebook_test_acc(ctx, ctx.lightning(15)),
          Band(0.005, "MNIST's float-order drift after ~9 epochs (§8): the notebook ran torch 1.10 on a GPU"),
          quick="skip", slow=True, plain_only=LIGHTNING_LOOP),
    Claim("s9.lightning.resume_best_epoch", "… from its best epoch", "13", lambda ctx: _best_epoch(ctx.lightning(15)),
          OffReference(Exact(), Band(2, "other kernels can reorder close validation accuracies", digits=0)),
          quick="skip", slow=True, plain_only=LIGHTNING_LOOP),
    Claim("s9.ignite.first_epoch", "the Ignite bonus notebook's classifier: validation accuracy after its first epoch",
          "0.91", lambda ctx: ctx.ignite().valid_acc[0],
          Band(0.01, IGNITE_REASON, digits=2), quick="show", needs="ignite",
          plain_only=IGNITE_LOOP),
    Claim("s9.ignite.last_epoch", "… and after its 5 epochs", "0.94", lambda ctx: ctx.ignite().valid_acc[-1],
          Band(0.01, IGNITE_REASON, digits=2), quick="skip", needs="ignite",
          plain_only=IGNITE_LOOP),
)
