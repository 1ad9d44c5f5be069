"""The chapter's implementable pieces, as exercises a learner writes and the specification grades.

Each :class:`Exercise` names one piece of :class:`torchmech.claims.Implementation` (``compute_z``,
``NoisyLinear``, ``train``…), its fixed signature, the task in the chapter's terms, the registry
claims that grade it, and — as PyTorch's OpInfo entries are data — its **samples** (drawn inputs:
batch 1, odd and large; non-square and broadcast shapes; several seeds and dtypes; several epochs
where state matters) and its **observer**: what a caller can see of one call (values, shapes, dtypes,
types, parameters, modes, the inputs after the call, the random generators afterwards). The grader
(:func:`check_piece`) runs the learner's piece and the reference on the same samples from the same
seeds and reports the first difference and how the values differ; laws (the noise's variance,
Glorot's law) are observables too, where random draws cannot be matched. The samples and observers
live per section in :mod:`torchmech.samples`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torchmech import samples as S
from torchmech.grader import Difference, Sample, compare_observations, explain_ratios

Observe = Callable[[Any, Sample], dict[str, Any]]


@dataclass(frozen=True)
class Exercise:
    """One piece of the chapter for the learner to write.

    Attributes:
        name: the piece's name in :class:`~torchmech.claims.Implementation` (and in the workspace).
        section: ``s1`` … ``s9``.
        stub: the fixed signature, as the workspace's stub writes it (a ``def`` or ``class`` line).
        task: what to write, in the chapter's terms (everything the checks require).
        claims: registry claim ids that grade it (quick ones; ``--full`` adds the section's others).
        samples: the drawn inputs.
        observe: ``observe(piece, sample)`` → observable name → value.
        hints: the chapter's idea, the formula, the reference's line (shown one at a time).
        diagnose: an exercise's own reading of a difference, ``diagnose(expected, yours)`` of two
            observations → a sentence or ``""``.
    """

    name: str
    section: str
    stub: str
    task: str
    claims: tuple[str, ...]
    samples: Callable[[], Sequence[Sample]]
    observe: Observe
    hints: tuple[str, str, str]
    diagnose: Callable[[dict, dict], str] | None = field(default=None, compare=False)

    @functools.cached_property
    def sample_list(self) -> tuple[Sample, ...]:
        """The drawn samples, then the trimmed chapter runs that take this piece (:data:`samples.CHAPTER_RUNS`)."""
        runs = S.CHAPTER_RUNS.get(self.name)
        return tuple(self.samples()) + (runs() if runs else ())

    def run(self, piece: Any, sample: Sample) -> dict[str, Any]:
        """The observations of ``piece`` on one sample (a drawn input, or a trimmed chapter run)."""
        if "run" in sample.extra:
            return S.chapter_run(self.name, piece, sample)
        return self.observe(piece, sample)


@dataclass
class Finding:
    """How a piece differs from the reference: the first sample and observable that differ, and what the
    values say about it."""

    exercise: str
    sample: str
    difference: Difference
    summary: str
    differing: int
    total: int

    def message(self) -> str:
        d = self.difference
        lines = [f"on {self.sample}:", f"  {d.what}: {d.problem}"]
        if self.summary:
            lines.append(f"  {self.summary}")
        elif d.relation:
            lines.append(f"  {d.relation}")
        if d.got is not None and not d.problem.startswith("raised"):
            from torchmech.grader import short

            lines += [f"  expected {short(d.expected)}", f"  yours    {short(d.got)}"]
        if self.total > 1:
            lines.append(f"  ({self.differing} of {self.total} inputs differ)")
        return "\n".join(lines)


@functools.cache
def _reference_observation(name: str, index: int) -> dict[str, Any]:
    from torchmech.implementation import REFERENCE

    e = exercise(name)
    return e.run(getattr(REFERENCE, name), e.sample_list[index])


def observations(e: Exercise, piece: Any) -> list[dict[str, Any]]:
    """The piece's observations on every sample of ``e``."""
    return [e.run(piece, s) for s in e.sample_list]


def check_piece(e: Exercise, piece: Any) -> Finding | None:
    """The learner's piece against the reference on every sample: the first difference, or ``None``."""
    found: list[tuple[Difference, Sample, dict, dict]] = []
    for i, s in enumerate(e.sample_list):
        expected = _reference_observation(e.name, i)
        got = e.run(piece, s)
        diff = compare_observations(expected, got)
        if diff is not None:
            found.append((diff, s, expected, got))
            if diff.problem.startswith("raised"):
                break
    if not found:
        return None
    diff, s, expected, got = found[0]
    summary = e.diagnose(expected, got) if e.diagnose else ""
    if not summary:
        same = [(d, smp) for d, smp, _, _ in found if d.what == diff.what]
        summary = explain_ratios(same) if len(same) == len(found) else ""
    return Finding(e.name, s.extra.get("label") or f"{e.name}({s.text()})", diff, summary, len(found),
                   len(e.sample_list))


def behaves_like(e: Exercise, piece: Any, other: Any) -> bool:
    """``piece`` and ``other`` are indistinguishable on every sample of ``e``."""
    return all(compare_observations(b, a) is None
               for a, b in zip(observations(e, piece), observations(e, other), strict=True))


def failures(e: Exercise, impl: Any, *, full: bool = False, timeout: float | None = None) -> list[tuple[str, str]]:
    """(what failed, why) for the exercise's claims and its differential check on ``impl``, within the
    time limit; ``full``: every claim of the exercise's section that reads the piece, on the chapter's
    runs."""
    from torchmech.claims import claim, claims
    from torchmech.grader import TIME_LIMIT, TookTooLong, learner_frame, time_limit
    from torchmech.runs import Runs
    from torchmech.spec import Context

    found: list[tuple[str, str]] = []
    ctx = Context(impl=impl)
    ids = list(e.claims)
    if full:
        ids += [c.id for c in claims(e.section) if c.id not in ids]
    else:
        ctx = Context(impl=impl, runs=Runs())
    limit = None if full else (TIME_LIMIT if timeout is None else timeout)
    try:
        with time_limit(limit):
            for claim_id in ids:
                try:
                    result = claim(claim_id).judge(ctx)
                except TookTooLong:
                    raise
                except Exception as err:  # the learner's code raised: that is the failure
                    at = learner_frame(err)
                    found.append((claim_id, f"{claim_id}: raised {type(err).__name__}: {err}"
                                            + (f" at {at}" if at else "")))
                else:
                    if result.holds == "no":
                        found.append((claim_id, f"{claim_id}: {result.statement}\n  book: {result.book}\n  yours: "
                                                f"{result.ours}"))
            finding = check_piece(e, getattr(impl, e.name))
            if finding is not None:
                found.append(("samples", finding.message()))
    except TookTooLong as err:
        found.append(("time", f"{e.name}: {err}"))
    return found


EXERCISES: tuple[Exercise, ...] = (
    Exercise("compute_z", "s1", "def compute_z(a, b, c):",
             "Return z = 2·(a − b) + c built from torch.sub, torch.mul and torch.add, so that PyTorch records "
             "the graph Sub → Mul → Add. a, b, c are tensors of any shapes that broadcast together and of any "
             "dtype (int or float); z has their broadcast shape and dtype; a, b, c are left unchanged.",
             ("s1.compute_z.rank0", "s1.compute_z.rank1", "s1.compute_z.rank2", "s1.graph.dag"),
             S.compute_z_samples, S.call,
             ("§1: a computation graph is built while the code runs, one node per operation.",
              "z = 2 × (a − b) + c, in that order: subtract, multiply, add.",
              "r1 = torch.sub(a, b); r2 = torch.mul(r1, 2); return torch.add(r2, c)")),
    Exercise("fans", "s2", "def fans(shape):",
             "Return the tuple (fan_in, fan_out) of Python ints for a weight of this shape (rank ≥ 2) in "
             "PyTorch's convention (out_features, in_features, *kernel).",
             (), S.fans_samples, S.call,
             ("§2: Glorot's scale depends on how many inputs and outputs a unit has.",
              "the receptive field is the product of the kernel dimensions shape[2:]; both fans are multiplied "
              "by it.",
              "receptive = math.prod(shape[2:]); return shape[1] * receptive, shape[0] * receptive")),
    Exercise("glorot_bound", "s2", "def glorot_bound(fan_in, fan_out, gain=1.0):",
             "Return the half-width a of Glorot's uniform law U(−a, a), as a Python float.", (),
             S.glorot_samples, S.call,
             ("§2: Xavier keeps the variance of activations equal across layers.",
              "U(−a, a) has variance a²/3, and Glorot wants the variance 2/(fan_in + fan_out), times gain².",
              "return gain * math.sqrt(6.0 / (fan_in + fan_out))")),
    Exercise("glorot_std", "s2", "def glorot_std(fan_in, fan_out, gain=1.0):",
             "Return the standard deviation of Glorot's normal law, as a Python float.", (),
             S.glorot_samples, S.call,
             ("§2: the normal version has the same variance as the uniform one.",
              "its variance is 2/(fan_in + fan_out), times gain².",
              "return gain * math.sqrt(2.0 / (fan_in + fan_out))")),
    Exercise("ParameterModule", "s2", "class ParameterModule(nn.Module):",
             "The chapter's MyModule with two tensors w1 (2×3) and w2 (1×2), initialised by "
             "nn.init.xavier_normal_ in that order, that the module registers as parameters named w1 and w2 "
             "(the book's torch.empty(..., requires_grad=True) does not: the trap). No other parameters.",
             ("s2.mymodule.fixed",), S.unit_samples, S.parameter_module,
             ("§2: a module only sees tensors it registered; a plain attribute is invisible to parameters().",
              "wrap each tensor in nn.Parameter(...) before assigning it to self.",
              "self.w1 = nn.Parameter(torch.empty(2, 3)); nn.init.xavier_normal_(self.w1)")),
    Exercise("linear_loss_grad", "s3", "def linear_loss_grad(w, b, x, y):",
             "Return (dL/dw, dL/db) as tensors for L = Σ(y − (w·x + b))², worked out by hand (not with autograd: "
             "w.grad and b.grad stay None). w and b are 0-d tensors that require grad; x, y are 1-d of any length.",
             ("s3.analytic.dL_dw", "s3.analytic.dL_db"), S.linear_loss_grad_samples, S.call_keeping_grads,
             ("§3: the chain rule gives the gradient of a squared error by hand.",
              "with the residual r = w·x + b − y, each squared term differentiates to 2·r times the inner "
              "derivative (x for w, 1 for b).",
              "r = w.detach() * x + b.detach() - y; return 2 * (x * r).sum(), 2 * r.sum()")),
    Exercise("fgsm", "s3", "def fgsm(model, loss_fn, x, y, epsilon, clamp=None):",
             "One fast-gradient-sign step: x + ε·sign(∂L/∂x), the gradient with respect to the INPUT (the side "
             "box of §3), L = loss_fn(model(x), y); when clamp = (lo, hi) is given, clamp the stepped result to "
             "[lo, hi]. Return a new tensor that does not require grad; leave x unchanged (not even "
             "x.requires_grad) and the model's parameters without .grad.",
             (), S.fgsm_samples, S.fgsm,
             ("§3's side box: the gradient w.r.t. the input shows how to change the input to raise the loss.",
              "take the gradient of the loss w.r.t. a detached copy of x that requires grad, step by ε times its "
              "sign, then clamp.",
              "x = x.detach().requires_grad_(True); (g,) = torch.autograd.grad(loss_fn(model(x), y), x)")),
    Exercise("l1_penalty", "s4", "def l1_penalty(weight, strength=0.01):",
             "The chapter's L1 penalty λ·Σ|W| as a 0-d tensor that autograd can differentiate with respect to "
             "weight (a tensor of any shape).", (), S.l1_samples, S.l1,
             ("§4: L1 regularisation adds the weights' absolute sum to the loss.",
              "the strength times the sum of the absolute values of every element.",
              "return strength * weight.abs().sum()")),
    Exercise("bce_logit_grad", "s4", "def bce_logit_grad(z, y):",
             "∂ BCELoss(σ(z), y) / ∂z by hand, for z and y of the same shape (any shape: (N,), (N, 1), (N, C)); "
             "BCELoss takes the mean over ALL the elements.", (), S.bce_samples, S.call,
             ("§4: BCE on a sigmoid has the simplest gradient in the chapter.",
              "σ(z) − y, divided by the number of terms the mean is taken over.",
              "return (torch.sigmoid(z) - y) / z.numel()")),
    Exercise("cross_entropy_logit_grad", "s4", "def cross_entropy_logit_grad(logits, target):",
             "∂ CrossEntropyLoss(z, k) / ∂z by hand, for logits (N, C) and class indices (N,) (mean over the N "
             "samples).", (), S.cross_entropy_samples, S.call,
             ("§4: cross-entropy applies log-softmax to the logits itself.",
              "softmax of each row minus the one-hot target, divided by the number of samples.",
              "return (torch.softmax(logits, dim=1) - onehot) / logits.shape[0]")),
    Exercise("mse_grad", "s4", "def mse_grad(pred, y):",
             "∂ MSELoss(ŷ, y) / ∂ŷ by hand, for ŷ and y of the same shape (any shape); MSELoss takes the mean over "
             "ALL the elements.", (), S.mse_samples, S.call,
             ("§4: the mean squared error's gradient is the residual.",
              "2·(ŷ − y), divided by the number of terms the mean is taken over.",
              "return 2 * (pred - y) / pred.numel()")),
    Exercise("chapter_sequential", "s4", "def chapter_sequential():",
             "The chapter's nn.Sequential: Linear(4, 16), ReLU, Linear(16, 32), ReLU (layers built in that order, "
             "PyTorch's default initialisation).",
             ("s4.sequential.repr", "s4.sequential.parameters"), S.sequential_samples, S.builder,
             ("§4: nn.Sequential chains layers in order.", "4 → 16 → 32 with a ReLU after each Linear.",
              "return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU())")),
    Exercise("make_xor", "s5", "def make_xor(n=200, seed=1):",
             "The book's XOR data for an even n: np.random.seed(seed); x = np.random.uniform(−1, 1, (n, 2)); label "
             "1.0 unless x0·x1 < 0 (float64); the first n/2 rows train, the rest validate. Return "
             "torchmech.data.xor.XorData(x, y, x_train, y_train, x_valid, y_valid): x, y as NumPy, the halves as "
             "float32 tensors.",
             ("s5.data.first_row", "s5.data.class1"), S.xor_samples, S.call,
             ("§5: XOR is the classic problem a linear boundary cannot solve.",
              "the label is 1 where x0·x1 ≥ 0; the split is at n/2, the train half first.",
              "np.random.seed(seed); x = np.random.uniform(low=-1, high=1, size=(n, 2))")),
    Exercise("train", "s5", "def train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *, "
             "correct=None, device='cpu', on_epoch_end=None):",
             "The one training loop; return torchmech.train.History (plain floats per epoch). Every epoch: "
             "model.train(), then for each batch forward, loss, backward, step, zero the gradients; one-output "
             "models are indexed [:, 0] when y is 1-d; the epoch loss is the mean of the batch losses "
             "(Σ / len(train_batches)); accuracy, when correct is given, is Σ correct(pred, y) (a count) over the "
             "samples; then, when valid_batches is given, validation in model.eval() mode under torch.no_grad() "
             "(its loss and accuracy the same way); then on_epoch_end(epoch, history) when given.", (),
             S.train_samples, S.train, ("§5: the training loop: forward, loss, backward, step, zero the "
                                        "gradients; then validate.",
                                        "loss_hist[epoch] = Σ batch losses / len(loader); acc = Σ correct / Σ "
                                        "samples; train mode for training, eval mode for validation.",
                                        "loss.backward(); optimizer.step(); optimizer.zero_grad()"),
             S.diagnose_train),
    Exercise("ModuleListModel", "s6", "class ModuleListModel(nn.Module):",
             "The chapter's MyModule: Linear(2,4), ReLU, Linear(4,4), ReLU, Linear(4,1), Sigmoid (built in that "
             "order) kept in an nn.ModuleList named module_list and applied in a loop in forward; predict(x) "
             "gives 0/1 float32 values of shape (N,), class 1 where the output ≥ 0.5 (NumPy in → NumPy out, "
             "tensor in → tensor out), without gradients.",
             ("s6.modulelist.repr",), S.modulelist_samples, S.modulelist,
             ("§6: nn.ModuleList registers a list of layers; forward decides how to use them.",
              "for f in self.module_list: x = f(x); predict thresholds the one output column.",
              "self.module_list = nn.ModuleList([nn.Linear(2, 4), nn.ReLU(), …, nn.Sigmoid()])")),
    Exercise("NoisyLinear", "s6", "class NoisyLinear(nn.Module):",
             "NoisyLinear(input_size, output_size, noise_stddev=0.1): parameters w (input_size × output_size) "
             "initialised by nn.init.xavier_uniform_ and b (output_size,) zeros, in that order; forward(x, "
             "training=None) returns (x + ε)·w + b with ε ~ N(0, σ²) drawn afresh per element of x (its shape, "
             "dtype and device; torch.normal(0, σ, x.shape, dtype=x.dtype, device=x.device)) in training "
             "(None follows self.training), x·w + b otherwise.",
             ("s6.noisy_linear.train_1", "s6.noisy_linear.train_2", "s6.noisy_linear.eval", "s6.noisy_linear.law"),
             S.noisy_samples, S.noisy_linear,
             ("§6: a custom layer is an nn.Module with parameters and a forward.",
              "noise of x's shape is added to the INPUT in training only, then the linear map.",
              "x_new = torch.add(x, torch.normal(0.0, self.noise_stddev, x.shape, dtype=x.dtype, device=x.device))")),
    Exercise("bucketize_year", "s7", "def bucketize_year(years):",
             "Model Year → bucket 0..3 (int64, the input's shape) with torch.bucketize over the boundaries "
             "[73, 76, 79], right=True, for an integer tensor of any shape.", (),
             S.bucket_samples, S.call,
             ("§7: a numeric column becomes a categorical one by bucketing.",
              "four buckets: before 73, 73–75, 76–78, 79 and later.",
              "torch.bucketize(years, torch.tensor([73, 76, 79]), right=True)")),
    Exercise("mpg_features", "s7", "def mpg_features(df=None, train_size=0.8, random_state=1):",
             "The book's features as torchmech.data.auto_mpg.MpgData(x_train, y_train, x_test, y_test, "
             "train_stats): df None → load_auto_mpg(); dropna, reset_index(drop=True); "
             "train_test_split(train_size, random_state); the 5 continuous columns (torchmech.data.auto_mpg."
             "NUMERIC) standardised with the TRAIN split's mean and std (ddof 1: describe()); Model Year "
             "bucketed (column 5); Origin one-hot as one_hot(origin % 3) (columns 6–8); x float32 (N, 9), y "
             "float32 MPG; train_stats = df_train.describe().transpose(); df left unchanged.",
             ("s7.data.train_rows", "s7.data.train_mean.mpg", "s7.data.train_mean.model_year", "s7.data.origin"),
             S.mpg_samples, S.call,
             ("§7: standardise with the training split's statistics only: the test split is unseen data.",
              "x' = (x − mean_train) / std_train for both splits; 9 features = 5 numbers, 1 bucket, 3 one-hot.",
              "part[col] = (part[col] - stats.loc[col, 'mean']) / stats.loc[col, 'std']")),
    Exercise("mpg_regressor", "s7", "def mpg_regressor():",
             "§7's regression net: Linear(9, 8), ReLU, Linear(8, 4), ReLU, Linear(4, 1) — no output activation "
             "(built in that order, as one nn.Sequential).",
             (), S.mpg_regressor_samples, S.builder,
             ("§7: a regression net ends in a plain Linear.", "9 → 8 → 4 → 1 with ReLUs between.",
              "return nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1))")),
    Exercise("mnist_mlp", "s8", "def mnist_mlp():",
             "§8's classifier as one nn.Sequential: Flatten, Linear(784, 32), ReLU, Linear(32, 16), ReLU, "
             "Linear(16, 10); it returns logits (no Softmax: CrossEntropyLoss applies log-softmax itself).",
             (), S.mnist_mlp_samples, S.builder,
             ("§8: CrossEntropyLoss takes logits.", "784 → 32 → 16 → 10 after Flatten.",
              "nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), "
              "nn.Linear(16, 10))")),
    Exercise("ShuffledBatches", "s8", "class ShuffledBatches:",
             "ShuffledBatches(x, y, batch_size): a sized iterable (__len__ = the number of batches, the last one "
             "may be smaller) whose every pass (__iter__) yields exactly DataLoader(TensorDataset(x, y), "
             "batch_size, shuffle=True)'s batches, by replaying its two draws from torch's global generator per "
             "pass.", (), S.batches_samples, S.shuffled_batches,
             ("§8's fast path: the same batches without per-sample work.",
              "per pass: draw one int64 (the iterator's base seed), then one more as the seed of a "
              "torch.Generator; randperm(n, generator=…) is the order.",
              "seed = int(torch.empty((), dtype=torch.int64).random_().item())"),
             S.diagnose_batches),
    Exercise("MultiLayerPerceptron", "s9", "class MultiLayerPerceptron(pl.LightningModule):",
             "§9's LightningModule MultiLayerPerceptron(image_shape=(1, 28, 28), hidden_units=(32, 16)): "
             "self.model = nn.Sequential(Flatten, Linear, ReLU, …, Linear(·, 10)) built in order; forward returns "
             "logits; training_step, validation_step and test_step log <stage>_loss (cross-entropy) with "
             "self.log and update that stage's own torchmetrics Accuracy(task='multiclass', num_classes=10) "
             "(one metric object per stage: train_acc, valid_acc, test_acc); on_train_epoch_end / "
             "on_validation_epoch_end / on_test_epoch_end log <stage>_acc = metric.compute() and reset it; "
             "configure_optimizers returns Adam(lr=0.001).",
             (), S.lightning_samples, S.lightning_module,
             ("§9: Lightning calls your hooks; Lightning 2.x removed training_epoch_end.",
              "self.log('train_loss', loss) per step; at each epoch's end log the stage's accuracy, then reset it.",
              "def on_train_epoch_end(self): self.log('train_acc', self.train_acc.compute()); self.train_acc.reset()")),
)


def exercise(name: str) -> Exercise:
    for e in EXERCISES:
        if e.name == name:
            return e
    raise KeyError(f"no exercise {name!r}: choose from {', '.join(e.name for e in EXERCISES)}")


def exercises(section: str | None = None) -> list[Exercise]:
    return [e for e in EXERCISES if section is None or e.section == section]
