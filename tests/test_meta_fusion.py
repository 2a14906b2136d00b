"Meta Fusion (nbs/20_meta_fusion.ipynb, nbs/20a_meta_fusion_fit.ipynb): cohort, batched students, teachers, loss, selection."

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrec_nb.models.meta_fusion.cohort import (LatentBank, PCAExtractor, StudentCohort, View, build_cohort,
                                                divergence_weights, input_masks, mutual_learning_loss, select_teachers,
                                                task_loss)
from mmrec_nb.models.meta_fusion.learning import (CohortTrainConfig, MetaFusionPredictor, ensemble_loss, ensemble_predict,
                                                  ensemble_selection, fit_cohort, inverse_loss_weights)


def views(modality, sizes, raw_width, start=0):
    "null, nested extractor prefixes of one block at `start`, then raw."
    out = [View(modality, 'null', start, 0)] + [View(modality, f'pca{r}', start, r) for r in sizes]
    return out + [View(modality, 'raw', start + max(sizes, default=0), raw_width)]


@pytest.fixture
def two_modalities():
    return {'x': views('x', [2, 4], 6, 0), 'z': views('z', [3], 5, 10)}


def test_cohort_count_and_membership(two_modalities):
    cohort = build_cohort(two_modalities)
    assert len(cohort) == (2 + 2) * (1 + 2) - 1
    kinds = {s.name: s.fusion for s in cohort}
    assert kinds['x:raw + z:raw'] == 'early'
    assert kinds['x:raw'] == kinds['z:raw'] == kinds['x:pca2'] == 'unimodal'
    assert kinds['x:pca4 + z:pca3'] == kinds['x:raw + z:pca3'] == 'intermediate'
    assert len(set(kinds)) == len(cohort)
    assert all(any(v.width for v in s.views) for s in cohort)          # never the all-null student


def test_cohort_m_modalities_and_restriction():
    three = {m: views(m, [1, 2, 3], 4, 10 * i) for i, m in enumerate('abc')}
    assert len(build_cohort(three)) == 5 ** 3 - 1
    assert len(build_cohort(three, max_active=1)) == 3 * 4
    assert len(build_cohort(three, max_active=2)) == 3 * 4 + 3 * 4 * 4
    partial = [s for s in build_cohort(three) if s.fusion == 'partial']
    assert len(partial) == 3 * 16
    raw_only = build_cohort(three, keep=lambda s: all(v.kind in ('raw', 'null') for v in s.views))
    assert len(raw_only) == 2 ** 3 - 1


def test_masks_and_bank():
    torch.manual_seed(0)
    x, z = torch.randn(30, 8), torch.randn(30, 5)
    bank = LatentBank({'x': [2, 3], 'z': []}).fit({'x': x, 'z': z})
    assert [str(v) for v in bank.views['z']] == ['z:null', 'z:raw'] and bank.width == 3 + 8 + 5
    cohort = build_cohort(bank.views)
    masks = input_masks(cohort, bank.width)
    assert masks.sum(1).tolist() == [s.width for s in cohort]
    pca3, pca2 = PCAExtractor(3).fit(x), PCAExtractor(2).fit(x)
    torch.testing.assert_close(pca3(x)[:, :2], pca2(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='PCA size'):
        PCAExtractor(40).fit(x)


def test_batched_students_equal_the_loop(two_modalities):
    cohort = build_cohort(two_modalities)
    bank = torch.randn(9, 18, dtype=torch.float64)
    batched = StudentCohort(cohort, hidden=(7, 5), out_dim=3, seed=1).double()
    loop = batched.unbatched(cohort).double()
    torch.testing.assert_close(batched(bank), loop(bank))
    batched(bank).sum().backward()
    loop(bank).sum().backward()
    for s in range(len(cohort)):
        torch.testing.assert_close(batched.weights[-1].grad[s], loop.students[s][-1].weight.grad.T)


def test_teachers_by_silhouette():
    losses = [0.1, 0.12, 0.11, 0.5, 0.52, 0.9, 0.95, 0.93]
    teachers, info = select_teachers(losses)
    assert teachers.tolist() == [True, True, True] + [False] * 5 and info['k'] == 3
    assert set(info['silhouette']) == set(range(2, 8))
    d = divergence_weights(teachers)
    assert torch.equal(d[3], torch.tensor([1., 1, 1, 0, 0, 0, 0, 0])) and torch.equal(d[0], torch.tensor([0., 1, 1, 0, 0, 0, 0, 0]))
    assert select_teachers([0.3] * 4)[0].all()


@pytest.mark.parametrize('task,out_dim', [('regression', 2), ('classification', 3)])
def test_mutual_learning_loss_matches_pairwise(task, out_dim):
    torch.manual_seed(0)
    outputs = torch.randn(4, 6, out_dim, dtype=torch.float64, requires_grad=True)
    d = torch.rand(4, 4, dtype=torch.float64).fill_diagonal_(0)
    d[2] = 0
    expected = []
    for i in range(4):
        terms = []
        for j in range(4):
            if task == 'regression':
                div = (outputs[i] - outputs[j].detach()).pow(2).mean()
            else:
                p_j = outputs[j].detach().softmax(-1)
                div = (p_j * (p_j.log() - outputs[i].log_softmax(-1))).sum(-1).mean()
            terms.append(d[i, j] * div)
        expected.append(sum(terms) / d[i].sum() if d[i].sum() > 0 else outputs.new_zeros(()))
    expected = torch.stack(expected)
    got = mutual_learning_loss(outputs, d, task)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(torch.autograd.grad(got.sum(), outputs)[0], torch.autograd.grad(expected.sum(), outputs)[0])
    assert got[2] == 0


def test_task_loss():
    out = torch.randn(3, 5, 4)
    y = torch.randint(4, (5,))
    torch.testing.assert_close(task_loss(out, y, 'classification')[1], F.cross_entropy(out[1], y))
    torch.testing.assert_close(task_loss(out, torch.ones(5, 4), 'regression'), (out - 1).pow(2).mean((1, 2)))
    with pytest.raises(ValueError):
        task_loss(out, y, 'ranking')


def test_ensemble_selection_prefers_complementary_students():
    torch.manual_seed(0)
    y = torch.zeros(40, 1)
    e = torch.randn(40, 1)
    preds = torch.stack([0.5 * e, -0.5 * e, 0.4 * e + 0.45, 2 * torch.randn(40, 1)])
    weights = ensemble_selection(preds, y, 'regression', p_prune=0.25, n_init=1)
    assert weights.tolist() == [1, 1, 0, 0]
    assert ensemble_loss(ensemble_predict(preds, weights), y, 'regression') < 1e-10
    best_single = min(ensemble_loss(p, y, 'regression') for p in preds)
    assert ensemble_loss(ensemble_predict(preds, weights), y, 'regression') <= best_single
    np.testing.assert_allclose(inverse_loss_weights([1, 3]), [0.75, 0.25])


def test_fit_cohort_keeps_each_students_best_state(two_modalities):
    torch.manual_seed(0)
    cohort = build_cohort(two_modalities)
    bank, val = torch.randn(64, 18), torch.randn(32, 18)
    y, y_val = bank[:, :1] - bank[:, 10:11], val[:, :1] - val[:, 10:11]
    students = StudentCohort(cohort, hidden=(16,), seed=0)
    fitted = fit_cohort(students, bank, y, val, y_val, config=CohortTrainConfig(epochs=15, lr=1e-2, batch_size=16))
    with torch.no_grad():
        np.testing.assert_allclose(task_loss(students(val), y_val, 'regression').numpy(), fitted['val_losses'], rtol=1e-5)
    names = [s.name for s in cohort]
    assert fitted['val_losses'][names.index('x:pca2 + z:pca3')] < 0.5 * fitted['val_losses'][names.index('z:raw')]


def test_meta_fusion_end_to_end_and_config():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(300, 2, generator=g)
    data = {'x': h @ torch.randn(2, 8, generator=g), 'z': torch.randn(300, 6, generator=g)}
    y = (h[:, 0] > 0).long()
    part = lambda r: {m: v[r] for m, v in data.items()}
    tr, va, te = slice(0, 200), slice(200, 250), slice(250, 300)
    model = MetaFusionPredictor(sizes={'x': [2], 'z': [2]}, task='classification', hidden=(16,), epochs=8, lr=1e-2,
                                rho_grid=(1.0,)).fit(part(tr), y[tr], part(va), y[va])
    assert set(model.runs) == {0.0, 1.0} and model.rho in model.runs
    probs = model.predict(part(te))
    torch.testing.assert_close(probs.sum(1), torch.ones(50))
    assert float((probs.argmax(1) == y[te]).float().mean()) > 0.8
    assert len(model.summary()) == 8 and not any(r['teacher'] for r in model.summary() if r['student'].startswith('z'))
    with pytest.raises(TypeError, match='unknown config key'):
        MetaFusionPredictor(sizes={}, rhos=(1,))


def test_owners_follow_parameters(two_modalities):
    cohort = build_cohort(two_modalities)
    students = StudentCohort(cohort, hidden=(4, 3), seed=0)
    for p, owner in zip(students.parameters(), students.owners()):
        assert len(owner) == p.shape[0]
