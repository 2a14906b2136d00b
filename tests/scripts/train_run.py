"""Train a small BPR-MF with `mmrec_nb.train.Trainer` and write its result as JSON (rank 0).

Used by tests/test_resume.py (kill and resume) and tests/test_ddp.py (under torchrun). Two environment
variables belong to the tests, not to the library:
  MMREC_TEST_CRASH_AFTER_EPOCH=N  the process kills itself (os._exit, no cleanup) in the middle of epoch N+1,
                                  i.e. after checkpoint N is on disk;
  MMREC_TEST_NAN_AT=E,B           the loss becomes NaN at batch B of epoch E (on rank 0 only).
"""
import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

torch.set_num_threads(1)  # deterministic and light: several of these processes share two cores

import torch.distributed as dist
from torch import nn

from mmrec_nb.checkpoint import seed_everything
from mmrec_nb.data import synthetic
from mmrec_nb.distributed import parameter_digest
from mmrec_nb.train import Recommender, Trainer, TrainingDiverged, bpr_loss


@dataclass
class TinyMFConfig:
    dim: int = 16
    reg: float = 1e-4


class TinyMF(Recommender):
    "BPR-MF: s_ui = u_u . v_i, BPR plus L2 on the batch's embeddings."
    Config = TinyMFConfig

    def __init__(self, data, **config):
        super().__init__(data, **config)
        self.user_emb = nn.Embedding(self.n_users, self.config.dim)
        self.item_emb = nn.Embedding(self.n_items, self.config.dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)

    def embeddings(self):
        return self.user_emb.weight, self.item_emb.weight

    def loss(self, batch):
        u, i, j = self.user_emb(batch['users']), self.item_emb(batch['pos']), self.item_emb(batch['neg'])
        bpr = bpr_loss((u * i).sum(-1), (u[:, None] * j).sum(-1))
        reg = self.config.reg * (u.square().sum() + i.square().sum() + j.square().sum()) / len(u)
        return {'loss': bpr + reg, 'bpr': bpr, 'reg': reg}


def install_test_faults(model: TinyMF) -> None:
    "Wrap the model instance's hooks to crash or turn NaN where the test's environment variables say."
    crash_after = os.environ.get('MMREC_TEST_CRASH_AFTER_EPOCH')
    nan_at = os.environ.get('MMREC_TEST_NAN_AT')
    if crash_after is None and nan_at is None:
        return
    loss, where = model.loss, {'epoch': 0, 'batch': 0}

    def on_epoch_start(epoch):
        where.update(epoch=epoch, batch=0)

    def faulty_loss(batch):
        where['batch'] += 1
        if crash_after is not None and (where['epoch'], where['batch']) == (int(crash_after) + 1, 2):
            os._exit(17)  # as abrupt as SIGKILL: no exception handlers, no atexit, no flush
        terms = loss(batch)
        rank = dist.get_rank() if dist.is_initialized() else 0
        if nan_at is not None and rank == 0 and (where['epoch'], where['batch']) == tuple(map(int, nan_at.split(','))):
            terms = {**terms, 'bpr': terms['bpr'] * float('nan')}
            terms['loss'] = terms['bpr'] + terms['reg']
        return terms

    model.on_epoch_start, model.loss = on_epoch_start, faulty_loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--checkpoint-dir', default=None)
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--patience', type=int, default=3)
    parser.add_argument('--batch-size', type=int, default=512)
    parser.add_argument('--lr', type=float, default=5e-3)
    parser.add_argument('--n-neg', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--users', type=int, default=300)
    parser.add_argument('--items', type=int, default=400)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    data = synthetic(n_users=args.users, n_items=args.items, seed=1)
    seed_everything(args.seed)
    model = TinyMF(data)
    install_test_faults(model)
    trainer = Trainer(model, data, epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                      lr=args.lr, n_neg=args.n_neg, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
                      device=args.device, progress=False)
    try:
        fit = trainer.fit()
    except TrainingDiverged as error:
        print(f"TrainingDiverged: {error}", flush=True)
        raise SystemExit(3)
    digest = parameter_digest(model)
    digests = [digest]
    if dist.is_initialized():
        digests = [None] * dist.get_world_size()
        dist.all_gather_object(digests, digest)
    if not dist.is_initialized() or dist.get_rank() == 0:
        out = Path(args.out)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out.with_suffix('.pt'))
        out.write_text(json.dumps({
            'best_epoch': fit.best_epoch, 'epochs_run': fit.epochs_run, 'stopped_early': fit.stopped_early,
            'resumed_from': fit.resumed_from, 'world_size': fit.world_size,
            'valid': fit.valid.metrics, 'test': fit.test.metrics,
            'loss': [entry['loss'] for entry in fit.history],
            'valid_curve': [entry['valid']['recall@20'] if entry['valid'] else None for entry in fit.history],
            'digests': digests, 'train_seconds_per_epoch': fit.train_seconds_per_epoch,
            'eval_seconds': fit.eval_seconds, 'peak_memory_mb': fit.peak_memory_mb}, indent=1))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
