"""Our configs from mmdet's own entry points, unchanged (issue 9.1, 9.11).

``DetInferencer`` in its default scope ('mmdet'), ``init_detector`` +
``inference_detector``, the README's inference code, mmdet's analysis tools
through ``mim run mmdet``, and image arrays users hand to inference. The
model is the quickstart's (a small ResNet-18 SSD at 128) on the tiny shapes
set of ``conftest.py``, with a checkpoint saved from its initial weights.
"""
import os.path as osp
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ssd_plugin.datasets.transforms.to_bgr_image import to_bgr_image

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / 'configs' / 'quickstart' / 'ssd_shapes.py')
CLASSES = ('circle', 'square', 'triangle', 'star')


def save_initial_checkpoint(config: str, path: str,
                            classes: tuple = CLASSES) -> str:
    """Build the config's model in mmdet's scope (its ``_scope_`` must make
    that work) and save its initial weights with the class names."""
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=classes))), path)
    return path


@pytest.fixture(scope='module')
def shapes_config(tmp_path_factory, shapes_root) -> str:
    """The quickstart config on the tiny shapes set."""
    root = shapes_root + '/'
    path = tmp_path_factory.mktemp('entry') / 'ssd_shapes_tiny.py'
    path.write_text(
        f'_base_ = [{QUICKSTART!r}]\n'
        f'data_root = {root!r}\n'
        'train_dataloader = dict(dataset=dict(data_root=data_root))\n'
        'val_dataloader = dict(dataset=dict(data_root=data_root))\n'
        'test_dataloader = val_dataloader\n'
        "val_evaluator = dict(ann_file=data_root + "
        "'annotations/instances_val.json')\n"
        'test_evaluator = val_evaluator\n')
    return str(path)


@pytest.fixture(scope='module')
def checkpoint(shapes_config, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('ckpt') / 'initial.pth'
    return save_initial_checkpoint(shapes_config, str(path))


@pytest.fixture(scope='module')
def image(shapes_root) -> np.ndarray:
    """A 64x64 BGR shapes image."""
    return cv2.imread(osp.join(shapes_root, 'val', '000008.jpg'))


@pytest.fixture(scope='module')
def detector(shapes_config, checkpoint):
    from mmdet.apis import init_detector
    return init_detector(shapes_config, checkpoint, device='cpu')


def boxes_and_scores(result) -> tuple:
    dets = result.pred_instances
    return dets.bboxes.numpy(), dets.scores.numpy()


# --- DetInferencer in mmdet's scope, init_detector, the README -------------
def test_det_inferencer_in_its_default_scope(shapes_config, checkpoint,
                                             image, detector):
    from mmdet.apis import DetInferencer, inference_detector
    inferencer = DetInferencer(model=shapes_config, weights=checkpoint,
                               device='cpu')  # scope='mmdet'
    assert inferencer.scope == 'mmdet'
    assert tuple(inferencer.model.dataset_meta['classes']) == CLASSES
    pred = inferencer(image, return_datasamples=True)['predictions'][0]
    # The same weights through init_detector + inference_detector.
    expected = boxes_and_scores(inference_detector(detector, image))
    np.testing.assert_allclose(boxes_and_scores(pred)[0], expected[0],
                               atol=1e-4)
    assert len(expected[1]) > 0
    assert (expected[0][:, 0::2] <= 64 + 1e-3).all()  # the 64x64 original


@pytest.mark.slow
def test_readme_inference_code_runs(tmp_path, shapes_root):
    """The README's DetInferencer block, with our checkpoint and image."""
    from mmdet.datasets import VOCDataset
    readme = (ROOT / 'README.md').read_text()
    block = re.search(r'## Inference\n.*?```python\n(.*?)```', readme,
                      re.S).group(1)
    ckpt = save_initial_checkpoint(
        str(ROOT / 'configs/ssd/ssd300_voc0712.py'),
        str(tmp_path / 'ssd300_voc0712.pth'),
        VOCDataset.METAINFO['classes'])
    code = (block.replace('work_dirs/ssd300_voc0712/iter_120000.pth', ckpt)
            .replace('demo.jpg', osp.join(shapes_root, 'val', '000008.jpg'))
            .replace("'outputs'", repr(str(tmp_path / 'outputs'))))
    assert code != block
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'outputs' / 'vis' / '000008.jpg').is_file()
    assert (tmp_path / 'outputs' / 'preds' / '000008.json').is_file()


# --- image arrays: converted as documented, or a clear error ---------------
def test_to_bgr_image_conversions_by_hand():
    gray = np.array([[0, 255], [10, 20]], np.uint8)
    np.testing.assert_array_equal(to_bgr_image(gray)[..., 1], gray)
    assert to_bgr_image(gray[..., None]).shape == (2, 2, 3)
    bgra = np.arange(2 * 2 * 4, dtype=np.uint8).reshape(2, 2, 4)
    np.testing.assert_array_equal(to_bgr_image(bgra), bgra[..., :3])
    deep = np.array([[0, 65535, 2570]], np.uint16)[..., None]
    np.testing.assert_array_equal(to_bgr_image(deep)[..., 0],
                                  [[0, 255, 10]])
    floats = np.full((2, 2, 3), 7.5)
    assert to_bgr_image(floats).dtype == np.float32


@pytest.mark.parametrize('bad,error,match', [
    (np.zeros((0, 64, 3), np.uint8), ValueError, r'\(0, 64, 3\) is empty'),
    (np.zeros((4, 0), np.uint8), ValueError, 'empty'),
    (np.full((8, 8, 3), np.nan, np.float32), ValueError, '192 NaN'),
    (np.zeros((8, 8, 2), np.uint8), ValueError, r'\(8, 8, 2\)'),
    (np.zeros((8, 8, 3), np.int32), TypeError, 'dtype int32'),
    (np.zeros((8, 8, 3), bool), TypeError, 'dtype bool'),
    ([[0, 1]], TypeError, 'list'),
])
def test_to_bgr_image_refuses_with_the_value(bad, error, match):
    with pytest.raises(error, match=match):
        to_bgr_image(bad)


def converted_inputs(image: np.ndarray) -> list:
    """``(array given, the BGR uint8 image it stands for)``."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    gray3 = np.repeat(gray[..., None], 3, axis=2)
    alpha = np.full(image.shape[:2] + (1, ), 128, np.uint8)
    return [(gray, gray3), (gray[..., None], gray3),
            (np.concatenate([image, alpha], axis=2), image),
            (image.astype(np.uint16) * 257, image)]  # 16 bit: x * 257


@pytest.mark.parametrize('case', ['gray', 'gray_hw1', 'bgra', 'uint16'])
def test_inference_converts_arrays_as_documented(case, detector, image,
                                                 shapes_config, checkpoint):
    from mmdet.apis import DetInferencer, inference_detector
    given, means = dict(zip(['gray', 'gray_hw1', 'bgra', 'uint16'],
                            converted_inputs(image)))[case]
    expected = boxes_and_scores(inference_detector(detector, means))
    got = boxes_and_scores(inference_detector(detector, given))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-5)
    inferencer = DetInferencer(model=shapes_config, weights=checkpoint,
                               device='cpu')
    pred = inferencer(given, return_datasamples=True)['predictions'][0]
    np.testing.assert_allclose(boxes_and_scores(pred)[1], expected[1],
                               atol=1e-5)


@pytest.mark.parametrize('bad,error,match', [
    (np.zeros((0, 64, 3), np.uint8), ValueError, 'is empty'),
    (np.full((64, 64, 3), np.nan, np.float32), ValueError, 'NaN'),
])
def test_inference_refuses_bad_arrays(bad, error, match, detector):
    from mmdet.apis import inference_detector
    with pytest.raises(error, match=match):
        inference_detector(detector, bad)


def test_inference_missing_and_corrupt_paths_name_the_path(
        shapes_config, checkpoint, tmp_path):
    from mmdet.apis import inference_detector, init_detector

    # A detector of its own: mmdet 3.3's inference_detector, given an array,
    # rewrites model.cfg's first test step in place (a shallow cfg.copy()),
    # so that a path given to the same model later fails with KeyError 'img'.
    detector = init_detector(shapes_config, checkpoint, device='cpu')
    missing = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        inference_detector(detector, missing)
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not an image')
    with pytest.raises(Exception, match='corrupt.jpg'):
        inference_detector(detector, str(corrupt))


# --- mmdet's analysis tools on our config, through mim ----------------------
@pytest.mark.slow
def test_mim_run_mmdet_analysis_tools(shapes_config, checkpoint, tmp_path):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    preds = str(tmp_path / 'preds.pkl')

    def run(*args: str) -> str:
        result = subprocess.run([mim, *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, (args, result.stdout[-2000:],
                                        result.stderr[-2000:])
        return result.stdout + result.stderr

    run('test', 'mmdet', shapes_config, '--checkpoint', checkpoint,
        '--work-dir', str(tmp_path / 'test'), '--out', preds)
    run('run', 'mmdet', 'browse_dataset', shapes_config, '--not-show',
        '--output-dir', str(tmp_path / 'browse'))
    assert len(list((tmp_path / 'browse').iterdir())) == 8  # 8 train images
    out = run('run', 'mmdet', 'get_flops', shapes_config, '--num-images', '1')
    assert re.search(r'Flops: \S+', out)
    # mmdet's benchmark imports psutil (our tests extra installs it). Its
    # 'inference' task calls model.cuda() and its 'dataloader' task divides
    # by zero on a set this small, so the CPU test runs the 'dataset' task.
    out = run('run', 'mmdet', 'benchmark', shapes_config, '--task', 'dataset',
              '--max-iter', '6', '--num-warmup', '1', '--log-interval', '1',
              '--repeat-num', '1')
    assert re.search(r'Overall fps: [\d.]+ img/s', out)
    run('run', 'mmdet', 'analyze_results', shapes_config, preds,
        str(tmp_path / 'analyze'), '--topk', '1')
    assert list((tmp_path / 'analyze').rglob('*.jpg'))
    run('run', 'mmdet', 'confusion_matrix', shapes_config, preds,
        str(tmp_path / 'confusion'))
    assert (tmp_path / 'confusion' / 'confusion_matrix.png').is_file()
