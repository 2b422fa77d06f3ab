"""Runner-side parts of ssd_plugin: hooks, the CPU mixed-precision wrapper and
the choice of AMP wrapper by device."""
from .amp import amp_optim_wrapper  # noqa: F401
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper  # noqa: F401
from .distributed_batch_check_hook import (  # noqa: F401
    DistributedBatchCheckHook)
from .eval_progress_bar_hook import EvalProgressBarHook  # noqa: F401
from .finite_loss_check_hook import FiniteLossCheckHook  # noqa: F401
from .num_classes_check_hook import NumClassesCheckHook  # noqa: F401
