"""tools/setup_env.sh: a bad machine gets an error that names the fix.

The checks run before anything is installed, so these tests never touch
.venv: they point the script at a stub interpreter or hide the compiler.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'tools' / 'setup_env.sh'


def run_setup(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=60)


def test_python_outside_supported_range(tmp_path):
    stub = tmp_path / 'python3.13'
    # Answers like a Python 3.13: `-V` prints the version, `-c` code fails
    # the version check (which is all the script asks of it).
    stub.write_text('#!/bin/sh\n'
                    'if [ "$1" = "-V" ]; then echo "Python 3.13.0"; exit 0; fi\n'
                    'exit 1\n')
    stub.chmod(0o755)
    result = run_setup({**os.environ, 'PYTHON': str(stub)})
    assert result.returncode != 0
    assert 'Python 3.13.0 is outside 3.9-3.12' in result.stderr
    assert 'PYTHON=python3.11' in result.stderr


def test_missing_interpreter_named():
    result = run_setup({**os.environ, 'PYTHON': 'no-such-python'})
    assert result.returncode != 0
    assert "no 'no-such-python' on PATH" in result.stderr


def test_no_cxx_compiler(tmp_path):
    # A PATH with the tools the script needs before its compiler check, and
    # no c++/g++.
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in ('bash', 'dirname', 'sed', 'cat', 'cksum', 'cut'):
        os.symlink(shutil.which(tool), bin_dir / tool)
    os.symlink(sys.executable, bin_dir / 'python3')
    env = {**os.environ, 'PATH': str(bin_dir), 'CXX': 'no-such-c++'}
    result = subprocess.run([str(bin_dir / 'bash'), str(SCRIPT)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 'no C++ compiler' in result.stderr
    assert 'apt-get install g++' in result.stderr


def test_second_run_is_a_no_op():
    """The suite runs after a successful set-up, so a rerun takes the fast path."""
    result = run_setup(dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert 'already set up' in result.stdout
