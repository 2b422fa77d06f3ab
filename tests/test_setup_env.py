"""tools/setup_env.sh: a bad machine gets an error that names the fix, and a
CPU-only mmcv under a CUDA torch is compiled again with CUDA.

The checks run before anything is installed, so these tests never touch
.venv: they point the script at a stub interpreter or hide the compiler,
source its functions, or run a copy of it over a stub .venv in a temporary
folder.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


# --- mmcv's CUDA ops: the decision and the rebuild --------------------------
# The script only defines its functions when sourced (its main runs when
# executed); checked first, so that no test ever runs the set-up by sourcing.
def _sourced(call: str, env: dict = None) -> subprocess.CompletedProcess:
    assert 'if [ "${BASH_SOURCE[0]}" = "$0" ]; then' in SCRIPT.read_text()
    return subprocess.run(['bash', '-c', f'source "{SCRIPT}" && {call}'],
                          env=env or dict(os.environ), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize('torch_cuda,gpu,nvcc,mmcv,plan', [
    ('none', '0', '0', 'none', 'build-cpu'),   # CPU machine, first run
    ('none', '0', '0', 'cpu', 'keep'),
    ('none', '0', '1', 'cpu', 'keep'),         # nvcc, but a CPU torch
    ('12.8', '1', '1', 'cpu', 'build-cuda'),   # CUDA torch installed since
    ('12.8', '0', '1', 'cpu', 'build-cuda'),   # ... also without a GPU
    ('12.8', '1', '1', 'none', 'build-cuda'),
    ('12.8', '1', '1', 'cuda', 'keep'),
    ('12.8', '1', '0', 'cuda', 'keep'),        # nvcc gone since: still fine
    ('12.8', '0', '0', 'cpu', 'keep'),         # PyPI's CUDA torch, no GPU
    ('12.8', '0', '0', 'none', 'build-cpu'),
])
def test_mmcv_plan(torch_cuda, gpu, nvcc, mmcv, plan):
    result = _sourced(f'mmcv_plan {torch_cuda} {gpu} {nvcc} {mmcv}')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == plan


@pytest.mark.parametrize('mmcv', ['cpu', 'none'])
def test_gpu_without_nvcc_for_a_cpu_mmcv_names_the_fix(mmcv):
    result = _sourced(f'mmcv_plan 12.8 1 0 {mmcv}')
    assert result.returncode != 0 and result.stdout == ''
    assert 'nvcc is not on PATH' in result.stderr
    assert 'CUDA 12.8 toolkit' in result.stderr


def _fake_packages(root: Path, cuda_build: str) -> Path:
    """A CUDA torch that sees a GPU and an mmcv 2.1.0 whose ops report
    ``cuda_build`` ('not available' for a CPU-only build, as mmcv's)."""
    (root / 'torch').mkdir(parents=True)
    (root / 'torch' / '__init__.py').write_text(
        "class version:\n    cuda = '12.8'\n\n\n"
        'class cuda:\n    is_available = staticmethod(lambda: True)\n')
    (root / 'mmcv' / 'ops').mkdir(parents=True)
    (root / 'mmcv' / '__init__.py').write_text("__version__ = '2.1.0'\n")
    (root / 'mmcv' / 'ops' / '__init__.py').write_text(
        f'def get_compiling_cuda_version():\n    return {cuda_build!r}\n')
    return root


@pytest.mark.parametrize('cuda_build,state', [('not available', 'cpu'),
                                              ('12.8', 'cuda')])
def test_probe_reads_how_mmcv_was_compiled(tmp_path, cuda_build, state):
    env = dict(os.environ,
               PYTHONPATH=str(_fake_packages(tmp_path, cuda_build)))
    result = _sourced(f'probe_stack {sys.executable} 2.1.0', env)
    assert result.stdout.split() == ['12.8', '1', state]
    # Another mmcv version counts as none; so does a broken interpreter.
    assert _sourced(f'probe_stack {sys.executable} 2.2.0',
                    env).stdout.split() == ['12.8', '1', 'none']
    assert _sourced('probe_stack false 2.1.0').stdout.split() == \
        ['none', '0', 'none']


# A stand-in for .venv/bin/python (and pip): logs each call with FORCE_CUDA,
# answers the probe from $STATE, and an mmcv install writes the state a build
# with that FORCE_CUDA gives.
_STUB_PYTHON = r'''#!/bin/bash
echo "FORCE_CUDA=${FORCE_CUDA:-} $*" >> "$STUB_LOG"
case "$*" in
  -V) echo "Python 3.11.7" ;;
  *"-W ignore - "*) cat "$STATE" ;;
  *"print(torch.__version__)"*) echo "2.13.0+cu128" ;;
  *"pip install"*"mmcv=="*)
    if [ "$FORCE_CUDA" = 1 ]; then echo "12.8 1 cuda"; else echo "12.8 1 cpu"; fi > "$STATE" ;;
esac
exit 0
'''


def _stub_checkout(tmp_path: Path, state: str, stamp_state: str,
                   nvcc: bool) -> dict:
    """A copy of the script, its inputs and a stub .venv under ``tmp_path``
    (so nothing real is touched), the stamp of a finished set-up whose mmcv
    was ``stamp_state``; the environment to run it with."""
    for name in ('tools/setup_env.sh', 'requirements/constraints.txt',
                 'setup.py'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / '.venv' / 'bin'
    bin_dir.mkdir(parents=True)
    (bin_dir / 'python').write_text(_STUB_PYTHON)
    (bin_dir / 'python').chmod(0o755)
    tools = tmp_path / 'stub_tools'
    tools.mkdir()
    for tool in ['c++'] + (['nvcc'] if nvcc else []):
        (tools / tool).write_text('#!/bin/sh\nexit 0\n')
        (tools / tool).chmod(0o755)
    # Without nvcc, PATH must not reach a real one either.
    path = [str(tools)] + [d for d in os.environ['PATH'].split(os.pathsep)
                           if not (Path(d) / 'nvcc').exists()]
    fingerprint = subprocess.run(
        "cat requirements/constraints.txt setup.py tools/setup_env.sh | "
        "cksum | cut -d' ' -f1", shell=True, cwd=tmp_path,
        capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / '.venv' / '.ssd_plugin_setup').write_text(
        f'{fingerprint} mmcv={stamp_state}\n')
    (tmp_path / 'state').write_text(state + '\n')
    return dict(os.environ, PATH=os.pathsep.join(path),
                PYTHON=str(bin_dir / 'python'),
                STUB_LOG=str(tmp_path / 'log'), STATE=str(tmp_path / 'state'))


def test_cpu_mmcv_under_a_cuda_torch_is_rebuilt_with_cuda(tmp_path):
    """The stamp of a finished CPU set-up, then a CUDA torch: not the fast
    path; mmcv is uninstalled and compiled with FORCE_CUDA=1 past pip's
    cache, and the stamp says so."""
    env = _stub_checkout(tmp_path, '12.8 1 cpu', 'cpu', nvcc=True)
    result = subprocess.run(['bash', str(tmp_path / 'tools/setup_env.sh')],
                            env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'already set up' not in result.stdout
    calls = (tmp_path / 'log').read_text().splitlines()
    uninstall = calls.index('FORCE_CUDA= -m pip uninstall --yes --quiet mmcv')
    [build] = [i for i, c in enumerate(calls) if 'mmcv==2.1.0' in c]
    assert uninstall < build
    assert calls[build].startswith('FORCE_CUDA=1 ')
    assert '--no-cache-dir' in calls[build]
    assert (tmp_path / '.venv' / '.ssd_plugin_setup').read_text().endswith(
        ' mmcv=cuda\n')


def test_fast_path_when_mmcv_matches_the_stamp(tmp_path):
    env = _stub_checkout(tmp_path, 'none 0 cpu', 'cpu', nvcc=False)
    result = subprocess.run(['bash', str(tmp_path / 'tools/setup_env.sh')],
                            env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'already set up' in result.stdout and 'mmcv ops: cpu' in \
        result.stdout
    assert 'pip' not in (tmp_path / 'log').read_text()


def test_gpu_without_nvcc_stops_before_installing(tmp_path):
    env = _stub_checkout(tmp_path, '12.8 1 cpu', 'cpu', nvcc=False)
    result = subprocess.run(['bash', str(tmp_path / 'tools/setup_env.sh')],
                            env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert 'nvcc is not on PATH' in result.stderr
    assert 'pip' not in (tmp_path / 'log').read_text()
