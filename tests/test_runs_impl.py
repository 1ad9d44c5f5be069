"""The chapter's runs take the implementation under test: a learner's ``train``, ``mnist_mlp``,
``NoisyLinear``… reach §5–§9's claims, and the reference's results stay shared (nothing trains twice)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from torchmech.chapter.data.auto_mpg import mpg_features
from torchmech.chapter.data.xor import make_xor
from torchmech.chapter.implementation import REFERENCE, Implementation
from torchmech.chapter.layers import NoisyLinear
from torchmech.chapter.models import ModuleListModel, mlp
from torchmech.chapter.runs import mnist_run, mpg_run, xor_notebook_run, xor_run
from torchmech.chapter.train import train
from torchmech.spec.claims import claim
from torchmech.spec.core import Context
from torchmech.spec.runs import RUN_FUNCTIONS, Runs

pytestmark = pytest.mark.s5


# --- wrong pieces, each one slip away from the reference ---------------------------------------
def loss_over_samples(model, loss_fn, optimizer, train_batches, num_epochs, *args, **kwargs):
    """The printed book's erratum: the epoch loss divided by the samples, not the batches."""
    history = train(model, loss_fn, optimizer, train_batches, num_epochs, *args, **kwargs)
    samples = len(train_batches.dataset)  # a DataLoader over a TensorDataset
    history.train_loss = [loss * len(train_batches) / samples for loss in history.train_loss]
    return history


def zero_grad_missing(model, loss_fn, optimizer, *args, **kwargs):
    """optimizer.zero_grad() forgotten: the gradients pile up across steps."""
    optimizer.zero_grad = lambda set_to_none=True: None
    return train(model, loss_fn, optimizer, *args, **kwargs)


def mnist_mlp_33() -> nn.Sequential:
    """§8's classifier with a first hidden layer of 33 units, not 32."""
    return nn.Sequential(nn.Flatten(), *mlp((784, 33, 16, 10), output=None))


class NoiseNever(NoisyLinear):
    """The book's default ``training=False`` taken literally: no noise, in train() mode too."""

    def forward(self, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        return super().forward(x, False)


class BiasOnes(nn.Module):
    """A learner's NoisyLinear (not a subclass of torchmech's) whose bias starts at 1, not 0."""

    def __init__(self, input_size: int, output_size: int, noise_stddev: float = 0.1) -> None:
        super().__init__()
        self.noise_stddev = noise_stddev
        self.w = nn.Parameter(nn.init.xavier_uniform_(torch.empty(input_size, output_size)))
        self.b = nn.Parameter(torch.ones(output_size))

    def forward(self, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        training = self.training if training is None else training
        return (x + torch.normal(0.0, self.noise_stddev, x.shape) if training else x) @ self.w + self.b


class ModuleListModelWrapped(ModuleListModel):
    """A ModuleListModel of the learner's own class (same layers)."""


def origin_rolled(*args, **kwargs):
    """Origin one-hot as one_hot(origin − 1), not one_hot(origin % 3): the columns rolled by one."""
    d = mpg_features(*args, **kwargs)
    roll = lambda x: torch.cat([x[:, :6], x[:, 6:].roll(1, dims=1)], dim=1)  # noqa: E731
    return dataclasses.replace(d, x_train=roll(d.x_train), x_test=roll(d.x_test))


# --- (a) a learner's train meets the claims ---------------------------------------------------
def test_a_wrong_train_fails_the_xor_accuracy_claims(runs: Runs) -> None:
    """A train that never zeroes the gradients, run through the notebook's XOR runs, fails §5's
    accuracy claims, which the reference holds."""
    wrong = Context(impl=Implementation("wrong", {"train": zero_grad_missing}), runs=Runs())
    for cid in ("s5.logistic.accuracy", "s5.mlp.notebook_order"):
        assert claim(cid).judge(Context(runs=runs)).holds == "exact"
        result = claim(cid).judge(wrong)
        assert result.holds == "no", result.explain()


def test_a_loss_over_samples_fails_the_loss_claims(runs: Runs) -> None:
    """The printed book's XOR divisor (the loss over the samples, not the batches), in a learner's train:
    the loss claims fail (§7's MPG losses, the chapter's printed training losses; §5 prints no XOR loss,
    its claims are accuracies). The reference holds them; the wrong epoch 0 is the book's × 40 batches / 313 rows."""
    wrong = Context(impl=Implementation("wrong", {"train": loss_over_samples}), runs=Runs())
    for epoch in (0, 100):
        c = claim(f"s7.mpg.loss.epoch{epoch}")
        assert c.judge(Context(runs=runs)).holds == "exact"
        result = c.judge(wrong)
        assert result.holds == "no", result.explain()
    first = claim("s7.mpg.loss.epoch0")
    batches, rows = claim("s7.mpg.batches").number, claim("s7.data.train_rows").number
    assert first.measure(wrong) == pytest.approx(first.number * batches / rows, abs=1e-3)


def test_a_train_without_backend_gets_the_device_on_plain_backends_only() -> None:
    """The exercise's train takes ``device=``, not ``backend=``: a run hands it the backend's device, and
    refuses a backend that is not plain (the learner's loop would cast nothing)."""
    seen: list[object] = []

    def learners_train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *,
                       correct=None, device="cpu", on_epoch_end=None):
        seen.append(device)
        return train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches, correct=correct,
                     device=device, on_epoch_end=on_epoch_end)

    impl = Implementation("learner", {"train": learners_train})
    _, h = xor_run("logistic", epochs=2, impl=impl)
    _, ref = xor_run("logistic", epochs=2)
    assert seen == ["cpu"] and h == ref  # the same loop, so the same numbers
    with pytest.raises(ValueError, match="plain backends only"):
        xor_run("logistic", epochs=2, impl=impl, backend="cpu-fp64")


# --- (b) the cache: the reference's entries shared, an implementation's own -------------------------
def test_b_reference_runs_share_one_cache_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference (``impl`` absent, ``None``, :data:`REFERENCE`, or an implementation whose overrides
    the run does not use) reads one entry; an implementation with its own ``train`` gets its own, once."""
    runs = Runs()
    first = runs.get("xor", model="logistic", epochs=2)
    assert runs.get("xor", model="logistic", epochs=2, impl=REFERENCE) is first
    assert runs.get("xor", model="logistic", epochs=2, impl=None) is first
    assert runs.get("xor", model="logistic", epochs=2, impl=Implementation("empty")) is first
    assert runs.get("xor", model="logistic", epochs=2, impl=Implementation("s8 only", {"mnist_mlp": mnist_mlp_33})) \
        is first
    wrong = Implementation("wrong", {"train": zero_grad_missing})
    own = runs.get("xor", model="logistic", epochs=2, impl=wrong)
    assert own is not first and own[1] != first[1]
    assert runs.get("xor", model="logistic", epochs=2, impl=wrong) is own
    # the same name and overrides, other code (a reloaded workspace): an entry of its own
    again = Implementation("wrong", {"train": lambda *a, **k: zero_grad_missing(*a, **k)})
    assert runs.get("xor", model="logistic", epochs=2, impl=again) is not own
    # a Context asks on its backend, with its implementation
    be = Context().be
    on_cpu = runs.get("xor", model="logistic", epochs=2, backend=be)
    assert Context(runs=runs)._get("xor", model="logistic", epochs=2) is on_cpu
    mine = Context(impl=wrong, runs=runs)._get("xor", model="logistic", epochs=2)
    assert mine is runs.get("xor", model="logistic", epochs=2, backend=be, impl=wrong) and mine is not on_cpu

    def ignite(runs: Runs, quick: bool = False) -> bool:  # takes no impl: must not be given one
        return quick

    monkeypatch.setitem(RUN_FUNCTIONS, "ignite", ignite)
    assert runs.get("ignite", quick=True, impl=wrong) is True


# --- (c) §8: a learner's mnist_mlp, a trimmed run -------------------------------------------------
def test_c_wrong_mnist_mlp_reaches_the_mnist_run(mnist_root: Path) -> None:
    """mnist_run(impl=…) builds the learner's model (33 hidden units) and trains it; ``max_batches`` cuts
    each epoch short (the model sees 3 batches of 64, then the test set; accuracies in 192ths)."""
    batches: list[int] = []

    def counted() -> nn.Sequential:
        model = mnist_mlp_33()
        model.register_forward_hook(lambda m, args, out: batches.append(len(args[0])))
        return model

    impl = Implementation("wrong", {"mnist_mlp": counted})
    result = mnist_run(mnist_root, epochs=1, max_batches=3, impl=impl)
    assert result.model[1].out_features == 33
    assert batches == [64, 64, 64, 10_000] and len(result.history.train_acc) == 1  # 3 batches, then the test set
    assert result.history.train_acc[0] == pytest.approx(round(result.history.train_acc[0] * 192) / 192, abs=1e-12)
    reference = mnist_run(mnist_root, epochs=1, max_batches=3)
    assert reference.model[1].out_features == 32
    via_runs = Runs().get("mnist", data=mnist_root, epochs=1, max_batches=3,
                          impl=Implementation("wrong", {"mnist_mlp": mnist_mlp_33}))
    assert via_runs.model[1].out_features == 33


def test_c_wrong_shuffled_batches_reaches_the_mnist_run(mnist_root: Path) -> None:
    """The fast path's batches come from the implementation's ShuffledBatches."""
    made: list[int] = []
    from torchmech.chapter.train import ShuffledBatches

    class Counted(ShuffledBatches):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self.batch_size)

    mnist_run(mnist_root, epochs=1, max_batches=1, impl=SimpleNamespace(
        train=train, mnist_mlp=REFERENCE.mnist_mlp, ShuffledBatches=Counted))
    assert made == [64]


# --- (d) §6: a learner's NoisyLinear and ModuleListModel ---------------------------------------------
def test_d_wrong_noisy_linear_reaches_the_noisy_xor_run() -> None:
    """The noisy XOR model is MyNoisyModule on the implementation's NoisyLinear: a layer that never adds
    noise trains otherwise than the reference."""
    impl = Implementation("wrong", {"NoisyLinear": NoiseNever})
    net, h = xor_run("noisy", epochs=3, impl=impl)
    assert type(net.l1) is NoiseNever
    ref_net, ref = xor_run("noisy", epochs=3)
    assert type(ref_net.l1) is NoisyLinear
    assert h.train_loss != ref.train_loss
    runs = Runs()
    assert type(runs.get("xor", model="noisy", epochs=3, impl=impl)[0].l1) is NoiseNever
    assert type(runs.get("xor", model="noisy", epochs=3)[0].l1) is NoisyLinear


def test_d_wrong_noisy_linear_reaches_the_noisy_ensemble() -> None:
    """The noisy ensembles start from the implementation's NoisyLinear (its w, b and σ: the batched SGD
    draws the noise itself): a learner's layer with bias 1 ends elsewhere; ``seeds=``/``epochs=`` trim it."""
    runs = Runs()
    impl = Implementation("wrong", {"NoisyLinear": BiasOnes})
    mine = runs.get("ensemble", arch="noisy", seeds=range(1000, 1004), epochs=2, impl=impl)
    ref = runs.get("ensemble", arch="noisy", seeds=range(1000, 1004), epochs=2)
    assert mine is not ref and mine.seeds == ref.seeds == (1000, 1001, 1002, 1003)
    assert not torch.equal(mine.weights[0][1], ref.weights[0][1])
    # an architecture without a NoisyLinear shares the reference's entry
    assert runs.get("ensemble", arch="4", seeds=range(2), epochs=1, impl=impl) is \
        runs.get("ensemble", arch="4", seeds=range(2), epochs=1)


def test_d_wrong_module_list_model_reaches_the_modulelist_runs() -> None:
    """The ModuleList XOR model, alone and in the notebook's order, is the implementation's class."""
    impl = Implementation("learner", {"ModuleListModel": ModuleListModelWrapped})
    assert type(xor_run("modulelist", epochs=1, impl=impl)[0]) is ModuleListModelWrapped
    notebook = xor_notebook_run(epochs=1, impl=impl)
    assert type(notebook["modulelist"][0]) is ModuleListModelWrapped
    assert type(xor_notebook_run(epochs=1)["modulelist"][0]) is ModuleListModel


def test_d_wrong_make_xor_reaches_the_xor_runs() -> None:
    """The XOR runs train on the implementation's data."""
    impl = Implementation("wrong", {"make_xor": lambda n=200, seed=1: make_xor(n, seed + 1)})
    assert xor_run("logistic", epochs=2, impl=impl)[1] != xor_run("logistic", epochs=2)[1]


# --- (e) §7: a learner's mpg_features and mpg_regressor --------------------------------------------
def test_e_wrong_mpg_features_changes_the_mpg_history() -> None:
    """mpg_run takes the implementation's features: Origin's columns rolled, another history."""
    impl = Implementation("wrong", {"mpg_features": origin_rolled})
    mine, ref = mpg_run(epochs=2, impl=impl), mpg_run(epochs=2)
    assert mine.history.train_loss != ref.history.train_loss
    assert Runs().get("mpg", epochs=2, impl=impl).history == mine.history


def test_e_wrong_mpg_regressor_reaches_the_mpg_run() -> None:
    """… and its regressor."""
    impl = Implementation("wrong", {"mpg_regressor": lambda: mlp((9, 8, 1), output=None)})
    assert len(mpg_run(epochs=1, impl=impl).model) == 3


# --- §9: a learner's LightningModule ----------------------------------------------------------
def test_lightning_run_trains_the_implementations_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Lightning run hands ``fit`` the implementation's MultiLayerPerceptron and its own log folder;
    the resumed run (15 epochs) resumes that implementation's 10-epoch run."""
    import torchmech.chapter.lit
    from torchmech.chapter.lit import MultiLayerPerceptron

    class Mine(MultiLayerPerceptron):
        pass

    calls: list[dict] = []

    def fit(epochs: int, **kwargs: object) -> SimpleNamespace:
        calls.append({"epochs": epochs, **kwargs})
        return SimpleNamespace(best_checkpoint=tmp_path / f"best-{len(calls)}.ckpt")

    monkeypatch.setattr(torchmech.chapter.lit, "fit", fit)
    runs = Runs()
    runs.use_workdir(tmp_path)
    runs.get("lightning", epochs=15)
    runs.get("lightning", epochs=15, impl=Implementation("mine", {"MultiLayerPerceptron": Mine}))
    assert [(c["epochs"], c["model_class"]) for c in calls] == [(10, MultiLayerPerceptron), (15, MultiLayerPerceptron),
                                                                (10, Mine), (15, Mine)]
    assert (calls[1]["resume"], calls[3]["resume"]) == (tmp_path / "best-1.ckpt", tmp_path / "best-3.ckpt")
    assert calls[0]["logdir"] == calls[1]["logdir"] == tmp_path / "lightning-cpu"
    assert calls[2]["logdir"] == calls[3]["logdir"] == tmp_path / "lightning-cpu-mine"


def test_lit_fit_trains_the_model_class_it_is_given(mnist_root: Path, tmp_path: Path) -> None:
    """``fit(model_class=…)`` trains and tests that LightningModule (a short run: limit_*_batches)."""
    from torchmech.chapter.lit import MultiLayerPerceptron, fit

    class Mine(MultiLayerPerceptron):
        pass

    run = fit(1, logdir=tmp_path, data_path=mnist_root, progress=False, model_class=Mine, limit_train_batches=2,
              limit_val_batches=1, limit_test_batches=1)
    assert type(run.model) is Mine and run.best_checkpoint.is_file()
    assert type(Mine.load_from_checkpoint(run.best_checkpoint)) is Mine
