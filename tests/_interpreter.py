"Runs a test file's interpreter-only tests in a child pytest with TRITON_INTERPRET=1 (Triton reads it at import)."
import os
import subprocess
import sys

INTERPRETING = os.environ.get('TRITON_INTERPRET') == '1'


def run_interpreted(test_file: str, selector: str, timeout: int = 900) -> None:
    "Fail unless the child run of `test_file -k selector` passes with nothing failed or skipped."
    env = {**os.environ, 'TRITON_INTERPRET': '1'}
    done = subprocess.run([sys.executable, '-m', 'pytest', test_file, '-q', '-p', 'no:cacheprovider', '-k', selector],
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert ' passed' in summary and 'failed' not in summary and 'skipped' not in summary, done.stdout[-2000:]
