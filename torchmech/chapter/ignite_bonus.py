"""§9's pointer to PyTorch-Ignite, made to run: the chapter's MNIST classifier on Ignite's engines.

The chapter mentions Ignite beside Lightning; its bonus notebook trains the same MLP with
``create_supervised_trainer``. This module is that run, on the book's 55,000/5,000 split
(:func:`~torchmech.chapter.data.mnist.mnist_split`, the data :class:`~torchmech.chapter.lit.MnistDataModule`
serves too). It does not import Lightning; ``pytorch-ignite`` is an optional extra
(``pip install torchmech[ignite]``), imported when :func:`ignite_fit` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from torchmech.chapter.data.mnist import fetch_mnist, mnist_split
from torchmech.chapter.models import mnist_mlp


@dataclass
class IgniteRun:
    """What :func:`ignite_fit` left: validation accuracy and loss per epoch, the log folder and
    the best checkpoint."""

    valid_acc: list[float]
    valid_loss: list[float]
    log_dir: Path
    best_checkpoint: Path


def ignite_fit(
    epochs: int = 5,
    *,
    logdir: str | Path = "ignite_logs",
    data_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 1,
    max_batches: int | None = None,
    loss_fn: nn.Module | None = None,
) -> IgniteRun:
    """The chapter's pointer to PyTorch-Ignite, made to run: the same MLP (logits, no Softmax —
    the bonus notebook's stray Softmax applied softmax twice) with ``create_supervised_trainer``
    and ``create_supervised_evaluator``, Accuracy and Loss metrics, the best checkpoint by
    validation accuracy, and TensorBoard logs in ``logdir``.

    Fetches MNIST if needed (as the Lightning run's ``prepare_data`` does), then trains on the
    55,000 images in shuffled batches of 64 and validates on the 5,000 after every epoch.

    Args:
        max_batches: train on only this many batches per epoch (short runs in tests).
        loss_fn: the loss (default ``nn.CrossEntropyLoss()``), e.g. a spy in a test.

    Raises:
        ImportError: ``pytorch-ignite`` is not installed.
    """
    from ignite.engine import Events, create_supervised_evaluator, create_supervised_trainer
    from ignite.handlers import ModelCheckpoint as IgniteCheckpoint
    from ignite.handlers import global_step_from_engine
    from ignite.handlers.tensorboard_logger import TensorboardLogger
    from ignite.metrics import Accuracy as IgniteAccuracy
    from ignite.metrics import Loss

    torch.manual_seed(seed)
    fetch_mnist(data_path)
    data = mnist_split(data_path)
    train_loader = DataLoader(data.train, batch_size=64, shuffle=True)
    valid_loader = DataLoader(data.valid, batch_size=64)
    model = mnist_mlp().to(device)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    trainer = create_supervised_trainer(model, torch.optim.Adam(model.parameters(), lr=0.001), loss_fn, device)
    evaluator = create_supervised_evaluator(
        model, metrics={"accuracy": IgniteAccuracy(), "loss": Loss(nn.CrossEntropyLoss())}, device=device)
    history = IgniteRun([], [], Path(logdir), Path())

    if max_batches is not None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=max_batches), lambda e: e.terminate_epoch())

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine) -> None:
        evaluator.run(valid_loader)
        history.valid_acc.append(float(evaluator.state.metrics["accuracy"]))
        history.valid_loss.append(float(evaluator.state.metrics["loss"]))

    checkpoint = IgniteCheckpoint(Path(logdir) / "checkpoints", filename_prefix="best", n_saved=1,
                                  score_function=lambda e: e.state.metrics["accuracy"], score_name="valid_acc",
                                  global_step_transform=global_step_from_engine(trainer), require_empty=False)
    evaluator.add_event_handler(Events.COMPLETED, checkpoint, {"model": model})
    tb = TensorboardLogger(log_dir=str(logdir))
    tb.attach_output_handler(trainer, event_name=Events.ITERATION_COMPLETED(every=100), tag="training",
                             output_transform=lambda loss: {"loss": loss})
    tb.attach_output_handler(evaluator, event_name=Events.EPOCH_COMPLETED, tag="validation",
                             metric_names=["accuracy", "loss"], global_step_transform=global_step_from_engine(trainer))
    trainer.run(train_loader, max_epochs=epochs)
    tb.close()
    history.best_checkpoint = Path(checkpoint.last_checkpoint) if checkpoint.last_checkpoint else Path()
    return history
