"""mmrec_nb.evaluate (nbs/01_evaluate.ipynb): metrics worked by hand, agreement with an independent brute-force
ranking (NumPy + Python sorting, ties included), streamed == dense, the scoring contract (embeddings(), scores(),
a plain tuple; eval mode and no_grad), masking and cold-start rules, Popularity, user_paired_test, errors, and the
package without Triton (in a child process where `import triton` fails)."""
import json
import math
import pickle
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from mmrec_nb.evaluate import (EvalResult, Popularity, evaluate, user_paired_test, rank_topk, ranking_metrics,
                               user_item_csr)

torch.set_num_threads(1)
D2, D3, D4, D5 = (1 / math.log2(r) for r in (3, 4, 5, 6))   # discounts of ranks 2..5: 1 / log2(r + 1)


def pairs(*rows):
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, 2)


def random_data(seed, n_users=30, n_items=70, per_split=(150, 40, 40)):
    "Random (user, item) pairs per split; overlaps between splits and duplicates are allowed on purpose."
    g = torch.Generator().manual_seed(seed)
    make = lambda n: torch.stack([torch.randint(0, n_users, (n,), generator=g),
                                  torch.randint(0, n_items, (n,), generator=g)], 1)
    train, valid, test = (make(n) for n in per_split)
    return SimpleNamespace(n_users=n_users, n_items=n_items, train=train, valid=valid, test=test)


def int_embeddings(seed, n_users, n_items, d=3):
    "Small integers in float64: exact scores in NumPy and torch, and many ties."
    g = torch.Generator().manual_seed(seed + 100)
    return (torch.randint(-2, 3, (n_users, d), generator=g).double(),
            torch.randint(-2, 3, (n_items, d), generator=g).double())


def brute_force(user_emb, item_emb, data, split, ks, cold=None):
    "The protocol written independently: Python sets and sorted() over NumPy scores."
    scores = user_emb.numpy() @ item_emb.numpy().T
    excluded = [set() for _ in range(data.n_users)]
    for split_name in (['train'] if split == 'valid' else ['train', 'valid']):
        for u, i in getattr(data, split_name).tolist():
            excluded[u].add(i)
    targets = [set() for _ in range(data.n_users)]
    for u, i in getattr(data, split).tolist():
        if cold is None or i in cold:
            targets[u].add(i)
    candidates = range(data.n_items) if cold is None else sorted(cold)
    users, per_user = [], {f'{m}@{k}': [] for k in ks for m in ('recall', 'ndcg', 'precision', 'hit')}
    for u in range(data.n_users):
        if not targets[u]:
            continue
        users.append(u)
        ranked = sorted((i for i in candidates if i not in excluded[u]), key=lambda i: (-scores[u, i], i))
        for k in ks:
            hit_ranks = [r for r, i in enumerate(ranked[:k], start=1) if i in targets[u]]
            per_user[f'recall@{k}'].append(len(hit_ranks) / len(targets[u]))
            per_user[f'precision@{k}'].append(len(hit_ranks) / k)
            per_user[f'hit@{k}'].append(float(len(hit_ranks) > 0))
            dcg = sum(1 / math.log2(r + 1) for r in hit_ranks)
            idcg = sum(1 / math.log2(r + 1) for r in range(1, min(k, len(targets[u])) + 1))
            per_user[f'ndcg@{k}'].append(dcg / idcg)
    return np.array(users), {key: np.array(values) for key, values in per_user.items()}


class EmbeddingModel(nn.Module):
    "An inner-product model that records the mode it was asked for embeddings in."
    def __init__(self, user_emb, item_emb):
        super().__init__()
        self.user = nn.Parameter(user_emb.clone())
        self.item = nn.Parameter(item_emb.clone())
        self.calls = []

    def embeddings(self):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.user, self.item


class ScoreModel(nn.Module):
    "The same scores through scores(users, items) only."
    def __init__(self, user_emb, item_emb):
        super().__init__()
        self.n_users, self.n_items = len(user_emb), len(item_emb)
        self.register_buffer('user', user_emb)
        self.register_buffer('item', item_emb)

    def scores(self, users, items=None):
        return self.user[users] @ (self.item if items is None else self.item[items]).T


# ---------------------------------------------------------------- metrics by hand
def test_metrics_by_hand():
    hits = np.array([[0, 1, 1, 0, 0],      # |T| = 2: ranks 2 and 3
                     [1, 1, 1, 0, 0],      # |T| = 5 > K: three hits at the top
                     [0, 0, 0, 0, 0],      # |T| = 1: no hit
                     [0, 0, 0, 0, 1]])     # |T| = 4: rank 5 only
    m = ranking_metrics(hits, [2, 5, 1, 4], ks=(1, 3, 5))
    # K = 1: only user 1 has a hit at rank 1
    assert m['recall@1'].tolist() == [0, 1 / 5, 0, 0] and m['precision@1'].tolist() == [0, 1, 0, 0]
    assert m['hit@1'].tolist() == [0, 1, 0, 0] and m['ndcg@1'].tolist() == [0, 1, 0, 0]
    # K = 3: user 0: h = 2, DCG = 1/log2 3 + 1/log2 4 = 0.6309298 + 0.5, IDCG (2 targets) = 1 + 0.6309298
    assert np.allclose(m['recall@3'], [1, 3 / 5, 0, 0]) and np.allclose(m['precision@3'], [2 / 3, 1, 0, 0])
    assert np.allclose(m['ndcg@3'], [1.1309298 / 1.6309298, 1, 0, 0], atol=1e-7)
    # K = 5: user 1's IDCG runs over min(5, 5) = 5 ranks, its DCG over 3; user 3: rank 5 of min(5, 4) = 4 ideal
    idcg5 = 1 + D2 + D3 + D4 + D5
    assert np.allclose(m['ndcg@5'], [(D2 + D3) / (1 + D2), (1 + D2 + D3) / idcg5, 0, D5 / (1 + D2 + D3 + D4)])
    assert np.allclose(m['precision@5'], [2 / 5, 3 / 5, 0, 1 / 5]) and m['hit@5'].tolist() == [1, 1, 0, 1]
    assert np.allclose(m['recall@5'], [1, 3 / 5, 0, 1 / 4])
    # the numbers: 1.1309298 / 1.6309298 = 0.6934264; 1/log2 6 / (1 + 0.6309298 + 0.5 + 0.4306766) = 0.3868528 / 2.5616064
    assert abs(m['ndcg@3'][0] - 0.6934264) < 1e-7 and abs(m['ndcg@5'][3] - 0.1510196) < 1e-7


def test_ranking_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match='need hits'):
        ranking_metrics(np.zeros((2, 3)), [1, 1], ks=(5,))
    with pytest.raises(ValueError, match='need hits'):
        ranking_metrics(np.zeros((2, 5)), [1, 0], ks=(5,))


def test_evaluate_hand_example_masks_and_skips():
    # item i scores -i for everyone, so a list is the unmasked item ids in ascending order
    user_emb, item_emb = torch.ones(3, 1), -torch.arange(6.0)[:, None]
    data = SimpleNamespace(n_users=3, n_items=6, train=pairs((0, 0), (1, 0)), valid=pairs((0, 1), (1, 3)),
                           test=pairs((0, 2), (0, 5), (2, 0)))
    valid = evaluate((user_emb, item_emb), data, 'valid', ks=(1, 3))
    # user 0: list 1, 2, 3 -> target 1 at rank 1; user 1: list 1, 2, 3 -> target 3 at rank 3; user 2 has no target
    assert valid.users.tolist() == [0, 1]
    assert valid.per_user['recall@1'].tolist() == [1, 0] and valid.per_user['recall@3'].tolist() == [1, 1]
    assert np.allclose(valid.per_user['ndcg@3'], [1, 0.5])                  # 1/log2(4) = 0.5
    test = evaluate((user_emb, item_emb), data, 'test', ks=(1, 3))
    # user 0: 0 (train) and 1 (valid) masked: list 2, 3, 4 -> target 2 at rank 1, 5 missed; user 2: 0 at rank 1
    assert test.users.tolist() == [0, 2]
    assert np.allclose(test.per_user['recall@3'], [0.5, 1]) and np.allclose(test.per_user['precision@3'], [1 / 3, 1 / 3])
    assert np.allclose(test.per_user['ndcg@3'], [1 / (1 + D2), 1]) and test.metrics['hit@1'] == 1.0
    assert test.metrics['recall@3'] == 0.75 and list(test.metrics)[:4] == ['recall@1', 'ndcg@1', 'precision@1', 'hit@1']


# ---------------------------------------------------------------- against the brute force
@pytest.mark.parametrize('seed', [0, 1, 2, 3])
@pytest.mark.parametrize('split', ['valid', 'test'])
@pytest.mark.parametrize('cold', [False, True])
def test_agrees_with_brute_force(seed, split, cold):
    data = random_data(seed)
    user_emb, item_emb = int_embeddings(seed, data.n_users, data.n_items)
    cold_items = sorted(torch.randperm(data.n_items, generator=torch.Generator().manual_seed(seed))[:25].tolist()) if cold else None
    result = evaluate((user_emb, item_emb), data, split, ks=(5, 10, 20), batch_users=7, item_block=16,
                      cold_items=cold_items)
    users, expected = brute_force(user_emb, item_emb, data, split, (5, 10, 20), set(cold_items) if cold else None)
    np.testing.assert_array_equal(result.users, users)
    for key, values in expected.items():
        np.testing.assert_allclose(result.per_user[key], values, atol=1e-6, rtol=0, err_msg=key)
        assert abs(result.metrics[key] - values.mean()) < 1e-6


@pytest.mark.parametrize('seed', [0, 1])
def test_agrees_with_brute_force_gaussian(seed):
    data = random_data(seed, n_users=25, n_items=90)
    g = torch.Generator().manual_seed(seed)
    user_emb, item_emb = torch.randn(25, 8, generator=g, dtype=torch.float64), torch.randn(90, 8, generator=g, dtype=torch.float64)
    result = evaluate((user_emb, item_emb), data, 'test', ks=(10, 20), batch_users=6, item_block=32)
    users, expected = brute_force(user_emb, item_emb, data, 'test', (10, 20))
    np.testing.assert_array_equal(result.users, users)
    for key, values in expected.items():
        np.testing.assert_allclose(result.per_user[key], values, atol=1e-6, rtol=0, err_msg=key)


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize('seed', [0, 1])
def test_streamed_equals_dense(seed):
    data = random_data(seed, n_users=40, n_items=130)
    user_emb, item_emb = int_embeddings(seed, 40, 130)
    exclude = user_item_csr(data.train, 40, 130)
    dense = (user_emb @ item_emb.T).index_put((data.train[:, 0], data.train[:, 1]), torch.tensor(float('-inf'), dtype=torch.float64))
    dense_ids = torch.sort(dense, dim=1, descending=True, stable=True).indices[:, :20]       # eq. (topk-order)
    for batch_users, item_block in [(1, 13), (7, 1), (3, 50), (40, 130), (1000, 10000)]:
        values, ids = rank_topk((user_emb, item_emb), k=20, exclude=exclude, batch_users=batch_users, item_block=item_block)
        assert torch.equal(ids, dense_ids), (batch_users, item_block)
        assert torch.equal(values, dense.gather(1, dense_ids))
    streamed = evaluate((user_emb, item_emb), data, 'valid', batch_users=3, item_block=50)
    one_shot = evaluate((user_emb, item_emb), data, 'valid', batch_users=10_000, item_block=10_000)
    assert streamed.metrics == one_shot.metrics
    assert all(np.array_equal(streamed.per_user[k], one_shot.per_user[k]) for k in streamed.per_user)


def test_rank_topk_users_items_and_padding():
    user_emb, item_emb = torch.ones(4, 1), -torch.arange(10.0)[:, None]
    exclude = user_item_csr(pairs((1, 7), (1, 8), (2, 5)), 4, 10)
    values, ids = rank_topk((user_emb, item_emb), users=[1, 2], k=4, exclude=exclude, items=[9, 8, 7, 5])
    assert ids.tolist() == [[5, 9, -1, -1], [7, 8, 9, -1]]                  # candidates only; padding (-inf, -1)
    assert values[0].tolist() == [-5.0, -9.0, float('-inf'), float('-inf')]
    with pytest.raises(ValueError, match='k, batch_users, item_block >= 1'):
        rank_topk((user_emb, item_emb), k=0)
    with pytest.raises(ValueError, match=r'users must lie in \[0, 4\)'):
        rank_topk((user_emb, item_emb), users=[4], k=2)
    with pytest.raises(ValueError, match='items must be non-empty'):
        rank_topk((user_emb, item_emb), k=2, items=[])


# ---------------------------------------------------------------- the scoring contract
def test_embeddings_scores_and_tuple_agree_and_modes_restored():
    data = random_data(5)
    user_emb, item_emb = int_embeddings(5, data.n_users, data.n_items)
    model = EmbeddingModel(user_emb, item_emb)
    model.train()
    by_embeddings = evaluate(model, data, 'test', batch_users=8, item_block=32)
    assert model.training and model.calls == [(False, False)]               # eval mode, no grad, then restored
    by_scores = evaluate(ScoreModel(user_emb, item_emb), data, 'test', batch_users=8, item_block=32)
    by_tuple = evaluate((user_emb, item_emb), data, 'test')
    assert by_embeddings.metrics == by_scores.metrics == by_tuple.metrics
    float32 = evaluate((user_emb.float(), item_emb.float()), data, 'test')  # exact in float32 too
    assert float32.metrics == by_tuple.metrics


def test_popularity_ranks_by_count_then_id():
    data = SimpleNamespace(n_users=3, n_items=6, train=pairs((0, 4), (1, 4), (2, 4), (0, 2), (1, 2), (2, 5)),
                           valid=pairs((0, 0)), test=pairs((0, 1)))
    popular = Popularity(data)
    assert popular.counts.tolist() == [0, 0, 2, 0, 3, 1]
    _, ids = rank_topk(popular, k=6)
    assert ids[0].tolist() == [4, 2, 5, 0, 1, 3]                            # 3, 2, 1, then the zeros by id
    _, ids = rank_topk(popular, users=[0], k=6, exclude=user_item_csr(data.train, 3, 6))
    assert ids.tolist() == [[5, 0, 1, 3, -1, -1]]                            # user 0's 4 and 2 masked
    result = evaluate(popular, data, 'valid', ks=(1, 2))                    # target 0 at rank 2, after item 5
    assert result.users.tolist() == [0] and result.metrics['recall@1'] == 0.0 and result.metrics['recall@2'] == 1.0


def test_ground_truth_beats_popularity_beats_random_on_synthetic():
    "A RecDataset end to end: the generator's true affinities rank best, random vectors worst."
    from mmrec_nb.data import synthetic
    data = synthetic(n_users=120, n_items=150, seed=0)
    affinity = data.ground_truth['affinity']

    class Truth(nn.Module):
        n_users, n_items = 120, 150
        def scores(self, users, items):
            return affinity[users][:, items]
    g = torch.Generator().manual_seed(0)
    random = evaluate((torch.randn(120, 8, generator=g), torch.randn(150, 8, generator=g)), data, 'test')
    popular, truth = evaluate(Popularity(data), data, 'test'), evaluate(Truth(), data, 'test')
    assert random.metrics['recall@20'] < popular.metrics['recall@20'] < truth.metrics['recall@20']
    assert len(truth.users) == len(set(data.test[:, 0].tolist()))


# ---------------------------------------------------------------- paired test
def test_paired_test_matches_scipy():
    rng = np.random.default_rng(1)
    users = np.arange(300)
    a_values, b_values = rng.random(300), rng.random(300) * 0.9
    a = EvalResult({}, {'ndcg@20': a_values}, users, 0.0)
    b = EvalResult({}, {'ndcg@20': b_values}, users, 0.0)
    result = user_paired_test(a, b, 'ndcg@20')
    assert result.n_users == 300 and math.isclose(result.mean_diff, float((a_values - b_values).mean()))
    assert math.isclose(result.t_pvalue, stats.ttest_rel(a_values, b_values).pvalue)
    assert math.isclose(result.wilcoxon_pvalue, stats.wilcoxon(a_values, b_values).pvalue)
    assert user_paired_test(a, a, 'ndcg@20').wilcoxon_pvalue == 1.0
    with pytest.raises(KeyError, match='recall@20'):
        user_paired_test(a, b)
    with pytest.raises(ValueError, match='different users'):
        user_paired_test(a, EvalResult({}, {'ndcg@20': b_values[:10]}, users[:10], 0.0), 'ndcg@20')


# ---------------------------------------------------------------- errors and plumbing
def test_bad_input_errors():
    data = random_data(0)
    user_emb, item_emb = int_embeddings(0, data.n_users, data.n_items)
    with pytest.raises(ValueError, match="split must be 'valid' or 'test'"):
        evaluate((user_emb, item_emb), data, 'train')
    with pytest.raises(ValueError, match='ks must be positive'):
        evaluate((user_emb, item_emb), data, ks=(0, 10))
    with pytest.raises(ValueError, match='the model scores 30 users x 69 items, the data has 30 x 70'):
        evaluate((user_emb, item_emb[:-1]), data)
    broken = user_emb.clone()
    broken[3, 1] = float('nan')
    with pytest.raises(ValueError, match='NaN or inf'):
        evaluate((broken, item_emb), data)

    class NaNScores(ScoreModel):
        def scores(self, users, items=None):
            return torch.full((len(users), len(items)), float('nan'))
    with pytest.raises(ValueError, match=r'NaNScores.scores returned \d+ NaN score\(s\) .* the first for user \d+ and item \d+'):
        evaluate(NaNScores(user_emb, item_emb), data)

    class WrongShape(ScoreModel):
        def scores(self, users, items=None):
            return torch.zeros(len(users), len(items) + 1)
    with pytest.raises(ValueError, match=r'WrongShape.scores must return a \(\d+, \d+\) block .* got shape'):
        evaluate(WrongShape(user_emb, item_emb), data)
    with pytest.raises(ValueError, match='no user has a target in split .valid. among the cold items'):
        evaluate((user_emb, item_emb), SimpleNamespace(**{**vars(data), 'valid': pairs((0, 1))}), cold_items=[2, 3])
    with pytest.raises(ValueError, match='cold_items must be non-empty'):
        evaluate((user_emb, item_emb), data, cold_items=[70])
    with pytest.raises(TypeError, match='cannot rank with'):
        evaluate(object(), data)


def test_result_pickles_and_prints():
    data = random_data(2)
    result = evaluate(int_embeddings(2, data.n_users, data.n_items), data)
    again = pickle.loads(pickle.dumps(result))                               # the trainer broadcasts it
    assert again.metrics == result.metrics and np.array_equal(again.users, result.users)
    assert repr(result).startswith(f'EvalResult({len(result.users)} users: recall@10=')
    assert all(isinstance(v, float) for v in result.metrics.values())


NO_TRITON = r'''
import json, sys
sys.modules['triton'] = None           # `import triton` now raises ImportError
import torch
from types import SimpleNamespace
from mmrec_nb.evaluate import evaluate
from mmrec_nb.ops import core
assert not core.HAS_TRITON and core.OPS['masked_block_topk'].kernel is None
assert not core.on_kernel_path(torch.zeros(1))           # even with TRITON_INTERPRET=1
g = torch.Generator().manual_seed(0)
pairs = lambda n: torch.stack([torch.randint(0, 20, (n,), generator=g), torch.randint(0, 50, (n,), generator=g)], 1)
data = SimpleNamespace(n_users=20, n_items=50, train=pairs(100), valid=pairs(30), test=pairs(30))
emb = (torch.randn(20, 4, generator=g), torch.randn(50, 4, generator=g))
print(json.dumps(evaluate(emb, data, 'test', batch_users=6, item_block=16).metrics))
'''


def test_package_runs_without_triton():
    run = subprocess.run([sys.executable, '-c', NO_TRITON], capture_output=True, text=True, timeout=120,
                         env={**__import__('os').environ, 'TRITON_INTERPRET': '1'})
    assert run.returncode == 0, run.stderr[-3000:]
    child = json.loads(run.stdout.strip().splitlines()[-1])
    g = torch.Generator().manual_seed(0)
    pairs = lambda n: torch.stack([torch.randint(0, 20, (n,), generator=g), torch.randint(0, 50, (n,), generator=g)], 1)
    data = SimpleNamespace(n_users=20, n_items=50, train=pairs(100), valid=pairs(30), test=pairs(30))
    emb = (torch.randn(20, 4, generator=g), torch.randn(50, 4, generator=g))
    assert child == evaluate(emb, data, 'test').metrics
