"""§9 PyTorch Lightning: its exercises, their sample inputs and observers."""

from __future__ import annotations

import math
from typing import Any

import torch

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _fresh,
    _gen,
    _raised,
)
from torchmech.learn.grader import seeded
from torchmech.runtime.console import quiet_libraries


def _learnable(g: torch.Generator, n: int, image_shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of 10 classes, each a class's random binary prototype half-covered by noise: learnt within
    a few steps, so the accuracy changes from epoch to epoch (a metric never reset shows)."""
    prototypes = (torch.rand(10, *image_shape, generator=g) > 0.5).float()
    y = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]
    return 0.5 * prototypes[y] + 0.5 * torch.rand(n, *image_shape, generator=g), y


def lightning_samples() -> tuple[Sample, ...]:
    def sample(args: tuple, data: tuple[torch.Tensor, torch.Tensor], train: int, batch: int, epochs: int,
               seed: int) -> Sample:
        n = len(data[0])
        label = (f"MultiLayerPerceptron({', '.join(map(repr, args))}) fit for {epochs} epochs on {train} "
                 f"images {tuple(data[0].shape[1:])} in batches of {batch}, validated on {n - train} each epoch, "
                 f"then tested on those {n - train} and on as many training images")
        return Sample(_fresh(*args), ("image_shape", "hidden_units")[:len(args)], seed=seed,
                      extra={"data": data, "train": train, "batch": batch, "epochs": epochs, "label": label})

    g = _gen(9)
    noise = torch.rand(80, 1, 28, 28, generator=g), torch.randint(0, 10, (80,), generator=g)
    return (sample((), noise, 56, 24, 2, 3),
            sample((), _learnable(_gen(10), 80, (1, 28, 28)), 56, 8, 3, 5),
            sample(((2, 5, 5), (12,)), _learnable(_gen(11), 60, (2, 5, 5)), 40, 6, 3, 7))


def lightning_module(piece: Any, sample: Sample) -> dict[str, Any]:
    """Fit a few short epochs with a logger that records every logged value, then test twice (on the
    validation images, then on as many training ones: a test metric never reset mixes the two); what was
    logged, the optimizer, the weights after."""
    import tempfile

    import lightning.pytorch as pl
    from lightning.pytorch.loggers import Logger
    from torch.utils.data import DataLoader, TensorDataset

    class LoggedValues(Logger):
        def __init__(self) -> None:
            super().__init__()
            self.logged: list[tuple[str, int, float]] = []

        @property
        def name(self) -> str:
            return "logged-values"

        @property
        def version(self) -> int:
            return 0

        def log_metrics(self, metrics: dict, step: int | None = None) -> None:
            self.logged += [(k, int(step or 0), float(v)) for k, v in metrics.items() if k != "epoch"]

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

    args = sample.make()
    (x, y), n = (t.clone() for t in sample.extra["data"]), sample.extra["train"]
    train_loader = DataLoader(TensorDataset(x[:n], y[:n]), batch_size=sample.extra["batch"])
    valid_loader = DataLoader(TensorDataset(x[n:], y[n:]), batch_size=10)
    with seeded(sample.seed), quiet_libraries(import_lightning=False), tempfile.TemporaryDirectory() as tmp:
        try:
            model = piece(*args)
            optimizer = model.configure_optimizers()
            opt = optimizer[0] if isinstance(optimizer, list | tuple) else optimizer
            logger = LoggedValues()
            trainer = pl.Trainer(max_epochs=sample.extra["epochs"], logger=logger, enable_checkpointing=False,
                                 enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp,
                                 log_every_n_steps=1, num_sanity_val_steps=0, accelerator="cpu", devices=1)
            trainer.fit(model, train_loader, valid_loader)
            trainer.test(model, valid_loader, verbose=False)
            trainer.test(model, DataLoader(TensorDataset(x[:len(x) - n], y[:len(x) - n]), batch_size=10),
                         verbose=False)
        except Exception as err:
            return _raised(err)
    logged = sorted(logger.logged, key=lambda r: r[:2])  # by name and step; the two test runs in their order
    names = sorted({k for k, _, _ in logged})
    metrics = [getattr(model, f"{stage}_acc", None) for stage in ("train", "valid", "test")]
    return {"one Accuracy object per stage (train_acc, valid_acc, test_acc)":
            all(m is not None for m in metrics) and len({id(m) for m in metrics}) == 3,
            "the metrics logged": names,
            "the optimizer": f"{type(opt).__name__}(lr={opt.param_groups[0]['lr']})" if hasattr(opt, "param_groups")
            else type(opt).__name__,
            **{f"{name} as logged (step, value)": [(s, v) for k, s, v in logged if k == name] for name in names},
            "the weights after training": {n: p.detach().clone() for n, p in model.named_parameters()}}


def diagnose_lightning(expected: dict, got: dict) -> str:
    """A metric never reset: from the second epoch (or test run) on, it logs the mean of this one's accuracy and
    every earlier one's (the samples' epochs, and their two test runs, are of equal size)."""
    close = lambda a, b: all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a, b, strict=True))  # noqa: E731
    running: list[str] = []
    for stage in ("test", "train", "valid"):  # the observations' order
        e, g = expected.get(f"{stage}_acc as logged (step, value)"), got.get(f"{stage}_acc as logged (step, value)")
        if not isinstance(e, list) or not isinstance(g, list) or len(e) != len(g) or len(e) < 2:
            continue
        ev, gv = [v for _, v in e], [v for _, v in g]
        if not close(ev, gv) and close([sum(ev[: k + 1]) / (k + 1) for k in range(len(ev))], gv):
            running.append(f"{stage}_acc")
    if not running:
        return ""
    names = ", ".join(running[:-1]) + " and " + running[-1] if len(running) > 1 else running[0]
    return (f"{names} {'logs' if len(running) == 1 else 'log'} the running accuracy over every "
            f"epoch (or test run) so far, the mean of this one's and the earlier ones': the metric is not reset "
            f"after it is logged")


EXERCISES: tuple[Exercise, ...] = (
    Exercise("MultiLayerPerceptron", "s9", "class MultiLayerPerceptron(pl.LightningModule):",
             "§9's LightningModule MultiLayerPerceptron(image_shape=(1, 28, 28), hidden_units=(32, 16)): "
             "self.model = nn.Sequential(Flatten, Linear, ReLU, …, Linear(·, 10)) built in order, for any "
             "image_shape (channels, height, width) and any number of hidden layers; forward returns "
             "logits; training_step, validation_step and test_step log <stage>_loss (cross-entropy) with "
             "self.log and update that stage's own torchmetrics Accuracy(task='multiclass', num_classes=10) "
             "(one metric object per stage: train_acc, valid_acc, test_acc); on_train_epoch_end / "
             "on_validation_epoch_end / on_test_epoch_end log <stage>_acc = metric.compute() and reset it (so "
             "each epoch's, and each test run's, accuracy is its own); "
             "configure_optimizers returns Adam(lr=0.001).",
             (), lightning_samples, lightning_module,
             ("§9: Lightning calls your hooks; Lightning 2.x removed training_epoch_end.",
              "self.log('train_loss', loss) per step; at each epoch's end log the stage's accuracy, then reset it.",
              "def on_train_epoch_end(self): self.log('train_acc', self.train_acc.compute()); self.train_acc.reset()"),
             diagnose_lightning,
             spans=("a smaller last batch", "≥ 3 epochs", "several seeds", "defaults and other values")),
)
