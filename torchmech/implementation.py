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
        "compute_z": "torchmech.graph:compute_z",
        "op_chain": "torchmech.graph:op_chain",
        "fans": "torchmech.init:fans",
        "glorot_bound": "torchmech.init:glorot_bound",
        "glorot_std": "torchmech.init:glorot_std",
        "RawTensorModule": "torchmech.init:RawTensorModule",
        "ParameterModule": "torchmech.init:ParameterModule",
        "linear_loss": "torchmech.autodiff:linear_loss",
        "linear_loss_grad": "torchmech.autodiff:linear_loss_grad",
        "chapter_sequential": "torchmech.models:chapter_sequential",
        "n_parameters": "torchmech.models:n_parameters",
        "make_xor": "torchmech.data.xor:make_xor",
        "ModuleListModel": "torchmech.models:ModuleListModel",
        "NoisyLinear": "torchmech.layers:NoisyLinear",
        "load_auto_mpg": "torchmech.data.auto_mpg:load_auto_mpg",
        "mpg_features": "torchmech.data.auto_mpg:mpg_features",
        "load_mnist": "torchmech.data.mnist:load_mnist",
        "mnist_split": "torchmech.data.mnist:mnist_split",
        # pieces graded by their checks (torchmech.exercises) rather than by claims
        "fgsm": "torchmech.autodiff:fgsm",
        "l1_penalty": "torchmech.losses:l1_penalty",
        "bce_logit_grad": "torchmech.losses:bce_logit_grad",
        "cross_entropy_logit_grad": "torchmech.losses:cross_entropy_logit_grad",
        "mse_grad": "torchmech.losses:mse_grad",
        "train": "torchmech.train:train",
        "bucketize_year": "torchmech.data.auto_mpg:bucketize_year",
        "mpg_regressor": "torchmech.models:mpg_regressor",
        "mnist_mlp": "torchmech.models:mnist_mlp",
        "ShuffledBatches": "torchmech.train:ShuffledBatches",
        "MultiLayerPerceptron": "torchmech.lit:MultiLayerPerceptron",
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
