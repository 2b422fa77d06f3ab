"""DDP on the CPU (gloo) for ``tools/train.py`` and ``tools/test.py``.

mmengine 0.10.7 cannot start DDP without CUDA: ``init_dist('pytorch')``
calls ``torch.cuda.set_device`` unconditionally (an ``AttributeError`` on a
CPU build of torch), and ``Runner.wrap_model`` passes
``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` refuses for a
CPU module. The runner skips its own ``init_dist`` when a process group
already exists and lets ``model_wrapper_cfg`` override ``device_ids``, so
the tools do both steps first on a machine without CUDA. With CUDA nothing
changes. (``mim train mmdet --launcher pytorch`` runs mmdet's script, which
has no such step: on the CPU use ``tools/dist_train.sh``.)
"""
import datetime

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_ddp(cfg: Config) -> bool:
    """Start the gloo process group and a CPU DDP wrapper if needed.

    Args:
        cfg (Config): The run's config; ``cfg.launcher`` and
            ``cfg.env_cfg.dist_cfg`` are read, ``cfg.model_wrapper_cfg`` is
            set when absent.

    Returns:
        bool: True if this call started the process group (launcher
        ``pytorch``, no CUDA, no group yet), else False.

    Raises:
        ValueError: If the backend is not ``gloo`` on a machine without CUDA.
    """
    if (cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available()
            or torch_dist.is_initialized()):
        return False
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'nccl')
    if backend != 'gloo':
        raise ValueError(
            f'env_cfg.dist_cfg.backend={backend!r} needs CUDA, which this '
            'machine lacks; for DDP on the CPU add --cfg-options '
            'env_cfg.dist_cfg.backend=gloo')
    if dist_cfg.get('timeout') is not None:  # seconds, as mmengine takes it
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    # RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT come from torchrun.
    torch_dist.init_process_group(backend='gloo', **dist_cfg)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    return True
