"""cp_fusion_linear (nbs/10a_cp_fusion_op.ipynb): reference against the materialised oracle, the custom op's
registration (gradcheck, opcheck), and the Triton kernel under TRITON_INTERPRET=1 against the reference.

Triton reads TRITON_INTERPRET when a kernel is defined, so the interpreter tests (`test_interp_*`) run in a
child pytest process that `test_kernel_under_interpreter` starts with the variable set; in the parent they
are skipped."""
from unittest import mock

import pytest
import torch

from mmrec_nb.ops import cp_fusion as op

from _interpreter import INTERPRETING, run_interpreted

interp_only = pytest.mark.skipif(not INTERPRETING, reason='runs in the child process of test_kernel_under_interpreter')


def make_inputs(N, P, Q, Z, R, *, with_c=True, with_bias=True, dtype=torch.float64, seed=0, grad=True):
    generator = torch.Generator().manual_seed(seed)
    def make(*shape):
        return torch.randn(*shape, dtype=dtype, generator=generator).requires_grad_(grad)
    return (make(N, P), make(N, Z if with_c else R), make(P, Q), make(P, R), make(Q, R),
            make(Z, R) if with_c else None, make(Q) if with_bias else None)


def relative_error(value, expected):
    value, expected = value.detach(), expected.detach()
    return float((value - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


# ---------------------------------------------------------------- reference and op on the CPU path
@pytest.mark.parametrize('shape', [(1, 1, 1, 1, 1), (5, 7, 3, 2, 4), (13, 17, 9, 5, 16)])
def test_factored_equals_materialized(shape):
    x, s, weight, A, B, C, bias = make_inputs(*shape, grad=False)
    T = op.cp_to_tensor(A, B, C)
    expected = op.materialized_fusion_linear(x, s, weight, T, bias)
    torch.testing.assert_close(op.cp_fusion_reference(x, s, weight, A, B, C, bias), expected)
    torch.testing.assert_close(op.cp_fusion_linear(x, s, weight, A, B, C, bias), expected)


def test_item_weights_per_item():
    x, s, weight, A, B, C, _ = make_inputs(4, 6, 5, 3, 2, grad=False)
    weights = op.item_weights(weight, op.cp_to_tensor(A, B, C), s)
    for i in range(4):  # eq. (mmf-cp-slice): W_i = W + A diag(C^T s_i) B^T
        torch.testing.assert_close(weights[i], weight + A @ torch.diag(C.T @ s[i]) @ B.T)


def test_released_variant_is_scalar_gate():
    x, s, weight, A, B, _, _ = make_inputs(6, 8, 5, 4, 3, grad=False)
    gamma = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = torch.bmm(x[:, None], weight + (s @ gamma)[:, None, None] * (A @ B.T))[:, 0]
    torch.testing.assert_close(op.cp_fusion_linear(x, s, weight, A, B, gamma[:, None].expand(4, 3)), expected)


# The notebook's own cell runs gradcheck with (C, bias), (no C, no bias), (C, no bias) and opcheck with C and
# bias on these same inputs; here: the combinations it leaves out.
def test_gradcheck_reference_path_gate_given_with_bias():
    args = make_inputs(4, 5, 3, 3, 2, with_c=False, with_bias=True)
    assert torch.autograd.gradcheck(lambda *a: op.cp_fusion_linear(*a), args)


def test_opcheck_reference_path_gate_given_no_bias():
    torch.library.opcheck(op.cp_fusion_linear, make_inputs(6, 9, 7, 4, 3, with_c=False, with_bias=False))


def test_compile_sees_one_op():
    x, s, weight, A, B, C, bias = make_inputs(5, 6, 4, 3, 2, grad=False, dtype=torch.float32)
    traced = torch.fx.experimental.proxy_tensor.make_fx(op.cp_fusion_linear, tracing_mode='fake')(x, s, weight, A, B, C, bias)
    targets = [str(node.target) for node in traced.graph.nodes if node.op == 'call_function']
    assert targets == ['mmrec_nb.cp_fusion_linear.default']


@pytest.mark.parametrize('bad,message', [
    (lambda a: (a[0][:, :4], *a[1:]), 'weight must have shape (4, 3)'),
    (lambda a: (a[0], a[1][:3], *a[2:]), 's must have shape (5, 2)'),
    (lambda a: (*a[:5], a[5][:, :1], a[6]), 'C must have shape (2, 2)'),
    (lambda a: (*a[:6], a[6][:2]), 'bias must have shape (3,)'),
    (lambda a: (a[0].float(), *a[1:]), 'is torch.float64'),
    (lambda a: (a[0][0], *a[1:]), 'must be 2-D'),
])
def test_bad_shapes_name_the_argument(bad, message):
    args = bad(make_inputs(5, 6, 3, 2, 2, grad=False))
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        op.cp_fusion_linear(*args)


def test_large_rank_falls_back_to_reference():
    args = make_inputs(2, 3, 2, 2, op.MAX_TRITON_RANK + 1, grad=False)
    assert not op._use_kernel(*args)


# ---------------------------------------------------------------- the kernel under the interpreter
@pytest.mark.skipif(INTERPRETING or not op.HAS_TRITON, reason='parent process only; needs triton')
def test_kernel_under_interpreter():
    run_interpreted(__file__, 'interp_', timeout=900)


@interp_only
@pytest.mark.parametrize('shape,with_c,with_bias', [
    ((1, 1, 1, 1, 1), True, True),          # every side padded to a 16-wide tile
    ((150, 45, 37, 5, 7), True, True),      # two row tiles, odd sides
    ((33, 130, 140, 3, 16), True, False),   # P over two chunks, two output tiles
    ((20, 19, 21, 4, 33), False, True),     # gate given directly (the backward form), R > 32
])
def test_interp_forward_backward(shape, with_c, with_bias):
    args = make_inputs(*shape, with_c=with_c, with_bias=with_bias, dtype=torch.float32)
    assert op._use_kernel(*args)
    # the launcher asks `interpreting()` once per launch to pick its tile sizes: a count of launches
    with mock.patch.object(op, 'interpreting', wraps=op.interpreting) as launches:
        out = op.cp_fusion_linear(*args)
        upstream = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(sum(shape)))
        used = [a for a in args if a is not None]
        grads = torch.autograd.grad(out, used, upstream)
    assert launches.call_count == 2  # forward and the dL/dx term of the backward pass
    expected = op.cp_fusion_reference(*args)
    assert relative_error(out, expected) < 1e-5
    for grad, grad_ref in zip(grads, torch.autograd.grad(expected, used, upstream)):
        assert relative_error(grad, grad_ref) < 1e-5


@interp_only
def test_interp_strided_inputs():
    x, s, weight, A, B, C, bias = make_inputs(9, 20, 18, 3, 4, dtype=torch.float32, grad=False)
    weight_t = weight.T.contiguous().T  # column-major weight
    out = op.cp_fusion_linear(x[::1], s, weight_t, A, B, C, bias)
    assert relative_error(out, op.cp_fusion_reference(x, s, weight, A, B, C, bias)) < 1e-5


@interp_only
def test_interp_gradcheck_float64():
    for with_c, with_bias in [(True, True), (False, False)]:
        args = make_inputs(3, 5, 4, 3, 2, with_c=with_c, with_bias=with_bias)
        assert op._use_kernel(*args)
        assert torch.autograd.gradcheck(lambda *a: op.cp_fusion_linear(*a), args)


@interp_only
def test_interp_opcheck():
    torch.library.opcheck(op.cp_fusion_linear, make_inputs(5, 7, 6, 3, 2))
