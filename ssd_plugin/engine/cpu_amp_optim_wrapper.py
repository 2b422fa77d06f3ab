"""Mixed precision on the CPU: bfloat16 autocast around the forward pass.

mmengine 0.10.7's ``AmpOptimWrapper`` refuses to start without CUDA (or an
NPU/MLU/MUSA); ``tools/train.py --amp`` picks this wrapper on the CPU.
"""
from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from ssd_plugin.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU bfloat16 autocast.

    bfloat16 keeps float32's exponent range, so no loss scaling is needed
    (torch's ``GradScaler`` exists for float16). Arguments as
    ``OptimWrapper``.
    """

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """The parent's context plus ``torch.autocast('cpu', bfloat16)``."""
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield
