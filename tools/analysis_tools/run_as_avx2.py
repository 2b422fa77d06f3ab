"""Run a command as on an AVX2-only CPU (``ssd_plugin.analysis.cpu_mask``).

Usage::

    python tools/analysis_tools/run_as_avx2.py -- python \
        tools/analysis_tools/benchmark_inference.py --threads 2 --deploy

Every library in the command (ONNX Runtime's MLAS, OpenVINO and its oneDNN,
torch, numpy) sees CPUID without AVX-512, VNNI, BF16 or AMX and picks its
AVX2 kernels; the benchmarks print ``CPUID masked to AVX2`` beside the CPU.
Needs Linux on x86 with CPUID faulting (Intel since Ivy Bridge, KVM guests)
and a C compiler. Exits with the command's status.
"""
import argparse
import subprocess
import sys
import tempfile
from typing import List, Optional

from ssd_plugin.analysis.cpu_mask import build_library, masked_environ


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the command, after --')
    args = parser.parse_args(argv)
    if args.command[:1] == ['--']:
        args.command = args.command[1:]
    if not args.command:
        parser.error('give the command to run after --')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Build the preload library in a temporary folder, run the command."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        env = masked_environ(build_library(folder))
        return subprocess.run(args.command, env=env).returncode


if __name__ == '__main__':
    sys.exit(main())
