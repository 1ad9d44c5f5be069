"""§9 PyTorch Lightning 2.x and TensorBoard: the chapter's MNIST classifier, ported from 1.5.

The book's code was written for Lightning 1.5 and fails on 2.x (``gpus=``,
``resume_from_checkpoint=`` and ``training_epoch_end`` are gone; torchmetrics' ``Accuracy``
needs ``task=``); the official notebook's later fix is itself broken (its
``on_training_epoch_end`` is never called and without ``validation_step`` no ``valid_acc``
is ever logged). This module is the version that works:

* :class:`MultiLayerPerceptron` logs ``train_loss``/``valid_loss``/``test_loss`` per step and
  ``train_acc``/``valid_acc``/``test_acc`` per epoch through the hooks Lightning 2.x calls
  (``on_train_epoch_end``, ``on_validation_epoch_end``, ``on_test_epoch_end``);
* :class:`MnistDataModule` serves the 55,000/5,000 split of the book from tensors in memory
  (no per-sample PIL work);
* :func:`fit` wires ``ModelCheckpoint`` (best ``valid_acc`` and ``last.ckpt``) and a
  ``TensorBoardLogger``, resumes with ``fit(..., ckpt_path=...)`` and refuses a checkpoint
  that does not exist (Lightning itself only warns for ``ckpt_path="last"`` and restarts).

Several GPUs: ``torchmech lightning --accelerator gpu --devices N --strategy ddp`` (NCCL);
several machines: launch the same command under ``torchrun --nnodes … --nproc-per-node …``
or a cluster Lightning detects (SLURM, TorchElastic, LSF, Kubeflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import Accuracy

from torchmech.chapter.data.mnist import fetch_mnist, load_mnist, mnist_split, to_float_images
from torchmech.chapter.models import mlp


class MultiLayerPerceptron(pl.LightningModule):
    """§9's LightningModule: ``Flatten → Linear → ReLU → … → Linear(·, 10)``, Adam 0.001.

    Args:
        image_shape: (channels, height, width) of one input image.
        hidden_units: widths of the hidden layers.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), hidden_units: tuple[int, ...] = (32, 16)):
        super().__init__()
        self.save_hyperparameters()
        self.train_acc = Accuracy(task="multiclass", num_classes=10)
        self.valid_acc = Accuracy(task="multiclass", num_classes=10)
        self.test_acc = Accuracy(task="multiclass", num_classes=10)
        size = image_shape[0] * image_shape[1] * image_shape[2]
        self.model = nn.Sequential(nn.Flatten(), *mlp((size, *hidden_units, 10), output=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], metric: Accuracy, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        metric.update(torch.argmax(logits, dim=1), y)
        self.log(f"{stage}_loss", loss, prog_bar=True, sync_dist=stage != "train")
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_acc, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.valid_acc, "valid")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.test_acc, "test")

    def _log_epoch(self, metric: Accuracy, stage: str) -> None:
        self.log(f"{stage}_acc", metric.compute(), prog_bar=True, sync_dist=True)
        metric.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch(self.train_acc, "train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.valid_acc, "valid")

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_acc, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.001)


class MnistDataModule(pl.LightningDataModule):
    """§9's LightningDataModule: MNIST's 55,000/5,000 train/validation split
    (``random_split`` with ``torch.Generator().manual_seed(1)``, as the book) and the test set,
    as float tensors in [0, 1] (``ToTensor``'s scaling) in memory
    (:func:`~torchmech.chapter.data.mnist.mnist_split`); batches of 64, in order (the book's loaders do not shuffle).

    Args:
        data_path: data root (``None``: ``$TORCHMECH_DATA`` or ``~/.cache/torchmech``).
        batch_size: samples per batch.
        num_workers: loader worker processes (0: load in the main process).
    """

    def __init__(self, data_path: str | Path | None = None, batch_size: int = 64, num_workers: int = 0) -> None:
        super().__init__()
        self.data_path, self.batch_size, self.num_workers = data_path, batch_size, num_workers

    def prepare_data(self) -> None:
        fetch_mnist(self.data_path)

    def setup(self, stage: str | None = None) -> None:
        self.train, self.val, self.test = mnist_split(self.data_path)

    def _loader(self, dataset: Any) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test)


class EndProcessGroup(pl.Callback):
    """Destroy a ``ddp_spawn`` worker's process group at the end of its run.

    The worker exits right after the run, and Lightning destroys only NCCL groups (at exit): a
    gloo group left to interpreter shutdown can abort the worker ("terminate called without an
    active exception", seen once in ~30 runs of the DDP test here). ``teardown`` is the run's
    last hook, after the strategy's; the barrier lets every rank finish its collectives first.
    Only workers started by ``multiprocessing`` act; other processes keep their group.
    """

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        import multiprocessing

        dist = torch.distributed
        if multiprocessing.parent_process() is not None and dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def notebook_test_acc(model: nn.Module, data_path: str | Path | None = None, batch_size: int = 64) -> float:
    """The number the book's Lightning 1.5 notebook printed as ``test_acc``.

    Its ``test_step`` logged ``self.test_acc.compute()`` — the accuracy accumulated up to that
    batch — at every batch, and Lightning averaged those logs over the epoch, weighted by batch
    size. That is not the test accuracy (:attr:`LightningRun.test_acc`, torchmetrics' accuracy
    over the whole test set): it weighs the early batches' running accuracy too.
    """
    device = next(model.parameters()).device
    right = seen = 0
    weighted = 0.0
    model.eval()
    with torch.no_grad():
        images, labels = load_mnist(data_path, train=False)  # the test set only: no split to build
        for x, y in DataLoader(TensorDataset(to_float_images(images), labels), batch_size=batch_size):
            right += int((model(x.to(device)).argmax(1).cpu() == y).sum())
            seen += len(y)
            weighted += right / seen * len(y)
    return weighted / seen


@dataclass
class LightningRun:
    """What :func:`fit` left: the trainer, the model, the log folder and the checkpoints."""

    trainer: pl.Trainer
    model: pl.LightningModule  # a MultiLayerPerceptron (or the model_class fit was given)
    log_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    test_acc: float | None


def fit(
    epochs: int = 10,
    *,
    logdir: str | Path = "lightning_logs",
    data_path: str | Path | None = None,
    resume: str | Path | None = None,
    accelerator: str = "auto",
    devices: int | str = "auto",
    strategy: str = "auto",
    seed: int = 1,
    test: bool = True,
    num_workers: int = 0,
    progress: bool = True,
    model_class: type[pl.LightningModule] | None = None,
    **trainer_kwargs: Any,
) -> LightningRun:
    """Train §9's model with Lightning 2.x, checkpointing and logging as the chapter shows.

    Logs go to ``logdir/lightning_logs/version_N/`` (TensorBoard event files, ``hparams.yaml``,
    ``checkpoints/``); a resumed run writes the next ``version_N`` beside the first.

    Args:
        epochs: ``max_epochs`` (a resumed run continues up to it).
        resume: a checkpoint (``.../checkpoints/last.ckpt``) to continue from, epoch and global
            step included.
        accelerator, devices, strategy: as ``pl.Trainer`` takes them (``"auto"``).
        test: test with the best checkpoint after fitting (after a run on several devices, on one
            device, as Lightning advises, so that each test sample counts exactly once).
        model_class: the LightningModule to train, built as ``model_class()`` (default
            :class:`MultiLayerPerceptron`; a learner's ``MultiLayerPerceptron`` in the runs of an
            implementation under test).
        trainer_kwargs: more ``pl.Trainer`` arguments (``limit_train_batches``, ``limit_val_batches``,
            ``limit_test_batches``: a short run).

    Raises:
        FileNotFoundError: ``resume`` names no file.
    """
    if resume is not None and not Path(resume).is_file():
        raise FileNotFoundError(f"no checkpoint to resume from at {resume}")
    pl.seed_everything(seed, workers=True, verbose=False)
    datamodule = MnistDataModule(data_path, num_workers=num_workers)
    model = (model_class or MultiLayerPerceptron)()
    checkpoint = ModelCheckpoint(monitor="valid_acc", mode="max", save_top_k=1)
    # A callback of its own for last.ckpt: with save_last on the monitoring callback, Lightning 2.x
    # writes last.ckpt only when a new best is saved, so after a worse last epoch it holds the best one.
    last_epoch = ModelCheckpoint(save_top_k=0, save_last=True)
    logger = TensorBoardLogger(str(logdir), name="lightning_logs")
    _ = logger.version  # pin version_N now: spawned processes (fit, then test) must not pick the next one
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=devices, strategy=strategy,
        logger=logger, callbacks=[checkpoint, last_epoch, EndProcessGroup()],
        enable_progress_bar=progress, enable_model_summary=False, **trainer_kwargs,
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume) if resume is not None else None)
    best, last = Path(checkpoint.best_model_path), Path(last_epoch.last_model_path)  # before test() restores
    if not last_epoch.last_model_path:  # ddp_spawn sends back the best path only; last.ckpt sits beside it
        last = Path(logger.log_dir) / "checkpoints" / "last.ckpt"
    test_acc = None
    if test:
        tester = trainer if trainer.world_size == 1 else pl.Trainer(
            accelerator=accelerator, devices=1, logger=logger, enable_progress_bar=progress,
            enable_model_summary=False, limit_test_batches=trainer_kwargs.get("limit_test_batches"))
        (result,) = tester.test(model, datamodule=datamodule, ckpt_path=str(best), verbose=False)
        test_acc = float(result["test_acc"])
    return LightningRun(trainer, model, Path(logger.log_dir), best, last, test_acc)
