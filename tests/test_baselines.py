"""Tests for mmrec_nb.models.baselines (BPR-MF, LightGCN, VBPR) and the shared layers they are built from
(mmrec_nb.layers: adjacency, propagation, feature lookup), beyond the notebooks' inline checks."""
import copy

import pytest
import torch

from mmrec_nb.data import synthetic
from mmrec_nb.layers import item_features, normalized_adjacency, propagate
from mmrec_nb.models import baselines
from mmrec_nb.models.baselines import BPRMF, VBPR, LightGCN
from mmrec_nb.train import MODELS, Trainer, TrainConfig, build_model

NAMES = ('bprmf', 'lightgcn', 'vbpr')


@pytest.fixture(scope='module')
def small():
    return synthetic(n_users=120, n_items=90, modalities=('image', 'text'), seed=3, interactions_per_user=15)


@pytest.fixture(scope='module')
def trained():
    "Each model trained on the same synthetic data through the shared Trainer (shared by the training tests)."
    data = synthetic(n_users=300, n_items=200, modalities=('image', 'text'), seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # small ops: one thread is as fast, and immune to other jobs' OpenMP contention
    try:
        runs = {}
        for name in NAMES:
            torch.manual_seed(0)
            model = build_model(name, data)
            config = TrainConfig(lr=1e-2, epochs=15, batch_size=512, patience=15, progress=False)
            runs[name] = (model, Trainer(model, data, config).fit())
    finally:
        torch.set_num_threads(threads)
    return data, runs


def batch_for(data, n=32, n_neg=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, len(data.train), (n,), generator=g)
    return {'users': data.train[rows, 0], 'pos': data.train[rows, 1],
            'neg': torch.randint(0, data.n_items, (n, n_neg), generator=g)}


def test_registry(small):
    torch.manual_seed(0)
    for name, cls in zip(NAMES, (BPRMF, LightGCN, VBPR)):
        assert MODELS[name] is cls
        assert type(build_model(name, small, embedding_dim=8)) is cls


def test_layers_are_reexported_for_the_chapters():
    "metammf and meta_fusion_rec still import these from the baselines module: the same objects as mmrec_nb.layers."
    from mmrec_nb import layers
    for name in ('batch_ids', 'normalized_adjacency', 'pairwise_loss', 'propagate'):
        assert getattr(baselines, name) is getattr(layers, name)


@pytest.mark.parametrize('name', NAMES)
def test_unknown_config_key_is_named(small, name):
    with pytest.raises(TypeError) as err:
        build_model(name, small, n_layer=3)
    assert 'n_layer' in str(err.value) and MODELS[name].__name__ in str(err.value)


@pytest.mark.parametrize('name', NAMES)
def test_shapes_terms_and_gradients(small, name):
    torch.manual_seed(0)
    model = build_model(name, small, embedding_dim=16)
    user_emb, item_emb = model.embeddings()
    assert user_emb.shape[0] == small.n_users and item_emb.shape[0] == small.n_items
    assert user_emb.shape[1] == item_emb.shape[1] == (32 if name == 'vbpr' else 16)
    assert model.scores(torch.tensor([0, 5])).shape == (2, small.n_items)
    assert model.scores(torch.tensor([0, 5]), torch.tensor([1, 2, 3])).shape == (2, 3)
    terms = model.loss(batch_for(small))
    assert set(terms) == {'loss', 'bpr', 'reg'}
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())
    assert torch.allclose(terms['loss'], terms['bpr'] + terms['reg'])
    assert abs(terms['bpr'].item() - 0.693) < 0.05          # near ln 2 at init: scores start close to 0
    terms['loss'].backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


def test_one_dim_negatives_match_two_dim(small):
    torch.manual_seed(0)
    model = build_model('bprmf', small)
    batch = batch_for(small, n_neg=1)
    flat = {**batch, 'neg': batch['neg'][:, 0]}
    assert torch.allclose(model.loss(batch)['loss'], model.loss(flat)['loss'])


def test_adjacency_matches_dense_and_uses_train_only(small):
    n_users, n_items = small.n_users, small.n_items
    adj = normalized_adjacency(small.train, n_users, n_items)
    assert adj.layout == torch.sparse_csr
    dense = adj.to_dense()
    A = torch.zeros(n_users + n_items, n_users + n_items)
    A[small.train[:, 0], n_users + small.train[:, 1]] = 1
    A = A + A.T
    degree = A.sum(1)
    scale = torch.where(degree > 0, degree.rsqrt(), torch.zeros(()))
    assert torch.allclose(dense, scale[:, None] * A * scale[None, :], atol=1e-6)
    assert torch.equal(dense, dense.T)
    assert torch.allclose(dense @ degree.sqrt(), degree.sqrt(), atol=1e-5)   # A_hat D^1/2 1 = D^1/2 1
    valid_only = set(map(tuple, small.valid.tolist())) - set(map(tuple, small.train.tolist()))
    u, i = next(iter(valid_only))
    assert dense[u, n_users + i] == 0                                         # no valid edge in the graph
    torch.manual_seed(0)
    model = LightGCN(small)
    assert torch.equal(model.norm_adj.to_dense(), dense)


def test_propagation_equals_dense_powers_forward_and_backward(small):
    adj = normalized_adjacency(small.train, small.n_users, small.n_items).to(torch.float64)
    dense = adj.to_dense()
    g = torch.Generator().manual_seed(0)
    ego = torch.randn(small.n_users + small.n_items, 5, dtype=torch.float64, generator=g, requires_grad=True)
    for n_layers in (1, 3):
        reference = sum(torch.linalg.matrix_power(dense, l) @ ego for l in range(n_layers + 1)) / (n_layers + 1)
        ours = propagate(adj, ego, n_layers)
        assert torch.allclose(ours, reference, atol=1e-10)
        weight = torch.randn(ours.shape, dtype=ours.dtype, generator=g)
        assert torch.allclose(torch.autograd.grad((ours * weight).sum(), ego)[0],
                              torch.autograd.grad((reference * weight).sum(), ego)[0], atol=1e-10)


def test_lightgcn_cache_is_never_stale(small):
    torch.manual_seed(0)
    model = LightGCN(small, n_layers=3)
    other = LightGCN(small, n_layers=3)
    model.eval()
    with torch.no_grad():
        first = model.embeddings()
        assert model.embeddings()[1] is first[1]
        model.load_state_dict(other.state_dict())           # what the Trainer does with the best state
        reloaded = model.embeddings()
    assert not torch.allclose(reloaded[0], first[0])
    assert torch.allclose(reloaded[0], other.embeddings()[0].detach())
    model.train()
    assert model._cache is None
    user_emb, _ = model.embeddings()
    assert user_emb.requires_grad and model._cache is None  # training mode: never cached


@pytest.mark.parametrize('name', NAMES)
def test_buffers_follow_module_and_state_dict_holds_parameters_only(small, name):
    torch.manual_seed(0)
    model = build_model(name, small)
    keys = set(model.state_dict())
    assert keys == {k for k, _ in model.named_parameters()}      # adjacency / features are data, not state
    twin = copy.deepcopy(model).to(torch.float64)                 # deepcopy works; buffers move with .to
    assert all(b.dtype in (torch.float64, torch.int64) for b in twin.buffers())
    assert torch.allclose(twin.scores(torch.arange(4)).float(), model.scores(torch.arange(4)), atol=1e-5)
    fresh = build_model(name, small)
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.scores(torch.arange(4)), model.scores(torch.arange(4)))


def test_vbpr_feature_row_changes_only_that_item(small):
    torch.manual_seed(0)
    model = VBPR(small)
    with torch.no_grad():
        before = model.scores(torch.arange(small.n_users))
        model.item_features[7] = torch.randn(model.item_features.shape[1])
        after = model.scores(torch.arange(small.n_users))
    moved = (after - before).abs().amax(0) > 1e-6
    assert moved.nonzero().flatten().tolist() == [7]


def test_vbpr_modalities_and_errors(small):
    features, names, widths = item_features(small, None, owner='VBPR')
    assert names == ('image', 'text') and widths == tuple(small.features[m].shape[1] for m in names)
    assert features.shape == (small.n_items, sum(widths))
    assert all(torch.equal(block, small.features[m]) for block, m in zip(features.split(widths, -1), names))
    assert VBPR(small, modalities=('text',)).projection.in_features == small.features['text'].shape[1]
    assert VBPR(small, modalities='image').modalities == ('image',)
    with pytest.raises(ValueError, match=r"^VBPR: modalities \['audio'\].*available: \['image', 'text'\]"):
        VBPR(small, modalities=('text', 'audio'))
    bare = copy.copy(small)
    bare.features = {}
    with pytest.raises(ValueError, match=r"^VBPR needs item features, but dataset 'synthetic' has none$"):
        VBPR(bare)


def random_recall(data, k=20):
    "Expected valid recall@k of a uniformly random ranking over each user's non-train items: min(k, n_u) / n_u."
    train_count = torch.bincount(data.train[:, 0], minlength=data.n_users).float()
    has_target = torch.bincount(data.valid[:, 0], minlength=data.n_users) > 0
    candidates = data.n_items - train_count[has_target]
    return (candidates.clamp(max=k) / candidates).mean().item()


@pytest.mark.parametrize('name', NAMES)
def test_trains_through_shared_trainer(trained, name):
    data, runs = trained
    model, fit = runs[name]
    chance = random_recall(data)
    assert fit.valid.metrics['recall@20'] > 2.5 * chance, (fit.valid.metrics['recall@20'], chance)
    losses = [h['loss'] for h in fit.history]
    assert losses[-1] < 0.6 * losses[0]
    assert fit.history[0]['bpr'] < 0.7 and fit.history[-1]['bpr'] < 0.5 * fit.history[0]['bpr']   # ln 2 at init
    assert all(h['reg'] > 0 for h in fit.history)


def test_lightgcn_result_is_reproducible_after_fit(trained):
    from mmrec_nb.evaluate import evaluate
    data, runs = trained
    model, fit = runs['lightgcn']
    again = evaluate(model, data, 'valid')                        # best state restored: no stale cache
    assert again.metrics['recall@20'] == pytest.approx(fit.valid.metrics['recall@20'], abs=1e-6)
