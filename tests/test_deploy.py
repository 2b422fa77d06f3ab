"""Deployment: ONNX export, ONNX Runtime / OpenVINO parity, bad input.

The model is the quickstart config's (input 128) with random weights whose
head is spread to trained-like scores (as in the mmdet equivalence test),
so that hundreds of detections of every class and score come out. The torch
model (mmdet's ``inference_detector`` / ``test_step``) is the reference:
the exported models must give >= 99% identical detections (IoU > 0.99,
same label, |score difference| < 1e-3) on a photograph and random
non-square images, at batch 1 and 4.
"""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmdet.apis import inference_detector
from mmengine.config import Config

from conftest import (QUICKSTART_CONFIG, REPO_ROOT, avx2_library,
                      load_tool, pipeline_batch, sample_images)
from ssd_plugin.analysis.cpu_mask import masked_environ
from ssd_plugin.deploy import DeployedDetector, bf16_network, read_metadata
from ssd_plugin.deploy.backends import build_session
from ssd_plugin.deploy.export import End2EndSSD, deploy_test_cfg
from ssd_plugin.deploy.layer_profile import (convolutions, onnxruntime_layers,
                                             openvino_layers)
from ssd_plugin.models.ssd_head import flatten_levels
from ssd_plugin.utils.benchmark import detection_agreement

onnx = pytest.importorskip('onnx', reason='the deploy extra')

CONFIG = QUICKSTART_CONFIG
BACKENDS = ('onnxruntime', 'openvino')
images = sample_images  # the photograph and five random non-square images
_batch = pipeline_batch


def _load_tool(name: str):
    return load_tool(f'deployment/{name}.py')


@pytest.fixture(scope='module')
def exported(quickstart_onnx):
    """``(torch model, end2end .onnx, raw .onnx)`` (conftest's export)."""
    return (quickstart_onnx.model, quickstart_onnx.end2end,
            quickstart_onnx.raw)


def _agreement(reference, results):
    matched = total = 0
    for ref, res in zip(reference, results):
        assert res.ori_shape == ref.ori_shape
        m, t = detection_agreement(ref.pred_instances, res.pred_instances)
        matched, total = matched + m, total + t
    return matched / total, total


# 1000: the pairs among the best boxes (P = 1524); 3000: among all boxes;
# -1: every pair (no nms_pre).
@pytest.mark.parametrize('nms_pre', [1000, 3000, -1])
def test_end2end_graph_in_torch_is_the_heads_inference(exported, nms_pre,
                                                       monkeypatch):
    """The graph's fixed-shape selection, run eagerly, against the head."""
    model = exported[0]
    monkeypatch.setattr(model.bbox_head, 'test_cfg', dict(
        model.bbox_head.test_cfg, nms_pre=nms_pre))
    wrapper = End2EndSSD(model, (128, 128)).eval()
    inputs = torch.randn(3, 3, 128, 128)
    metas = [dict(img_shape=(128, 128), scale_factor=(1., 1.),
                  batch_input_shape=(128, 128))] * 3
    with torch.no_grad():
        dets, labels = wrapper(inputs)
        expected = model.bbox_head.predict_by_feat(
            *model.bbox_head(model.extract_feat(inputs)),
            batch_img_metas=metas)
    assert dets.shape == (3, 200, 5) and labels.dtype == torch.int64
    for det, label, exp in zip(dets, labels, expected):
        assert len(exp) > 100  # a meaningful reference
        found = det[:, 4] > 0
        assert (det[~found] == 0).all() and (label[~found] == 0).all()
        assert torch.equal(label[found], exp.labels)
        torch.testing.assert_close(det[found, 4], exp.scores)
        torch.testing.assert_close(det[found, :4], exp.bboxes)


@pytest.mark.parametrize('backend', BACKENDS)
def test_parity_at_batch_1_and_4(exported, backend):
    model, end2end, _ = exported
    pytest.importorskip(backend)
    deployed = DeployedDetector(end2end, model.cfg, backend, 'f32')
    imgs = images()
    # Batch 1 through mmdet's own inference_detector, on both.
    fraction, total = _agreement(inference_detector(model, imgs),
                                 inference_detector(deployed, imgs))
    assert total > 6 * 100 and fraction >= 0.99, (fraction, total)
    batch = _batch(model.cfg, imgs[:4])
    with torch.no_grad():
        fraction, _ = _agreement(model.test_step(batch),
                                 deployed.test_step(batch))
    assert fraction >= 0.99


def test_raw_outputs_are_the_heads(exported):
    model, _, raw = exported
    session = build_session(raw, 'onnxruntime')
    inputs = torch.randn(2, 3, 128, 128)
    logits, deltas, priors = session(inputs.numpy())
    with torch.no_grad():
        cls_scores, bbox_preds = model.bbox_head(model.extract_feat(inputs))
    head = model.bbox_head
    np.testing.assert_allclose(
        logits, flatten_levels(cls_scores, head.cls_out_channels).numpy(),
        atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        deltas, flatten_levels(bbox_preds, 4).numpy(), atol=1e-4, rtol=0)
    expected = head._priors(cls_scores, [dict(batch_input_shape=(128, 128))])
    assert priors.shape == (1524, 4)  # 16^2*4 + 8^2*6 + 4^2*6 + 2^2*4 + 4
    np.testing.assert_allclose(priors, expected.numpy(), atol=1e-4, rtol=0)


def test_metadata_and_baked_test_cfg(exported):
    meta = read_metadata(exported[1])
    assert meta['mode'] == 'end2end' and meta['input_size'] == (128, 128)
    assert meta['num_classes'] == 4
    assert meta['classes'] == ['circle', 'square', 'triangle', 'star']
    assert meta['test_cfg'] == dict(score_thr=0.01, nms_pre=1000,
                                    iou_threshold=0.45, max_per_img=200,
                                    min_bbox_size=0.)
    assert read_metadata(exported[2])['mode'] == 'raw'


def test_torch_bf16_is_close_and_restores_the_model(exported):
    model = exported[0]
    imgs = images()[:2]
    reference = inference_detector(model, imgs)
    with bf16_network(model):
        results = inference_detector(model, imgs)
    assert 'extract_feat' not in vars(model)
    assert 'forward' not in vars(model.bbox_head)
    for ref, res in zip(reference, results):
        a, b = ref.pred_instances, res.pred_instances
        assert b.bboxes.dtype == torch.float32
        # bf16 logits move scores by ~1e-2: same top detection, near box.
        assert a.labels[0] == b.labels[0]
        torch.testing.assert_close(a.scores[:5], b.scores[:5], atol=0.05,
                                   rtol=0)


def _evaluate_by_hand(model, cfg):
    """The config's test metrics through mmengine's evaluator, batch by
    batch (what mmengine's TestLoop does, written out)."""
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    with torch.no_grad():
        for batch in loader:
            evaluator.process(model.test_step(batch), batch)
    return evaluator.evaluate(len(loader.dataset))


def test_test_deployed_metrics_side_by_side(quickstart_onnx, shapes_root,
                                            tmp_path, capsys):
    """``test_deployed.py`` (mmengine's ``Runner.test``) gives the metrics
    of the evaluator run by hand, for the export and the torch model."""
    root = shapes_root + '/'
    options = [f'test_dataloader.dataset.data_root={root}',
               f'test_evaluator.ann_file={root}annotations/'
               'instances_val.json']
    results = _load_tool('test_deployed').main(
        [CONFIG, quickstart_onnx.end2end, '--checkpoint',
         quickstart_onnx.checkpoint, '--threads', '1', '--work-dir',
         str(tmp_path), '--cfg-options', *options])
    name = 'onnxruntime f32 end2end.onnx'
    assert list(results) == [name, 'torch f32']
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(dict(o.split('=') for o in options))
    expected = {
        name: _evaluate_by_hand(DeployedDetector(quickstart_onnx.end2end,
                                                 cfg), cfg),
        'torch f32': _evaluate_by_hand(quickstart_onnx.model, cfg)}
    for key, metrics in expected.items():
        for metric, value in metrics.items():
            assert results[key][metric] == pytest.approx(value, abs=1e-6)
    out = capsys.readouterr().out
    assert (f'[test_deployed] coco/bbox_mAP: {name} '
            f'{expected[name]["coco/bbox_mAP"]:.4f}, torch f32 ') in out


# --- bad input ---------------------------------------------------------------

def test_model_exported_at_another_size(exported):
    model, end2end, raw = exported
    cfg = Config.fromfile(CONFIG)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale'] = (96, 96)
    deployed = DeployedDetector(end2end, cfg, 'onnxruntime')
    with pytest.raises(ValueError, match='96x96 network inputs but the model '
                       'was exported at 128x128'):
        inference_detector(deployed, images()[0])
    # The graph itself has a static input size.
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        build_session(raw, 'onnxruntime')(
            np.zeros((1, 3, 96, 96), np.float32))


@pytest.mark.parametrize('backend', BACKENDS)
def test_missing_backend_names_the_extra(exported, monkeypatch, backend):
    monkeypatch.setitem(sys.modules, backend, None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[deploy\]'"):
        DeployedDetector(exported[1], exported[0].cfg, backend)


def test_onnx_file_not_ours(tmp_path, exported):
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'other',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    path = str(tmp_path / 'other.onnx')
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ValueError, match='not exported by ssd_plugin'):
        DeployedDetector(path, exported[0].cfg)
    text = tmp_path / 'notes.onnx'
    text.write_text('not a model')
    with pytest.raises(ValueError, match='is not an ONNX model'):
        read_metadata(str(text))
    with pytest.raises(FileNotFoundError, match='export_onnx.py'):
        read_metadata(str(tmp_path / 'missing.onnx'))
    with pytest.raises(ValueError, match="'raw' export"):
        DeployedDetector(exported[2], exported[0].cfg)


@pytest.mark.parametrize('test_cfg, message', [
    (dict(nms=dict(type='soft_nms', iou_threshold=0.5), max_per_img=10),
     'plain NMS only'),
    (dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=10,
          min_bbox_size=4), 'original-image pixels'),
    (dict(nms=dict(type='nms', iou_threshold=0.5)), 'max_per_img > 0'),
    (None, 'max_per_img > 0'),
])
def test_test_cfg_the_graph_cannot_hold(test_cfg, message):
    with pytest.raises(ValueError, match=message):
        deploy_test_cfg(test_cfg)


def test_unknown_backend_and_precision(exported):
    with pytest.raises(ValueError, match="use one of \\('onnxruntime'"):
        build_session(exported[1], 'tensorrt')
    with pytest.raises(ValueError, match='not available on onnxruntime'):
        build_session(exported[1], 'onnxruntime', 'bf16')


# --- INT8 --------------------------------------------------------------------

def test_calibration_images_of_the_train_set(quickstart_leaf, shapes_root,
                                             tiny_config, tmp_path):
    """Every other of the 8 train images, through the test pipeline and the
    data preprocessor (the dataset built with the test pipeline, as
    mmengine's loaders run it, is the reference); a wrapped train set
    (VOC07+12 repeated) is unwrapped to its leaves."""
    from mmengine.dataset import pseudo_collate
    from ssd_plugin.deploy.quantize import calibration_inputs
    from ssd_plugin.registry import DATASETS, MODELS
    from ssd_plugin.utils.config import load_config
    cfg = load_config(quickstart_leaf(tmp_path, shapes_root))
    got = calibration_inputs(cfg, 4)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset,
                                  pipeline=cfg.test_dataloader.dataset
                                  .pipeline))
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    assert len(dataset) == 8 and len(got) == 4
    for index, array in zip((0, 2, 4, 6), got):
        expected = preprocessor(pseudo_collate([dataset[index]]))['inputs']
        np.testing.assert_array_equal(array, expected.numpy())
    voc = calibration_inputs(load_config(tiny_config('ssd300_voc0712')), 2)
    assert [a.shape for a in voc] == [(1, 3, 300, 300)] * 2
    with pytest.raises(ValueError, match='num_images=0'):
        calibration_inputs(cfg, 0)


def _conv_relu(path: str, prefix: str) -> None:
    """A 1x1 Conv and a Relu, their nodes named ``prefix + op``."""
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), 'w')
    graph = helper.make_graph(
        [helper.make_node('Conv', ['x', 'w'], ['c'], name=prefix + 'Conv'),
         helper.make_node('Relu', ['c'], ['y'], name=prefix + 'Relu')],
        'conv_relu',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2, 4, 4])],
        [weight])
    onnx.save(helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 17)]), path)


def test_quantizer_refuses_a_graph_without_network_nodes(tmp_path):
    """ONNX Runtime reads an empty ``nodes_to_quantize`` as every node: a
    graph whose node names carry none of the exporter's scopes is refused,
    and nothing is written; the same graph under ``/backbone/`` quantizes
    its two nodes."""
    pytest.importorskip('onnxruntime')
    from ssd_plugin.deploy.quantize import quantize_int8
    inputs = [np.random.default_rng(0).random((1, 1, 4, 4), np.float32)]
    plain, out = str(tmp_path / 'plain.onnx'), str(tmp_path / 'out.onnx')
    _conv_relu(plain, '')
    with pytest.raises(ValueError, match=r"'.*plain\.onnx' has no "
                       r'Conv/Relu/.* node .*export_onnx\.py'):
        quantize_int8(plain, out, inputs)
    assert not osp.exists(out)
    scoped = str(tmp_path / 'scoped.onnx')
    _conv_relu(scoped, '/backbone/conv/')
    assert quantize_int8(scoped, out, inputs) == 2
    assert {n.op_type for n in onnx.load(out).graph.node} >= {
        'QuantizeLinear', 'DequantizeLinear', 'Conv'}  # ReLU folded in


@pytest.mark.parametrize('count', [16, 33])
def test_quantizer_calibrates_on_every_image(tmp_path, count):
    """The input's uint8 range is the min/max over all calibration images.

    ONNX Runtime 1.32's min/max calibrator drops each full chunk of
    ``CalibMaxIntermediateOutputs`` images without taking its range (only
    the last ``count % chunk`` counted; none left is "No data is
    collected"); the quantizer must not lose the first image, whose values
    are 100 times the others'.
    """
    pytest.importorskip('onnxruntime')
    from onnx import numpy_helper

    from ssd_plugin.deploy.quantize import quantize_int8
    rng = np.random.default_rng(0)
    inputs = [rng.random((1, 1, 4, 4), np.float32) for _ in range(count)]
    inputs[0] *= 100
    path, out = str(tmp_path / 'in.onnx'), str(tmp_path / 'out.onnx')
    _conv_relu(path, '/backbone/conv/')
    quantize_int8(path, out, inputs)
    model = onnx.load(out)
    constants = {t.name: numpy_helper.to_array(t)
                 for t in model.graph.initializer}
    scale = next(constants[n.input[1]] for n in model.graph.node
                 if n.op_type == 'QuantizeLinear' and n.input[0] == 'x')
    expected = max(float(x.max()) for x in inputs) / 255  # asymmetric u8
    assert float(scale) == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope='module')
def int8(exported, tmp_path_factory):
    """``(INT8 .onnx, calibration folder)``: quantize.py on the images."""
    folder = tmp_path_factory.mktemp('calibration')
    for index, image in enumerate(images()):
        cv2.imwrite(str(folder / f'{index}.png'), image)
    out = str(folder.parent / 'int8.onnx')
    nodes = _load_tool('quantize').main(
        [CONFIG, exported[1], out, '--images', str(folder), '--num-images',
         '6'])
    assert nodes > 31  # every conv (below), its ReLU, the pools, the adds
    return out, str(folder)


def _agree_top50(reference, results):
    """Per image, how many of FP32's 50 best INT8 keeps (same label,
    IoU > 0.5, score within 0.1)."""
    return [detection_agreement(ref.pred_instances[:50], res.pred_instances,
                                0.5, 0.1)[0]
            for ref, res in zip(reference, results)]


def test_int8_quantizes_the_network_only_and_stays_close(exported, int8):
    """Calibrated on a folder of images; compared with the FP32 export.

    Random weights have no accuracy to measure (docs/quantization.md gives
    the quickstart model's held-out mAP); here the INT8 model must keep most
    of FP32's 50 best detections of each image (measured: 44-50 of 50 on
    both backends).
    """
    model, end2end, _ = exported
    quantized = onnx.load(int8[0])
    network = ('/backbone/', '/neck/', '/bbox_head/')
    convs = [n for n in quantized.graph.node if n.op_type == 'Conv']
    assert len(convs) == 31  # 21 + 6 + 2 * 5
    weights = {n.output[0]: n for n in quantized.graph.node
               if n.op_type == 'DequantizeLinear'}
    assert all(c.input[1] in weights for c in convs)  # int8 weights
    # Decoding and NMS stay FP32: nothing quantized outside the network.
    producers = {o: n for n in quantized.graph.node for o in n.output}
    for node in quantized.graph.node:
        if node.op_type == 'QuantizeLinear':
            source = producers.get(node.input[0])
            assert source is None or source.name.startswith(network) or \
                source.op_type == 'DequantizeLinear', source.name
    # The L2 norm stays FP32: quantized only where it ends (its Div feeds
    # the head's convs), not its norm, eps or sum.
    sources = [producers.get(n.input[0]) for n in quantized.graph.node
               if n.op_type == 'QuantizeLinear']
    assert [s.op_type for s in sources if s is not None and
            s.name.startswith('/neck/l2_norm/')] == ['Div']
    assert read_metadata(int8[0]) == read_metadata(end2end)
    imgs = images()
    reference = inference_detector(
        DeployedDetector(end2end, model.cfg, 'onnxruntime'), imgs)
    for backend in BACKENDS:
        pytest.importorskip(backend)
        results = inference_detector(
            DeployedDetector(int8[0], model.cfg, backend), imgs)
        assert min(_agree_top50(reference, results)) >= 40, backend


@pytest.mark.parametrize('backend', BACKENDS)
def test_every_conv_runs_int8_kernels(exported, int8, backend):
    """What the backend executes, from its own profiler: all 31 convs of the
    graph (counted in the ONNX file) in int8 kernels, none in the FP32
    export."""
    pytest.importorskip(backend)
    profile = dict(openvino=openvino_layers, onnxruntime=onnxruntime_layers)
    inputs = np.random.default_rng(0).standard_normal(
        (1, 3, 128, 128)).astype(np.float32)
    graph_convs = sum(n.op_type == 'Conv'
                      for n in onnx.load(exported[1]).graph.node)
    convs = convolutions(profile[backend](int8[0], inputs, runs=1))
    assert [c.precision for c in convs] == ['int8'] * graph_convs
    convs = convolutions(profile[backend](exported[1], inputs, runs=1))
    assert len(convs) >= graph_convs
    assert not [c for c in convs if c.precision == 'int8']


@pytest.mark.parametrize('fmt', ['end2end', 'uint8'])
def test_profile_tool_feeds_each_input_format(quickstart_onnx, fmt, capsys):
    """profile_layers.py on a float and a uint8-input export: the graph's
    31 convs (FP32 file: none in int8), each run by OpenVINO."""
    pytest.importorskip('openvino')
    tool = load_tool('deployment/profile_layers.py')
    layers = tool.main([getattr(quickstart_onnx, fmt), '--threads', '1',
                        '--runs', '1'])
    assert len(convolutions(layers)) >= 31
    assert 'convolutions in int8: 0 of' in capsys.readouterr().out


# Run under the CPUID mask: INT8 against FP32 with AVX2 kernels, whose
# vpmaddubsw saturates at 16 bits (VNNI's vpdpbusd does not).
AVX2_SCRIPT = """
import glob, json, sys
import cv2, numpy as np
from mmdet.apis import inference_detector
from mmengine.config import Config
from mmengine.registry import init_default_scope
from ssd_plugin.deploy import DeployedDetector
from ssd_plugin.deploy.layer_profile import convolutions, openvino_layers
from ssd_plugin.utils.benchmark import detection_agreement
config, fp32, int8, folder = sys.argv[1:]
imgs = [cv2.imread(p) for p in sorted(glob.glob(folder + '/*.png'))]
cfg = Config.fromfile(config)
init_default_scope('ssd_plugin')
ref = inference_detector(DeployedDetector(fp32, cfg, 'onnxruntime'), imgs)
out = {}
for backend in ('onnxruntime', 'openvino'):
    res = inference_detector(DeployedDetector(int8, cfg, backend), imgs)
    out[backend] = [detection_agreement(a.pred_instances[:50],
                                        b.pred_instances, 0.5, 0.1)[0]
                    for a, b in zip(ref, res)]
layers = openvino_layers(int8, np.zeros((1, 3, 128, 128), np.float32),
                         runs=1)
out['kernels'] = sorted({c.kernel for c in convolutions(layers)})
print(json.dumps(out))
"""


@pytest.mark.slow
def test_int8_on_avx2_kernels_stays_close(exported, int8, tmp_path):
    """The same check with AVX-512 and VNNI hidden from every library
    (``run_as_avx2.py``); OpenVINO's convs must then be AVX2 int8 kernels.
    Skipped where the CPU has no CPUID faulting or there is no compiler."""
    pytest.importorskip('openvino')
    library = avx2_library(tmp_path)
    done = subprocess.run(
        [sys.executable, '-c', AVX2_SCRIPT, CONFIG, exported[1], int8[0],
         int8[1]], env=masked_environ(library), capture_output=True,
        text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out['kernels'] and all('avx2' in k and k.endswith('I8')
                                  for k in out['kernels']), out['kernels']
    for backend in BACKENDS:
        assert min(out[backend]) >= 40, (backend, out[backend])

