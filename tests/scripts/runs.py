"Helpers shared by the training tests: launching tests/scripts/train_run.py in a subprocess."
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tests' / 'scripts' / 'train_run.py'
TORCHRUN = Path(sys.executable).with_name('torchrun')


def launch(out: Path, *args, env: dict | None = None, nproc: int = 1) -> subprocess.Popen:
    "Start train_run.py writing `out` (plain Python, or torchrun with `nproc` processes); returns the Popen."
    command = [sys.executable, str(SCRIPT)] if nproc == 1 else [
        str(TORCHRUN), '--standalone', f'--nproc_per_node={nproc}', str(SCRIPT)]
    environment = {**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})}
    return subprocess.Popen(command + ['--out', str(out), *map(str, args)], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    "Wait for `process`; its return code and combined output."
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def result(out: Path) -> dict:
    return json.loads(Path(out).read_text())
