"""§9 PyTorch Lightning: its exercises, their sample inputs and observers."""

from __future__ import annotations

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


def lightning_samples() -> tuple[Sample, ...]:
    g = _gen(9)
    x, y = torch.rand(80, 1, 28, 28, generator=g), torch.randint(0, 10, (80,), generator=g)
    return (Sample(_fresh(x, y), ("images", "labels"), seed=3, extra={"epochs": 2, "batch": 24}),)


def lightning_module(piece: Any, sample: Sample) -> dict[str, Any]:
    """Fit 2 short epochs with a logger that records every logged value, then test; what was logged, the
    optimizer, the weights after."""
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

    x, y = sample.make()
    train_loader = DataLoader(TensorDataset(x[:56], y[:56]), batch_size=sample.extra["batch"])
    valid_loader = DataLoader(TensorDataset(x[56:], y[56:]), batch_size=10)
    with seeded(sample.seed), quiet_libraries(import_lightning=False), tempfile.TemporaryDirectory() as tmp:
        try:
            model = piece()
            optimizer = model.configure_optimizers()
            opt = optimizer[0] if isinstance(optimizer, list | tuple) else optimizer
            logger = LoggedValues()
            trainer = pl.Trainer(max_epochs=sample.extra["epochs"], logger=logger, enable_checkpointing=False,
                                 enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp,
                                 log_every_n_steps=1, num_sanity_val_steps=0, accelerator="cpu", devices=1)
            trainer.fit(model, train_loader, valid_loader)
            trainer.test(model, valid_loader, verbose=False)
        except Exception as err:
            return _raised(err)
    logged = sorted(logger.logged)
    names = sorted({k for k, _, _ in logged})
    metrics = [getattr(model, f"{stage}_acc", None) for stage in ("train", "valid", "test")]
    return {"one Accuracy object per stage (train_acc, valid_acc, test_acc)":
            all(m is not None for m in metrics) and len({id(m) for m in metrics}) == 3,
            "the metrics logged": names,
            "the optimizer": f"{type(opt).__name__}(lr={opt.param_groups[0]['lr']})" if hasattr(opt, "param_groups")
            else type(opt).__name__,
            **{f"{name} as logged (step, value)": [(s, v) for k, s, v in logged if k == name] for name in names},
            "the weights after training": {n: p.detach().clone() for n, p in model.named_parameters()}}


EXERCISES: tuple[Exercise, ...] = (
    Exercise("MultiLayerPerceptron", "s9", "class MultiLayerPerceptron(pl.LightningModule):",
             "§9's LightningModule MultiLayerPerceptron(image_shape=(1, 28, 28), hidden_units=(32, 16)): "
             "self.model = nn.Sequential(Flatten, Linear, ReLU, …, Linear(·, 10)) built in order; forward returns "
             "logits; training_step, validation_step and test_step log <stage>_loss (cross-entropy) with "
             "self.log and update that stage's own torchmetrics Accuracy(task='multiclass', num_classes=10) "
             "(one metric object per stage: train_acc, valid_acc, test_acc); on_train_epoch_end / "
             "on_validation_epoch_end / on_test_epoch_end log <stage>_acc = metric.compute() and reset it; "
             "configure_optimizers returns Adam(lr=0.001).",
             (), lightning_samples, lightning_module,
             ("§9: Lightning calls your hooks; Lightning 2.x removed training_epoch_end.",
              "self.log('train_loss', loss) per step; at each epoch's end log the stage's accuracy, then reset it.",
              "def on_train_epoch_end(self): self.log('train_acc', self.train_acc.compute()); self.train_acc.reset()")),
)
