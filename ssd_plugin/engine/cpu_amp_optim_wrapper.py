"""Mixed precision on the CPU: bfloat16 autocast around the forward pass.

mmengine 0.10.7's ``AmpOptimWrapper`` refuses to start without CUDA (or an
NPU/MLU/MUSA); ``tools/train.py --amp`` picks this wrapper on the CPU
(:func:`ssd_plugin.engine.amp.amp_optim_wrapper`).
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

    CPU autocast leaves tensors on another device in float32, so a model on
    CUDA (a config written by a CPU ``--amp`` run, trained on a GPU) is a
    ``ValueError`` at the first iteration rather than a silent FP32 run.
    """

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """The parent's context plus ``torch.autocast('cpu', bfloat16)``.

        Raises:
            ValueError: If ``model``'s weights are not on the CPU.
        """
        param = next(model.parameters(), None)
        if param is not None and param.device.type != 'cpu':
            raise ValueError(
                f'CPUAmpOptimWrapper autocasts on the CPU only, but the model '
                f'is on {param.device}, where it would train in float32. Use '
                "mmengine's AmpOptimWrapper: tools/train.py --amp picks it "
                'for the device (float16; --amp-dtype bfloat16 for bf16), or '
                'set optim_wrapper.type=AmpOptimWrapper in the config')
        with super().optim_context(model), torch.autocast(
                device_type='cpu', dtype=torch.bfloat16):
            yield
