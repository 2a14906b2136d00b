"""masked_block_topk (nbs/01b_topk.ipynb) and the op pattern (nbs/01a_ops.ipynb): the bitmask, the reference
against a brute-force NumPy ranking, the custom op's registration (opcheck, fake tracing, argument errors), and
the Triton kernel under TRITON_INTERPRET=1 against the reference.

Triton reads TRITON_INTERPRET when a kernel is defined, that is when mmrec_nb.ops.topk is imported. So the
interpreter tests (`test_interp_*`) run in a child pytest process that `test_kernel_under_interpreter` starts
with the variable set; in this process they are skipped, and no other test module sees the variable."""

import numpy as np
import pytest
import torch

from mmrec_nb.ops import core
from mmrec_nb.ops import topk as op

from _interpreter import INTERPRETING, run_interpreted

interp_only = pytest.mark.skipif(not INTERPRETING, reason='runs in the child process of test_kernel_under_interpreter')
NEG_INF = float('-inf')


def make_case(B, N, d, *, seed=0, kind='int', p_mask=0.25, dtype=torch.float32):
    """Embeddings (integer-valued: exact scores and many ties; or Gaussian) and an exclusion matrix with one
    row fully excluded and one row left with 3 candidates."""
    g = torch.Generator().manual_seed(seed)
    if kind == 'int':
        make = lambda *s: torch.randint(-2, 3, s, generator=g).to(dtype)
    else:
        make = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    users, items = make(B, d), make(N, d)
    excluded = torch.rand(B, N, generator=g) < p_mask
    if B > 2:
        excluded[0] = True
        excluded[1] = True
        excluded[1, torch.randperm(N, generator=g)[:3]] = False
    return users, items, excluded


def mask_of(excluded):
    return op.pack_bits(*excluded.nonzero(as_tuple=True), *excluded.shape)


def numpy_topk(scores, excluded, offset, k):
    "Eq. (topk-order) by NumPy lexsort: score descending, then id ascending; padded with (-inf, -1)."
    scores, excluded = np.asarray(scores, np.float64), np.asarray(excluded)
    values = np.full((len(scores), k), -np.inf)
    ids = np.full((len(scores), k), -1, dtype=np.int64)
    for u in range(len(scores)):
        candidates = np.flatnonzero(~excluded[u])
        order = np.lexsort((candidates, -scores[u, candidates]))[:k]
        values[u, :len(order)] = scores[u, candidates[order]]
        ids[u, :len(order)] = candidates[order] + offset
    return values, ids


# ---------------------------------------------------------------- the bitmask, eq. (topk-mask)
def test_pack_bits_round_trip_and_bit_31():
    g = torch.Generator().manual_seed(3)
    dense = torch.rand(11, 97, generator=g) < 0.3
    dense[:, 31] = True                                   # bit 31 of word 0: the int32 goes negative
    mask = mask_of(dense)
    assert mask.dtype == torch.int32 and mask.shape == (11, 4)
    assert (mask[:, 0] < 0).all()
    assert torch.equal(op.unpack_bits(mask, 97), dense)
    rows, cols = op.set_bits(mask, 97)
    assert torch.equal(torch.stack([rows, cols]), torch.stack(dense.nonzero(as_tuple=True)))


def test_pack_bits_hand_example_duplicates_and_range():
    mask = op.pack_bits(torch.tensor([0, 0, 1, 1]), torch.tensor([1, 33, 2, 2]), 2, 40)
    assert mask.tolist() == [[2, 2], [4, 0]]              # 2**1 | 2**(33-32); item 2 listed twice counts once
    with pytest.raises(ValueError, match=r'pairs must lie in \[0, 2\) x \[0, 40\)'):
        op.pack_bits(torch.tensor([0]), torch.tensor([40]), 2, 40)
    assert op.pack_bits(torch.zeros(0), torch.zeros(0), 3, 0).shape == (3, 0)


# ---------------------------------------------------------------- the reference
@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('k', [1, 7, 20])
def test_reference_equals_numpy_ranking(seed, k):
    users, items, excluded = make_case(13, 61, 3, seed=seed)
    values, ids = op.masked_block_topk_reference(users, items, mask_of(excluded), 100, k)
    expected_values, expected_ids = numpy_topk(users @ items.T, excluded, 100, k)
    np.testing.assert_array_equal(ids.numpy(), expected_ids)
    np.testing.assert_array_equal(values.numpy(), expected_values)
    assert (ids[0] == -1).all() and (ids[1, :3] >= 100).all() and (ids[1, 3:] == -1).all()


def test_reference_k_larger_than_block_and_all_ties():
    scores = torch.zeros(3, 5)                            # every score ties: ids in ascending order
    excluded = torch.tensor([[0, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    values, ids = op.block_topk(scores, mask_of(excluded), 10, 7)
    assert ids.tolist() == [[10, 12, 13, 14, -1, -1, -1], [-1] * 7, [10, 11, 12, 13, 14, -1, -1]]
    assert values[0, :4].eq(0).all() and values[0, 4:].eq(NEG_INF).all()


def test_minus_inf_scores_are_not_candidates():
    scores = torch.tensor([[1.0, NEG_INF, 3.0, NEG_INF]])
    values, ids = op.block_topk(scores, mask_of(torch.zeros(1, 4, dtype=torch.bool)), 0, 3)
    assert ids.tolist() == [[2, 0, -1]] and values.tolist() == [[3.0, 1.0, NEG_INF]]


def test_block_topk_leaves_its_input_untouched():
    scores = torch.ones(2, 40)
    op.block_topk(scores, mask_of(torch.ones(2, 40, dtype=torch.bool)), 0, 5)
    assert scores.eq(1).all()


@pytest.mark.parametrize('seed', [0, 1])
def test_merge_of_blocks_equals_whole(seed):
    users, items, excluded = make_case(9, 150, 2, seed=seed)
    whole = op.masked_block_topk_reference(users, items, mask_of(excluded), 0, 12)
    values = ids = None
    for lo, hi in [(0, 17), (17, 64), (64, 65), (65, 150)]:
        block = op.masked_block_topk_reference(users, items[lo:hi], mask_of(excluded[:, lo:hi]), lo, 12)
        values, ids = block if values is None else op.merge_topk(values, ids, *block, 12)
    assert torch.equal(ids, whole[1]) and torch.equal(values, whole[0])


# ---------------------------------------------------------------- the custom op on the CPU path
def test_registry_and_dispatch_rule():
    spec = core.OPS['masked_block_topk']
    assert spec.reference is op.masked_block_topk_reference and spec.op is op.masked_block_topk
    assert (spec.kernel is not None) == core.HAS_TRITON
    cpu = torch.zeros(2)
    assert core.on_kernel_path(cpu) == (core.HAS_TRITON and INTERPRETING)
    assert [core.tile_size(n, 16, 64) for n in (0, 16, 37, 203)] == [16, 16, 64, 64]


@pytest.mark.skipif(INTERPRETING, reason='the CPU path is the reference only without the interpreter')
def test_op_is_reference_on_cpu():
    users, items, excluded = make_case(10, 70, 5, kind='gauss')
    mask = mask_of(excluded)
    got, expected = op.masked_block_topk(users, items, mask, 3, 8), op.masked_block_topk_reference(users, items, mask, 3, 8)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_opcheck(dtype):
    users, items, excluded = make_case(6, 45, 4, kind='gauss', dtype=dtype)
    torch.library.opcheck(op.masked_block_topk, (users, items, mask_of(excluded), 5, 4))


def test_fake_tracing_sees_one_node():
    users, items, excluded = make_case(6, 45, 4, kind='gauss')
    traced = torch.fx.experimental.proxy_tensor.make_fx(
        lambda u, i, m: op.masked_block_topk(u, i, m, 0, 4), tracing_mode='fake')(users, items, mask_of(excluded))
    targets = [str(n.target) for n in traced.graph.nodes if n.op == 'call_function']
    assert targets[0] == 'mmrec_nb.masked_block_topk.default'
    assert all('getitem' in t for t in targets[1:])


@pytest.mark.parametrize('change,message', [
    (lambda u, i, m: (u, i[:, :3], m, 0, 4), 'must share d'),
    (lambda u, i, m: (u.long(), i.long(), m, 0, 4), 'float32 or float64'),
    (lambda u, i, m: (u, i.double(), m, 0, 4), 'float32 or float64'),
    (lambda u, i, m: (u, i, m[:, :1], 0, 4), r'mask must be int32 of shape \(6, 2\)'),
    (lambda u, i, m: (u, i, m.long(), 0, 4), 'mask must be int32'),
    (lambda u, i, m: (u, i, m, 0, 0), 'need k >= 1'),
    (lambda u, i, m: (u, i, m, -1, 4), 'offset >= 0'),
])
def test_bad_arguments(change, message):
    users, items, excluded = make_case(6, 45, 4, kind='gauss')
    with pytest.raises(ValueError, match=message):
        op.masked_block_topk(*change(users, items, mask_of(excluded)))


# ---------------------------------------------------------------- the Triton kernel, interpreted
@pytest.mark.skipif(INTERPRETING or not core.HAS_TRITON, reason='needs triton; starts the interpreter child')
def test_kernel_under_interpreter():
    run_interpreted(__file__, 'test_interp_', timeout=300)


@interp_only
@pytest.mark.parametrize('shape', [(37, 203, 19), (70, 300, 70), (5, 7, 2), (1, 16, 16)])
@pytest.mark.parametrize('k', [10, 20])
def test_interp_kernel_equals_reference_exact_ties(shape, k):
    users, items, excluded = make_case(*shape, seed=sum(shape) + k)
    mask = mask_of(excluded)
    kernel = op._masked_block_topk_triton(users, items, mask, 1000, k)
    reference = op.masked_block_topk_reference(users, items, mask, 1000, k)
    assert torch.equal(kernel[1], reference[1]) and torch.equal(kernel[0], reference[0])


@interp_only
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_interp_kernel_equals_reference_gaussian(dtype):
    users, items, excluded = make_case(37, 203, 19, kind='gauss', dtype=dtype, seed=5)
    mask = mask_of(excluded)
    kernel = op._masked_block_topk_triton(users, items, mask, 0, 20)
    reference = op.masked_block_topk_reference(users, items, mask, 0, 20)
    assert torch.equal(kernel[1], reference[1])
    torch.testing.assert_close(kernel[0], reference[0])


@interp_only
def test_interp_op_dispatches_to_kernel_and_passes_opcheck():
    assert core.on_kernel_path(torch.zeros(1))
    users, items, excluded = make_case(20, 50, 6, seed=9)
    mask = mask_of(excluded)
    got = op.masked_block_topk(users, items, mask, 7, 10)
    expected = op._masked_block_topk_triton(users, items, mask, 7, 10)
    assert torch.equal(got[1], expected[1])
    torch.library.opcheck(op.masked_block_topk, (users, items, mask, 7, 10))
