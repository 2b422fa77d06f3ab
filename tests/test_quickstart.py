"""The quickstart (``make demo``): its config trains, and the loss falls.

The full run (800 images, the config's epochs, mAP@0.5 >= 0.6) is measured
by ``make demo`` and reported in docs/benchmarks.md; here a short run on a
small set checks the path end to end: data generation, training through the
Runner, COCO evaluation, the drawn pictures and their grid.
"""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from conftest import load_tool
from ssd_plugin.testing.shapes import make_shapes
from ssd_plugin.utils import quickstart

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tool_config(argv):
    """The config ``tools/quickstart.py argv`` runs."""
    args = load_tool('quickstart.py').parse_args(argv)
    return quickstart.quickstart_config(**vars(args))


@pytest.mark.slow
def test_quickstart_trains_and_the_loss_falls(tmp_path):
    from mmengine.runner import Runner
    data_root = str(tmp_path / 'shapes')
    make_shapes(data_root, num_train=64, num_val=8, img_size=128, seed=1,
                progress=False)
    cfg = tool_config(['--work-dir', str(tmp_path / 'work'), '--data-root',
                       data_root, '--epochs', '6'])
    cfg.default_hooks.logger.interval = 1
    cfg.param_scheduler[0].end = 8  # a warm-up that fits a short run
    runner = Runner.from_cfg(cfg)
    runner.train()

    # 64 images / batch 16 = 4 iterations an epoch, 24 in all.
    history = runner.message_hub.get_scalar('train/loss')
    losses = np.asarray(history.data[0])
    assert len(losses) == 24 and np.isfinite(losses).all()
    first, last = losses[:4].mean(), losses[-4:].mean()
    assert last < 0.7 * first, losses
    # --epochs alone sets the schedule and checkpoint: the cosine ends at
    # epoch 6 (its last step, 5 of 6, leaves (1 + cos(5 pi / 6)) / 2 = 7% of
    # the rate; over 28 epochs it would leave 92%), one checkpoint.
    assert runner.optim_wrapper.get_lr()['lr'][0] < 0.1 * 8e-3
    assert [osp.basename(p) for p in glob.glob(
        str(tmp_path / 'work' / 'epoch_*.pth'))] == ['epoch_6.pth']

    metrics = runner.test()
    assert 0 <= metrics['coco/bbox_mAP_50'] <= 1
    drawn = glob.glob(osp.join(runner.log_dir, 'vis', '*.jpg')) + glob.glob(
        osp.join(runner.log_dir, 'vis', '*.png'))
    assert len(drawn) == 8
    # mmdet draws ground truth beside the detections: twice the image wide.
    assert cv2.imread(drawn[0]).shape[:2] == (128, 256)
    grid = quickstart.write_grid(sorted(drawn), str(tmp_path / 'grid.png'))
    assert cv2.imread(grid).shape[:2] == (28 + 3 * (128 + 4), 2 * 256 + 4)


def test_write_grid_tiles_in_order_under_a_heading(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    paths = []
    for i, colour in enumerate(colours):
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], np.full((10, 20, 3), colour, np.uint8))
    out = quickstart.write_grid(paths, str(tmp_path / 'grid.png'), cols=2,
                                rows=3, gap=4)
    grid = cv2.imread(out)
    # A 28-pixel heading, then rows of 10 + 4 gap, cells 20 wide + 4 gap.
    assert grid.shape == (28 + 2 * 14, 2 * 24 - 4, 3)
    assert (grid[:28] < 255).any()  # the heading's text
    np.testing.assert_array_equal(grid[28, 0], colours[0])
    np.testing.assert_array_equal(grid[28 + 9, 24 + 19], colours[1])
    np.testing.assert_array_equal(grid[28 + 14, 0], colours[2])
    assert (grid[28 + 14:, 24:] == 255).all()  # the row's empty cell
    assert (grid[28 + 10:28 + 14] == 255).all()  # the gap between rows


def test_write_grid_empty_and_mixed_sizes(tmp_path):
    assert quickstart.write_grid([], str(tmp_path / 'grid.png')) is None
    assert not (tmp_path / 'grid.png').exists()
    for name, shape in (('a.png', (10, 20, 3)), ('b.png', (12, 20, 3))):
        cv2.imwrite(str(tmp_path / name), np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match='one size'):
        quickstart.write_grid([str(tmp_path / 'a.png'),
                               str(tmp_path / 'b.png')],
                              str(tmp_path / 'grid.png'))


def test_quickstart_config_points_at_the_given_folders(tmp_path):
    cfg = tool_config(['--work-dir', 'w', '--data-root', 'somewhere/shapes',
                       '--epochs', '3', '--seed', '5', '--cfg-options',
                       'train_dataloader.batch_size=3'])
    assert cfg.work_dir == 'w'
    assert cfg.train_dataloader.dataset.data_root == 'somewhere/shapes/'
    assert cfg.test_evaluator.ann_file == \
        'somewhere/shapes/annotations/instances_val.json'
    assert cfg.train_cfg.max_epochs == 3
    # The cosine schedule takes its end from the loop (mmengine's default).
    assert 'end' not in cfg.param_scheduler[-1]
    assert cfg.randomness.seed == cfg.train_dataloader.sampler.seed == 5
    assert cfg.train_dataloader.batch_size == 3
    default = tool_config([])
    assert default.randomness.seed == 0 and default.train_cfg.max_epochs > 3
    # The generated set matches the network input.
    assert cfg.shapes_set['img_size'] == cfg.input_size


def test_quickstart_regenerates_a_set_of_the_wrong_size(tmp_path, capsys):
    from mmengine.config import Config
    root = str(tmp_path / 'shapes')
    cfg = Config(dict(shapes_set=dict(num_train=3, num_val=2, img_size=32,
                                      seed=0, progress=False)))
    quickstart.ensure_data(root, cfg)
    assert 'writing' in capsys.readouterr().out
    quickstart.ensure_data(root, cfg)
    assert 'using the shapes set' in capsys.readouterr().out
    cfg.shapes_set.num_train = 5
    quickstart.ensure_data(root, cfg)
    assert '5 train, 2 held-out' in capsys.readouterr().out
    with open(osp.join(root, 'annotations', 'instances_train.json')) as f:
        assert len(json.load(f)['images']) == 5
