"""mmrec_nb.train in one process: the model contract and registry, bad input, the sampler, the loop's
promises (same seed -> same numbers, test scored once at the best-valid state, NaN/inf stop the run), the
history and FitResult, the progress bar rule, and the DDP helpers' arithmetic."""
import io
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / 'scripts'))
from train_run import TinyMF  # noqa: E402

import mmrec_nb.evaluate  # noqa: E402
from mmrec_nb.checkpoint import seed_everything  # noqa: E402
from mmrec_nb.data import synthetic  # noqa: E402
from mmrec_nb.distributed import LossModule, dist_env, parameter_digest, shard_bounds, wrap_for_training  # noqa: E402
from mmrec_nb.train import (MODELS, NegativeSampler, Recommender, TrainConfig, Trainer, TrainingDiverged,  # noqa: E402
                            bpr_loss, build_model, register_model)

torch.set_num_threads(1)
QUICK = dict(epochs=4, patience=2, batch_size=512, lr=0.05, progress=False)


@pytest.fixture(scope='module')
def data():
    return synthetic(n_users=150, n_items=200, seed=2)


def fit(data, model_cls=TinyMF, seed=0, **overrides):
    seed_everything(seed)
    model = model_cls(data)
    return Trainer(model, data, {**QUICK, **overrides}).fit(), model


# --- the contract and the registry ---------------------------------------------------------------------------

def test_model_config_keys_are_checked(data):
    assert TinyMF(data, dim=8).config.dim == 8
    with pytest.raises(TypeError, match=r"TinyMF: unknown config key\(s\) dimz; known keys: dim, reg"):
        TinyMF(data, dimz=8)
    with pytest.raises(TypeError, match='has no Config'):
        Recommender(data, dim=8)


def test_base_methods_explain_what_is_missing(data):
    bare = Recommender(data)
    assert (bare.n_users, bare.n_items) == (150, 200) and not hasattr(bare, 'embeddings')
    with pytest.raises(NotImplementedError, match='embeddings'):
        bare.scores(torch.tensor([0]))
    with pytest.raises(NotImplementedError, match='loss'):
        bare.loss({})
    model = TinyMF(data)
    full = model.scores(torch.tensor([3, 4]))
    assert full.shape == (2, 200)
    torch.testing.assert_close(model.scores(torch.tensor([3, 4]), torch.tensor([7, 1])), full[:, [7, 1]])


def test_registry(data):
    register_model('_tiny_test')(TinyMF)
    try:
        register_model('_tiny_test')(TinyMF)  # the same class again: fine
        assert isinstance(build_model('_tiny_test', data, dim=4), TinyMF)
        with pytest.raises(ValueError, match='taken by'):
            register_model('_tiny_test')(type('TinyMF2', (TinyMF,), {}))
        # a notebook (module __main__) defining the class its module exports, then the module imported: replaced
        in_notebook = type('TinyMF', (TinyMF,), {'__module__': '__main__'})
        register_model('_tiny_test')(in_notebook)
        assert MODELS['_tiny_test'] is in_notebook
        register_model('_tiny_test')(TinyMF)
        assert MODELS['_tiny_test'] is TinyMF
        with pytest.raises(ValueError, match='taken by'):   # same module name is not enough: the name must match
            register_model('_tiny_test')(type('Other', (TinyMF,), {'__module__': '__main__'}))
    finally:
        del MODELS['_tiny_test']
    with pytest.raises(KeyError, match="no model registered as 'no-such-model'"):
        build_model('no-such-model', data)


def test_train_config_is_checked(data):
    with pytest.raises(TypeError, match=r"TrainConfig: unknown config key\(s\) epoch, learning_rate"):
        Trainer(TinyMF(data), data, {'epoch': 3}, learning_rate=0.1)
    for bad in ({'batch_size': 0}, {'patience': 0}, {'epochs': -1}, {'lr': 0.0}, {'metric': 'recall20'}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    with pytest.raises(TypeError, match='no loss'):
        Trainer(nn.Linear(2, 2), data)
    assert Trainer(TinyMF(data), data, TrainConfig(lr=0.5), epochs=2).config == TrainConfig(lr=0.5, epochs=2)


def test_bpr_loss():
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    expected = (math.log1p(math.exp(-1)) + math.log1p(math.exp(1)) + 2 * math.log(2)) / 4
    assert abs(bpr_loss(pos, neg).item() - expected) < 1e-6
    assert bpr_loss(torch.tensor([1e4]), torch.tensor([-1e4])).item() == 0.0
    assert math.isclose(bpr_loss(torch.tensor([-1e4]), torch.tensor([1e4])).item(), 2e4, rel_tol=1e-6)


# --- the sampler ---------------------------------------------------------------------------------------------

def test_sampler_never_returns_a_positive_and_repeats_with_its_generator(data):
    train = data.split('train')
    sampler = NegativeSampler(train, data.n_users, data.n_items, n_neg=3)
    negatives = sampler.sample(train[:, 0], torch.Generator().manual_seed(4))
    assert negatives.shape == (len(train), 3) and negatives.dtype == torch.long
    assert negatives.min() >= 0 and negatives.max() < data.n_items
    users = train[:, 0, None].expand(-1, 3)
    assert not sampler.is_positive(users, negatives).any()
    pairs = set(map(tuple, train.tolist()))  # an independent membership check
    assert not any((u, j) in pairs for u, j in zip(users.flatten().tolist(), negatives.flatten().tolist()))
    assert torch.equal(negatives, sampler.sample(train[:, 0], torch.Generator().manual_seed(4)))
    assert not torch.equal(negatives, sampler.sample(train[:, 0], torch.Generator().manual_seed(5)))


def test_sampler_dense_users_and_full_users():
    n_items = 1000
    dense = torch.stack([torch.zeros(n_items - 1, dtype=torch.long), torch.arange(1, n_items)], 1)  # all but item 0
    sparse = torch.tensor([[1, 5]])
    sampler = NegativeSampler(torch.cat([dense, sparse]), 2, n_items, n_neg=2, max_rounds=3)
    draws = sampler.sample(torch.tensor([0] * 1000 + [1] * 1000), torch.Generator().manual_seed(0))
    assert (draws[:1000] == 0).all()  # the rank draw finds the one free item after the rounds run out
    assert not (draws[1000:] == 5).any() and len(draws[1000:].unique()) > 500
    full = torch.stack([torch.full((n_items,), 1), torch.arange(n_items)], 1)
    with pytest.raises(ValueError, match=r"1 user\(s\) have all 1000 items in train.*users \[1\]"):
        NegativeSampler(torch.cat([sparse, full]), 3, n_items)
    with pytest.raises(ValueError, match='n_neg'):
        NegativeSampler(sparse, 2, n_items, n_neg=0)
    empty = NegativeSampler(torch.zeros(0, 2, dtype=torch.long), 2, 5)
    assert empty.sample(torch.tensor([0, 1])).shape == (2, 1)


def test_sampler_is_vectorised():
    generator = torch.Generator().manual_seed(0)
    train = torch.stack([torch.randint(20_000, (1_000_000,), generator=generator),
                         torch.randint(10_000, (1_000_000,), generator=generator)], 1)
    sampler = NegativeSampler(train, 20_000, 10_000)
    start = time.perf_counter()
    negatives = sampler.sample(train[:, 0], generator)
    assert time.perf_counter() - start < 2.0  # one million draws (about 0.2 s here)
    assert not sampler.is_positive(train[:, 0], negatives[:, 0]).any()


# --- the loop ------------------------------------------------------------------------------------------------

def test_same_seed_same_numbers_other_seed_differs(data):
    first, second, other = fit(data)[0], fit(data)[0], fit(data, seed=1, model_cls=TinyMF)[0]
    assert first.valid.metrics == second.valid.metrics and first.test.metrics == second.test.metrics
    assert [h['loss'] for h in first.history] == [h['loss'] for h in second.history]
    assert [h['loss'] for h in first.history] != [h['loss'] for h in other.history]


def test_history_and_result_fields(data):
    result, _ = fit(data, epochs=7, patience=20, eval_every=3)
    assert [h['epoch'] for h in result.history] == list(range(1, 8)) and result.epochs_run == 7
    assert [h['valid'] is not None for h in result.history] == [False, False, True, False, False, True, True]
    for entry in result.history:
        assert {'epoch', 'loss', 'bpr', 'reg', 'valid', 'train_seconds', 'eval_seconds', 'peak_rss_mb'} <= set(entry)
        assert entry['train_seconds'] > 0 and entry['peak_rss_mb'] > 10
        assert math.isclose(entry['loss'], entry['bpr'] + entry['reg'], rel_tol=1e-5)
        assert (entry['eval_seconds'] > 0) == (entry['valid'] is not None)
    assert result.best_epoch in (3, 6, 7) and not result.stopped_early
    assert result.train_seconds_per_epoch > 0 and result.eval_seconds > 0 and result.peak_memory_mb > 10
    assert result.peak_cuda_memory_mb is None and result.world_size == 1 and result.resumed_from is None
    assert result.config == asdict(TrainConfig(**{**QUICK, "epochs": 7, "patience": 20, "eval_every": 3}))
    assert set(result.valid.metrics) >= {'recall@10', 'recall@20', 'ndcg@20'}
    assert 'best_epoch' in repr(result) and len(repr(result)) < 300


def test_patience_counts_evaluations_and_best_state_is_restored(data):
    result, model = fit(data, epochs=40, patience=2, lr=0.3)  # a high lr overfits fast and stops early
    assert result.stopped_early and result.epochs_run == result.best_epoch + 2
    curve = [h['valid']['recall@20'] for h in result.history]
    assert curve[result.best_epoch - 1] == max(curve) and all(v <= max(curve) for v in curve[result.best_epoch:])
    assert result.valid.metrics['recall@20'] == max(curve)  # the model was put back to the best state


def test_test_split_is_evaluated_once_at_the_best_state(data, monkeypatch):
    calls, original = [], mmrec_nb.evaluate.evaluate
    def recording(model, data, split='valid', **kwargs):
        out = original(model, data, split, **kwargs)
        calls.append((split, parameter_digest(model), out.metrics['recall@20']))
        return out
    monkeypatch.setattr(mmrec_nb.evaluate, 'evaluate', recording)
    result, _ = fit(data, epochs=6, patience=6)
    splits = [split for split, _, _ in calls]
    assert splits == ['valid'] * 7 + ['test']  # 6 epochs, the final valid at the best state, then test once
    best_digest = calls[result.best_epoch - 1][1]
    assert calls[-1][1] == calls[-2][1] == best_digest
    assert result.test.metrics['recall@20'] == calls[-1][2]


def test_public_hooks_steer_stopping_restoring_and_test(data, monkeypatch):
    "A subclass that watches its own metric, restores its own state and never looks at test (as CohortTrainer does)."
    splits, original = [], mmrec_nb.evaluate.evaluate
    monkeypatch.setattr(mmrec_nb.evaluate, 'evaluate', lambda m, d, split='valid', **kw: (splits.append(split),
                                                                                         original(m, d, split, **kw))[1])
    watched = iter([0.1, 0.5, 0.2, 0.3, 0.4, 0.9])      # best at epoch 2, then 3 evaluations without a gain

    class Hooked(Trainer):
        scores_test = False
        restored = 0

        def validation_metrics(self):
            return {'recall@20': next(watched)}

        def restore_best(self):
            super().restore_best()
            self.restored += 1

    seed_everything(0)
    trainer = Hooked(TinyMF(data), data, {**QUICK, 'epochs': 6, 'patience': 3})
    result = trainer.fit()
    assert result.test is None and 'test' not in splits and splits == ['valid']   # only the final valid pass
    assert result.best_epoch == 2 and result.stopped_early and result.epochs_run == 5
    assert [h['valid']['recall@20'] for h in result.history] == [0.1, 0.5, 0.2, 0.3, 0.4]
    assert trainer.restored == 1


def test_batches_and_epoch_hook(data):
    seen = {'epochs': [], 'shapes': set()}

    class Recording(TinyMF):
        def on_epoch_start(self, epoch):
            seen['epochs'].append(epoch)

        def loss(self, batch):
            seen['shapes'].add(tuple(batch['neg'].shape))
            assert batch['users'].shape == batch['pos'].shape == batch['neg'].shape[:1]
            return super().loss(batch)

    fit(data, model_cls=Recording, epochs=3, patience=3, n_neg=3)
    n_train = len(data.split('train'))
    assert seen['epochs'] == [1, 2, 3]
    assert seen['shapes'] == {(512, 3), (n_train % 512, 3)}


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_loss_raises_training_diverged(data, bad):
    class Diverging(TinyMF):
        def on_epoch_start(self, epoch):
            self.epoch, self.batch = epoch, 0

        def loss(self, batch):
            terms = super().loss(batch)
            self.batch += 1
            if (self.epoch, self.batch) == (2, 2):
                terms = {**terms, 'reg': terms['reg'] * bad}
                terms['loss'] = terms['bpr'] + terms['reg']
            return terms

    with pytest.raises(TrainingDiverged) as caught:
        fit(data, model_cls=Diverging)
    error = caught.value
    assert isinstance(error, RuntimeError) and (error.epoch, error.batch) == (2, 2)
    assert 'epoch 2, batch 2/' in str(error) and 'non-finite loss, reg' in str(error)
    assert f"reg={bad}" in str(error) and 'bpr=0.' in str(error)


def test_loss_must_return_the_total(data):
    class NoTotal(TinyMF):
        def loss(self, batch):
            return {'bpr': super().loss(batch)['bpr']}
    with pytest.raises(KeyError, match="must return a dict with 'loss'"):
        fit(data, model_cls=NoTotal)


def test_unknown_metric_is_refused_before_training(data):
    with pytest.raises(ValueError, match="TrainConfig.metric must be one of recall, ndcg, precision, hit .*'hitrate@20'"):
        fit(data, metric='hitrate@20')                    # refused by the config: no epoch is trained first
    with pytest.raises(ValueError, match='TrainConfig.metric'):
        TrainConfig(metric='recall@0')


def test_unavailable_device_is_refused_before_training():
    if torch.cuda.is_available():
        pytest.skip('this machine has a CUDA device')
    with pytest.raises(ValueError, match="TrainConfig.device 'cuda'.*use device='cpu'"):
        TrainConfig(device='cuda')
    with pytest.raises(ValueError, match="TrainConfig.device 'gpu0' is not a torch device"):
        TrainConfig(device='gpu0')


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize('progress, ci, shown', [(True, None, True), (True, '1', False), (False, None, False)])
def test_progress_bar_only_on_a_terminal_outside_ci(data, monkeypatch, progress, ci, shown):
    terminal = _Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    if ci is None:
        monkeypatch.delenv('CI', raising=False)
    else:
        monkeypatch.setenv('CI', ci)
    fit(data, epochs=2, progress=progress)
    assert ('TinyMF' in terminal.getvalue()) == shown


# --- DDP helpers in one process ------------------------------------------------------------------------------

def test_shard_bounds_partition_every_batch():
    for world_size in (1, 2, 3, 4):
        for size in range(1, 12):
            shards = [shard_bounds(100, 100 + size, rank, world_size) for rank in range(world_size)]
            real = [(lo, hi) for lo, hi, weight in shards if weight > 0]
            assert [i for lo, hi in real for i in range(lo, hi)] == list(range(100, 100 + size))
            assert math.isclose(sum(weight for _, _, weight in shards), world_size)
            assert all(hi - lo == 1 for lo, hi, weight in shards if weight == 0)


def test_single_process_wrapper_and_environment(data):
    model = TinyMF(data)
    wrapped = wrap_for_training(model, dist_env({}), torch.device('cpu'))
    assert isinstance(wrapped, LossModule) and wrapped.model is model
    batch = {'users': torch.tensor([0, 1]), 'pos': torch.tensor([2, 3]), 'neg': torch.tensor([[4], [5]])}
    objective, terms = wrapped(batch, 0.5)
    torch.testing.assert_close(objective, 0.5 * terms['loss'])
    with pytest.raises(ValueError, match='RANK=2 is outside WORLD_SIZE=2'):
        dist_env({'WORLD_SIZE': '2', 'RANK': '2'})
    assert dist_env({'WORLD_SIZE': '4', 'RANK': '3', 'LOCAL_RANK': '1'}).local_rank == 1


def test_model_with_parameters_outside_the_loss_trains(data):
    class Unused(TinyMF):
        def __init__(self, data, **config):
            super().__init__(data, **config)
            self.scoring_head = nn.Linear(16, 1)  # never touched by loss(): DDP needs find_unused_parameters

    result, model = fit(data, model_cls=Unused, epochs=2)
    assert result.epochs_run == 2 and model.scoring_head.weight.grad is None
