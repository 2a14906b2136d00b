"""Streamed vs dense full-ranking top-K at the size of Amazon Baby (nbs/01_evaluate.ipynb, eq. eval-memory).

    python benchmarks/bench_eval.py [--users 19445] [--items 7050] [--dim 64] [--k 20] [--per-user 8]
                                    [--batch-users 1024] [--item-block 4096] [--repeats 3] [--device cpu|cuda]

Both forms rank every user against every item with ~8 random training items per user masked:
  dense     the naive way: S = U I^T for all users at once, S[train] = -inf in place, one torch.topk
  streamed  mmrec_nb.evaluate.rank_topk: batches of users x blocks of items through masked_block_topk
            (the PyTorch reference on CPU, the Triton kernel on CUDA) merged into a running top-K
Each form runs in its own process. Time is the median of `repeats` runs. Peak memory is what ranking adds over
the inputs: on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs; Linux) minus the resident
set just before ranking, with the embeddings, masks and libraries already loaded, and glibc's mmap threshold
fixed at 128 KiB so that freed tensors leave the resident set (otherwise the heap keeps them and the peak
counts blocks that are dead); on CUDA torch's peak
allocation minus its allocation before ranking. The sizes eq. (eval-memory) predicts are printed beside it.
Prints a table with the ratios and writes results/bench/eval_<device>.json.

One CPU thread by default: on a machine shared with other jobs, the streamed form's many small tensor ops pay
OpenMP's synchronisation whenever a worker thread is descheduled (on the 2-core build machine under a load of
~6, two threads made the streamed form 4-8x slower than dense, one thread about 1.5x). Pass --threads N on a quiet machine.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


from _peak_memory import peak_bytes as _peak_bytes, reset_peak as _reset_peak  # noqa: E402  (this folder)


def make_problem(users, items, dim, per_user, seed=0):
    "Random embeddings and ~per_user random training items per user (duplicates dropped)."
    import torch
    g = torch.Generator().manual_seed(seed)
    user_emb, item_emb = torch.randn(users, dim, generator=g), torch.randn(items, dim, generator=g)
    train = torch.stack([torch.arange(users).repeat_interleave(per_user),
                         torch.randint(0, items, (users * per_user,), generator=g)], 1)
    return user_emb, item_emb, torch.unique(train, dim=0)


def worker(form, args, ids_path) -> dict:
    import torch
    from mmrec_nb.evaluate import rank_topk, user_item_csr
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    user_emb, item_emb, train = make_problem(args.users, args.items, args.dim, args.per_user)
    user_emb, item_emb = user_emb.to(device), item_emb.to(device)
    exclude = user_item_csr(train, args.users, args.items)
    train_dev = train.to(device)

    def dense(n_users=args.users):
        scores = user_emb[:n_users] @ item_emb.T                                      # |U| x |I| floats
        rows = train_dev[:, 0] < n_users
        scores[train_dev[rows, 0], train_dev[rows, 1]] = float('-inf')
        return scores.topk(args.k, dim=1)

    def streamed(n_users=args.users):
        return rank_topk((user_emb, item_emb), torch.arange(n_users), k=args.k, exclude=exclude,
                         batch_users=args.batch_users, item_block=args.item_block, device=device)

    run = dense if form == 'dense' else streamed
    run(n_users=8)                              # libraries loaded (and kernels compiled) before the baseline
    baseline = _reset_peak(device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        values, ids = run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        del values
    peak = max(_peak_bytes(device) - baseline, 0)
    np.save(ids_path, ids.cpu().numpy())
    times.sort()
    return {'seconds': times[len(times) // 2], 'seconds_all': times, 'peak_mb': peak / 2 ** 20}


def predicted_mb(form, args) -> float:
    "Eq. (eval-memory) in float32, plus the (users x K) result of (score, id) pairs that both forms return."
    result = args.users * args.k * (4 + 8)
    if form == 'dense':
        return (4 * args.users * args.items + result) / 2 ** 20
    batch, block = min(args.batch_users, args.users), min(args.item_block, args.items)
    return (batch * (4 * block + block / 8) + result) / 2 ** 20


def _git_commit(root: Path) -> str:
    done = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else 'unknown'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--users', type=int, default=19445)
    parser.add_argument('--items', type=int, default=7050)
    parser.add_argument('--dim', type=int, default=64)
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--per-user', type=int, default=8)
    parser.add_argument('--batch-users', type=int, default=1024)
    parser.add_argument('--item-block', type=int, default=4096)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', default=None, help='default: results/bench/eval_<device>.json')
    parser.add_argument('--worker', nargs=2, metavar=('FORM', 'IDS_PATH'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args, args.worker[1])))
        return

    import torch
    root = Path(__file__).resolve().parents[1]
    runs, ids = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for form in ('dense', 'streamed'):
            path = str(Path(tmp) / f'{form}.npy')
            command = [sys.executable, __file__, '--worker', form, path] + [
                f'--{name.replace("_", "-")}={value}' for name, value in vars(args).items()
                if name not in ('worker', 'out')]
            # a fixed mmap threshold: glibc then maps every large tensor on its own and unmaps it when freed,
            # so the resident set follows live tensors instead of keeping freed blocks in its heap
            env = {**os.environ, 'MALLOC_MMAP_THRESHOLD_': str(1 << 17)}
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode:
                sys.exit(f"{form} failed:\n{done.stderr[-3000:]}")
            runs[form] = {**json.loads(done.stdout.strip().splitlines()[-1]), 'predicted_mb': predicted_mb(form, args)}
            ids[form] = np.load(path)
    identical = float((ids['dense'] == ids['streamed']).all(1).mean())
    same_sets = float((np.sort(ids['dense'], 1) == np.sort(ids['streamed'], 1)).all(1).mean())
    ratios = {'time': runs['streamed']['seconds'] / runs['dense']['seconds'],
              'memory': runs['streamed']['peak_mb'] / max(runs['dense']['peak_mb'], 1e-9),
              'predicted_memory': runs['streamed']['predicted_mb'] / runs['dense']['predicted_mb']}
    device_name = (torch.cuda.get_device_name(0) if args.device.startswith('cuda')
                   else f'{platform.processor() or platform.machine()} CPU')
    report = {'shape': {'users': args.users, 'items': args.items, 'dim': args.dim, 'k': args.k,
                        'per_user': args.per_user, 'batch_users': args.batch_users, 'item_block': args.item_block},
              'device': args.device, 'device_name': device_name, 'threads': args.threads, 'repeats': args.repeats,
              'streamed_path': 'triton' if args.device.startswith('cuda') else 'reference',
              'memory_method': ('peak RSS (VmHWM after clear_refs) minus RSS before ranking, '
                                'MALLOC_MMAP_THRESHOLD_=131072' if args.device == 'cpu'
                                else 'torch.cuda.max_memory_allocated minus memory_allocated before ranking'),
              'runs': runs, 'ratios': ratios, 'identical_rows': identical, 'same_set_rows': same_sets,
              'torch': torch.__version__, 'commit': _git_commit(root),
              'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}

    print(f"top-{args.k} of {args.users:,} users x {args.items:,} items, d={args.dim}, ~{args.per_user} masked per "
          f"user; {device_name}, {args.threads} threads; median of {args.repeats}")
    print(f"  {'':9s} {'time (s)':>9s} {'peak MB':>9s} {'eq. MB':>9s}")
    for form in ('dense', 'streamed'):
        run = runs[form]
        print(f"  {form:9s} {run['seconds']:9.2f} {run['peak_mb']:9.1f} {run['predicted_mb']:9.1f}")
    print(f"  {'ratio':9s} {ratios['time']:9.2f} {ratios['memory']:9.3f} {ratios['predicted_memory']:9.3f}"
          f"   (streamed / dense)")
    print(f"  identical top-{args.k} lists: {identical:.4%} of users (same sets: {same_sets:.4%})")
    out = Path(args.out or root / 'results' / 'bench' / f"eval_{args.device.split(':')[0]}.json")
    from mmrec_nb.repro import write_json_atomic  # here: the measuring workers import only what they measure
    write_json_atomic(out, report)
    print(f"  wrote {out}")


if __name__ == '__main__':
    main()
