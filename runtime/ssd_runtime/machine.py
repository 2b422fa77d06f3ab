"""The machine a figure was measured on: CPU model, instruction sets, threads.

CPUs of one cloud instance type differ (AVX2 only, AVX-512 VNNI, AVX-512
BF16, AMX), and INT8 and BF16 speed depend on exactly these flags, so every
benchmark prints :func:`describe_machine` above its figures. Linux reads
``/proc/cpuinfo``; elsewhere the flags are reported as unknown. A figure
measured with the instruction sets capped (oneDNN's ``ONEDNN_MAX_CPU_ISA``,
torch's ``ATEN_CPU_CAPABILITY``, or CPUID masked to AVX2 by
``tools/analysis_tools/run_as_avx2.py``) says so, and each names the load
average it was measured under (other processes slow every figure).
"""
import importlib
import os
import platform
from typing import Dict, Iterable, List, Mapping, Optional

# The flags that decide which kernels run (Linux /proc/cpuinfo names).
FLAGS = ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16',
         'amx_bf16', 'amx_int8')
# Environment variables that cap the kernels' instruction sets; the last is
# set by ssd_plugin.analysis.cpu_mask's preloaded library.
CAPS = ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA', 'ATEN_CPU_CAPABILITY',
        'SSD_CPUID_MASK')


def read_cpuinfo(text: Optional[str] = None) -> Dict[str, object]:
    """The CPU model and which of :data:`FLAGS` it has.

    Args:
        text (str, optional): ``/proc/cpuinfo``'s content; None: read it.

    Returns:
        dict: ``model`` (str), ``flags`` (list[str] of :data:`FLAGS`
        present, in that order; None where unknown), ``logical_cpus``
        (int).
    """
    if text is None:
        try:
            with open('/proc/cpuinfo', encoding='utf-8') as f:
                text = f.read()
        except OSError:
            text = ''
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    model = fields.get('model name') or platform.processor() or 'unknown CPU'
    flags: Optional[List[str]] = None
    if 'flags' in fields:
        present = set(fields['flags'].split())
        flags = [flag for flag in FLAGS if flag in present]
    return dict(model=model, flags=flags, logical_cpus=os.cpu_count() or 1)


def isa_caps(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The instruction-set caps in force, e.g. ``['ONEDNN_MAX_CPU_ISA=AVX2']``
    or ``['CPUID masked to avx2']``; empty when the kernels see the CPU.

    Args:
        environ (Mapping, optional): None: this process's environment.
    """
    environ = os.environ if environ is None else environ
    caps = []
    for name in CAPS:
        if environ.get(name):
            caps.append(f'CPUID masked to {environ[name]}' if name == CAPS[-1]
                        else f'{name}={environ[name]}')
    return caps


def visible_flags(cpuinfo: Optional[Dict[str, object]] = None,
                  environ: Optional[Mapping[str, str]] = None
                  ) -> Optional[List[str]]:
    """The :data:`FLAGS` the kernels see: ``/proc/cpuinfo``'s, less all but
    ``avx2`` under the CPUID mask (``SSD_CPUID_MASK=avx2``); None if unknown.
    """
    flags = (cpuinfo or read_cpuinfo())['flags']
    environ = os.environ if environ is None else environ
    if flags is not None and environ.get(CAPS[-1]) == 'avx2':
        flags = [flag for flag in flags if flag == 'avx2']
    return flags


def module_versions(names: Iterable[str]) -> Dict[str, str]:
    """``__version__`` of each module in ``names`` (imported), or
    ``'not installed'``; OpenCV is ``cv2``."""
    versions = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            versions[name] = 'not installed'
        else:
            versions[name] = str(getattr(module, '__version__', '?'))
    return versions


def describe_machine(threads: Optional[int] = None,
                     modules: Iterable[str] = ('numpy', 'cv2', 'onnxruntime',
                                               'openvino'),
                     cpuinfo: Optional[Dict[str, object]] = None,
                     environ: Optional[Mapping[str, str]] = None) -> str:
    """One paragraph naming the CPU, its kernel-deciding flags, any cap on
    them (:func:`isa_caps`), the threads, the load average and the package
    versions, e.g.::

        CPU: Intel(R) Xeon(R) Processor, 2 logical CPUs; avx2 avx512f
        avx512_vnni (no avx_vnni avx512_bf16 amx_bf16 amx_int8); ISA capped:
        CPUID masked to avx2; threads: 2; load average 1.02 0.87 0.51;
        numpy 2.2.6, cv2 4.12.0, onnxruntime 1.32.0, ...

    Args:
        threads (int, optional): Threads the figures used; None: the
            backend's default (all logical CPUs).
        modules (Iterable[str]): Modules whose versions to name (each is
            imported).
        cpuinfo (dict, optional): :func:`read_cpuinfo`'s result; None:
            read this machine's.
        environ (Mapping, optional): For :func:`isa_caps`; None: this
            process's environment.
    """
    info = cpuinfo or read_cpuinfo()
    if info['flags'] is None:
        flags = 'instruction-set flags unknown'
    else:
        absent = [flag for flag in FLAGS if flag not in info['flags']]
        flags = ' '.join(info['flags']) or 'none of ' + ' '.join(FLAGS)
        if absent and info['flags']:
            flags += f' (no {" ".join(absent)})'
    versions = ', '.join(f'{name} {version}' for name, version in
                         module_versions(modules).items())
    caps = isa_caps(environ)
    if caps:
        flags += '; ISA capped: ' + ', '.join(caps)
    used = threads if threads else f'default ({info["logical_cpus"]})'
    try:
        load = '; load average ' + ' '.join(f'{x:.2f}'
                                            for x in os.getloadavg())
    except (AttributeError, OSError):  # not on Windows, or unavailable
        load = ''
    text = (f'CPU: {info["model"]}, {info["logical_cpus"]} logical CPUs; '
            f'{flags}; threads: {used}{load}')
    return f'{text}; {versions}' if versions else text
