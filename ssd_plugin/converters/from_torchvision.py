"""torchvision's ``ssd300_vgg16`` weights to our SSD300
(``from_torchvision.py``).

torchvision scores 91 classes per default box, index 0 the background and
``i`` the COCO id ``i`` (ten unused); ours are mmdet's 80, the used ids in
ascending order (our class ``k`` is COCO id ``COCO_IDS[k]``), then the
background. Boxes and their order are ours.
"""
from typing import Mapping

import torch
from torch import Tensor

from ssd_plugin.converters.common import ConfigLike, StateDict
from ssd_plugin.converters.common import convert as convert_state_dict

SCORES = 91  # torchvision: background + COCO ids 1 ... 90 per default box
COCO_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO_IDS = tuple(i for i in range(1, SCORES) if i not in COCO_UNUSED_IDS)
CLASSES = 'head.classification_head.module_list.'
RULES = (  # (torchvision's key prefix, ours)
    ('backbone.extra.0.1.', 'backbone.features.24.'),  # conv5_1 (0: pool4)
    ('backbone.extra.0.3.', 'backbone.features.26.'),  # conv5_2
    ('backbone.extra.0.5.', 'backbone.features.28.'),  # conv5_3
    ('backbone.extra.0.7.1.', 'backbone.features.31.'),  # fc6 (7.0: pool5)
    ('backbone.extra.0.7.3.', 'backbone.features.33.'),  # fc7
    ('backbone.features.', 'backbone.features.'),  # conv1_1 ... conv4_3
    ('backbone.scale_weight', 'neck.l2_norm.weight'),
    *((f'backbone.extra.{k + 1}.', f'neck.extra_layers.{k}.')
      for k in range(4)),
    (CLASSES, 'bbox_head.cls_convs.'),
    ('head.regression_head.module_list.', 'bbox_head.reg_convs.'),
)
FIX = "Expected torchvision's ssd300_vgg16 weights and an SSD300 COCO config."


def remap_classes(key: str, scores: Tensor) -> Tensor:
    """A class conv's ``(A * 91, ...)`` weight or bias -> ``(A * 81, ...)``:
    box ``a``'s row ``a * 91 + COCO_IDS[k]`` to ``a * 81 + k``, 0 last."""
    boxes, rest = divmod(scores.size(0), SCORES)
    if rest:
        raise ValueError(f'{key!r} has {scores.size(0)} outputs, not A * '
                         f'{SCORES} (scores per default box). {FIX}')
    order = torch.tensor(COCO_IDS + (0, ))
    return scores.unflatten(0, (boxes, SCORES))[:, order].flatten(0, 1)


def convert(state_dict: Mapping[str, Tensor],
            config: ConfigLike = None) -> StateDict:
    """torchvision ``ssd300_vgg16`` weights -> ours, class convs remapped,
    checked against the model of ``config``; see :func:`.common.convert`."""
    remapped = {k: remap_classes(k, v) if k.startswith(CLASSES) else v
                for k, v in state_dict.items()}
    return convert_state_dict(remapped, RULES, "torchvision's ssd300_vgg16",
                              FIX, config)
