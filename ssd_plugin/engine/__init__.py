"""Runner-side helpers of ssd_plugin (hooks)."""
from .eval_progress_bar_hook import EvalProgressBarHook  # noqa: F401
from .finite_loss_check_hook import FiniteLossCheckHook  # noqa: F401
from .num_classes_check_hook import NumClassesCheckHook  # noqa: F401
