"""Meta Fusion synthetic study (nbs/21_meta_fusion_synthetic.ipynb, 21a_meta_fusion_study.ipynb): generator,
cooperative learning, runner, verdict rules."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from mmrec_nb.models.meta_fusion.cohort import LatentBank, divergence_weights
from mmrec_nb.models.meta_fusion.learning import CohortTrainConfig, MetaFusionPredictor
from mmrec_nb.models.meta_fusion.synthetic import (SETTINGS, StudyConfig, SyntheticSetting, cooperative_loss,
                                                   fit_cooperative, make_synthetic, predict_cooperative,
                                                   split_rows)

torch.set_num_threads(1)
TINY = SyntheticSetting('nonlinear', 'both', n=240, dim_x=24, dim_z=16, shared=2, specific=2)
TINY_CONFIG = StudyConfig(sizes=(2, 4), hidden=(8,), epochs=3, rho_grid=(0.5,), coop_grid=(0.0, 1.0))


def explained(features, target):
    "R^2 of a least-squares fit (with intercept) of target on features."
    design = torch.cat([features, torch.ones(len(features), 1)], 1).double()
    target = target.double().reshape(len(target), -1)
    residual = target - design @ torch.linalg.lstsq(design, target).solution
    return float(1 - residual.pow(2).sum() / (target - target.mean(0)).pow(2).sum())


def test_generator_shapes_and_scales():
    data = make_synthetic(SETTINGS['linear-complementary'], seed=11)
    assert data['x'].shape == (2000, 500) and data['z'].shape == (2000, 400) and data['y'].shape == (2000,)
    assert {k: v.shape[1] for k, v in data['latent'].items()} == {'shared': 5, 'x': 5, 'z': 5}
    assert abs(float(data['eta'].var()) - 1) < 0.1                        # unit-variance signal
    assert abs(float((data['y'] - data['eta']).std()) - 0.5) < 0.03       # sigma_y
    assert abs(float(data['x'].var(0).mean()) - 2.0) < 0.25               # latent 1 + noise 1 per feature
    assert explained(torch.cat(list(data['latent'].values()), 1), data['eta']) > 0.999   # linear in the factors
    torch.testing.assert_close(make_synthetic(SETTINGS['linear-complementary'], seed=11)['z'], data['z'])


@pytest.mark.parametrize('noise', [0.5, 1.0, 2.0, 4.0])
def test_noise_lowers_the_modality_snr(noise):
    setting = SyntheticSetting('linear', 'both', noise_z=noise, n=1500)
    data = make_synthetic(setting, seed=2)
    own = torch.cat([data['latent']['shared'], data['latent']['z']], 1)
    assert abs(explained(own, data['z']) - 1 / (1 + noise ** 2)) < 0.03      # R^2 of Z on its factors
    assert abs(explained(torch.cat([data['latent']['shared'], data['latent']['x']], 1), data['x']) - 0.5) < 0.03


def test_noise_sweep_changes_only_z():
    clean, noisy = (make_synthetic(SyntheticSetting('nonlinear', 'both', noise_z=s, n=600), seed=5) for s in (1.0, 8.0))
    assert torch.equal(clean['x'], noisy['x']) and torch.equal(clean['y'], noisy['y'])
    eps = (noisy['z'] - clean['z']) / 7                                       # z = A^T [s; u] + sigma_z * eps
    assert abs(float(eps.std()) - 1) < 0.01 and abs(float(eps.mean())) < 0.01
    latent_part = clean['z'] - eps
    own = torch.cat([clean['latent']['shared'], clean['latent']['z']], 1)
    assert explained(own, latent_part) > 0.9999                               # the rest is exactly the factors' image


def test_independent_and_nonlinear_targets():
    independent = make_synthetic(SyntheticSetting('linear', 'x', n=3000), seed=1)
    z_factors = torch.cat([independent['latent']['shared'], independent['latent']['z']], 1)
    assert explained(z_factors, independent['y']) < 0.01                     # Z carries nothing about y
    nonlinear = make_synthetic(SyntheticSetting('nonlinear', 'both', n=3000), seed=1)
    assert explained(torch.cat(list(nonlinear['latent'].values()), 1), nonlinear['eta']) < 0.02   # no linear part


def test_split_and_setting_validation():
    rows = split_rows(2000, seed=0)
    assert [len(rows[p]) for p in ('train', 'valid', 'test')] == [1000, 500, 500]
    assert torch.equal(torch.sort(torch.cat(list(rows.values()))).values, torch.arange(2000))
    with pytest.raises(ValueError, match='fractions'):
        split_rows(100, 0, (0.5, 0.5, 0.0))
    with pytest.raises(ValueError, match='signal'):
        SyntheticSetting('cubic')
    with pytest.raises(ValueError, match='informative'):
        SyntheticSetting(informative='z')
    with pytest.raises(ValueError, match='noise_z'):
        SyntheticSetting(noise_z=-1.0)
    with pytest.raises(ValueError, match='rho_grid'):
        StudyConfig(rho_grid=())


def test_cooperative_loss_by_hand():
    f_x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    f_z = torch.tensor([[0.5, -1.0], [1.0, 1.0]])
    y = torch.tensor([2.0, 0.0])
    rho = torch.tensor([0.3, 2.0])
    # fit 0: residuals 0.5, -1; differences 0.5, 3.  fit 1: residuals 1, -1; differences -1, -1
    expected = torch.tensor([0.5 * (0.25 + 1) / 2 + 0.3 * 0.5 * (0.25 + 9) / 2,
                             0.5 * (1 + 1) / 2 + 2.0 * 0.5 * (1 + 1) / 2])
    torch.testing.assert_close(cooperative_loss(f_x, f_z, y, rho), expected)
    a, b, target = torch.randn(4, 30), torch.randn(4, 30), torch.randn(30)
    separable = (a.pow(2) + b.pow(2) - target * (a + b)).mean(1) + target.pow(2).mean() / 2   # eq. (mfs-coop-late)
    torch.testing.assert_close(cooperative_loss(a, b, target, 1.0), separable)


def test_fit_cooperative_on_additive_data():
    g = torch.Generator().manual_seed(0)
    data = {'x': torch.randn(500, 8, generator=g), 'z': torch.randn(500, 6, generator=g)}
    y = data['x'][:, 0] - data['z'][:, 2] + 0.1 * torch.randn(500, generator=g)
    bank = LatentBank({'x': [], 'z': []}).fit({m: v[:300] for m, v in data.items()})
    b = bank.transform(data)
    fitted = fit_cooperative(bank.views, b[:300], y[:300], b[300:400], y[300:400], (0.0, 1.0),
                             hidden=(8,), config=CohortTrainConfig(epochs=40, lr=1e-2, batch_size=50))
    assert fitted['rho'] == 0.0 and fitted['val_mse'][0] < fitted['val_mse'][1]
    assert float((predict_cooperative(fitted, b[400:]) - y[400:]).pow(2).mean()) < 0.1 * float(y.var())
    with pytest.raises(ValueError, match='rho_grid'):
        fit_cooperative(bank.views, b[:300], y[:300], b[300:400], y[300:400], (-1.0,))


def test_run_phase_reproduces_meta_fusion():
    data = make_synthetic(TINY, seed=4)
    rows = split_rows(TINY.n, seed=4)
    part = lambda p: {m: data[m][rows[p]] for m in ('x', 'z')}
    y = {p: data['y'][rows[p]].reshape(-1, 1) for p in rows}
    fit = MetaFusionPredictor(sizes={'x': [2], 'z': [2]}, hidden=(8,), epochs=4, lr=1e-2, rho_grid=(0.5,)).fit(
        part('train'), y['train'], part('valid'), y['valid'])
    bank = {p: fit.bank.transform(part(p)) for p in rows}
    again = fit.run_phase(0.5, fit.d, bank['train'], y['train'], bank['valid'], y['valid'])
    np.testing.assert_allclose(again['val_losses'], fit.runs[0.5]['val_losses'], rtol=1e-6)
    assert again['weights'].tolist() == fit.runs[0.5]['weights'].tolist()
    uniform = fit.run_phase(0.5, divergence_weights(np.ones(len(fit.cohort), bool)),
                            bank['train'], y['train'], bank['valid'], y['valid'])
    assert fit.teachers.all() or not np.allclose(uniform['val_losses'], again['val_losses'])
