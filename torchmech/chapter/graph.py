"""§1 Computation graphs: ``compute_z`` and the ``grad_fn`` DAG PyTorch records as code runs.

PyTorch builds the graph *dynamically*: every differentiable operation on a tensor that
requires gradients appends a node (``SubBackward0``, ``MulBackward0``, ...) to the result's
``grad_fn`` chain while the Python code runs. Declaration and evaluation interleave, so a
Python branch that depends on the data gives each call its own graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

Number = int | float | bool


def _check_inputs(**tensors: torch.Tensor | Number) -> None:
    """Check that ``tensors`` are tensors (or Python numbers) on one device, broadcastable."""
    found = {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    bad = {k: type(v).__name__ for k, v in tensors.items() if not isinstance(v, torch.Tensor | Number)}
    if bad:
        names = ", ".join(f"{k} is {t}" for k, t in bad.items())
        raise TypeError(f"expected tensors or Python numbers: {names}")
    devices = {str(v.device) for v in found.values()}
    if len(devices) > 1:
        where = ", ".join(f"{k} on {v.device}" for k, v in found.items())
        raise ValueError(f"inputs must share one device: {where}")
    try:
        torch.broadcast_shapes(*(v.shape for v in found.values()))
    except RuntimeError as err:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in found.items())
        raise ValueError(f"shapes do not broadcast together: {shapes}") from err


def compute_z(a: torch.Tensor | Number, b: torch.Tensor | Number, c: torch.Tensor | Number) -> torch.Tensor:
    r"""The chapter's first graph: :math:`z = 2 \cdot (a - b) + c`.

    Built, as in the book, from three graph nodes: ``torch.sub`` → ``torch.mul`` → ``torch.add``.

    Args:
        a, b, c: tensors of broadcast-compatible shapes on one device (or Python numbers).

    Shape:
        the broadcast of the three input shapes; dtype by PyTorch's type promotion.

    Example::

        >>> compute_z(torch.tensor(1), torch.tensor(2), torch.tensor(3))
        tensor(1)

    Numbers and shapes broadcast (here a row, a number and a column):

        >>> compute_z(torch.tensor([1.0, 2.0]), 2, torch.tensor([[0.0], [10.0]]))
        tensor([[-2.,  0.],
                [ 8., 10.]])

    Raises:
        TypeError: an input is neither a tensor nor a number.
        ValueError: the shapes do not broadcast, or the tensors sit on different devices.
    """
    _check_inputs(a=a, b=b, c=c)
    if not any(isinstance(v, torch.Tensor) for v in (a, b, c)):
        a = torch.as_tensor(a)
    r1 = torch.sub(a, b)
    r2 = torch.mul(r1, 2)
    return torch.add(r2, c)


@dataclass(frozen=True)
class GraphNode:
    """One node of a ``grad_fn`` DAG.

    Attributes:
        name: the node's class name, e.g. ``"MulBackward0"`` or ``"AccumulateGrad"``.
        inputs: indices (into the DAG list) of the nodes whose outputs feed this one
            in the forward pass, i.e. the node's ``next_functions``.
        label: for a leaf (``AccumulateGrad``), the name given to its tensor, else ``""``.
    """

    name: str
    inputs: tuple[int, ...]
    label: str = ""

    @property
    def is_leaf(self) -> bool:
        return self.name == "AccumulateGrad"


def _root(t: torch.Tensor) -> torch.autograd.graph.Node:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(t).__name__}")
    if t.grad_fn is None:
        why = (
            "it is a leaf that requires grad" if t.requires_grad
            else "no input required grad (call requires_grad_() on an input first)"
        )
        raise ValueError(f"this tensor has no grad_fn, so no graph was recorded: {why}")
    return t.grad_fn


def grad_fn_dag(t: torch.Tensor, names: Mapping[str, torch.Tensor] | None = None) -> list[GraphNode]:
    """List the graph that produced ``t``, inputs before the nodes that use them (root last).

    Args:
        t: a result computed from tensors that require grad.
        names: optional ``{"a": a, ...}`` to label the leaves (``AccumulateGrad`` nodes).

    Returns:
        the nodes in topological order; ``[n.name for n in ...]`` for ``compute_z`` on three
        leaves reads ``AccumulateGrad, AccumulateGrad, SubBackward0, MulBackward0,
        AccumulateGrad, AddBackward0``.

    Raises:
        ValueError: ``t`` has no ``grad_fn`` (nothing was recorded).
    """
    by_id = {id(v): k for k, v in (names or {}).items()}
    order: list[torch.autograd.graph.Node] = []
    index: dict[torch.autograd.graph.Node, int] = {}

    def visit(node: torch.autograd.graph.Node) -> None:
        # Iterative post-order would be needed only for graphs deeper than Python's
        # recursion limit; the chapter's graphs are a handful of nodes deep.
        if node in index:
            return
        for child, _ in node.next_functions:
            if child is not None:
                visit(child)
        index[node] = len(order)
        order.append(node)

    visit(_root(t))
    result = []
    for node in order:
        inputs = tuple(index[c] for c, _ in node.next_functions if c is not None)
        variable = getattr(node, "variable", None)
        label = by_id.get(id(variable), "") if variable is not None else ""
        result.append(GraphNode(type(node).__name__, inputs, label))
    return result


def op_chain(t: torch.Tensor) -> list[str]:
    """The operation nodes of ``t``'s graph in the order they ran, leaves left out.

    For ``compute_z``: ``["SubBackward0", "MulBackward0", "AddBackward0"]``.
    """
    return [n.name for n in grad_fn_dag(t) if not n.is_leaf]


def render_dag(t: torch.Tensor, names: Mapping[str, torch.Tensor] | None = None) -> str:
    """Draw ``t``'s graph as an indented tree, the root (last operation) on top.

    A node reached twice is drawn again and marked ``(shared)``.

    Example, ``render_dag(compute_z(a, b, c), {"a": a, "b": b, "c": c})``::

        AddBackward0
        ├── MulBackward0
        │   └── SubBackward0
        │       ├── AccumulateGrad (a)
        │       └── AccumulateGrad (b)
        └── AccumulateGrad (c)
    """
    nodes = grad_fn_dag(t, names)
    seen: set[int] = set()
    lines: list[str] = []

    def draw(i: int, prefix: str, tail: str) -> None:
        node = nodes[i]
        text = node.name + (f" ({node.label})" if node.label else "")
        if i in seen and node.inputs:
            text += " (shared)"
        lines.append(tail + text)
        if i in seen:
            return
        seen.add(i)
        for k, child in enumerate(node.inputs):
            last = k == len(node.inputs) - 1
            draw(child, prefix + ("    " if last else "│   "), prefix + ("└── " if last else "├── "))

    draw(len(nodes) - 1, "", "")
    return "\n".join(lines)


def dynamic_branch(x: torch.Tensor) -> torch.Tensor:
    r"""A function whose graph depends on the data: :math:`x^2` summed if ``x.sum() > 0``, else :math:`\sum \sin x`.

    The ``if`` is plain Python, evaluated while the graph is being built, so each call
    records only the branch it took (``PowBackward0`` or ``SinBackward0``). Gradients are
    ``2x`` and ``cos x`` respectively.
    """
    if x.sum() > 0:
        return (x**2).sum()
    return torch.sin(x).sum()
