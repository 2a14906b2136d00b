"""The Trainer under torchrun with two CPU processes (gloo).

Tolerance. Each global batch is split between the ranks with weights (eq. train-ddp-weight) that make the
averaged gradient equal to the one-process gradient, and every rank draws the same order and negatives, so
the two runs see the same batches; only the order of float32 additions differs (two partial sums and an
all-reduce instead of one sum). After 15 epochs x 10 batches of Adam that moves parameters by ~1e-6
(measured on this machine: 4e-6 after 30 epochs; bound 1e-4), far below the score gaps that decide a
ranking; the metrics were identical here. The bound on the metrics, 5e-3, admits at most two or three users
whose top-20 changes by one near-tied item (one such swap moves Recall@20 of 300 users by ~1.7e-3), and the
per-epoch losses agree to 1e-5 relative (measured: 1e-7). The ranks themselves must agree bit for bit:
DDP all-reduces the gradients and every rank applies the same Adam step.
"""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / 'scripts'))
from runs import TORCHRUN, finish, launch, result  # noqa: E402

pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason='torchrun is not installed next to this Python')

# 4,781 training rows in batches of 500: ten global batches, the last of 281 rows (split 140/141)
ARGS = ['--epochs', '15', '--patience', '15', '--lr', '0.02', '--batch-size', '500']
METRIC_TOLERANCE, LOSS_TOLERANCE, PARAMETER_TOLERANCE = 5e-3, 1e-5, 1e-4


def test_two_processes_match_one(tmp_path):
    two = launch(tmp_path / 'two.json', *ARGS, nproc=2)
    one = launch(tmp_path / 'one.json', *ARGS)
    for process in (two, one):
        code, output = finish(process)
        assert code == 0, output[-3000:]
    ddp, single = result(tmp_path / 'two.json'), result(tmp_path / 'one.json')
    assert ddp['world_size'] == 2 and single['world_size'] == 1
    assert len(ddp['digests']) == 2 and ddp['digests'][0] == ddp['digests'][1]  # ranks in sync, bit for bit
    assert ddp['epochs_run'] == single['epochs_run'] == 15
    for split in ('valid', 'test'):
        for name, value in single[split].items():
            assert abs(ddp[split][name] - value) <= METRIC_TOLERANCE, (split, name)
    assert single['test']['recall@20'] > 0.1  # it learned something worth comparing
    for a, b in zip(ddp['loss'], single['loss']):
        assert abs(a - b) <= LOSS_TOLERANCE * abs(b)
    ddp_state, single_state = torch.load(tmp_path / 'two.pt'), torch.load(tmp_path / 'one.pt')
    assert max((ddp_state[k] - single_state[k]).abs().max().item() for k in single_state) <= PARAMETER_TOLERANCE


def test_nan_on_one_rank_stops_every_rank(tmp_path):
    code, output = finish(launch(tmp_path / 'nan.json', *ARGS, nproc=2, env={'MMREC_TEST_NAN_AT': '2,3'}), timeout=90)
    assert code != 0 and not (tmp_path / 'nan.json').exists()
    assert 'training diverged at epoch 2, batch 3/10, rank 0: non-finite loss, bpr' in output
    assert 'training diverged at epoch 2, batch 3/10, rank 1: another rank saw a non-finite loss' in output
