"""What a config's network is fed (ssd_plugin.utils.network_input).

Inputs are checked against the resize, channel swap and mean subtraction
written out here with OpenCV; default boxes against the paper's SSD300
(8732 boxes; Caffe's ``ssd_coco.py`` sizes, steps and offsets) by hand.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from ssd_plugin.registry import MODELS
from ssd_plugin.utils.config import (SSD300_COCO, leaf_datasets,
                                     use_default_scope)
from ssd_plugin.utils.mmdet_ssd import build_mmdet_ssd300
from ssd_plugin.utils.network_input import (config_input_size,
                                            default_boxes, network_inputs)

QUICKSTART = osp.join(osp.dirname(osp.dirname(SSD300_COCO)), 'quickstart',
                      'ssd_shapes.py')
RGB_MEAN = (123.675, 116.28, 103.53)  # configs/_base_/models/ssd300.py


@pytest.fixture(scope='module')
def ssd300_cfg() -> Config:
    return Config.fromfile(SSD300_COCO)


def by_hand(image: np.ndarray, side: int) -> torch.Tensor:
    """Bilinear resize to side x side, BGR -> RGB, minus the mean (std 1)."""
    rgb = cv2.resize(image, (side, side))[..., ::-1].astype(np.float32)
    return torch.from_numpy(rgb - np.float32(RGB_MEAN)).permute(2, 0, 1)


def test_an_image_file_and_array_give_the_hand_computed_input(
        ssd300_cfg, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 170, 3), dtype=np.uint8)
    path = str(tmp_path / 'a.png')  # lossless: the file holds the array
    cv2.imwrite(path, image)
    from_file, from_array = network_inputs(ssd300_cfg, [path, image])
    assert from_file.shape == (1, 3, 300, 300)
    assert from_file.dtype == torch.float32 and from_file.is_contiguous()
    torch.testing.assert_close(from_file, from_array)
    torch.testing.assert_close(from_file[0], by_hand(image, 300),
                               rtol=0, atol=1e-4)
    assert network_inputs(ssd300_cfg, []) == []
    with pytest.raises(TypeError, match=r'images\[0\] is a list'):
        network_inputs(ssd300_cfg, [[1, 2]])


def test_config_input_size_is_the_resize_and_needs_one(ssd300_cfg):
    assert config_input_size(ssd300_cfg) == (300, 300)
    assert config_input_size(Config.fromfile(QUICKSTART)) == (128, 128)
    cfg = Config.fromfile(QUICKSTART)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            step['keep_ratio'] = True  # the input follows the image
    with pytest.raises(ValueError, match='keep_ratio=False'):
        config_input_size(cfg)


def test_default_boxes_of_ssd300_are_the_papers(ssd300_cfg):
    use_default_scope(ssd300_cfg)
    model = MODELS.build(ssd300_cfg.model).eval()
    featmaps, boxes = default_boxes(model, (300, 300))
    assert featmaps == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    # 4, 6, 6, 6, 4, 4 boxes per location: 8732 (section 3).
    assert [len(b) for b in boxes] == [38 * 38 * 4, 19 * 19 * 6, 10 * 10 * 6,
                                       5 * 5 * 6, 3 * 3 * 4, 4]
    assert sum(len(b) for b in boxes) == 8732
    # Level 0's first box: the min-size (21) square at the cell centre,
    # step 8 and offset 0.5: (4, 4); the last level's: size 261 at 150.
    torch.testing.assert_close(boxes[0][0], torch.tensor(
        [-6.5, -6.5, 14.5, 14.5]))
    torch.testing.assert_close(boxes[5][0], torch.tensor(
        [19.5, 19.5, 280.5, 280.5]))
    assert all(b.dtype == torch.float32 for b in boxes)


def test_default_boxes_of_mmdets_ssd300():
    """mmdet's generator takes no input shape; the maps are the same."""
    model = build_mmdet_ssd300()
    featmaps, boxes = default_boxes(model, (300, 300))
    assert featmaps[0] == (38, 38) and featmaps[-1] == (1, 1)
    assert sum(len(b) for b in boxes) == 8732


def test_leaf_datasets_unwrap_in_order():
    a, b, c = dict(type='A'), dict(type='B'), dict(type='C')
    wrapped = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ConcatDataset', datasets=[a, dict(type='X', dataset=b), c]))
    leaves = leaf_datasets(wrapped)
    assert leaves == [a, b, c] and leaves[1] is b  # the same dicts
    assert leaf_datasets(a) == [a]
