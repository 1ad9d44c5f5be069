"""§9 Lightning: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

import torch
from torch import nn

from torchmech.learn.mistakes.core import Mistake, ref


def _lightning_1_5_hook() -> type:
    base = ref("MultiLayerPerceptron")

    class BookHooks(base):
        on_train_epoch_end = None  # type: ignore[assignment]

        def training_epoch_end(self, outs) -> None:  # Lightning 1.5's hook, removed in 2.0
            self.log("train_acc", self.train_acc.compute())
    return BookHooks


def _shared_metric() -> type:
    base = ref("MultiLayerPerceptron")

    class SharedMetric(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.valid_acc = self.train_acc  # one Accuracy for two stages
    return SharedMetric


def _never_reset() -> type:
    base = ref("MultiLayerPerceptron")

    class NeverReset(base):
        def _log_epoch(self, metric, stage):
            self.log(f"{stage}_acc", metric.compute(), prog_bar=True)  # no metric.reset(): a running accuracy
    return NeverReset


def _lightning_variant(kind: str) -> type:
    base = ref("MultiLayerPerceptron")

    class Wrong(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if kind == "softmax":  # a Softmax after the last Linear, though cross_entropy takes logits
                self.model = nn.Sequential(*self.model, nn.Softmax(dim=1))

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            if kind == "acc_per_step":  # the running accuracy logged at every step
                self.log("train_acc", self.train_acc.compute())
            return loss

        def test_step(self, batch, batch_idx):
            loss = super().test_step(batch, batch_idx)
            if kind == "test_acc_per_batch":  # the book's 1.5 test_step: the running accuracy, every batch
                self.log("test_acc", self.test_acc.compute())
            return loss

        def _log_epoch(self, metric, stage):
            if (kind, stage) in (("acc_per_step", "train"), ("test_acc_per_batch", "test")):
                metric.reset()
                return
            if kind == "val_acc" and stage == "valid":
                stage = "val"  # logged as val_acc, the name the checkpoint's monitor does not know
            super()._log_epoch(metric, stage)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01 if kind == "lr" else 0.001)
    return Wrong


MISTAKES: tuple[Mistake, ...] = (
    Mistake("lightning_1_5_hook", "MultiLayerPerceptron", "Lightning 1.5's training_epoch_end, removed in 2.0",
            _lightning_1_5_hook),
    Mistake("one_accuracy_for_two_stages", "MultiLayerPerceptron", "valid_acc is train_acc: one metric object for "
            "two stages", _shared_metric),
    Mistake("train_acc_per_step", "MultiLayerPerceptron", "train_acc logged in training_step (the running "
            "accuracy, every step), not once per epoch", lambda: _lightning_variant("acc_per_step")),
    Mistake("test_acc_per_batch", "MultiLayerPerceptron", "test_step logs test_acc.compute() every batch (the "
            "book's 1.5 code): Lightning averages the running accuracies",
            lambda: _lightning_variant("test_acc_per_batch")),
    Mistake("adam_lr_0_01", "MultiLayerPerceptron", "Adam with lr=0.01, not 0.001", lambda: _lightning_variant("lr")),
    Mistake("val_acc_name", "MultiLayerPerceptron", "the validation accuracy logged as val_acc, not valid_acc",
            lambda: _lightning_variant("val_acc")),
    Mistake("lightning_softmax_output", "MultiLayerPerceptron", "a Softmax after the last Linear, before "
            "cross_entropy (softmax twice)", lambda: _lightning_variant("softmax")),
    Mistake("accuracy_never_reset", "MultiLayerPerceptron", "<stage>_acc logged at each epoch's end but the metric "
            "never reset: from the second epoch on it is the running accuracy over all epochs so far",
            _never_reset),
)
