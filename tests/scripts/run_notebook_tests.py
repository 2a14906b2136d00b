"""Run the notebooks' test cells as `nbdev_test --n_workers 2 --timing` does, with seeded global RNGs.

Same notebooks (nbdev's nbglob over nbs_path, `.notest` folders left out), same skipped flags (settings.ini
`tst_flags`), same in-process execution (nbdev.test.test_nb in a pool of worker processes), same exit status
and per-notebook times. One difference: right before a worker runs a notebook, it seeds random, numpy.random
and torch from MMREC_TEST_SEED (default 0) and the notebook's file name, so a notebook that leans on global
random state instead of seeding its own randomness passes under one seed and fails under another.

    python tests/scripts/run_notebook_tests.py                    # every notebook, MMREC_TEST_SEED or 0
    python tests/scripts/run_notebook_tests.py --path nbs/01_evaluate.ipynb nbs/02_train.ipynb --seed 3
"""
import argparse
import sys
import time
from pathlib import Path

from fastcore.parallel import parallel
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.test import _keep_file

sys.path.insert(0, str(Path(__file__).parent))
from seeding import seed_from_env, seeded_test_nb  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--path', nargs='+', default=[None], help='notebooks or folders (default: nbs_path of settings.ini)')
    parser.add_argument('--flags', default='', help='space-separated test flags to run that are normally skipped')
    parser.add_argument('--n_workers', type=int, default=2, help='worker processes (0: run in this process)')
    parser.add_argument('--seed', type=int, default=None, help='the test seed (default: $MMREC_TEST_SEED or 0)')
    parser.add_argument('--timing', action='store_true', help='print each notebook\'s time, slowest first')
    parser.add_argument('--do_print', action='store_true', help='print the start and end of each notebook')
    args = parser.parse_args(argv)
    seed = seed_from_env() if args.seed is None else args.seed
    config = get_config()
    found = {f.absolute() for path in args.path for f in nbglob(path, as_path=True)}
    files = [f for f in sorted(found) if _keep_file(f, '.notest')]
    if not files:
        print('No files were eligible for testing')
        return 0
    print(f'testing {len(files)} notebooks with MMREC_TEST_SEED={seed}, skipping cells flagged: '
          f'{" ".join(sorted(set(config.tst_flags.split()) - set(args.flags.split()))) or "none"}', flush=True)
    start = time.time()
    with working_directory(config.nbs_path):
        results = parallel(seeded_test_nb, files, seed=seed, skip_flags=config.tst_flags.split(),
                           force_flags=args.flags.split(), n_workers=args.n_workers, basepath=config.config_path,
                           pause=0.01, do_print=args.do_print)
    passed, times = zip(*results)
    if args.timing:
        for i, seconds in sorted(enumerate(times), key=lambda o: o[1], reverse=True):
            print(f'{files[i].name}: {int(seconds)} secs')
    failed = [f.name for ok, f in zip(passed, files) if not ok]
    if failed:
        sys.stderr.write('\nnbdev Tests Failed On The Following Notebooks (MMREC_TEST_SEED='
                         f'{seed}):\n{"=" * 50}\n\t' + '\n\t'.join(failed) + '\n')
        return 1
    print(f'Success: {len(files)} notebooks in {time.time() - start:.0f} s (MMREC_TEST_SEED={seed}).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
