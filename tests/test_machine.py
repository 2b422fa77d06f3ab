"""The machine description printed beside every benchmark figure."""
from ssd_runtime.machine import FLAGS, describe_machine, read_cpuinfo

AVX2_EPYC = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 avx avx2 fma bmi2
processor\t: 1
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 avx avx2 fma bmi2
"""
VNNI_XEON = """model name\t: Intel(R) Xeon(R) Platinum 8481C CPU
flags\t\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8 amx_tile
"""


def test_avx2_only_cpu_names_what_it_lacks():
    info = read_cpuinfo(AVX2_EPYC)
    assert info['model'] == 'AMD EPYC 7B12'
    assert info['flags'] == ['avx2']
    text = describe_machine(2, modules=(), cpuinfo=info)
    assert 'AMD EPYC 7B12' in text and 'threads: 2' in text
    assert 'avx2 (no avx512f avx512_vnni avx_vnni avx512_bf16 amx_bf16 ' \
           'amx_int8)' in text


def test_flags_in_fixed_order_and_no_false_matches():
    # amx_tile is not one of FLAGS; avx512_vnni must not match avx_vnni.
    info = read_cpuinfo(VNNI_XEON)
    assert info['flags'] == ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16',
                             'amx_bf16', 'amx_int8']
    assert 'avx_vnni' not in info['flags']


def test_no_cpuinfo_says_flags_unknown():
    info = read_cpuinfo('')
    assert info['flags'] is None
    text = describe_machine(None, modules=('numpy', 'no_such_module_xyz'),
                            cpuinfo=info)
    assert 'instruction-set flags unknown' in text
    assert 'no_such_module_xyz not installed' in text
    assert f'threads: default ({info["logical_cpus"]})' in text


def test_this_machine_reports_every_flag_it_has():
    info = read_cpuinfo()
    if info['flags'] is not None:
        assert set(info['flags']) <= set(FLAGS)
