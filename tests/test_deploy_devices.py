"""Deployment on the device the model lives on: torch bf16 autocast, ONNX
export and ``DeployedDetector`` with a model or inputs off the CPU.

On the CPU, the meta device stands for CUDA where only the device matters
(which autocast, where the probe runs), and a tensor that refuses
``numpy()`` as a CUDA one does stands for a Runner's CUDA batch. The tests
marked ``cuda`` run the same on a GPU when there is one.
"""
import contextlib
import copy

import pytest
import torch
from mmdet.apis import inference_detector, init_detector

from conftest import QUICKSTART_CONFIG, pipeline_batch, sample_images
from ssd_plugin.deploy import DeployedDetector, bf16_network, export_onnx
from ssd_plugin.deploy.export import RawSSD
from ssd_plugin.utils.benchmark import detection_agreement

pytest.importorskip('onnxruntime', reason='the deploy extra')

CONFIG = QUICKSTART_CONFIG


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_detector(CONFIG, None, device='cpu').eval()


@pytest.fixture(scope='module')
def onnx_path(model, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('devices') / 'e2e.onnx')
    export_onnx(model, path, (128, 128), classes=model.cfg.metainfo.classes)
    return path


def _images():
    """The photograph and a random 240x320 image."""
    return sample_images()[:2]


# --- torch bf16 --------------------------------------------------------------
def test_bf16_network_autocasts_on_the_models_device(model, monkeypatch):
    devices = []

    @contextlib.contextmanager
    def autocast(device_type, **kwargs):
        devices.append((device_type, kwargs['dtype']))
        yield

    monkeypatch.setattr(torch, 'autocast', autocast)
    meta = copy.deepcopy(model).to('meta')  # stands for a CUDA model
    with bf16_network(meta):
        meta.bbox_head(meta.extract_feat(
            torch.zeros(1, 3, 128, 128, device='meta')))
    assert devices == [('meta', torch.bfloat16)] * 2


def test_bf16_network_nests_and_restores_what_was_there(model):
    own = model.extract_feat  # an instance attribute set by someone else
    model.extract_feat = own
    try:
        with bf16_network(model):
            outer = vars(model)['extract_feat']
            with bf16_network(model):
                assert vars(model)['extract_feat'] is not outer
            assert vars(model)['extract_feat'] is outer
            assert 'forward' in vars(model.bbox_head)
        assert vars(model)['extract_feat'] is own
        assert 'forward' not in vars(model.bbox_head)
    finally:
        del model.extract_feat


# --- ONNX export -------------------------------------------------------------
def test_graph_probes_and_builds_priors_on_the_models_device(model):
    meta = copy.deepcopy(model).to('meta')
    wrapper = RawSSD(meta, (128, 128))
    assert wrapper.priors.device.type == 'meta'
    assert wrapper.priors.shape == (1524, 4)  # as the CPU export's


def test_export_traces_a_cpu_copy_and_leaves_the_model(model, tmp_path,
                                                       monkeypatch):
    seen = {}

    class Traced(Exception):
        pass

    def export(wrapper, args, path, **kwargs):
        seen.update(wrapper=wrapper, inputs=args[0])
        raise Traced

    monkeypatch.setattr(torch.onnx, 'export', export)
    model.train()
    try:
        with pytest.raises(Traced):
            export_onnx(model, str(tmp_path / 'x.onnx'), (128, 128))
        assert model.training  # the caller's model as it was
    finally:
        model.eval()
    wrapper = seen['wrapper']
    assert wrapper.detector is not model and not wrapper.detector.training
    devices = {t.device.type for t in [seen['inputs'], wrapper.priors,
                                       *wrapper.parameters()]}
    assert devices == {'cpu'}


# --- DeployedDetector --------------------------------------------------------
class _DeviceTensor(torch.Tensor):
    """Stands for a CUDA tensor: ``numpy()`` refuses as torch does for
    device memory, ``cpu()`` copies to a plain host tensor."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. "
                        'Use Tensor.cpu() to copy the tensor to host memory '
                        'first.')

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).clone()


def test_deployed_detector_reads_inputs_off_the_device(model, onnx_path):
    deployed = DeployedDetector(onnx_path, CONFIG)
    reference = inference_detector(deployed, _images())
    for ref, image in zip(reference, _images()):
        data = deployed.data_preprocessor(
            pipeline_batch(deployed.cfg, [image]), False)
        inputs = data['inputs'].as_subclass(_DeviceTensor)
        with pytest.raises(TypeError):
            inputs.float().numpy()  # what a CUDA tensor does
        [result] = deployed(inputs, data['data_samples'])
        assert torch.equal(result.pred_instances.bboxes,
                           ref.pred_instances.bboxes)


# --- on a GPU ----------------------------------------------------------------
@pytest.mark.cuda
def test_bf16_network_on_cuda(model):
    cuda = copy.deepcopy(model).cuda()
    dtypes = []
    cuda.backbone.conv1.register_forward_hook(
        lambda module, args, out: dtypes.append(out.dtype))
    reference = inference_detector(model, _images())
    with bf16_network(cuda):
        results = inference_detector(cuda, _images())
    assert set(dtypes) == {torch.bfloat16}
    for ref, res in zip(reference, results):
        a, b = ref.pred_instances, res.pred_instances
        assert b.bboxes.device.type == 'cuda'
        assert b.bboxes.dtype == torch.float32
        torch.testing.assert_close(a.scores[:5], b.scores[:5].cpu(),
                                   atol=0.05, rtol=0)


@pytest.mark.cuda
def test_export_from_a_cuda_model(model, onnx_path, tmp_path):
    cuda = copy.deepcopy(model).cuda()
    path = str(tmp_path / 'from_cuda.onnx')
    export_onnx(cuda, path, (128, 128), classes=model.cfg.metainfo.classes)
    assert next(cuda.parameters()).device.type == 'cuda'
    reference = inference_detector(DeployedDetector(onnx_path, CONFIG),
                                   _images())
    results = inference_detector(DeployedDetector(path, CONFIG), _images())
    for ref, res in zip(reference, results):
        matched, total = detection_agreement(ref.pred_instances,
                                             res.pred_instances)
        assert matched == total > 0


@pytest.mark.cuda
def test_deployed_detector_moved_to_cuda(onnx_path):
    deployed = DeployedDetector(onnx_path, CONFIG)
    reference = inference_detector(deployed, _images())
    deployed.to('cuda')  # as a Runner does: model.to(get_device())
    results = inference_detector(deployed, _images())
    for ref, res in zip(reference, results):
        assert res.pred_instances.bboxes.device.type == 'cuda'
        assert torch.equal(res.pred_instances.bboxes.cpu(),
                           ref.pred_instances.bboxes)
