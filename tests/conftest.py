"""Every test starts from global RNGs (random, numpy.random, torch) seeded from MMREC_TEST_SEED (default 0) and its
own node id. A test whose outcome depends on that state has not seeded its own randomness: running the suite
under another seed (`MMREC_TEST_SEED=3 make test`) shows it."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / 'scripts'))
from seeding import seed_globals, seed_from_env  # noqa: E402


def pytest_report_header(config):
    return f'MMREC_TEST_SEED={seed_from_env()} (global RNGs seeded per test from it and the test id)'


@pytest.fixture(autouse=True)
def _seeded_global_rngs(request):
    seed_globals(seed_from_env(), request.node.nodeid)
    yield
