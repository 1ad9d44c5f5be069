"""§9 PyTorch Lightning and TensorBoard: the chapter's classifier on Lightning 2.x — logging,
checkpoints, resuming, the book's errata, DDP on two processes — and the Ignite variant."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torchmetrics import Accuracy

from torchmech.lit import MnistDataModule, MultiLayerPerceptron, fit

if TYPE_CHECKING:
    from tests.conftest import BookRuns

pytestmark = pytest.mark.s9

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
    """ModelCheckpoint(monitor="valid_acc", mode="max", save_top_k=1, save_last=True): one best
    checkpoint, whose score is the best logged valid_acc, and last.ckpt."""
    run = fit(3, logdir=tmp_path, data_path=mnist_root, test=False, **SHORT)
    checkpoints = sorted(p.name for p in (run.log_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints
    state = torch.load(run.best_checkpoint, map_location="cpu", weights_only=False)
    (saved,) = [v for k, v in state["callbacks"].items() if k.startswith("ModelCheckpoint")]
    best = max(e.value for e in _scalars(run.log_dir).Scalars("valid_acc"))
    assert float(saved["best_model_score"]) == pytest.approx(best)


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

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.001)


def test_notebooks_fix_never_logs_accuracies(mnist_root: Path, tmp_path: Path) -> None:
    """Erratum: with `on_training_epoch_end` and no `validation_step`, train_acc and valid_acc are
    never logged; torchmech's module logs both."""
    module = _NotebookFix()
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=MnistDataModule(mnist_root))
    assert module.epoch_end_calls == 0
    assert "train_loss" in trainer.callback_metrics
    assert "train_acc" not in trainer.callback_metrics and "valid_acc" not in trainer.callback_metrics


@pytest.mark.slow
def test_ten_epochs_reach_the_books_accuracy(book_runs: BookRuns) -> None:
    """The chapter's run: 10 epochs on the CPU, tested with the best checkpoint, reach ≥ 0.94 test
    accuracy (the notebook: 0.94996 from its best epoch 8; measured here 0.9554 from epoch 8)."""
    run = book_runs.lightning("cpu")
    assert run.test_acc is not None and run.test_acc >= 0.94
    assert run.best_checkpoint.name.startswith("epoch=") and run.best_checkpoint.is_file()


# --- scale-out on an existing engine --------------------------------------------------------------
def test_ddp_on_two_cpu_processes(mnist_root: Path, tmp_path: Path) -> None:
    """Lightning DDP, 2 processes on the CPU (gloo, ddp_spawn): the same model trains, writes one
    checkpoint folder and one log version, and tests within 0.02 of one process on the same data
    and epochs (each process sees half the batches; gradients are averaged)."""
    opts = {"limit_train_batches": 200, "limit_val_batches": 20, "limit_test_batches": 40, "progress": False}
    single = fit(2, logdir=tmp_path / "single", data_path=mnist_root, **opts)
    ddp = fit(2, logdir=tmp_path / "ddp", data_path=mnist_root, accelerator="cpu", devices=2,
              strategy="ddp_spawn", **opts)
    assert sorted(p.name for p in (tmp_path / "ddp" / "lightning_logs").iterdir()) == ["version_0"]
    checkpoints = sorted(p.name for p in (tmp_path / "ddp" / "lightning_logs" / "version_0" / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints
    assert abs(ddp.test_acc - single.test_acc) <= 0.02, (ddp.test_acc, single.test_acc)


# --- the Ignite variant ---------------------------------------------------------------------------
def test_ignite_variant_reaches_the_bonus_notebooks_accuracy(mnist_root: Path, tmp_path: Path) -> None:
    """PyTorch-Ignite, the same MLP: 5 epochs reach validation accuracy ≥ 0.94 (the bonus notebook:
    0.91 → 0.94); TensorBoard logs and the best checkpoint are written."""
    pytest.importorskip("ignite", reason="pytorch-ignite is an optional extra (torchmech[ignite])")
    from torchmech.lit import ignite_fit

    run = ignite_fit(5, logdir=tmp_path, data_path=mnist_root)
    assert len(run.valid_acc) == 5 and run.valid_acc[-1] >= 0.94
    assert run.best_checkpoint.is_file()
    assert {"validation/accuracy", "training/loss"} <= set(_scalars(tmp_path).Tags()["scalars"])


def test_ignite_cross_entropy_receives_logits(mnist_root: Path, tmp_path: Path) -> None:
    """No stray Softmax (the bonus notebook applied softmax twice): CrossEntropyLoss gets raw logits."""
    pytest.importorskip("ignite", reason="pytorch-ignite is an optional extra (torchmech[ignite])")
    from torchmech.lit import ignite_fit

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
