"""Where each piece of the chapter's code comes from: the reference (torchmech itself) or an override.

A learner's workspace, a planted mistake and the grader's "your piece in the chapter's run" are all an
:class:`Implementation` with overrides; measures, runs and the grader ask ``impl.compute_z``, never
import the code themselves. The lowest layer of the specification: it imports only what a piece's
``module:attr`` names, when asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


class Implementation:
    """Where each piece of the chapter's code comes from: a name → a callable or class.

    The reference is torchmech itself (:data:`REFERENCE`); ``overrides`` replace single pieces
    (a learner's workspace, a planted mistake). Measures ask ``ctx.impl.compute_z``, never import
    the code themselves.
    """

    REFERENCE: Mapping[str, str] = {
        "compute_z": "torchmech.chapter.graph:compute_z",
        "op_chain": "torchmech.chapter.graph:op_chain",
        "fans": "torchmech.chapter.glorot:fans",
        "glorot_bound": "torchmech.chapter.glorot:glorot_bound",
        "glorot_std": "torchmech.chapter.glorot:glorot_std",
        "RawTensorModule": "torchmech.chapter.glorot:RawTensorModule",
        "ParameterModule": "torchmech.chapter.glorot:ParameterModule",
        "linear_loss": "torchmech.chapter.autodiff:linear_loss",
        "linear_loss_grad": "torchmech.chapter.autodiff:linear_loss_grad",
        "chapter_sequential": "torchmech.chapter.models:chapter_sequential",
        "n_parameters": "torchmech.chapter.models:n_parameters",
        "make_xor": "torchmech.chapter.data.xor:make_xor",
        "ModuleListModel": "torchmech.chapter.models:ModuleListModel",
        "NoisyLinear": "torchmech.chapter.layers:NoisyLinear",
        "load_auto_mpg": "torchmech.chapter.data.auto_mpg:load_auto_mpg",
        "mpg_features": "torchmech.chapter.data.auto_mpg:mpg_features",
        "load_mnist": "torchmech.chapter.data.mnist:load_mnist",
        "mnist_split": "torchmech.chapter.data.mnist:mnist_split",
        # pieces graded by their checks (torchmech.learn.exercises) rather than by claims
        "fgsm": "torchmech.chapter.autodiff:fgsm",
        "l1_penalty": "torchmech.chapter.losses:l1_penalty",
        "bce_logit_grad": "torchmech.chapter.losses:bce_logit_grad",
        "cross_entropy_logit_grad": "torchmech.chapter.losses:cross_entropy_logit_grad",
        "mse_grad": "torchmech.chapter.losses:mse_grad",
        "train": "torchmech.chapter.train:train",
        "bucketize_year": "torchmech.chapter.data.auto_mpg:bucketize_year",
        "mpg_regressor": "torchmech.chapter.models:mpg_regressor",
        "mnist_mlp": "torchmech.chapter.models:mnist_mlp",
        "ShuffledBatches": "torchmech.chapter.train:ShuffledBatches",
        "MultiLayerPerceptron": "torchmech.chapter.lit:MultiLayerPerceptron",
    }

    def __init__(self, name: str = "torchmech", overrides: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._overrides = dict(overrides or {})

    def __getattr__(self, piece: str) -> Any:
        if piece.startswith("_"):
            raise AttributeError(piece)
        if piece in self._overrides:
            return self._overrides[piece]
        if piece not in self.REFERENCE:
            raise AttributeError(f"no piece {piece!r} in the chapter's implementation")
        module, attr = self.REFERENCE[piece].split(":")
        return getattr(importlib.import_module(module), attr)

    def source(self, piece: str) -> str:
        """``self.name`` where this implementation defines ``piece``, else ``"reference"``."""
        return self.name if piece in self._overrides else "reference"

    def __repr__(self) -> str:
        return f"Implementation({self.name!r}, overrides={sorted(self._overrides)})"


REFERENCE = Implementation()


def pieces_of(impl: Implementation | None) -> Implementation:
    """Where a run, a recipe or a measure takes the chapter's pieces: ``impl``, or (``None``) the reference."""
    return REFERENCE if impl is None else impl
