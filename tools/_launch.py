"""What ``tools/train.py`` and ``tools/test.py`` share: the launcher and
work-dir options, DDP on the CPU, building the runner, and a clean exit.

DDP on the CPU: mmengine 0.10.7's ``init_dist('pytorch')`` calls
``torch.cuda.set_device`` and ``Runner.wrap_model`` passes ``device_ids``,
which DDP refuses for a CPU module; the runner skips both when a process
group and ``model_wrapper_cfg`` exist, so without CUDA we set them first.
"""
import argparse
import datetime
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ssd_plugin.utils.config import add_cfg_options, load_config


def parse(parser: argparse.ArgumentParser,
          argv: Optional[List[str]]) -> argparse.Namespace:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local-rank``, parse ``argv`` (default ``sys.argv[1:]``) and export
    ``LOCAL_RANK``."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    add_cfg_options(parser)
    parser.add_argument('--launcher', default='none',
                        choices=('none', 'pytorch', 'slurm', 'mpi'),
                        help='job launcher (pytorch: torchrun)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file with ``--cfg-options`` < ``--work-dir`` applied;
    mmdet's default work dir: ``./work_dirs/<config name>``."""
    cfg = load_config(args.config, args.cfg_options, set_scope=False)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def setup_cpu_ddp(cfg: Config) -> bool:
    """With launcher ``pytorch``, no CUDA and no group yet: start the gloo
    group (``env_cfg.dist_cfg``; ValueError for another backend), set a CPU
    ``model_wrapper_cfg`` unless given, and return True; else False."""
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


@contextmanager
def launched(cfg: Config) -> Iterator[Runner]:
    """The config's runner (``Runner.from_cfg``, or the registered
    ``cfg.runner_type``) under its launcher; the process group ended after
    (a barrier first on success): a gloo group left to interpreter shutdown
    can abort (pytorch/pytorch#179291; README "Train and test").
    """
    setup_cpu_ddp(cfg)  # no-op with CUDA or without a launcher
    succeeded = False
    try:
        if 'runner_type' in cfg:  # registered: look it up in the cfg's scope
            cfg._scope_ = cfg.get('default_scope')
            yield RUNNERS.build(cfg)
        else:
            yield Runner.from_cfg(cfg)
        succeeded = True
    finally:
        if torch_dist.is_available() and torch_dist.is_initialized():
            if succeeded:
                torch_dist.barrier()
            torch_dist.destroy_process_group()

