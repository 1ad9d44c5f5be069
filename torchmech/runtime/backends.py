r"""The one place that knows how code runs: backends, each a small object, and the rule that judges them.

A :class:`Backend` says where the chapter's code runs and how: the device, the dtype of parameters
and floating inputs, an autocast dtype, ``torch.compile`` (and its mode), deterministic algorithms,
TF32 matmuls. The training loop (:func:`torchmech.chapter.train.train`), the ensembles and the registry's
measures ask the backend to ``prepare`` a model, ``cast`` a tensor, run a ``function``, ``autocast`` a
forward pass, and run everything inside ``active()`` (which restores every global flag it sets).

The float64 arbiter
-------------------
``cpu`` (eager, float32) is the reference: the book's digits are its facts. ``cpu-fp64`` is the
*arbiter*: the same code and seeds with float64 parameters and inputs (the models are built in
float32 and upcast exactly, so both start from the same weights). A number :math:`x_b` measured on
backend *b* holds when

.. math:: |x_b - x_{64}| \le k\,|x_{32} - x_{64}| + \mathrm{tol}\cdot\max(1, |x_{64}|)

with :math:`x_{32}` the reference's value — the float64-arbiter check of ``torch._dynamo.utils.same``
(there ``k`` = 2 for float32 and 3 for half precisions), with ``k`` and ``tol`` per precision in
:data:`TOLERANCES`, each justified by the measurements written beside it. The *error ratio* printed
is :math:`|x_b - x_{64}| / (k\,|x_{32} - x_{64}| + \mathrm{tol}\cdot\max(1,|x_{64}|))`: at most 1 holds.

Adding a backend is one entry of :data:`BACKENDS`.

Example::

    >>> named("cpu-fp64").cast(torch.ones(2)).dtype
    torch.float64
    >>> sorted(b for b in ("cpu", "cpu-fp64", "compile") if named(b).missing() is None)
    ['compile', 'cpu', 'cpu-fp64']
"""

from __future__ import annotations

import contextlib
import os
import shutil
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch
from torch import nn

from torchmech.runtime.devices import is_available, resolve_device


@dataclass(frozen=True)
class Tolerance:
    """``k`` (the multiple of the reference's own error allowed), ``tol`` (relative to the value's size) and
    ``eps`` (the precision's unit, 2⁻ᵖ for p mantissa bits: the rounding floor of a tensor) of one precision,
    with the measurements that justify them."""

    k: float
    tol: float
    why: str
    eps: float = 0.0

    def budget(self, e_ref: float, x64: float) -> float:
        """The most ``|x_b − x₆₄|`` may be for a number the chapter prints: ``k·e_ref + tol·max(1, |x₆₄|)``
        (accuracies, losses and MSEs are of order 1 or more; an accuracy equal on both runs has e_ref = 0)."""
        return self.k * e_ref + self.tol * max(1.0, abs(x64))

    def tensor_budget(self, e_ref: float, x64: torch.Tensor, ref_eps: float = 2.0**-23) -> float:
        """The most ``rmse(x_b, x₆₄)`` may be for a tensor (an activation, a gradient):
        ``k·e_ref·max(1, eps/ref_eps) + max(tol·rms(x₆₄), eps·max|x₆₄|)``.

        The tolerance scales with the tensor's own size, so a gradient of rms 1e-3 gets the same relative
        budget as a loss of 500; its floor is one unit of the precision at the tensor's largest element
        (below it, a difference is rounding, not a finding). The reference's own error ``e_ref`` (computed at
        ``ref_eps``, float32's unit by default) says how much this computation amplifies rounding (a sum that
        cancels amplifies it): a backend of coarser precision ``eps`` may show as much, scaled to its unit."""
        if not x64.numel():
            return 0.0
        rms, top = x64.pow(2).mean().sqrt().item(), x64.abs().max().item()
        return self.k * e_ref * max(1.0, self.eps / ref_eps) + max(self.tol * rms, self.eps * top)


#: k and tol per precision, with the reason for each (why, on any machine). The measurements behind them, with
#: their machine and date, are in docs/checking-a-backend.md ("The measurements behind the tolerances").
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(3.0, 1e-4, (
        "float32 backends (compile, deterministic, cuda, cuda-graphs, mps): another float32 rounding path may land "
        "nearer float64 than the reference or as far again. k = 3, not torch._dynamo's 2 for one forward pass: over "
        "200 epochs two float32 rounding paths drift by independent amounts of one size, and their ratio is "
        "heavy-tailed; tol = 1e-4 (dynamo's default) covers numbers where the reference's own error happens to "
        "vanish. Tensors: a floor of one float32 unit at the tensor's largest element, so that a 1 % error in a "
        "gradient of rms 1e-3 is found."), eps=2.0**-23),
    "tf32": Tolerance(3.0, 5e-3, (
        "TF32 matmuls round inputs to 10 mantissa bits (2⁻¹¹): bf16's need (2⁻⁸) scaled by TF32's 8× finer "
        "rounding, with 2× margin; measured on a GPU at a fifth of it."), eps=2.0**-10),
    "bf16": Tolerance(3.0, 3e-2, (
        "bf16 autocast rounds matmul inputs to 7 mantissa bits (2⁻⁸): XOR's accuracy moves by two of 100 points and "
        "MPG's losses by up to 0.8 % where float32 and float64 agree; tol = 0.03 is 1.5× the largest need. Tensors: "
        "the reference's own error scaled to bf16's unit covers sums that cancel."), eps=2.0**-7),
    "fp64": Tolerance(1.0, 0.0, "the arbiter itself: never judged by this rule", eps=2.0**-52),
}


@dataclass(frozen=True)
class Backend:
    """How the chapter's code runs.

    Attributes:
        name: ``cpu``, ``cpu-fp64``, ``compile``, … (a key of :data:`BACKENDS`).
        summary: one line for ``--help`` and the docs.
        device: the device kind (``cpu``, ``cuda``, ``mps``).
        dtype: parameters' and floating inputs' dtype (float64 for the arbiter).
        autocast: run forward passes under ``torch.autocast`` with this dtype (``None``: no autocast).
        compile: ``torch.compile`` the models and functions with this mode (``None``: eager).
        deterministic: ``torch.use_deterministic_algorithms(True)`` (and cuDNN's flags) while active.
        tf32: let float32 matmuls and convolutions use TF32 while active (else they are kept off).
        precision: the key of :data:`TOLERANCES` that judges it.
        compiler: the ``torch.compile`` backend under ``compile`` (``inductor``; ``aot_eager`` and ``eager``
            are the rungs of :mod:`torchmech.check.ladder` that leave inductor out).
        inductor: inductor's settings while active, as ``(name, value)`` pairs (``fallback_random``…).
        fp32_modules: the names of submodules run in float32, outside autocast (the ladder's "this module in
            float32" under a mixed-precision backend).
    """

    name: str
    summary: str
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    autocast: torch.dtype | None = None
    compile: str | None = None
    deterministic: bool = False
    tf32: bool = False
    precision: str = "fp32"
    compiler: str = "inductor"
    inductor: tuple[tuple[str, object], ...] = ()
    fp32_modules: tuple[str, ...] = ()

    @property
    def tolerance(self) -> Tolerance:
        return TOLERANCES[self.precision]

    @property
    def is_plain(self) -> bool:
        """A device's plain backend: eager, float32, no autocast, no deterministic or TF32 flags (where code
        that trains in its own loop, Lightning's or a learner's, runs as it is)."""
        return not (self.compile or self.autocast or self.dtype != torch.float32 or self.deterministic or self.tf32)

    @property
    def is_reference(self) -> bool:
        """The CPU in float32, eager: where the book's digits are facts."""
        return self.name == "cpu"

    def missing(self) -> str | None:
        """Why this backend cannot run here (``None``: it can)."""
        if not is_available(self.device):
            return f"no {self.device} device on this machine"
        if self.compile and self.device == "cpu" and shutil.which(os.environ.get("CXX", "g++")) is None:
            return "torch.compile needs a C++ compiler on the CPU"
        if self.autocast is torch.bfloat16 and self.device == "cuda" and not torch.cuda.is_bf16_supported():
            return "this GPU has no bfloat16"
        return None

    # --- what the code asks of a backend -------------------------------------------------------------
    def cast(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` on the backend's device; floating tensors in its dtype."""
        return t.to(self.device, self.dtype) if t.is_floating_point() else t.to(self.device)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` (in place) to the device and dtype; return what to call (compiled or not).

        The returned module shares ``model``'s parameters: an optimizer built on ``model`` steps it.
        """
        model.to(self.device, self.dtype)
        for name in self.fp32_modules:
            _in_float32(model.get_submodule(name), self.device)
        return self.compiled(model)

    def loss(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pred: torch.Tensor,
             y: torch.Tensor) -> torch.Tensor:
        """The training loop's loss of ``pred`` against ``y``: outside autocast, in the backend's dtype (CUDA's
        autocast refuses BCELoss). One place, so that a checker can watch the loss (``diverge``'s loss events)
        and a planted backend can change it."""
        return loss_fn(pred.to(self.dtype), y)

    def function(self, fn: Callable) -> Callable:
        """``fn`` as this backend runs it (compiled under ``compile``)."""
        return self.compiled(fn)

    def compiled(self, fn: Callable) -> Callable:
        """``torch.compile(fn)`` with the backend's mode and compiler (``fn`` itself when eager)."""
        if not self.compile:
            return fn
        if self.compiler == "inductor":
            return torch.compile(fn, mode=self.compile)
        return torch.compile(fn, backend=self.compiler)  # a mode is inductor's: the others take none

    def autocast_context(self) -> contextlib.AbstractContextManager:
        """Where forward passes run: ``torch.autocast`` for the mixed-precision backends."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=self.autocast)

    @contextlib.contextmanager
    def active(self) -> Iterator[Backend]:
        """Set the backend's global flags for a run, restoring every one afterwards."""
        saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                 torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                 torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32,
                 os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
        stack = contextlib.ExitStack()
        try:
            if self.compile:
                stack.enter_context(_recompile_room())
            if self.inductor:
                stack.enter_context(_inductor_settings(self.inductor, fresh=bool(self.compile)))
            if self.deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS' deterministic workspace
                torch.use_deterministic_algorithms(True)
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            if self.device == "cuda":
                torch.set_float32_matmul_precision("high" if self.tf32 else "highest")
                torch.backends.cudnn.allow_tf32 = self.tf32
            yield self
        finally:
            stack.close()
            if (torch.are_deterministic_algorithms_enabled(),
                    torch.is_deterministic_algorithms_warn_only_enabled()) != saved[:2]:
                torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])  # (imports inductor: ~1.5 s)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
            torch.set_float32_matmul_precision(saved[4])
            torch.backends.cudnn.allow_tf32 = saved[5]
            if saved[6] is None:
                os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
            else:
                os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[6]


def _float32_forward(self: nn.Module, *args: object, **kwargs: object) -> object:
    """A module's own forward, outside autocast, on float32 inputs (bound by :func:`_in_float32`)."""
    with torch.autocast(self._torchmech_fp32_device, enabled=False):  # type: ignore[arg-type]
        args = tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
        return type(self).forward(self, *args, **kwargs)


def _in_float32(module: nn.Module, device: str) -> None:
    """Run ``module`` in float32 from now on, autocast or not (a bound method: a deep copy keeps it)."""
    module._torchmech_fp32_device = torch.device(device).type
    module.forward = types.MethodType(_float32_forward, module)


@contextlib.contextmanager
def _inductor_settings(settings: tuple[tuple[str, object], ...], fresh: bool) -> Iterator[None]:
    """Inductor's config patched with ``settings`` (restored on exit). ``fresh``: dynamo's cache is emptied on
    entry and on exit, since it does not guard on inductor's settings (a graph compiled before would be
    reused under them, and one compiled under them reused after)."""
    import torch._dynamo
    import torch._inductor.config as inductor

    if fresh:
        torch._dynamo.reset()
    try:
        with inductor.patch(**dict(settings)):
            yield
    finally:
        if fresh:
            torch._dynamo.reset()


def _recompile_room() -> contextlib.AbstractContextManager:
    """Let dynamo recompile one function up to 64 times (default 8) while a compile backend is active: the
    chapter's models are all ``nn.Sequential`` (one code object), each in training and evaluation mode and
    at two or three batch sizes, and past the limit dynamo silently falls back to eager."""
    import torch._dynamo

    name = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    return torch._dynamo.config.patch(**{name: 64})


#: Every backend, in the order the matrix lists them. The first two are the reference and the arbiter.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("cpu", "the reference: eager, float32, on the CPU (the book's digits)"),
    Backend("cpu-fp64", "the arbiter: the same code and seeds in float64 on the CPU", dtype=torch.float64,
            precision="fp64"),
    Backend("compile", "torch.compile (inductor) on the CPU, float32", compile="default"),
    Backend("cpu-bf16", "autocast to bfloat16 on the CPU (matmuls in bf16, parameters float32)",
            autocast=torch.bfloat16, precision="bf16"),
    Backend("deterministic", "torch.use_deterministic_algorithms(True) on the CPU, float32", deterministic=True),
    Backend("cuda", "eager float32 on a CUDA GPU, TF32 off", device="cuda"),
    Backend("cuda-tf32", "a CUDA GPU with TF32 matmuls and convolutions", device="cuda", tf32=True,
            precision="tf32"),
    Backend("cuda-bf16", "autocast to bfloat16 on a CUDA GPU", device="cuda", autocast=torch.bfloat16,
            precision="bf16"),
    Backend("cuda-graphs", "torch.compile(mode='reduce-overhead'): CUDA graphs replay each step", device="cuda",
            compile="reduce-overhead"),
    Backend("mps", "eager float32 on an Apple GPU", device="mps"),
)}

#: The reference and the arbiter.
REFERENCE_BACKEND, ARBITER = "cpu", "cpu-fp64"


def named(name: str | Backend) -> Backend:
    """The backend called ``name`` (a :class:`Backend` is itself); an unknown name is a one-line error naming the
    known ones. The one lookup: :func:`usable` adds the check that it runs here, :func:`resolve` the default."""
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose from {', '.join(BACKENDS)}")
    return BACKENDS[name]


def available_backends() -> list[str]:
    """The backends that can run on this machine, in :data:`BACKENDS`' order."""
    return [name for name, b in BACKENDS.items() if b.missing() is None]


def usable(name: str) -> Backend:
    """The backend ``name`` if it can run here; else a one-line ``ValueError`` naming the available ones."""
    b = named(name)
    reason = b.missing()
    if reason is not None:
        raise ValueError(f"backend {name!r} is not available here ({reason}): "
                         f"available: {', '.join(available_backends())}")
    return b


def plain(device: str | torch.device) -> Backend:
    """The plain (eager, float32) backend of ``device``, its index kept (``cuda:1``); availability is not
    checked."""
    return replace(named(torch.device(device).type), device=str(device))


def resolve(name: str | Backend | None = None, device: str | torch.device | None = "cpu") -> Backend:
    """What a run uses: the backend ``name``, or (``None``) the plain backend of ``device`` (checked: it must
    exist here)."""
    if name is not None:
        return named(name)
    return plain(resolve_device(device))
