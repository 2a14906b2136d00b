"""MetaMMF (nbs/10_metammf.ipynb): the factored layer equals the full tensor built from its factors, the
released variant, the ratio of eq. (mmf-ratio) and its calibration, shapes through the model contract, and
checkpoint round trips. Small tensors only: the whole file runs in a few seconds."""
import pytest
import torch

from mmrec_nb.data import synthetic
from mmrec_nb.models.metammf import (FORMS, FUSIONS, MetaExtractor, MetaFusionLearner, MetaFusionLayer, MetaMMF_GCN,
                                     MetaMMF_MF, fusion_dims)
from mmrec_nb.ops.cp_fusion import cp_to_tensor, item_weights
from mmrec_nb.train import MODELS, build_model

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def toy():
    return synthetic(n_users=40, n_items=30, seed=1, interactions_per_user=6, feature_dim=8)


def small(**overrides):
    return {'embedding_dim': 16, 'fused_dim': 8, 'meta_hidden': 16, 'rank': 4, **overrides}


@pytest.mark.parametrize('form', FORMS)
@pytest.mark.parametrize('static,dynamic', [(True, True), (False, True), (True, False)])
def test_layer_equals_full_tensor(form, static, dynamic):
    torch.manual_seed(0)
    layer = MetaFusionLayer(9, 5, 3, 4, form, static=static, dynamic=dynamic).double()
    x, s = torch.randn(6, 9, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    full = layer.as_full()
    torch.testing.assert_close(layer(x, s), full(x, s))
    # and the full layer is eqs. (mmf-meta-weight)-(mmf-meta-linear) written out item by item
    T = full.T if dynamic else torch.zeros(9, 5, 3, dtype=torch.float64)
    expected = torch.stack([x[i] @ (layer.weight + torch.einsum('pqz,z->pq', T, s[i])) for i in range(6)]) + layer.bias
    torch.testing.assert_close(layer(x, s), expected)


def test_cp_tensor_from_factors_gives_same_output():
    torch.manual_seed(1)
    layer = MetaFusionLayer(7, 4, 5, 3, 'cp').double()
    x, s = torch.randn(8, 7, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    T = cp_to_tensor(layer.A, layer.B, layer.C)
    per_item = item_weights(layer.weight, T, s)
    torch.testing.assert_close(layer(x, s), torch.bmm(x[:, None], per_item)[:, 0] + layer.bias)


def test_released_is_one_direction():
    torch.manual_seed(2)
    layer = MetaFusionLayer(6, 5, 4, 3, 'released').double()
    s = torch.randn(10, 4, dtype=torch.float64)
    dynamic = item_weights(layer.weight, layer.as_full().T, s) - layer.weight
    flat = dynamic.flatten(1)
    assert torch.linalg.matrix_rank(flat) == 1                      # all W_i^* are multiples of A B^T
    cp = MetaFusionLayer(6, 5, 4, 3, 'cp').double()
    assert torch.linalg.matrix_rank((item_weights(cp.weight, cp.as_full().T, s) - cp.weight).flatten(1)) == 3


@pytest.mark.parametrize('form', FORMS)
def test_dynamic_norm_exact(form):
    torch.manual_seed(3)
    layer = MetaFusionLayer(8, 6, 3, 5, form).double()
    s = torch.randn(7, 3, dtype=torch.float64)
    dynamic = item_weights(layer.weight, layer.as_full().T, s) - layer.weight
    torch.testing.assert_close(layer.dynamic_norm(s), dynamic.flatten(1).norm(dim=1))
    torch.testing.assert_close(layer.dynamic_ratio(s), dynamic.flatten(1).norm(dim=1) / layer.weight.norm())


@pytest.mark.parametrize('form', FORMS)
def test_calibrate_hits_target(form):
    torch.manual_seed(4)
    modalities = [torch.randn(40, 6), torch.randn(40, 3)]
    stack = MetaFusionLearner((6, 3), out_dim=4, n_layers=2, meta_dim=3, meta_hidden=8, rank=4, form=form)
    for target in (0.1, 2.0):
        stack.calibrate(modalities, target)
        for ratio in stack.dynamic_ratios(modalities):
            assert float(ratio.median()) == pytest.approx(target, rel=1e-4)


def test_rescale_is_balanced_and_exact():
    torch.manual_seed(5)
    layer = MetaFusionLayer(8, 6, 3, 4, 'cp').double()
    s = torch.randn(5, 3, dtype=torch.float64)
    before = [layer.A.detach().norm(), layer.B.detach().norm(), layer.C.detach().norm()]
    norm = layer.dynamic_norm(s)
    layer.rescale_dynamic(8.0)
    torch.testing.assert_close(layer.dynamic_norm(s), 8.0 * norm)
    for old, new in zip(before, [layer.A.detach().norm(), layer.B.detach().norm(), layer.C.detach().norm()]):
        assert float(new / old) == pytest.approx(2.0)


def test_extractor_any_number_of_modalities():
    torch.manual_seed(6)
    for widths in [(5,), (5, 2), (5, 2, 7, 1)]:
        meta = MetaExtractor(widths, meta_dim=3, hidden_dim=4)([torch.randn(2, d) for d in widths])
        assert meta.shape == (2, 3) and bool((meta.abs() < 1).all())
    with pytest.raises(ValueError, match=r'\(5, 2\)'):
        MetaExtractor((5, 2))([torch.randn(2, 5)])


def test_fusion_dims_and_bad_arguments():
    assert fusion_dims(100, 32, 2) == [100, 64, 32]
    with pytest.raises(ValueError, match='form'):
        MetaFusionLayer(3, 2, 2, 2, 'tucker')
    with pytest.raises(ValueError, match='at least one'):
        MetaFusionLayer(3, 2, 2, 2, static=False, dynamic=False)
    with pytest.raises(ValueError, match='fusion'):
        MetaFusionLearner((3,), fusion='both')
    with pytest.raises(ValueError, match='n_layers'):
        MetaFusionLearner((3,), n_layers=0)


@pytest.mark.parametrize('name', ['metammf_mf', 'metammf_gcn'])
@pytest.mark.parametrize('fusion', FUSIONS)
def test_models_through_the_contract(toy, name, fusion):
    torch.manual_seed(0)
    model = build_model(name, toy, **small(fusion=fusion, n_layers=2))
    assert isinstance(model, MODELS[name])
    users, items = model.embeddings()
    assert users.shape == (40, 16) and items.shape == (30, 16)
    torch.testing.assert_close(model.scores(torch.tensor([0, 5])), users[[0, 5]] @ items.T)
    batch = {'users': torch.tensor([0, 1, 2, 3]), 'pos': toy.train[:4, 1], 'neg': torch.randint(30, (4, 3))}
    terms = model.loss(batch)
    assert set(terms) == {'loss', 'bpr', 'reg', 'factor_reg'} and torch.isfinite(terms['loss'])
    terms['loss'].backward()
    names = {n for n, _ in model.named_parameters()}
    learned = {n for n, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    extractor = {n for n in names if n.startswith('fusion.extractor.')}
    static = {f'fusion.layers.{layer}.weight' for layer in range(2)}                       # W of each layer
    dynamic = {f'fusion.layers.{layer}.{factor}' for layer in range(2) for factor in 'ABC'}  # T = [[A, B, C]]
    present = {'hybrid': static | dynamic, 'static': static, 'dynamic': dynamic}[fusion]
    assert names & (static | dynamic) == present          # static: no T (T = 0); dynamic: W = 0 is a buffer
    unused = extractor if fusion == 'static' else set()   # a static layer never reads s_i: no gradient reaches it
    assert extractor and learned == names - unused        # every other parameter gets a non-zero gradient


def test_models_register_and_checkpoint_round_trip(toy):
    assert MODELS['metammf_mf'] is MetaMMF_MF and MODELS['metammf_gcn'] is MetaMMF_GCN
    torch.manual_seed(0)
    model = build_model('metammf_gcn', toy, **small())
    state = model.state_dict()
    assert not any(key.startswith(('item_features', 'adj_')) for key in state)   # data is not checkpointed
    torch.manual_seed(1)
    other = build_model('metammf_gcn', toy, **small())
    other.load_state_dict(state)
    for a, b in zip(model.embeddings(), other.embeddings()):
        torch.testing.assert_close(a, b)


def test_modalities_subset_and_errors(toy):
    torch.manual_seed(0)
    names = list(toy.features)
    model = build_model('metammf_mf', toy, **small(modalities=names[:2]))
    assert model.modalities == tuple(names[:2])
    assert model.item_features.shape[1] == sum(toy.features[n].shape[1] for n in names[:2])
    with pytest.raises(ValueError, match='video'):
        build_model('metammf_mf', toy, modalities=['video'])
    with pytest.raises(TypeError, match='rank_size'):
        build_model('metammf_mf', toy, rank_size=3)
    with pytest.raises(ValueError, match='fused_dim'):
        build_model('metammf_mf', toy, fused_dim=64)
