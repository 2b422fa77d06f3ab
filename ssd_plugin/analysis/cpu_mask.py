"""Run a program as on an AVX2-only x86 CPU: CPUID without AVX-512 and VNNI.

INT8 and BF16 speed depend on the CPU's instruction sets, and each library
picks its kernels from the ``CPUID`` instruction once, at start-up. oneDNN
(OpenVINO, torch) can be capped with ``ONEDNN_MAX_CPU_ISA``; ONNX Runtime's
MLAS cannot (``MLAS_PLATFORM``'s constructor reads ``CPUID`` and has no
switch), nor can OpenVINO's own kernels (TopK, eltwise) or torch's ATen.
This module hides the instruction sets from all of them at once: a small
preloaded library turns on Linux's CPUID faulting (``arch_prctl
ARCH_SET_CPUID``, x86 CPUs since Ivy Bridge, and KVM guests) and answers each
trapped ``CPUID`` with the real one less the bits of :data:`HIDDEN`.

What stays: the microarchitecture (caches, ports, clock) of the host, so a
figure is "this CPU's AVX2 kernels", not a measurement of an AVX2-only
model; and glibc's own string functions, chosen before the library loads.
The library sets ``SSD_CPUID_MASK`` so that benchmarks can say so
(:func:`ssd_runtime.machine.describe_machine`).

Usage: ``tools/analysis_tools/run_as_avx2.py -- python ...``.
"""
import os
import os.path as osp
import shutil
import subprocess
from typing import Dict, Mapping, Optional

# CPUID leaf 7 bits an AVX2-only CPU (Haswell to Coffee Lake, AMD Zen 1-3)
# lacks: (subleaf, register) -> mask. Subleaf 0: EBX AVX512F/DQ/IFMA/PF/ER/
# CD/BW/VL, ECX AVX512_VBMI/VBMI2/VNNI/BITALG/VPOPCNTDQ, EDX 4VNNIW/4FMAPS/
# VP2INTERSECT/AMX_BF16/AVX512_FP16/AMX_TILE/AMX_INT8; subleaf 1: EAX
# AVX_VNNI/AVX512_BF16/AMX_FP16/AVX_IFMA, EDX AVX_VNNI_INT8/AVX_NE_CONVERT.
HIDDEN = {(0, 'b'): 0xDC230000, (0, 'c'): 0x00005842, (0, 'd'): 0x03C0010C,
          (1, 'a'): 0x00A00030, (1, 'd'): 0x00000030}
ENV_FLAG = 'SSD_CPUID_MASK'

_SOURCE = r'''
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* SIGSEGV from a faulting CPUID (0F A2): run it for real with faulting off,
   clear the hidden bits, step over it. Any other SIGSEGV: default action. */
static void on_segv(int sig, siginfo_t *info, void *context) {
    greg_t *reg = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)reg[REG_RIP];
    unsigned leaf = reg[REG_RAX], sub = reg[REG_RCX], a, b, c, d;
    if (ip[0] != 0x0f || ip[1] != 0xa2) { signal(sig, SIG_DFL); return; }
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && sub == 0) { b &= ~%(0b)su; c &= ~%(0c)su; d &= ~%(0d)su; }
    if (leaf == 7 && sub == 1) { a &= ~%(1a)su; d &= ~%(1d)su; }
    reg[REG_RAX] = a; reg[REG_RBX] = b; reg[REG_RCX] = c; reg[REG_RDX] = d;
    reg[REG_RIP] += 2;
}

__attribute__((constructor)) static void mask_cpuid(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &action, NULL) != 0 ||
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        perror("cpu_mask: CPUID faulting unavailable");
        _exit(70);
    }
    setenv("%(flag)s", "avx2", 1);
}
'''


def source() -> str:
    """The preload library's C source with the :data:`HIDDEN` masks."""
    masks = {f'{sub}{reg}': hex(mask) for (sub, reg), mask in HIDDEN.items()}
    return _SOURCE % dict(masks, flag=ENV_FLAG)


def build_library(out_dir: str, compiler: Optional[str] = None) -> str:
    """Compile the preload library into ``out_dir``.

    Args:
        out_dir (str): Existing folder for ``cpu_mask.c`` and ``.so``.
        compiler (str, optional): C compiler; None: ``$CC``, then ``cc``.

    Returns:
        str: Path of ``cpu_mask.so``.

    Raises:
        FileNotFoundError: If no C compiler is found.
        RuntimeError: If the compiler fails (its message included).
    """
    compiler = compiler or os.environ.get('CC') or 'cc'
    if shutil.which(compiler) is None:
        raise FileNotFoundError(
            f'no C compiler {compiler!r} on PATH; install one (apt-get '
            'install gcc) or name it with CC=...')
    src, lib = osp.join(out_dir, 'cpu_mask.c'), osp.join(out_dir,
                                                          'cpu_mask.so')
    with open(src, 'w', encoding='utf-8') as f:
        f.write(source())
    done = subprocess.run([compiler, '-shared', '-fPIC', '-O2', '-o', lib,
                           src], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f'{compiler} failed on {src}:\n{done.stderr}')
    return lib


def masked_environ(library: str,
                   environ: Optional[Mapping[str, str]] = None
                   ) -> Dict[str, str]:
    """``environ`` (default: this process's) with ``library`` preloaded."""
    env = dict(os.environ if environ is None else environ)
    env['LD_PRELOAD'] = ' '.join(filter(None, [library,
                                               env.get('LD_PRELOAD')]))
    return env
