"""Factored vs materialised per-item fusion weights at the released MetaMMF first-layer shape.

    python benchmarks/bench_cp_fusion.py [--batch 64] [--repeats 5] [--device cpu|cuda] [--threads N]

Two forms of y_i = x_i^T (W + T x_3 s_i) + b (nbs/10a_cp_fusion_op.ipynb):
  factored      `cp_fusion_linear`, eq. (mmf-cp-fused): the Triton kernel on CUDA, the PyTorch reference on CPU
  materialized  T rebuilt from its CP factors, then every W_i built and applied, eqs. (mmf-meta-weight)-(mmf-meta-linear)
Each (form, mode) runs in its own process. Peak memory is what a step adds over the inputs and parameters:
on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs; Linux) minus the resident set
before the step, on CUDA torch's peak allocation minus its allocation before the step.
Modes: 'forward' (no autograd) and 'train' (forward + backward of a random linear loss).
Prints the ratios and writes results/bench/cp_fusion_<device>.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

SHAPE = {'P': 2276, 'Q': 1024, 'Z': 5, 'R': 16}   # the released code's first fusion layer
RELEASED_BATCH = 3000
FLOAT32_BYTES = 4


from _peak_memory import peak_bytes as _peak_bytes, reset_peak as _reset_peak  # noqa: E402  (this folder)


def worker(form: str, mode: str, batch: int, repeats: int, device_name: str, threads: int) -> dict:
    "Time `repeats` steps of one form in this process; the peak memory it adds over the inputs."
    import torch
    from mmrec_nb.ops.cp_fusion import cp_fusion_linear, cp_to_tensor, materialized_fusion_linear
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    generator = torch.Generator().manual_seed(0)
    P, Q, Z, R = (SHAPE[k] for k in 'PQZR')
    make = lambda *shape, scale=1.0: (torch.randn(*shape, generator=generator) * scale).to(device)
    train = mode == 'train'
    x, s = make(batch, P), make(batch, Z)
    params = [make(P, Q, scale=P ** -0.5), make(P, R, scale=P ** -0.5), make(Q, R, scale=R ** -0.5),
              make(Z, R, scale=Z ** -0.5), make(Q, scale=0.0)]
    for tensor in [x, s, *params]:
        tensor.requires_grad_(train)
    weight, A, B, C, bias = params
    upstream = make(batch, Q)

    def step(rows=batch):
        with torch.set_grad_enabled(train):
            if form == 'factored':
                y = cp_fusion_linear(x[:rows], s[:rows], weight, A, B, C, bias)
            else:
                y = materialized_fusion_linear(x[:rows], s[:rows], weight, cp_to_tensor(A, B, C), bias)
            if train:
                torch.autograd.grad((y * upstream[:rows]).sum(), [x, s, *params])
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    step(rows=1)   # loads libraries and compiles the kernel before the baseline
    baseline = _reset_peak(device)
    step()                                                     # warm-up at full size
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return {'form': form, 'mode': mode, 'ms': 1e3 * times[len(times) // 2], 'ms_all': [1e3 * t for t in times],
            'peak_mb': max(_peak_bytes(device) - baseline, 0) / 2 ** 20}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument('--out', default=None, help='default: results/bench/cp_fusion_<device>.json')
    parser.add_argument('--worker', nargs=2, metavar=('FORM', 'MODE'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.batch, args.repeats, args.device, args.threads)))
        return

    import torch
    runs = {}
    for mode in ('train', 'forward'):
        for form in ('factored', 'materialized'):
            command = [sys.executable, __file__, '--worker', form, mode, '--batch', str(args.batch),
                       '--repeats', str(args.repeats), '--device', args.device, '--threads', str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{form}/{mode} failed:\n{done.stderr[-3000:]}")
            runs[f'{form}/{mode}'] = json.loads(done.stdout.strip().splitlines()[-1])
    P, Q, R = SHAPE['P'], SHAPE['Q'], SHAPE['R']
    weights_bytes = RELEASED_BATCH * P * Q * FLOAT32_BYTES          # the N matrices W_i
    at_batch = {'batch': RELEASED_BATCH, 'materialized_weights_gb': weights_bytes / 1e9,
                'materialized_train_gb': 2 * weights_bytes / 1e9,    # W_i and dL/dW_i under autograd
                'factored_mb': RELEASED_BATCH * (Q + 2 * R) * FLOAT32_BYTES / 2 ** 20}  # y, h, u
    device_name = (torch.cuda.get_device_name(0) if args.device.startswith('cuda')
                   else f'{platform.processor() or platform.machine()} CPU, {args.threads} threads')
    report = {'shape': SHAPE, 'batch': args.batch, 'repeats': args.repeats, 'device': args.device,
              'device_name': device_name, 'torch': torch.__version__, 'runs': runs, 'at_batch': at_batch,
              'kernel': 'triton' if args.device.startswith('cuda') else 'reference',
              'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    print(f"cp_fusion_linear at P={P} Q={Q} Z={SHAPE['Z']} R={R}, batch {args.batch}, {device_name} "
          f"(factored = {report['kernel']})")
    for mode in ('train', 'forward'):
        naive, ours = runs[f'materialized/{mode}'], runs[f'factored/{mode}']
        print(f"  {mode:8s} materialized/factored: time {naive['ms']:.1f}/{ours['ms']:.1f} ms = "
              f"{naive['ms'] / ours['ms']:.1f}x, peak memory {naive['peak_mb']:.1f}/{ours['peak_mb']:.1f} MB = "
              f"{naive['peak_mb'] / max(ours['peak_mb'], 1e-3):.1f}x")
    print(f"  at batch {RELEASED_BATCH} the materialized W_i need {at_batch['materialized_weights_gb']:.1f} GB "
          f"({at_batch['materialized_train_gb']:.1f} GB with their gradient); factored activations "
          f"{at_batch['factored_mb']:.1f} MB")
    out = Path(args.out or Path(__file__).resolve().parents[1] / 'results' / 'bench' / f"cp_fusion_{args.device.split(':')[0]}.json")
    from mmrec_nb.repro import write_json_atomic  # here: the measuring workers import only what they measure
    write_json_atomic(out, report)
    print(f"  wrote {out}")


if __name__ == '__main__':
    main()
