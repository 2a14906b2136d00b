"""Installed as a user installs it: `pip install <checkout>` (not editable, no extras) into a fresh virtual
environment that holds nothing but torch. Every module of mmrec_nb must import there, BPR-MF must train on the
synthetic data and give the numbers it gives in the checkout, and the console script must run; the
development tools (nbdev, pytest, papermill, matplotlib) must not be needed, and are checked to be absent.

torch comes first, as the README says (bring your own build): the version this suite runs with, which pip
takes from the machine's wheel folder here. The package is built from a copy of what an sdist holds
(pyproject.toml, README.md, mmrec_nb/), so that the build leaves nothing in the checkout.
About a minute on the 2-core machine, most of it pip unpacking torch."""
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


MODULES = sorted(module_name(path) for path in (ROOT / 'mmrec_nb').rglob('*.py'))
ABSENT = ('nbdev', 'pytest', 'papermill', 'matplotlib', 'sentence_transformers')

CHECK = r'''
import importlib, importlib.util, json, pkgutil
import mmrec_nb
modules = ['mmrec_nb'] + sorted(m.name for m in pkgutil.walk_packages(mmrec_nb.__path__, 'mmrec_nb.'))
for name in modules:
    importlib.import_module(name)
from mmrec_nb.checkpoint import seed_everything
from mmrec_nb.data import load_dataset
from mmrec_nb.train import TrainConfig, Trainer, build_model
seed_everything(0)
data = load_dataset('synthetic')
fit = Trainer(build_model('bprmf', data), data, TrainConfig(epochs=1, progress=False)).fit()
print(json.dumps({'modules': modules, 'file': mmrec_nb.__file__, 'epochs_run': fit.epochs_run,
                  'loss': fit.history[0]['loss'], 'test': fit.test.metrics,
                  'present': [m for m in ABSENT if importlib.util.find_spec(m)]}))
'''.replace('ABSENT', repr(ABSENT))


def clean_env() -> dict:
    "This process's environment without what would point the child at the project's venv or checkout."
    drop = {'PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'PYTHONSTARTUP'}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, 'PIP_NO_INPUT': '1', 'OMP_NUM_THREADS': '1'}


def run(command, cwd, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    "A fresh venv with torch, then the package; its python, and what the install printed. Removed afterwards."
    if '+' in torch.__version__ and not torch.__version__.endswith('+cpu'):
        pytest.skip(f'torch {torch.__version__} is a local build that pip cannot fetch into a fresh environment')
    where = tmp_path_factory.mktemp('install')
    source, env_dir = where / 'src', where / 'venv'
    source.mkdir()
    shutil.copytree(ROOT / 'mmrec_nb', source / 'mmrec_nb', ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'README.md'):
        shutil.copy(ROOT / name, source / name)
    venv.EnvBuilder(with_pip=False).create(env_dir)   # pip itself runs from this suite's env (--python)
    python = env_dir / 'bin' / 'python'
    pip = [sys.executable, '-m', 'pip', '--python', python, 'install', '-q', '--disable-pip-version-check']
    for step in ([f'torch=={torch.__version__}'], [source]):
        done = run(pip + step, cwd=where)
        assert done.returncode == 0, f'pip install {step[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}'
    yield python, where
    shutil.rmtree(where, ignore_errors=True)                   # ~1 GB: not kept among pytest's last three runs


def test_every_module_imports_and_a_baseline_trains(installed, tmp_path):
    python, where = installed
    done = run([python, '-c', CHECK], cwd=tmp_path, timeout=300)   # cwd outside the checkout: no stray import
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report['modules'] == MODULES                              # the installed package is the whole package
    assert Path(report['file']).is_relative_to(where / 'venv')       # ... and it is the installed copy
    assert report['present'] == []                                   # no development tool was needed
    assert report['epochs_run'] == 1 and 0 < report['test']['recall@20'] <= 1

    # the same run here, in the checkout's environment, gives the same numbers
    from mmrec_nb.checkpoint import seed_everything
    from mmrec_nb.data import load_dataset
    from mmrec_nb.train import TrainConfig, Trainer, build_model
    torch.set_num_threads(1)
    seed_everything(0)
    data = load_dataset('synthetic')
    fit = Trainer(build_model('bprmf', data), data, TrainConfig(epochs=1, progress=False)).fit()
    assert report['loss'] == pytest.approx(fit.history[0]['loss'], rel=1e-5)
    assert report['test'] == pytest.approx(fit.test.metrics, abs=1e-6)


def test_console_script_runs(installed, tmp_path):
    python, _ = installed
    script = python.with_name('mmrec-nb')
    done = run([script, '--help'], cwd=tmp_path)
    assert done.returncode == 0 and 'repro' in done.stdout and 'results' in done.stdout, done.stderr
    done = run([script, 'results', '--root', tmp_path / 'none'], cwd=tmp_path)
    assert done.returncode == 0 and 'no results under' in done.stdout, done.stderr


def test_repro_without_papermill_names_the_extra(installed):
    python, _ = installed
    done = run([python.with_name('mmrec-nb'), 'repro', '--list'], cwd=ROOT)   # in the checkout: nbs/repro/ exists
    assert done.returncode != 0 and 'papermill' in done.stderr
    assert 'mmrec-nb[repro]' in done.stderr and 'Traceback' not in done.stderr
