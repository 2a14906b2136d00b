"""Checkpoints: a run killed mid-epoch and restarted with the same arguments ends with exactly the result of
a run that was never killed; a restart with other arguments is refused, naming them."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / 'scripts'))
from runs import finish, launch, result  # noqa: E402
from train_run import TinyMF  # noqa: E402

from mmrec_nb.checkpoint import CheckpointMismatch, seed_everything  # noqa: E402
from mmrec_nb.data import synthetic  # noqa: E402
from mmrec_nb.train import Trainer  # noqa: E402

# lr and patience chosen so that the uninterrupted run stops early (at epoch 15) and the crash, mid-epoch 13,
# comes when the early-stopping counter is not zero (epoch 12 is worse than 11): every piece of state matters.
ARGS = ['--lr', '0.05', '--patience', '2', '--epochs', '30']
CRASH_AFTER = 12


def test_killed_mid_epoch_resumes_to_identical_result(tmp_path):
    folder = tmp_path / 'checkpoints'
    uninterrupted = launch(tmp_path / 'full.json', *ARGS)
    crashing = launch(tmp_path / 'crash.json', *ARGS, '--checkpoint-dir', folder,
                      env={'MMREC_TEST_CRASH_AFTER_EPOCH': str(CRASH_AFTER)})
    code, output = finish(crashing)
    assert code == 17, output  # os._exit in the middle of epoch CRASH_AFTER + 1
    assert not (tmp_path / 'crash.json').exists()
    state = torch.load(folder / 'last.pt', weights_only=True)
    assert state['epoch'] == CRASH_AFTER and state['early_stopping']['bad_evals'] > 0
    assert sorted(p.name for p in folder.iterdir()) == ['best.pt', 'last.pt']  # no temporary file left

    code, output = finish(launch(tmp_path / 'resumed.json', *ARGS, '--checkpoint-dir', folder))
    assert code == 0, output
    code, output = finish(uninterrupted)
    assert code == 0, output
    full, resumed = result(tmp_path / 'full.json'), result(tmp_path / 'resumed.json')
    assert full['stopped_early'] and full['epochs_run'] > CRASH_AFTER + 2
    assert resumed['resumed_from'] == CRASH_AFTER and full['resumed_from'] is None
    for key in ('best_epoch', 'epochs_run', 'stopped_early', 'valid', 'test', 'loss', 'valid_curve', 'digests'):
        assert resumed[key] == full[key], key  # exact: same floats, bit-identical parameters


class Interrupted(Exception):
    pass


def crash_at(model, epoch, batch):
    "Make `model.loss` raise at `batch` of `epoch`, as a kill would."
    loss, where = model.loss, {'epoch': 0, 'batch': 0}
    def on_epoch_start(e):
        where.update(epoch=e, batch=0)
    def crashing_loss(b):
        where['batch'] += 1
        if (where['epoch'], where['batch']) == (epoch, batch):
            raise Interrupted
        return loss(b)
    model.on_epoch_start, model.loss = on_epoch_start, crashing_loss


def fit_small(data, folder=None, seed=0, crash=None, **overrides):
    seed_everything(seed)
    model = TinyMF(data, **overrides.pop('model', {}))
    if crash:
        crash_at(model, *crash)
    config = dict(epochs=4, patience=2, batch_size=512, lr=0.05, progress=False, checkpoint_dir=folder)
    return Trainer(model, data, {**config, **overrides}).fit(), model


@pytest.fixture(scope='module')
def data():
    return synthetic(n_users=120, n_items=150, seed=3)


def test_different_arguments_are_refused_with_the_keys_named(data, tmp_path):
    fit_small(data, tmp_path)
    with pytest.raises(CheckpointMismatch, match=r"train\.lr: checkpoint 0\.05, now 0\.01"):
        fit_small(data, tmp_path, lr=0.01)
    with pytest.raises(CheckpointMismatch, match=r"model\.dim.*model\.n_parameters"):
        fit_small(data, tmp_path, model={'dim': 8})
    with pytest.raises(CheckpointMismatch, match=r"data\.n_users.*data\.test.*data\.train.*data\.valid"):
        fit_small(synthetic(n_users=100, n_items=150, seed=3), tmp_path)
    # keys that cannot change the result do not block a resume
    fit_small(data, tmp_path, progress=True, checkpoint_every=3)


def test_finished_run_is_not_trained_again(data, tmp_path):
    first, _ = fit_small(data, tmp_path)
    mtime = (tmp_path / 'last.pt').stat().st_mtime_ns
    again, _ = fit_small(data, tmp_path, seed=7)  # another init: the checkpoint decides
    assert again.resumed_from == first.epochs_run == again.epochs_run
    assert again.valid.metrics == first.valid.metrics and again.test.metrics == first.test.metrics
    assert (tmp_path / 'last.pt').stat().st_mtime_ns == mtime  # nothing was trained or written


def test_checkpoint_contents(data, tmp_path):
    fit, model = fit_small(data, tmp_path, epochs=5, patience=5)
    state = torch.load(tmp_path / 'last.pt', weights_only=True)  # plain tensors and values, no pickled code
    assert set(state) == {'format', 'epoch', 'finished', 'model', 'optimizer', 'rng', 'best_state', 'early_stopping',
                          'history', 'fingerprint', 'fingerprint_hash'}
    assert set(state['rng']) >= {'python', 'numpy', 'torch', 'sampler'}
    assert state['epoch'] == 5 and state['finished'] and len(state['history']) == 5
    assert state['early_stopping']['best_epoch'] == fit.best_epoch
    best = torch.load(tmp_path / 'best.pt', weights_only=True)
    assert best['epoch'] == fit.best_epoch and best['recall@20'] == fit.valid.metrics['recall@20']
    for name, tensor in model.state_dict().items():  # the model ends at the best state, as saved
        assert torch.equal(best['model'][name], tensor) and torch.equal(state['best_state'][name], tensor)
    assert state['optimizer']['state'][0]['step'] > 0


def test_checkpoint_every_n_epochs_resumes_from_the_last_written(data, tmp_path):
    full, _ = fit_small(data, None, epochs=7, patience=7)
    with pytest.raises(Interrupted):
        fit_small(data, tmp_path, epochs=7, patience=7, checkpoint_every=3, crash=(6, 1))
    assert torch.load(tmp_path / 'last.pt', weights_only=True)['epoch'] == 3
    resumed, _ = fit_small(data, tmp_path, epochs=7, patience=7, checkpoint_every=3, seed=5)
    assert resumed.resumed_from == 3 and resumed.epochs_run == 7
    assert [h['loss'] for h in resumed.history] == [h['loss'] for h in full.history]
    assert resumed.valid.metrics == full.valid.metrics and resumed.test.metrics == full.test.metrics
    assert torch.load(tmp_path / 'last.pt', weights_only=True)['epoch'] == 7  # the final epoch is always written
