"""§1 Computation graphs: compute_z, the grad_fn DAG, and the dynamic graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from tests.strategies import NUMPY_DTYPE, arith_dtypes, broadcastable_triples, reals, tensors
from torchmech.chapter.graph import compute_z, dynamic_branch, grad_fn_dag, op_chain, render_dag
from torchmech.chapter.implementation import Implementation

pytestmark = pytest.mark.s1


@pytest.mark.parametrize("claim", claim_cases("s1"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s1"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s1` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


i32, i64, f32, f64 = torch.int32, torch.int64, torch.float32, torch.float64

# Type promotion written out by hand (not asked of torch): the result dtype of a binary op
# between tensors of the same priority (both with dimensions, or both 0-d) ...
SAME_PRIORITY = {
    (i32, i32): i32, (i32, i64): i64, (i32, f32): f32, (i32, f64): f64,
    (i64, i64): i64, (i64, f32): f32, (i64, f64): f64,
    (f32, f32): f32, (f32, f64): f64,
    (f64, f64): f64,
}
SAME_PRIORITY |= {(b, a): r for (a, b), r in SAME_PRIORITY.items()}
# ... while a 0-d tensor beside a dimensioned one only counts if its category is higher.
CATEGORY = {i32: "integer", i64: "integer", f32: "floating", f64: "floating"}


def promote(a: tuple[torch.dtype, bool], b: tuple[torch.dtype, bool]) -> tuple[torch.dtype, bool]:
    """(dtype, is_0d) of ``op(a, b)`` for two (dtype, is_0d) operands."""
    (da, za), (db, zb) = a, b
    if za == zb:
        return SAME_PRIORITY[da, db], za
    (dim, zero) = (da, db) if zb else (db, da)
    if CATEGORY[zero] == "floating" and CATEGORY[dim] == "integer":
        return zero, False
    return dim, False


@given(shapes=broadcastable_triples, dtypes=st.tuples(arith_dtypes, arith_dtypes, arith_dtypes),
       data=st.data())
def test_compute_z_is_2_times_a_minus_b_plus_c(shapes, dtypes, data, device: str,
                                               implementation: Implementation) -> None:
    """compute_z = 2·(a − b) + c for any broadcastable shapes and dtypes, against NumPy,
    with the result dtype from the hand-written promotion table."""
    (sa, sb, sc), result_shape = shapes
    a, b, c = (data.draw(tensors(s, d, device, -1000, 1000)) for s, d in zip((sa, sb, sc), dtypes, strict=True))
    za, zb, zc = (len(s) == 0 for s in (sa, sb, sc))
    t1, z1 = promote((dtypes[0], za), (dtypes[1], zb))  # sub; mul by the Python int 2 keeps it
    t, _ = promote((t1, z1), (dtypes[2], zc))

    z = implementation.compute_z(a, b, c)

    assert z.dtype == t
    assert tuple(z.shape) == result_shape
    an, bn, cn = (x.cpu().numpy() for x in (a, b, c))
    n1, n = NUMPY_DTYPE[t1], NUMPY_DTYPE[t]
    # The same dtype at every step, one IEEE operation each: NumPy and torch agree bit for bit.
    oracle = ((an.astype(n1) - bn.astype(n1)) * n1(2)).astype(n) + cn.astype(n)
    np.testing.assert_array_equal(z.cpu().numpy(), oracle)


def _leaves(device: str):
    return [torch.tensor(v, device=device, requires_grad=True) for v in (1.0, 2.0, 3.0)]


def test_compute_z_graph_is_sub_then_mul_then_add(device: str, implementation: Implementation) -> None:
    """The graph PyTorch records for compute_z is the DAG Sub → Mul → Add of figure 13.1."""
    a, b, c = _leaves(device)
    z = implementation.compute_z(a, b, c)
    assert op_chain(z) == ["SubBackward0", "MulBackward0", "AddBackward0"]
    nodes = grad_fn_dag(z, {"a": a, "b": b, "c": c})
    by_name = {n.name: n for n in nodes}
    assert [nodes[i].label for i in by_name["SubBackward0"].inputs] == ["a", "b"]
    assert [nodes[i].name for i in by_name["MulBackward0"].inputs] == ["SubBackward0"]
    assert [nodes[i].name or nodes[i].label for i in by_name["AddBackward0"].inputs] == [
        "MulBackward0", "AccumulateGrad"]
    assert nodes[-1].name == "AddBackward0"


def test_render_dag_draws_the_tree(device: str) -> None:
    """The DAG rendered as text: root on top, leaves named after their tensors."""
    a, b, c = _leaves(device)
    text = render_dag(compute_z(a, b, c), {"a": a, "b": b, "c": c})
    assert text == (
        "AddBackward0\n"
        "├── MulBackward0\n"
        "│   └── SubBackward0\n"
        "│       ├── AccumulateGrad (a)\n"
        "│       └── AccumulateGrad (b)\n"
        "└── AccumulateGrad (c)"
    )


def test_only_inputs_that_require_grad_enter_the_graph() -> None:
    """Leaves appear only for tensors that require grad; the other inputs are constants."""
    a = torch.tensor(1.0, requires_grad=True)
    z = compute_z(a, torch.tensor(2.0), torch.tensor(3.0))
    assert [n.name for n in grad_fn_dag(z)] == ["AccumulateGrad", "SubBackward0", "MulBackward0",
                                                "AddBackward0"]


def test_a_shared_input_is_one_node_drawn_twice() -> None:
    """A DAG, not a tree: an input used twice is one node, drawn again and marked shared."""
    a = torch.tensor(2.0, requires_grad=True)
    s = torch.sin(a)
    y = s * s
    assert [n.name for n in grad_fn_dag(y)] == ["AccumulateGrad", "SinBackward0", "MulBackward0"]
    assert render_dag(y).count("SinBackward0") == 2
    assert "(shared)" in render_dag(y)


@given(x=st.lists(reals(-10, 10), min_size=1, max_size=8))
def test_dynamic_graph_follows_the_data(x: list[float], device: str) -> None:
    """Dynamic graph: a Python branch on the data records only the branch taken, and its
    gradient is right for that branch (2x for Σx², cos x for Σ sin x)."""
    t = torch.tensor(x, dtype=torch.float64, device=device, requires_grad=True)
    y = dynamic_branch(t)
    y.backward()
    if sum(x) > 0:
        assert op_chain(y) == ["PowBackward0", "SumBackward0"]
        torch.testing.assert_close(t.grad, 2 * t.detach())
    else:
        assert op_chain(y) == ["SinBackward0", "SumBackward0"]
        torch.testing.assert_close(t.grad, torch.cos(t.detach()))


def test_each_call_builds_a_new_graph() -> None:
    """Graphs are built while the code runs: two calls give two graphs, the intermediate
    values are ordinary tensors one can inspect, and a branch switch changes the nodes."""
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y1, y2 = dynamic_branch(x), dynamic_branch(x)
    assert y1.grad_fn is not y2.grad_fn
    assert op_chain(y1) == op_chain(y2)
    assert op_chain(dynamic_branch(-x)) != op_chain(y1)
    r1 = torch.sub(x, 1.0)
    assert r1.tolist() == [0.0, 1.0] and r1.grad_fn is not None


def test_compute_z_names_bad_input(device: str) -> None:
    """Bad input gets an error naming the problem: shapes that do not broadcast, a non-tensor,
    tensors on different devices. The device half runs on every machine: the ``meta`` device
    (shapes, no storage) always exists, so a meta tensor beside tensors on ``device`` must give
    the "one device" error naming each input's device; off the CPU, so must a CPU tensor."""
    with pytest.raises(ValueError, match=r"shapes do not broadcast.*a \(2,\), b \(3,\)"):
        compute_z(torch.zeros(2, device=device), torch.zeros(3, device=device), torch.zeros(1, device=device))
    with pytest.raises(TypeError, match="c is str"):
        compute_z(torch.zeros(1, device=device), torch.zeros(1, device=device), "3")
    here = str(torch.zeros(1, device=device).device)  # "cpu", "cuda:0", "mps:0"
    with pytest.raises(ValueError, match=rf"one device: a on {here}, b on meta, c on {here}"):
        compute_z(torch.zeros(1, device=device), torch.zeros(1, device="meta"), torch.zeros(1, device=device))
    if device != "cpu":
        with pytest.raises(ValueError, match=rf"one device: a on {here}, b on cpu, c on cpu"):
            compute_z(torch.zeros(1, device=device), torch.zeros(1), torch.zeros(1))


def test_graph_helpers_need_a_recorded_graph() -> None:
    """A tensor without grad_fn has no graph to list: the error says why."""
    with pytest.raises(ValueError, match=r"no grad_fn.*requires_grad_"):
        grad_fn_dag(compute_z(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)))
    with pytest.raises(ValueError, match="leaf"):
        op_chain(torch.tensor(1.0, requires_grad=True))
    with pytest.raises(TypeError, match="expected a tensor"):
        render_dag([1.0])  # type: ignore[arg-type]
