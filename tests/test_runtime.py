"""ssd_runtime: the deployed SSD where torch, mmengine, mmcv, mmdet and onnx
are not installed.

The reference is :class:`ssd_plugin.deploy.DeployedDetector` on the float
export, fed by the config's own test pipeline and data preprocessor. The
runtime runs in a subprocess whose imports of torch, mmengine, mmcv, mmdet
and onnx raise (a meta-path blocker installed before anything else), on the
photograph and random non-square images of ``conftest.sample_images``, with
the float and the uint8 exports, FP32 and INT8, on both backends, and runs
``ssd-detect`` on a generated video; its detections must agree with the
reference (>= 99%: same label, IoU > 0.99, score within 1e-3).
"""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
from mmdet.apis import inference_detector
from mmengine.structures import InstanceData

from conftest import QUICKSTART_CONFIG, REPO_ROOT, load_tool, sample_images
from ssd_plugin.deploy import DeployedDetector
from ssd_plugin.testing.shapes_video import make_shapes_video
from ssd_plugin.utils.benchmark import detection_agreement
from ssd_runtime import Detector
from ssd_runtime.backends import build_session
from ssd_runtime.detections import to_original
from ssd_runtime.preprocess import preprocess

onnx = pytest.importorskip('onnx', reason='the deploy extra')
BACKENDS = ('onnxruntime', 'openvino')
BLOCKED = ('torch', 'mmengine', 'mmcv', 'mmdet', 'onnx')
# Runs first in the subprocess: every import of a BLOCKED package raises.
CHILD = textwrap.dedent('''
    import sys
    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ImportError(f'{{name}} is not installed here')

    sys.meta_path.insert(0, Blocker())
    import json
    import numpy as np
    from ssd_runtime import Detector
    from ssd_runtime.detect import main

    job = json.load(open(sys.argv[1]))
    images = np.load(job['images'])
    images = [images[str(i)] for i in range(len(images.files))]
    out = {{}}
    for name, path in job['models'].items():
        for backend in job['backends']:
            for i, found in enumerate(Detector(path, backend)(images)):
                for field in ('boxes', 'scores', 'labels'):
                    out[f'{{name}} {{backend}} {{i}} {{field}}'] = getattr(
                        found, field)
    np.savez(job['results'], **out)
    code = main(job['detect'])
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)
    print('blocked modules loaded:', loaded, 'detect exit code:', code)
''').format(blocked=BLOCKED)


def _instances(boxes, scores, labels) -> InstanceData:
    return InstanceData(bboxes=torch.from_numpy(boxes),
                        scores=torch.from_numpy(scores),
                        labels=torch.from_numpy(labels))


@pytest.fixture(scope='module')
def int8_uint8(quickstart_onnx, tmp_path_factory):
    """The uint8 export quantized by tools/deployment/quantize.py,
    calibrated on the sample images."""
    folder = tmp_path_factory.mktemp('int8')
    for index, image in enumerate(sample_images()):
        cv2.imwrite(str(folder / f'{index}.png'), image)
    out = str(folder / 'int8.onnx')
    load_tool('deployment/quantize.py').main(
        [QUICKSTART_CONFIG, quickstart_onnx.uint8, out, '--images',
         str(folder), '--num-images', '6'])
    return out


@pytest.fixture(scope='module')
def torch_free(quickstart_onnx, int8_uint8, tmp_path_factory):
    """Run :data:`CHILD`; its detections per ``'model backend image
    field'`` and the paths of its ``ssd-detect`` run."""
    folder = tmp_path_factory.mktemp('torch_free')
    video = make_shapes_video(str(folder / 'shapes.mp4'), num_frames=12,
                              frame_size=(160, 96), seed=1)
    np.savez(folder / 'images.npz',
             **{str(i): im for i, im in enumerate(sample_images())})
    paths = dict(out=str(folder / 'drawn.mp4'), json=str(folder / 'd.json'))
    job = dict(
        images=str(folder / 'images.npz'), results=str(folder / 'out.npz'),
        backends=[b for b in BACKENDS if _installed(b)],
        models=dict(float=quickstart_onnx.end2end,
                    uint8=quickstart_onnx.uint8, int8=int8_uint8),
        detect=[int8_uint8, video['path'], '--out', paths['out'], '--json',
                paths['json'], '--score-thr', '0.5', '--threads', '1'])
    with open(folder / 'job.json', 'w') as f:
        json.dump(job, f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [osp.join(REPO_ROOT, 'runtime'), os.environ.get('PYTHONPATH', '')]))
    done = subprocess.run([sys.executable, '-c', CHILD, str(folder /
                                                           'job.json')],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'blocked modules loaded: [] detect exit code: 0' in done.stdout
    results = dict(np.load(job['results']))
    return results, job['backends'], paths, video


def _installed(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def _runtime(results, name, backend, index) -> InstanceData:
    return _instances(*(results[f'{name} {backend} {index} {field}']
                        for field in ('boxes', 'scores', 'labels')))


def test_same_detections_as_deployed_detector_without_torch(
        quickstart_onnx, torch_free):
    """FP32, float and uint8 exports, both backends, against
    DeployedDetector (float export, ONNX Runtime, the config's pipeline)."""
    results, backends, _, _ = torch_free
    imgs = sample_images()
    cfg = quickstart_onnx.model.cfg
    reference = [r.pred_instances for r in inference_detector(
        DeployedDetector(quickstart_onnx.end2end, cfg), imgs)]
    for name in ('float', 'uint8'):
        for backend in backends:
            matched = total = 0
            for index, ref in enumerate(reference):
                got = _runtime(results, name, backend, index)
                assert len(got) <= 200 and (got.scores > 0).all()
                m, t = detection_agreement(ref, got)
                matched, total = matched + m, total + t
            assert total > 6 * 100 and matched / total >= 0.99, (
                name, backend, matched, total)


def test_int8_through_the_runtime_stays_close(torch_free, int8_uint8):
    """As the INT8 test of test_deploy.py: each image's 50 best FP32
    detections mostly kept (same label, IoU > 0.5, score within 0.1); the
    graph's input steps stay FP32 (not quantized)."""
    results, backends, _, _ = torch_free
    for backend in backends:
        for index in range(len(sample_images())):
            fp32 = _runtime(results, 'uint8', 'onnxruntime', index)
            int8 = _runtime(results, 'int8', backend, index)
            matched, _ = detection_agreement(fp32[:50], int8, 0.5, 0.1)
            assert matched >= 40, (backend, index, matched)
    model = onnx.load(int8_uint8)
    dequantized = {o for n in model.graph.node for o in n.output
                   if n.op_type == 'DequantizeLinear'}
    normalise = [n for n in model.graph.node
                 if n.name.startswith('/normalise/')]
    assert {'Sub', 'Div'} <= {n.op_type for n in normalise}
    assert not dequantized & {i for n in normalise for i in n.input}


def test_uint8_graph_equals_float_graph(quickstart_onnx):
    """The same resized images, as uint8 BGR and as the data
    preprocessor's float input: the graphs' outputs within 1e-4."""
    detector = Detector(quickstart_onnx.uint8)
    imgs = sample_images()
    resized, _ = preprocess(imgs, detector.info)
    as_float = Detector(quickstart_onnx.end2end).info
    floats, _ = preprocess(imgs, as_float)
    assert resized.dtype == np.uint8 and resized.shape == (6, 128, 128, 3)
    assert floats.dtype == np.float32 and floats.shape == (6, 3, 128, 128)
    for backend in [b for b in BACKENDS if _installed(b)]:
        dets_u, labels_u = build_session(quickstart_onnx.uint8,
                                         backend)(resized)
        dets_f, labels_f = build_session(quickstart_onnx.end2end,
                                         backend)(floats)
        assert (dets_f[..., 4] > 0).sum() > 6 * 100
        np.testing.assert_allclose(dets_u, dets_f, atol=1e-4, rtol=0)
        np.testing.assert_array_equal(labels_u, labels_f)


def test_detect_on_a_video_writes_every_frame(torch_free):
    _, _, paths, video = torch_free
    capture = cv2.VideoCapture(paths['out'])
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == video['num_frames'] == 12
    with open(paths['json']) as f:
        coco = json.load(f)
    assert [im['id'] for im in coco['images']] == list(range(12))
    assert all((im['width'], im['height']) == (160, 96)
               for im in coco['images'])
    assert [c['name'] for c in coco['categories']] == [
        'circle', 'square', 'triangle', 'star']
    assert coco['skipped'] == []
    for det in coco['annotations']:
        assert det['score'] >= 0.5 and 1 <= det['category_id'] <= 4
        x, y, w, h = det['bbox']  # rounded to 0.01 px
        assert 0 <= x <= x + w < 160.02 and 0 <= y <= y + h < 96.02


# --- pieces checked by hand --------------------------------------------------

def test_to_original_clips_and_scales_by_hand():
    dets = np.array([[-4., 10., 70., 50., 0.9],   # clipped at 0 and 64
                     [8., 8., 16., 32., 0.5],
                     [0., 0., 0., 0., 0.]], np.float32)  # padding
    labels = np.array([2, 0, 0])
    # A 200x100 (w x h) image resized to 64x64: scale (0.32, 0.64).
    boxes, scores, kept = to_original(dets, labels, (64, 64), (0.32, 0.64))
    np.testing.assert_allclose(boxes, [[0, 15.625, 200, 78.125],
                                       [25, 12.5, 50, 50]], rtol=1e-6)
    np.testing.assert_array_equal(scores, np.float32([0.9, 0.5]))
    np.testing.assert_array_equal(kept, [2, 0])
    empty = to_original(np.zeros((5, 5), np.float32), np.zeros(5, int),
                        (64, 64), (1., 1.))
    assert [a.shape[0] for a in empty] == [0, 0, 0]


def test_detector_calls_and_results(quickstart_onnx):
    detector = Detector(quickstart_onnx.uint8, threads=1)
    assert detector([]) == []
    image = sample_images()[1]
    one = detector(image)
    assert len(one) > 0 and one.boxes.dtype == np.float32
    assert set(one.class_names) <= {'circle', 'square', 'triangle', 'star'}
    np.testing.assert_array_equal(
        one.class_names, np.array(detector.classes)[one.labels])
    assert (np.diff(one.scores) <= 0).all()  # best first
    gray = detector(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert len(gray) > 0
    strong = one.above(0.5)
    assert len(strong) == int((one.scores >= 0.5).sum())
    assert len(one[:0]) == 0 and len(one[0]) == 1


def _same(a, b) -> bool:
    """Same boxes, labels and scores up to the backends' float order (a
    stream with fewer threads sums in another order)."""
    return len(a) == len(b) and np.array_equal(a.labels, b.labels) and \
        np.allclose(a.boxes, b.boxes, atol=1e-2) and \
        np.allclose(a.scores, b.scores, atol=1e-4)


@pytest.mark.parametrize('backend', BACKENDS)
def test_streams_side_by_side_give_each_image_its_detections(
        quickstart_onnx, backend):
    pytest.importorskip(backend)
    images = [image for image in sample_images() for _ in range(3)]
    one = Detector(quickstart_onnx.uint8, backend, threads=2)
    two = Detector(quickstart_onnx.uint8, backend, threads=2, streams=2)
    expected = [one(image) for image in images]
    assert sum(map(len, expected)) > 0
    for found in (list(two.imap(images)), list(one.imap(iter(images)))):
        assert len(found) == len(expected)
        assert all(map(_same, expected, found))
    assert list(two.imap([])) == []
    # Called from 4 threads at once: each call waits for a free stream.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(two, images))
    assert len(found) == len(expected) and all(map(_same, expected, found))
    assert 'streams=2' in repr(two)


def test_streams_out_of_range(quickstart_onnx):
    for backend in [b for b in BACKENDS if _installed(b)]:
        with pytest.raises(ValueError, match='streams=0; use 1'):
            Detector(quickstart_onnx.uint8, backend, streams=0)
        with pytest.raises(ValueError, match='streams=3 is more than the 2 '
                           'threads'):
            Detector(quickstart_onnx.uint8, backend, threads=2, streams=3)


# --- bad input ---------------------------------------------------------------

def test_onnx_not_ours_or_without_its_preprocessing(tmp_path,
                                                    quickstart_onnx):
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'other',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    other = str(tmp_path / 'other.onnx')
    onnx.save(helper.make_model(graph), other)
    for backend in [b for b in BACKENDS if _installed(b)]:
        with pytest.raises(ValueError, match='not exported by ssd_plugin'):
            Detector(other, backend)
    # A float export without the normalisation in its metadata.
    model = onnx.load(quickstart_onnx.end2end)
    props = [p for p in model.metadata_props
             if p.key not in ('ssd_plugin.mean', 'ssd_plugin.std')]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    old = str(tmp_path / 'old.onnx')
    onnx.save(model, old)
    with pytest.raises(ValueError, match='does not record its normalisation'
                       '.*export_onnx.py'):
        Detector(old)
    assert len(DeployedDetector(old, QUICKSTART_CONFIG)(
        torch.zeros(1, 3, 128, 128), [_sample()])[0].pred_instances) > 0
    text = tmp_path / 'notes.onnx'
    text.write_text('not a model')
    with pytest.raises(ValueError, match='is not an ONNX model'):
        Detector(str(text))
    with pytest.raises(FileNotFoundError, match='export_onnx.py'):
        Detector(str(tmp_path / 'missing.onnx'))
    with pytest.raises(ValueError, match="'raw' export"):
        Detector(quickstart_onnx.raw)


def _sample():
    from mmdet.structures import DetDataSample
    return DetDataSample(metainfo=dict(img_shape=(128, 128),
                                       scale_factor=(1., 1.)))


def test_input_of_another_size_or_type(quickstart_onnx):
    detector = Detector(quickstart_onnx.uint8)
    with pytest.raises(ValueError, match=r'shape \(1, 96, 96, 3\).*takes '
                       r'\(N, 128, 128, 3\) uint8'):
        detector.infer(np.zeros((1, 96, 96, 3), np.uint8))
    with pytest.raises(ValueError, match='dtype float32'):
        detector.infer(np.zeros((1, 128, 128, 3), np.float32))
    with pytest.raises(TypeError, match='numpy array'):
        detector([[1, 2, 3]])
    with pytest.raises(ValueError, match='is empty'):
        detector(np.zeros((0, 5, 3), np.uint8))


@pytest.mark.parametrize('backend', BACKENDS)
def test_missing_backend_names_what_to_install(quickstart_onnx, monkeypatch,
                                               backend):
    monkeypatch.setitem(sys.modules, backend, None)
    with pytest.raises(ImportError, match=rf"pip install '\./runtime\["
                       rf"{backend}\]'"):
        Detector(quickstart_onnx.uint8, backend)


def test_unknown_backend_or_precision(quickstart_onnx):
    with pytest.raises(ValueError, match="backend='tensorrt'"):
        Detector(quickstart_onnx.uint8, 'tensorrt')
    with pytest.raises(ValueError, match='not available on onnxruntime'):
        Detector(quickstart_onnx.uint8, 'onnxruntime', 'bf16')
