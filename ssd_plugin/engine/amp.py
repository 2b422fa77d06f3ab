"""Which mixed-precision optim wrapper trains on which device, in which dtype.

- CUDA (and the other accelerators mmengine's ``AmpOptimWrapper`` accepts):
  ``AmpOptimWrapper``; ``float16`` (the default) with a dynamic loss scale,
  or ``bfloat16`` with a static scale of 1: bf16 keeps float32's exponent
  range, so scaling gains nothing, and the scaler still skips a step whose
  gradients are not finite.
- CPU: :class:`~ssd_plugin.engine.CPUAmpOptimWrapper`, ``bfloat16`` only
  (mmengine's wrapper refuses to start without an accelerator).
"""
from typing import Optional, Tuple

from mmengine.config import ConfigDict

# The devices mmengine 0.10.7's AmpOptimWrapper starts on.
ACCELERATORS = ('cuda', 'npu', 'mlu', 'musa')
AMP_DTYPES = ('float16', 'bfloat16')
_AMP_TYPES = ('AmpOptimWrapper', 'CPUAmpOptimWrapper')


def _check(wrapper: str, device: str, dtype: Optional[str]) -> None:
    """ValueError for a wrapper, device or dtype that has no AMP."""
    if wrapper not in ('OptimWrapper', ) + _AMP_TYPES:
        raise ValueError(f'--amp needs optim_wrapper.type="OptimWrapper", '
                         f'got {wrapper!r}; drop --amp or use OptimWrapper')
    if dtype is not None and dtype not in AMP_DTYPES:
        raise ValueError(f'AMP dtype {dtype!r}; use one of {AMP_DTYPES}')
    if device not in ACCELERATORS + ('cpu', ):
        raise ValueError(f'no mixed precision for device {device!r}: AMP '
                         f'runs on {ACCELERATORS + ("cpu", )}; drop --amp')
    if device == 'cpu' and dtype == 'float16':
        raise ValueError(
            'float16 AMP on the CPU: CPU autocast trains in bfloat16 (no '
            'loss scaling there); drop --amp-dtype or pass bfloat16')


def amp_optim_wrapper(optim_wrapper: dict, device: str,
                      dtype: Optional[str] = None
                      ) -> Tuple[ConfigDict, Optional[str]]:
    """``optim_wrapper`` turned into the AMP wrapper for ``device``.

    A config that already names the wrapper of ``device`` keeps its settings
    (``dtype`` replaces its dtype when given); the other device's AMP
    wrapper is replaced, with a note saying so.

    Args:
        optim_wrapper (dict): The config's ``optim_wrapper``.
        device (str): Where training runs (mmengine's ``get_device()``:
            ``'cuda'``, ``'cpu'``, ...).
        dtype (str, optional): ``'float16'`` or ``'bfloat16'``; None: the
            config's, else float16 on an accelerator, bfloat16 on the CPU.

    Returns:
        tuple[ConfigDict, str | None]: The new ``optim_wrapper`` and a note
        for the log (None when there is nothing to say).

    Raises:
        ValueError: For a wrapper other than ``OptimWrapper`` or an AMP one,
            float16 on the CPU, or a device without AMP.
    """
    cfg = ConfigDict(optim_wrapper)
    wrapper = cfg.get('type', 'OptimWrapper')
    _check(wrapper, device, dtype)
    target = 'CPUAmpOptimWrapper' if device == 'cpu' else 'AmpOptimWrapper'
    if wrapper == target:
        if dtype is not None and target == 'AmpOptimWrapper':
            cfg.dtype = dtype
        return cfg, 'AMP training is already enabled in your config.'
    note = None
    if wrapper in _AMP_TYPES:
        note = (f'optim_wrapper.type={wrapper!r} is not for {device}; '
                f'training with {target} instead')
    cfg.pop('loss_scale', None)
    cfg.pop('dtype', None)
    cfg.type = target
    if target == 'AmpOptimWrapper':
        cfg.dtype = dtype or 'float16'
        cfg.loss_scale = 'dynamic' if cfg.dtype == 'float16' else 1.0
    return cfg, note
