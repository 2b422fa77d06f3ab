"""Smoke tests of the augmentation benchmark (``ssd_plugin.benchmarks.
augmentation``, ``tools/analysis_tools/benchmark_augmentation.py``).

It runs on a photograph-like image written here (no downloads), with a
handful of samples so that the file takes seconds.
"""
import glob
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from conftest import load_tool
from ssd_plugin.benchmarks import augmentation as bench

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools', 'analysis_tools')


@pytest.fixture
def photo(tmp_path) -> str:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(
        rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (9, 9), 3)
    path = str(tmp_path / 'photo.png')
    cv2.imwrite(path, img)
    return path


def test_make_sample_sizes_and_boxes(photo):
    rng = np.random.default_rng(1)
    for _ in range(20):
        img, boxes = bench.make_sample(cv2.imread(photo), rng)
        h, w = img.shape[:2]
        assert 300 <= max(h, w) <= 701 and img.flags.c_contiguous
        assert 1 <= len(boxes) <= 6
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2]
                                              <= w).all() and (boxes[:, 3]
                                                               <= h).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()


def test_benchmark_runs_both_pipelines(photo, capsys):
    tool = load_tool('analysis_tools/benchmark_augmentation.py')
    ratios = tool.main(['--images', photo, '--samples', '12', '--rounds',
                        '2'])
    out = capsys.readouterr().out
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    assert 'median over 2 rounds' in out
    assert out.startswith('CPU: ') and 'threads: 1' in out.splitlines()[0]
    assert 'mmdet' in out and 'ssd_plugin' in out


def test_benchmark_names_missing_images():
    with pytest.raises(FileNotFoundError, match='--images'):
        bench.load_samples(['/nonexistent/photo.jpg'], 1, 0)


@pytest.mark.parametrize(
    'name', ['ssd300_coco', 'ssd512_coco', 'ssd300_voc0712', 'ssd512_voc0712'])
def test_every_config_trains_with_the_ssd_augmentation(name):
    config = osp.join(REPO_ROOT, 'configs', 'ssd', f'{name}.py')
    steps = [t['type'].split('.')[-1]
             for t in bench.augmentation_from_config(config)]
    assert steps[:3] == [
        'RandomPhotometricDistort', 'RandomZoomOut', 'RandomIoUCrop'
    ]
    assert steps[3:] == ['Resize', 'RandomFlip']


def test_augmentation_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='--config'):
        bench.augmentation_from_config(str(tmp_path / 'missing.py'))
    empty = tmp_path / 'empty.py'
    empty.write_text('x = 1\n')
    with pytest.raises(ValueError, match='training config'):
        bench.augmentation_from_config(str(empty))


def test_benchmark_reads_mmdets_pipeline_from_its_config():
    steps = [t['type'] for t in
             bench.augmentation_from_config(bench.MMDET_SSD300)]
    assert steps == ['Expand', 'MinIoURandomCrop', 'Resize', 'RandomFlip',
                     'PhotoMetricDistortion']


def test_benchmark_refuses_pipelines_of_different_sizes(photo):
    ssd512 = osp.join(REPO_ROOT, 'configs', 'ssd', 'ssd512_coco.py')
    with pytest.raises(ValueError, match='different sizes'):
        bench.run([photo], samples=2, rounds=1, seed=0, config=ssd512)


@pytest.mark.parametrize('script', sorted(glob.glob(osp.join(TOOLS, '*.py'))))
def test_every_config_a_tool_names_exists(script):
    with open(script) as f:
        named = re.findall(r'configs/[\w/.-]+\.py', f.read())
    missing = [c for c in named if not osp.isfile(osp.join(REPO_ROOT, c))]
    assert not missing, f'{osp.basename(script)} names {missing}'
