"""Stop before training when the model's class count differs from the data's.

mmdet's ``NumClassCheckHook`` asserts (gone under ``python -O``); this raises
``ValueError`` with the fix, reading only the ``*head`` children (mmcv's
``VGG`` has its own ``num_classes=-1``).
"""
from typing import List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from ssd_plugin.registry import HOOKS


def head_class_counts(model: nn.Module) -> List[Tuple[str, int]]:
    """``(name, num_classes)`` of each head of a (maybe wrapped) detector."""
    if is_model_wrapper(model):
        model = model.module
    return [(name, int(child.num_classes))
            for name, child in model.named_children()
            if name.endswith('head') and hasattr(child, 'num_classes')]


def check_num_classes(model: nn.Module, classes: Optional[Sequence[str]],
                      split: str) -> None:
    """Raise ``ValueError`` if a head's ``num_classes`` != ``len(classes)``.

    Args:
        model (nn.Module): The detector, possibly DDP-wrapped.
        classes (Sequence[str] | None): ``dataset.metainfo['classes']``;
            None skips the check (a dataset without class names).
        split (str): ``'train'``, ``'val'`` or ``'test'``, for the message.
    """
    if classes is None:
        return
    if isinstance(classes, str):
        raise TypeError(f'the {split} dataset metainfo classes is the string '
                        f'{classes!r}; give a tuple of class names, e.g. '
                        f"classes=({classes!r},)")
    for name, num_classes in head_class_counts(model):
        if num_classes != len(classes):
            raise ValueError(
                f'model.{name}.num_classes={num_classes} but the {split} '
                f'dataset has {len(classes)} classes {tuple(classes)}; set '
                f'model.{name}.num_classes={len(classes)} (or the dataset '
                'metainfo classes) so that they match')


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check the heads' ``num_classes`` against each dataset in use."""

    priority = 'VERY_HIGH'

    def _check(self, runner, split: str) -> None:
        dataloader = getattr(runner, f'{split}_dataloader')
        classes = dataloader.dataset.metainfo.get('classes')
        check_num_classes(runner.model, classes, split)

    def before_train(self, runner) -> None:
        """Check the train set once, before the first iteration."""
        self._check(runner, 'train')

    def before_val(self, runner) -> None:
        """Check the val set before validating."""
        self._check(runner, 'val')

    def before_test(self, runner) -> None:
        """Check the test set before testing."""
        self._check(runner, 'test')
