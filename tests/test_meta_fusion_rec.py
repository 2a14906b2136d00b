"""Meta Fusion for recommendation (nbs/22_meta_fusion_rec.ipynb, 22a_meta_fusion_rec_fit.ipynb): batched cohort,
mutual term, committee, record."""
import json
import math

import numpy as np
import pytest
import torch

from mmrec_nb.data import synthetic
from mmrec_nb.repro import read_result, result_path, run_experiment
from mmrec_nb.train import TrainConfig, bpr_loss, build_model
from mmrec_nb.models.meta_fusion.learning import greedy_committee
from mmrec_nb.models.meta_fusion.ranking import (CohortTrainer, MetaFusionCohort, ensemble_embeddings, rec_cohort,
                                                 student_kind, student_metrics)
from mmrec_nb.models.meta_fusion.ranking_fit import MetaFusionRec


@pytest.fixture(scope='module')
def tiny():
    torch.set_num_threads(1)
    return synthetic(n_users=50, n_items=30, feature_dim=10, interactions_per_user=8, seed=1)


def loop_scores(model, s):
    "Student s computed on its own: its embeddings and its projection of its own bank columns."
    student = model.cohort[s]
    columns = student.columns() if student.width else torch.zeros(0, dtype=torch.long)
    items = model.item_id[s] + model.bank[:, columns] @ model.projection.student_weight(s)
    return model.user[s] @ items.T


def test_registered_and_cohort(tiny):
    torch.manual_seed(0)
    model = MetaFusionCohort(tiny, embedding_dim=4)
    assert isinstance(model, MetaFusionCohort) and model.n_students == 2 ** 3 + 2
    kinds = [student_kind(s) for s in model.cohort]
    assert kinds[0] == 'id-only' and kinds.count('early') == 1 and kinds.count('intermediate') == 2
    assert model.cohort[0].width == 0 and all(s.width > 0 for s in model.cohort[1:])
    product = MetaFusionCohort(tiny, embedding_dim=4, cohort='product', max_active=1, id_only=False)
    assert product.n_students == 3 * 3                              # per modality: pca8, pca10, raw
    assert len(rec_cohort(model.latent.views, 'compact', (8,))) == 2 ** 3 + 1


def test_batched_scores_and_gradients_equal_a_loop(tiny):
    torch.manual_seed(0)
    model = MetaFusionCohort(tiny, embedding_dim=6)
    user_vecs, item_vecs = model.student_embeddings()
    users, pos = torch.tensor([0, 1, 1, 4, 7, 9]), torch.tensor([2, 3, 8, 8, 0, 29])
    neg = torch.tensor([[5, 6], [1, 0], [9, 2], [3, 3], [28, 4], [11, 12]])
    terms = model.loss({'users': users, 'pos': pos, 'neg': neg})
    reference = []
    for s in range(model.n_students):
        scores = loop_scores(model, s)
        torch.testing.assert_close(user_vecs[s] @ item_vecs[s].T, scores)
        reference.append(bpr_loss(scores[users, pos], scores[users[:, None], neg]))
    reference = torch.stack(reference).sum()
    torch.testing.assert_close(terms['bpr'], reference)
    for batched, looped in zip(torch.autograd.grad(terms['bpr'], list(model.parameters())),
                               torch.autograd.grad(reference, list(model.parameters()))):
        torch.testing.assert_close(batched, looped)


def set_teacher_scores(model, scores):
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.user[1, 0, 0] = 1.0
        model.item_id[1, :len(scores), 0] = torch.tensor(scores)


def test_mutual_term_by_hand(tiny):
    teachers = tuple(s == 1 for s in range(10))
    model = MetaFusionCohort(tiny, embedding_dim=3, rho=2.0, teachers=teachers)
    set_teacher_scores(model, [math.log(3.0), 0.0, 0.0, 0.0])          # teacher p = (1/2, 1/6, 1/6, 1/6)
    p = np.array([0.5, 1 / 6, 1 / 6, 1 / 6])
    kl = float((p * np.log(p / 0.25)).sum())                            # KL(p_teacher || uniform)
    batch = {'users': torch.tensor([0, 0]), 'pos': torch.tensor([0, 1]), 'neg': torch.tensor([[2], [3]])}
    per_student = model.mutual_term(torch.tensor([0]), model.item_vectors(torch.arange(4)))
    expected = torch.full((10,), kl)
    expected[1] = 0.0                                                   # the teacher has no teacher
    torch.testing.assert_close(per_student, expected)
    torch.testing.assert_close(model.loss(batch)['mutual'], torch.tensor(2.0 * 9 * kl))
    # the teacher's scores are under stop-gradient: the mutual term moves only the students
    set_teacher_scores(model, [math.log(3.0), 0.0, 0.0, 0.0])
    with torch.no_grad():
        model.user[0, 0, 1] = 0.5
        model.item_id[0, :4, 1] = torch.tensor([0.0, 1.0, -1.0, 2.0])
    grad_user, = torch.autograd.grad(model.mutual_term(torch.tensor([0]), model.item_vectors(torch.arange(4))).sum(),
                                     [model.user])
    assert float(grad_user[1].abs().max()) == 0.0 and float(grad_user[0].abs().max()) > 0.0


def test_mutual_term_zero_without_rho(tiny):
    # (students that all agree give a zero term too: the notebook's test cell of eq. mfr-kl checks that)
    batch = {'users': torch.tensor([0, 2, 5]), 'pos': torch.tensor([1, 4, 7]), 'neg': torch.tensor([[0], [9], [20]])}
    torch.manual_seed(0)
    assert float(MetaFusionCohort(tiny, embedding_dim=4).loss(batch)['mutual']) == 0.0


def test_ensemble_is_the_average_of_standardised_scores():
    generator = torch.Generator().manual_seed(3)
    users, items = torch.randn(4, 6, 5, generator=generator, dtype=torch.float64), torch.randn(4, 9, 5, generator=generator,
                                                                                               dtype=torch.float64)
    scores = users @ items.transpose(1, 2)
    z = (scores - scores.mean(2, keepdim=True)) / scores.std(2, unbiased=False, keepdim=True)
    ens_users, ens_items = ensemble_embeddings(users, items, [1, 1, 0, 2])
    torch.testing.assert_close(ens_users @ ens_items.T, (z[0] + z[1] + 2 * z[3]) / 4)
    with pytest.raises(ValueError, match='non-negative'):
        ensemble_embeddings(users, items, [0, 0, 0, 0])
    with pytest.raises(ValueError, match='non-negative'):
        ensemble_embeddings(users, items, [1, -1, 0, 0])


def test_greedy_committee_on_constructed_scores():
    # students 0-2 each put the target first for a different third of the users (zeros elsewhere: item 0, never a
    # target, wins the tie); student 3 is useless. Averaging the good ones covers every user, which greedy selection
    # must find, adding students in order of gain, with the worst pruned.
    truth = np.array([1, 2, 3, 1, 2, 3])
    scores = np.zeros((4, 6, 4))
    for s, users in enumerate(([0, 1], [2, 3], [4, 5])):
        scores[s][users, truth[users]] = 3.0 - 0.5 * s
    def hit_at_1(committee):
        return float((scores[committee].mean(0).argmax(1) == truth).mean())
    singles = [hit_at_1([s]) for s in range(4)]
    assert singles == [1 / 3, 1 / 3, 1 / 3, 0.0]
    assert greedy_committee(hit_at_1, singles, p_prune=0.25) == [0, 1, 2]
    assert hit_at_1([0, 1, 2]) == 1.0 and hit_at_1([0, 1, 2, 3]) == 1.0        # 3 would not raise it: never added
    assert greedy_committee(hit_at_1, singles, p_prune=0.0) == [0, 1, 2]
    assert greedy_committee(hit_at_1, singles, p_prune=0.5, n_init=2) == [0, 1]   # student 2 pruned
    with pytest.raises(ValueError, match='p_prune'):
        greedy_committee(hit_at_1, singles, p_prune=1.0)
    with pytest.raises(ValueError, match='n_init'):
        greedy_committee(hit_at_1, singles, n_init=5)


def test_cohort_trainer_keeps_each_students_best(tiny):
    torch.manual_seed(0)
    model = MetaFusionCohort(tiny, embedding_dim=4)
    fit = CohortTrainer(model, tiny, TrainConfig(epochs=2, batch_size=64, metric='cohort_recall@20', progress=False)).fit()
    history = np.array([entry['valid']['students'] for entry in fit.history])
    assert fit.test is None
    torch.testing.assert_close(model.best_metric, torch.from_numpy(history.max(0)))
    torch.testing.assert_close(student_metrics(model, tiny), model.best_metric)
    with pytest.raises(ValueError, match='cohort_'):
        CohortTrainer(model, tiny, TrainConfig(metric='recall@20'))


def test_record_schema_and_skip(tiny, tmp_path):
    options = dict(notebook='meta_fusion', profile='quick', seed=0, out_dir=tmp_path, epochs=1,
                   checkpoint_root=tmp_path / 'ckpt', model_config={'embedding_dim': 4, 'rho_grid': (1.0,)},
                   log=lambda line: None)
    first = run_experiment(tiny, 'meta_fusion', **options)
    assert first.path == result_path(tmp_path, 'quick', 'meta_fusion', 'synthetic', 'meta_fusion', 0)
    record = read_result(first.path)                                    # validates the shared schema
    assert record['model'] == 'meta_fusion' and record['notebook'] == 'meta_fusion' and record['task'] == 'ranking'
    cost = record['meta_fusion']['cost']
    assert cost['n_students'] == 10 and cost['runs'] == 2 and cost['total_epochs'] == 2 and cost['n_parameters'] > 0
    assert record['train_seconds_per_epoch'] == pytest.approx(cost['seconds_per_epoch'])
    assert set(record['meta_fusion']['rankers']) == {'ensemble', 'best_student', 'average'}
    assert record['metrics']['test'] == record['meta_fusion']['rankers']['ensemble']['test']
    assert not any((tmp_path / 'ckpt').rglob('last.pt'))                # checkpoints removed after success
    mtime = first.path.stat().st_mtime_ns
    again = run_experiment(tiny, 'meta_fusion', **options)
    assert again.skipped and first.path.stat().st_mtime_ns == mtime and again.record == json.loads(first.path.read_text())
    forced = run_experiment(tiny, 'meta_fusion', **{**options, 'force': True})
    assert not forced.skipped and forced.record['config_hash'] == first.record['config_hash']
    assert forced.record['metrics'] == first.record['metrics']          # seeded: the same numbers again


def test_rho_grid_on_a_short_budget(tiny):
    torch.manual_seed(0)
    model = MetaFusionRec(tiny, embedding_dim=4, rho_grid=(1.0,), grid_epochs=1)
    result = model.fit_phases(tiny, TrainConfig(epochs=2, batch_size=64, progress=False))
    assert sorted(result.grid) == [0.0, 1.0] and all(run.fit.epochs_run == 1 for run in result.grid.values())
    assert result.grid[0.0] is not result.runs[0.0] and result.runs[0.0].fit.epochs_run == 2   # phase 1: full budget
    assert result.rho == max(result.grid, key=lambda rho: result.grid[rho].ensemble_valid)
    assert result.chosen.fit.epochs_run == 2 and sorted(result.runs) == sorted({0.0, result.rho})
    assert len(result.trained()) == 3 + (result.rho != 0)
    teachers = result.teachers
    assert teachers.dtype == bool and teachers.any()
    best = result.runs[0.0].student_valid
    if (~teachers).any():                                               # the top cluster of recall teaches
        assert best[teachers].min() >= best[~teachers].max()


def test_bad_arguments_are_named(tiny):
    for key, value in (('rho', -0.5), ('temperature', 0.0), ('n_candidates', 1), ('embedding_dim', 0), ('sizes', ())):
        with pytest.raises(ValueError, match=key):
            MetaFusionCohort(tiny, **{key: value})
    with pytest.raises(ValueError, match='teachers'):
        MetaFusionCohort(tiny, teachers=(True, False))
    with pytest.raises(ValueError, match='cohort'):
        MetaFusionCohort(tiny, cohort='everything')
    with pytest.raises(ValueError, match='modalities'):
        MetaFusionCohort(tiny, modalities=('video',))
    with pytest.raises(TypeError, match='unknown config key'):
        MetaFusionCohort(tiny, learning_rate=0.1)
    with pytest.raises(ValueError, match='rho_grid'):
        MetaFusionRec(tiny, rho_grid=(0.0, 1.0))
    with pytest.raises(ValueError, match='p_prune'):
        MetaFusionRec(tiny, p_prune=1.5)
    with pytest.raises(ValueError, match='grid_epochs'):
        MetaFusionRec(tiny, grid_epochs=0)
    with pytest.raises(ValueError, match='chosen by fit'):
        MetaFusionRec(tiny, rho=1.0)
