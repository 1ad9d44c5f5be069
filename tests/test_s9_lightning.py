"""§9 PyTorch Lightning and TensorBoard: the chapter's classifier on Lightning 2.x — logging,
checkpoints, resuming, the book's errata, DDP on two processes — and the Ignite variant."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DistributedSampler
from torchmetrics import Accuracy

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from torchmech.chapter.lit import MnistDataModule, MultiLayerPerceptron, fit
from torchmech.spec.core import Context

pytestmark = pytest.mark.s9


@pytest.mark.parametrize("claim", claim_cases("s9"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s9"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s9` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


SHORT = {"limit_train_batches": 20, "limit_val_batches": 5, "limit_test_batches": 5,
         "log_every_n_steps": 5, "progress": False}


@pytest.fixture(autouse=True)
def _restore_process_flags():
    """Trainer(deterministic=True) flips process-wide flags; put them back after each test."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], saved[2]


def _scalars(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return events


def test_hooks_log_every_metric_to_tensorboard(mnist_root: Path, tmp_path: Path) -> None:
    """The hooks Lightning 2.x calls log per-step losses and per-epoch accuracies; TensorBoard's
    event files hold train/valid/test loss and accuracy (read back with EventAccumulator)."""
    run = fit(2, logdir=tmp_path, data_path=mnist_root, deterministic=True, **SHORT)
    assert run.log_dir == tmp_path / "lightning_logs" / "version_0"
    events = _scalars(run.log_dir)
    tags = set(events.Tags()["scalars"])
    assert {"train_loss", "valid_loss", "train_acc", "valid_acc", "test_loss", "test_acc"} <= tags
    assert len(events.Scalars("train_acc")) == len(events.Scalars("valid_acc")) == 2
    assert len(events.Scalars("test_acc")) == 1
    assert len(events.Scalars("train_loss")) == 2 * 20 // 5
    assert 0.5 < run.test_acc <= 1.0


def test_checkpoint_holds_the_best_valid_acc(mnist_root: Path, tmp_path: Path) -> None:
    """ModelCheckpoint(monitor="valid_acc", mode="max", save_top_k=1), and last.ckpt from a callback of
    its own: one best checkpoint, whose score is the best logged valid_acc, and last.ckpt."""
    run = fit(3, logdir=tmp_path, data_path=mnist_root, test=False, **SHORT)
    checkpoints = sorted(p.name for p in (run.log_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints
    state = torch.load(run.best_checkpoint, map_location="cpu", weights_only=False)
    (saved,) = [v for k, v in state["callbacks"].items() if k.startswith("ModelCheckpoint{'monitor': 'valid_acc'")]
    best = max(e.value for e in _scalars(run.log_dir).Scalars("valid_acc"))
    assert float(saved["best_model_score"]) == pytest.approx(best)


@pytest.mark.slow
def test_last_checkpoint_is_the_last_epoch(spec: Context) -> None:
    """In the chapter's 10-epoch run the best epoch (8) is not the last (9): last.ckpt holds the state
    after all 10 epochs (its global step), best the state after epoch 8 (with save_last on the
    monitoring callback, Lightning 2.x would leave a copy of the best in last.ckpt)."""
    run = spec.lightning()
    best = torch.load(run.best_checkpoint, map_location="cpu", weights_only=False)
    last = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)
    steps = run.trainer.num_training_batches
    assert last["global_step"] == 10 * steps and best["global_step"] == (best["epoch"] + 1) * steps
    assert last["epoch"] > best["epoch"]


def test_resume_continues_epoch_and_global_step(mnist_root: Path, tmp_path: Path) -> None:
    """fit(..., ckpt_path=last.ckpt) continues where the run stopped — epoch and global step carried
    over, not restarted — and logs to version_1 beside version_0 (figure 13.11)."""
    first = fit(2, logdir=tmp_path, data_path=mnist_root, test=False, **SHORT)
    assert (first.trainer.current_epoch, first.trainer.global_step) == (2, 40)
    second = fit(3, logdir=tmp_path, data_path=mnist_root, resume=first.last_checkpoint, test=False, **SHORT)
    assert (second.trainer.current_epoch, second.trainer.global_step) == (3, 60)
    assert sorted(p.name for p in (tmp_path / "lightning_logs").iterdir()) == ["version_0", "version_1"]
    resumed = _scalars(second.log_dir)
    assert min(e.value for e in resumed.Scalars("epoch")) == 2  # epoch 2 is the first it trains
    assert min(e.step for e in resumed.Scalars("train_loss")) > 40


def test_resuming_from_a_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    """torchmech refuses a checkpoint that does not exist (Lightning only warns for
    ckpt_path="last" and trains from scratch)."""
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        fit(1, logdir=tmp_path, resume=tmp_path / "version_0" / "checkpoints" / "last.ckpt")


def test_loaded_model_predicts_like_the_trained_one(mnist_root: Path, tmp_path: Path) -> None:
    """load_from_checkpoint restores the hyperparameters and weights: in eval mode it predicts what
    the trained model (holding the best weights after test) predicts."""
    run = fit(2, logdir=tmp_path, data_path=mnist_root, **SHORT)
    loaded = MultiLayerPerceptron.load_from_checkpoint(run.best_checkpoint, map_location="cpu").eval()
    assert loaded.hparams.hidden_units == (32, 16) and not loaded.training
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), run.model.to("cpu").eval()(x))


# --- the book's code on Lightning 2.x: errata -------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"gpus": 1}, {"resume_from_checkpoint": "epoch=8.ckpt"}])
def test_books_lightning_1_5_trainer_arguments_are_gone(kwargs: dict) -> None:
    """Erratum: the book's Trainer(gpus=1) and Trainer(resume_from_checkpoint=…) are Lightning 1.5;
    2.x rejects them (use accelerator/devices, and fit(..., ckpt_path=…))."""
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        pl.Trainer(**kwargs)


class _BookModule(MultiLayerPerceptron):
    """The book's epoch-end hook, as Lightning 1.5 called it."""

    def training_epoch_end(self, outs) -> None:  # pragma: no cover - Lightning 2 refuses it
        pass


def test_books_training_epoch_end_is_refused(mnist_root: Path, tmp_path: Path) -> None:
    """Erratum: `training_epoch_end` was removed in Lightning 2.0; fitting a module that defines it fails."""
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)
    with pytest.raises(NotImplementedError, match="training_epoch_end"):
        trainer.fit(_BookModule(), datamodule=MnistDataModule(mnist_root))


class _NotebookFix(pl.LightningModule):
    """The official notebook's later fix: `on_training_epoch_end` (a hook Lightning never calls)
    and no `validation_step`."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.epoch_end_calls = 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.train_acc.update(logits.argmax(1), y)
        loss = nn.functional.cross_entropy(logits, y)
        self.log("train_loss", loss)
        return loss

    def on_training_epoch_end(self) -> None:  # the misspelt hook
        self.epoch_end_calls += 1
        self.log("train_acc", self.train_acc.compute())

    def test_step(self, batch, batch_idx):  # kept by the fix: only the checkpoint is missing
        x, y = batch
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.log("test_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.001)


def test_notebooks_fix_never_logs_accuracies(mnist_root: Path, tmp_path: Path) -> None:
    """Erratum: with `on_training_epoch_end` and no `validation_step`, train_acc and valid_acc are
    never logged, so the notebook's ModelCheckpoint(monitor="valid_acc") finds nothing to monitor
    (Lightning warns and saves no checkpoint) and its `trainer.test(..., ckpt_path="best")` raises
    Lightning 2.x's ValueError "… is not configured to save the best model". torchmech's module
    logs both (the hooks test)."""
    module, data = _NotebookFix(), MnistDataModule(mnist_root)
    checkpoints = tmp_path / "checkpoints"
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=3, limit_test_batches=2, logger=False,
                         callbacks=[pl.callbacks.ModelCheckpoint(dirpath=checkpoints, monitor="valid_acc",
                                                                 mode="max", save_top_k=1)],
                         enable_progress_bar=False, default_root_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"ModelCheckpoint\(monitor='valid_acc'\)` could not find the monitored key"):
        trainer.fit(module, datamodule=data)
    assert module.epoch_end_calls == 0
    assert "train_loss" in trainer.callback_metrics
    assert "train_acc" not in trainer.callback_metrics and "valid_acc" not in trainer.callback_metrics
    assert not checkpoints.exists() or list(checkpoints.iterdir()) == []
    best = r'`\.test\(ckpt_path="best"\)` is set but `ModelCheckpoint` is not configured to save the best model'
    with pytest.raises(ValueError, match=best):
        trainer.test(module, datamodule=data, ckpt_path="best")


# --- scale-out on an existing engine --------------------------------------------------------------
def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it), for the process group's rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_cpu_processes(mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning DDP, 2 processes on the CPU (gloo, ddp_spawn, rendezvous on a free port of
    127.0.0.1): one step on two processes is one step on their combined batch. Each rank trains on
    64 samples, its half of what the DistributedSampler deals (Lightning shuffles a training set
    under DDP, seed 1, although the book's loader does not), and the step fit() saved (last.ckpt,
    global step 1) equals one single-process step of the same optimizer, from the same seeded
    weights, on all 128 samples with the mean loss. Adam's first moment, (1 − β1)·g, is linear in
    the gradient, so summed gradients (×2) fail it, as do each rank's own gradients, which the
    weights (±lr·sign g after one step) catch too. The run writes one log version and one checkpoint
    folder (best and last), and fit() tests the saved weights on one process afterwards.

    Tolerances: all-reducing two 64-sample means instead of taking one 128-sample mean changes only
    float32 rounding. Measured: first moments within 5e-10 (values up to 6e-3), weights within
    1e-7 (where g ≈ 0, Adam's g / (|g| + ε) is not ±1; every other step is lr = 1e-3); so atol
    1e-8 and 1e-6, with rtol 1e-5 and 1e-6 (a few float32 ulps)."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    run = fit(1, logdir=tmp_path, data_path=mnist_root, accelerator="cpu", devices=2, strategy="ddp_spawn",
              limit_train_batches=1, limit_val_batches=1, limit_test_batches=1, num_sanity_val_steps=0,
              progress=False)
    assert sorted(p.name for p in (tmp_path / "lightning_logs").iterdir()) == ["version_0"]
    checkpoints = sorted(p.name for p in (tmp_path / "lightning_logs" / "version_0" / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints
    saved = torch.load(run.log_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 1

    pl.seed_everything(1, verbose=False)  # as fit() seeds before it builds the model both ranks start from
    model = MultiLayerPerceptron()
    data = MnistDataModule(mnist_root)
    data.setup()
    halves = [list(DistributedSampler(data.train, num_replicas=2, rank=rank, shuffle=True, seed=1))[:64]
              for rank in range(2)]
    x, y = data.train[torch.tensor(halves[0] + halves[1])]
    optimizer = model.configure_optimizers()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    moments = saved["optimizer_states"][0]["state"]
    for i, (name, p) in enumerate(model.named_parameters()):
        torch.testing.assert_close(moments[i]["exp_avg"], optimizer.state[p]["exp_avg"], rtol=1e-5, atol=1e-8,
                                   msg=lambda m, name=name: f"{name}'s first moment: {m}")
        torch.testing.assert_close(saved["state_dict"][name], p.detach(), rtol=1e-6, atol=1e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")

    tested = MultiLayerPerceptron().eval()  # fit() tested these weights on the first test batch
    tested.load_state_dict(saved["state_dict"])
    x_test, y_test = data.test[:64]
    with torch.no_grad():
        assert run.test_acc == (tested(x_test).argmax(1) == y_test).float().mean().item()


# --- the Ignite variant ---------------------------------------------------------------------------
def test_ignite_variant_logs_and_checkpoints(spec: Context) -> None:
    """PyTorch-Ignite, the same MLP, 5 epochs (the shared run whose accuracies are the claims
    s9.ignite.*): one validation accuracy per epoch, the best checkpoint written, TensorBoard logs
    with the training loss and the validation accuracy."""
    pytest.importorskip("ignite", reason="pytorch-ignite is an optional extra (torchmech[ignite])")
    run = spec.ignite()
    assert len(run.valid_acc) == len(run.valid_loss) == 5
    assert run.best_checkpoint.is_file() and f"{max(run.valid_acc):.4f}" in run.best_checkpoint.name
    assert {"validation/accuracy", "training/loss"} <= set(_scalars(run.log_dir).Tags()["scalars"])


def test_ignite_cross_entropy_receives_logits(mnist_root: Path, tmp_path: Path) -> None:
    """No stray Softmax (the bonus notebook applied softmax twice): CrossEntropyLoss gets raw logits."""
    pytest.importorskip("ignite", reason="pytorch-ignite is an optional extra (torchmech[ignite])")
    from torchmech.chapter.ignite_bonus import ignite_fit

    seen: list[torch.Tensor] = []

    class Spy(nn.CrossEntropyLoss):
        def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            seen.append(logits.detach())
            return super().forward(logits, target)

    ignite_fit(1, logdir=tmp_path, data_path=mnist_root, max_batches=3, loss_fn=Spy())
    assert len(seen) == 3
    for logits in seen:
        is_probability = bool(((logits >= 0) & (logits <= 1)).all()) and torch.allclose(
            logits.sum(1), torch.ones(len(logits)))
        assert not is_probability


def test_ignite_bonus_imports_without_lightning() -> None:
    """torchmech.chapter.ignite_bonus stands alone: importing it in a fresh interpreter loads no Lightning module."""
    code = ("import sys, torchmech.chapter.ignite_bonus; "
            "print([m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_ignite_and_lightning_share_the_books_split(mnist_root: Path) -> None:
    """mnist_split is the book's data: the valid set is random_split(60,000, [55,000, 5,000],
    Generator().manual_seed(1))'s second part, in its order, as ToTensor's floats; train and valid
    partition the training images; the test set is the 10,000 test images; and MnistDataModule.setup
    serves exactly these tensors (Ignite's run reads the same function)."""
    from torch.utils.data import random_split

    from torchmech.chapter.data.mnist import load_mnist, mnist_split

    images, labels = load_mnist(mnist_root, train=True)
    train_idx, valid_idx = (torch.tensor(s.indices) for s in random_split(
        range(60_000), [55_000, 5_000], generator=torch.Generator().manual_seed(1)))
    split = mnist_split(mnist_root)
    assert [len(d) for d in split] == [55_000, 5_000, 10_000]
    torch.testing.assert_close(split.valid.tensors[0], images[valid_idx, None].float() / 255, rtol=0, atol=0)
    torch.testing.assert_close(split.valid.tensors[1], labels[valid_idx], rtol=0, atol=0)
    torch.testing.assert_close(split.train.tensors[1], labels[train_idx], rtol=0, atol=0)
    assert torch.cat([train_idx, valid_idx]).sort().values.equal(torch.arange(60_000))
    test_images, test_labels = load_mnist(mnist_root, train=False)
    torch.testing.assert_close(split.test.tensors[1], test_labels, rtol=0, atol=0)
    torch.testing.assert_close(split.test.tensors[0], test_images[:, None].float() / 255, rtol=0, atol=0)
    datamodule = MnistDataModule(mnist_root)
    datamodule.setup()
    for served, expected in zip((datamodule.train, datamodule.val, datamodule.test), split, strict=True):
        for a, b in zip(served.tensors, expected.tensors, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
