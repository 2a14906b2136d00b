"""Seconds per training epoch of every registered model under its fit hook, as ratios to BPR-MF.

    python benchmarks/bench_train.py [--dataset lastfm2k] [--epochs 3] [--repeats 3] [--threads 1]
                                     [--models bprmf,lightgcn,...]

Each model is built with its defaults on the data set (after `torch.manual_seed(0)`) and fitted for `epochs`
epochs through its fit hook (the shared Trainer, or a model's own phases), validating only on the last epoch
(eval_every = epochs) and without checkpoints. The time is the fit's own `train_seconds_per_epoch`: training
only, validation excluded; for Meta Fusion it is one epoch of the whole cohort. The models run one after
another in one process with `threads` threads, interleaved over `repeats` rounds so that a burst of load on a
shared machine hits every model alike; each model's median over rounds is reported with its ratio to BPR-MF's
median of the same run. Without `--dataset`, lastfm2k is used when it is on this machine, else ml100k.
Prints a table and writes results/bench/train_<dataset>_<device>.json.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default=None, help='a data set name or folder (default: lastfm2k, else ml100k)')
    parser.add_argument('--epochs', type=int, default=3, help='epochs per fit (default 3)')
    parser.add_argument('--repeats', type=int, default=3, help='rounds over all models (default 3)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    parser.add_argument('--models', default=None, help='comma-separated registry names (default: every model)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=None, help='report path (default results/bench/train_<dataset>_<device>.json)')
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1 or args.threads < 1:
        parser.error('--epochs, --repeats and --threads must be >= 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from mmrec_nb.repro import dataset_unavailable, registered_models, write_json_atomic
    from mmrec_nb.data import load_dataset
    from mmrec_nb.train import TrainConfig, build_model
    torch.set_num_threads(args.threads)
    name = args.dataset or ('lastfm2k' if dataset_unavailable('lastfm2k') is None else 'ml100k')
    data = load_dataset(name)
    registry = registered_models()
    models = [m for m in (args.models.split(',') if args.models else sorted(registry)) if not m.startswith('_')]
    unknown = [m for m in models if m not in registry]
    if unknown:
        print(f"unknown model(s) {unknown}; registered: {sorted(registry)}", file=sys.stderr)
        return 2
    if 'bprmf' not in models:
        models.insert(0, 'bprmf')                                   # the reference of every ratio
    config = TrainConfig(epochs=args.epochs, eval_every=args.epochs, progress=False, device=args.device)
    seconds = {m: [] for m in models}
    start = time.perf_counter()
    for round_ in range(args.repeats):
        for model in models:
            torch.manual_seed(0)
            fit = build_model(model, data).fit(data, config)
            seconds[model].append(float(fit.train_seconds_per_epoch))
            print(f"round {round_ + 1}/{args.repeats} {model}: {seconds[model][-1]:.4f} s/epoch", flush=True)
    medians = {m: statistics.median(v) for m, v in seconds.items()}
    reference = medians['bprmf']
    print(f"\n{data.name}: {data.n_users} users, {data.n_items} items, {len(data.split('train'))} training pairs; "
          f"{args.threads} thread(s), {args.epochs} epochs per fit, median of {args.repeats} rounds")
    print(f"{'model':<14}{'s/epoch':>10}{'x BPR-MF':>10}   rounds")
    for model in models:
        rounds = ', '.join(f'{v:.4f}' for v in seconds[model])
        print(f"{model:<14}{medians[model]:>10.4f}{medians[model] / reference:>10.2f}   {rounds}")
    report = {'dataset': data.name, 'n_users': data.n_users, 'n_items': data.n_items,
              'n_train': len(data.split('train')), 'threads': args.threads, 'epochs': args.epochs,
              'repeats': args.repeats, 'device': args.device, 'seconds_per_epoch': seconds,
              'median_seconds_per_epoch': medians, 'ratio_to_bprmf': {m: medians[m] / reference for m in models},
              'wall_seconds': time.perf_counter() - start}
    out = Path(args.out) if args.out else ROOT / 'results' / 'bench' / f'train_{data.name}_{args.device}.json'
    write_json_atomic(out, report)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
