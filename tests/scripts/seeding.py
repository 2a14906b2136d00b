"""The test seed: MMREC_TEST_SEED (default 0) and a name (a pytest node id, a notebook's file name) give the
value that the global RNGs of random, numpy.random and torch start from. Shared by tests/conftest.py and
tests/scripts/run_notebook_tests.py."""
import hashlib
import os
import random


def seed_from_env() -> int:
    "MMREC_TEST_SEED as an int (0 when unset)."
    text = os.environ.get('MMREC_TEST_SEED', '0').strip() or '0'
    try:
        return int(text)
    except ValueError:
        raise SystemExit(f'MMREC_TEST_SEED must be an integer, got {text!r}') from None


def derived_seed(seed: int, name: str) -> int:
    "A 32-bit seed from (seed, name): another seed or another test gives unrelated streams."
    return int.from_bytes(hashlib.sha256(f'{seed}:{name}'.encode()).digest()[:4], 'little')


def seed_globals(seed: int, name: str) -> int:
    "Seed random, numpy.random and torch (every device) from (seed, name); returns the derived value."
    import numpy as np
    import torch
    value = derived_seed(seed, name)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


def seeded_test_nb(fn, seed: int, **kwargs):
    """nbdev.test.test_nb on notebook `fn` after seeding this process's global RNGs from (seed, file name).
    It lives here, not in the runner script: a notebook run replaces `__main__` in the worker (IPython's shell),
    so the pool could not find a function of the script there for the next notebook."""
    from nbdev.test import test_nb
    seed_globals(seed, fn.name)
    return test_nb(fn, **kwargs)
