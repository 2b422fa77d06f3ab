"""CPUID masked to AVX2 (ssd_plugin.analysis.cpu_mask, run_as_avx2.py) and
the ISA caps every benchmark names (ssd_runtime.machine)."""
import subprocess
import sys

import pytest

from conftest import avx2_library, load_tool
from ssd_plugin.analysis.cpu_mask import (ENV_FLAG, HIDDEN, build_library,
                                          masked_environ, source)
from ssd_plugin.deploy.quantize import int8_advice
from ssd_runtime.machine import (describe_machine, isa_caps, read_cpuinfo,
                                 visible_flags)

VNNI = read_cpuinfo(
    'model name\t: Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n')
# CPUID.(EAX=7, ECX=0) bits, Intel SDM vol. 2A table 3-8.
AVX512F, AVX2, SHA = 1 << 16, 1 << 5, 1 << 29
AVX512_VNNI, AVX512_BF16, AMX_INT8 = 1 << 11, 1 << 5, 1 << 25


def test_hidden_bits_are_avx512_vnni_bf16_amx_only():
    assert HIDDEN[(0, 'b')] & AVX512F and HIDDEN[(0, 'c')] & AVX512_VNNI
    assert HIDDEN[(1, 'a')] & AVX512_BF16 and HIDDEN[(0, 'd')] & AMX_INT8
    assert not HIDDEN[(0, 'b')] & (AVX2 | SHA)  # what AVX2 CPUs have stays
    text = source()
    assert '0xdc230000u' in text and ENV_FLAG in text and '%' not in text


def test_masked_environ_keeps_other_preloads():
    env = masked_environ('/x/cpu_mask.so', {'LD_PRELOAD': '/y.so', 'A': '1'})
    assert env == {'LD_PRELOAD': '/x/cpu_mask.so /y.so', 'A': '1'}
    assert masked_environ('/x.so', {})['LD_PRELOAD'] == '/x.so'


def test_missing_compiler_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install gcc'):
        build_library(str(tmp_path), compiler='no-such-cc-xyz')


def test_tool_needs_a_command():
    with pytest.raises(SystemExit):
        load_tool('analysis_tools/run_as_avx2.py').main(['--'])


def test_programs_see_avx2_only(tmp_path):
    """numpy's own CPUID probe under the mask: AVX2 yes, AVX-512 no."""
    library = avx2_library(tmp_path)
    probe = ('import os, numpy; from numpy._core._multiarray_umath import '
             '__cpu_features__ as f; print(f["AVX2"], f["AVX512F"], '
             f'os.environ["{ENV_FLAG}"])')
    done = subprocess.run([sys.executable, '-c', probe],
                          env=masked_environ(library), capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['True', 'False', 'avx2']


def test_caps_and_visible_flags():
    assert isa_caps({}) == []
    env = {'ONEDNN_MAX_CPU_ISA': 'AVX2', ENV_FLAG: 'avx2'}
    assert isa_caps(env) == ['ONEDNN_MAX_CPU_ISA=AVX2',
                             'CPUID masked to avx2']
    text = describe_machine(2, modules=(), cpuinfo=VNNI, environ=env)
    assert 'ISA capped: ONEDNN_MAX_CPU_ISA=AVX2, CPUID masked to avx2' in text
    assert 'load average' in text and not text.endswith('; ')
    assert visible_flags(VNNI, {}) == ['avx2', 'avx512f', 'avx512_vnni']
    assert visible_flags(VNNI, {ENV_FLAG: 'avx2'}) == ['avx2']


@pytest.mark.parametrize('flags, expected', [
    (['avx2', 'avx512f', 'avx512_vnni'], 'avx512_vnni: int8 kernels with'),
    (['avx2', 'avx_vnni'], 'avx_vnni: int8 kernels with VNNI'),
    (['avx2'], 'AVX2 without VNNI'),
    ([], 'no AVX2'),
    (None, 'instruction sets unknown'),
])
def test_int8_advice_by_cpu(flags, expected):
    advice = int8_advice(flags)
    assert advice.startswith(expected)
    assert ('--backend openvino' in advice) == bool(flags)
