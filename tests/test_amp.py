"""Mixed precision by device: which wrapper and dtype ``--amp`` picks for
which device, and the CPU wrapper refusing a model it cannot autocast.

The devices are plain strings here, so every branch runs on the CPU; the
tests marked ``cuda`` train a step on a GPU when there is one.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from conftest import load_tool
from ssd_plugin.engine.amp import amp_optim_wrapper

train_tool = load_tool('train.py')
SGD = dict(type='SGD', lr=0.1)


@pytest.mark.parametrize('device,dtype,expected', [
    ('cuda', None, dict(type='AmpOptimWrapper', dtype='float16',
                        loss_scale='dynamic')),
    ('cuda', 'float16', dict(type='AmpOptimWrapper', dtype='float16',
                             loss_scale='dynamic')),
    # bf16 keeps float32's range: a static scale of 1 (no scaling).
    ('cuda', 'bfloat16', dict(type='AmpOptimWrapper', dtype='bfloat16',
                              loss_scale=1.0)),
    ('npu', None, dict(type='AmpOptimWrapper', dtype='float16',
                       loss_scale='dynamic')),
    ('cpu', None, dict(type='CPUAmpOptimWrapper')),
    ('cpu', 'bfloat16', dict(type='CPUAmpOptimWrapper')),
])
def test_wrapper_and_dtype_by_device(device, dtype, expected):
    cfg, note = amp_optim_wrapper(dict(type='OptimWrapper', optimizer=SGD),
                                  device, dtype)
    assert dict(cfg) == dict(expected, optimizer=SGD)
    assert note is None


def test_cpu_wrapper_from_a_cpu_run_becomes_amp_on_cuda():
    """A config dumped by a CPU --amp run, trained with --amp on a GPU."""
    cfg, note = amp_optim_wrapper(
        dict(type='CPUAmpOptimWrapper', optimizer=SGD), 'cuda')
    assert cfg.type == 'AmpOptimWrapper' and cfg.dtype == 'float16'
    assert "'CPUAmpOptimWrapper' is not for cuda" in note
    cfg, note = amp_optim_wrapper(
        dict(type='AmpOptimWrapper', optimizer=SGD, loss_scale=512.,
             dtype='float16'), 'cpu')
    assert dict(cfg) == dict(type='CPUAmpOptimWrapper', optimizer=SGD)
    assert "'AmpOptimWrapper' is not for cpu" in note


def test_wrapper_of_the_device_keeps_its_settings():
    given = dict(type='AmpOptimWrapper', optimizer=SGD, loss_scale=512.)
    cfg, note = amp_optim_wrapper(given, 'cuda')
    assert dict(cfg) == given and 'already enabled' in note
    cfg, _ = amp_optim_wrapper(given, 'cuda', 'bfloat16')
    assert cfg.dtype == 'bfloat16' and cfg.loss_scale == 512.
    cfg, _ = amp_optim_wrapper(dict(type='CPUAmpOptimWrapper'), 'cpu')
    assert cfg.type == 'CPUAmpOptimWrapper'


@pytest.mark.parametrize('wrapper,device,dtype,message', [
    ('MyWrapper', 'cuda', None, "'MyWrapper'"),
    ('OptimWrapper', 'cpu', 'float16', 'float16 AMP on the CPU'),
    ('OptimWrapper', 'mps', None, "device 'mps'"),
    ('OptimWrapper', 'cuda', 'float64', "dtype 'float64'"),
])
def test_no_amp_for_names_the_value(wrapper, device, dtype, message):
    with pytest.raises(ValueError, match=message):
        amp_optim_wrapper(dict(type=wrapper), device, dtype)


def test_train_tool_amp_dtype(tmp_path, monkeypatch):
    config = tmp_path / 'c.py'
    config.write_text("optim_wrapper = dict(type='OptimWrapper', "
                      "optimizer=dict(type='SGD', lr=0.1))\n")
    monkeypatch.setattr(train_tool, 'get_device', lambda: 'cuda')
    cfg = train_tool.build_config(train_tool.parse_args(
        [str(config), '--amp', '--amp-dtype', 'bfloat16']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    monkeypatch.setattr(train_tool, 'get_device', lambda: 'cpu')
    cfg = train_tool.build_config(train_tool.parse_args([str(config),
                                                         '--amp']))
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    with pytest.raises(ValueError, match='--amp-dtype bfloat16 needs --amp'):
        train_tool.build_config(train_tool.parse_args(
            [str(config), '--amp-dtype', 'bfloat16']))


def _cpu_amp_wrapper(model: torch.nn.Module):
    with DefaultScope.overwrite_default_scope('ssd_plugin'):  # the runner's
        return build_optim_wrapper(model, dict(type='CPUAmpOptimWrapper',
                                               optimizer=SGD))


def test_cpu_amp_wrapper_refuses_a_model_on_another_device():
    """CPU autocast would leave it in float32 without a word: a model on the
    meta device stands for one on CUDA."""
    model = torch.nn.Linear(4, 2, device='meta')
    wrapper = _cpu_amp_wrapper(model)
    with pytest.raises(ValueError, match='on meta.*AmpOptimWrapper.*--amp'):
        with wrapper.optim_context(model):
            pass


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_wrapper_trains_in_its_dtype_on_cuda(dtype):
    model = torch.nn.Linear(4, 2).cuda()
    cfg, _ = amp_optim_wrapper(dict(type='OptimWrapper', optimizer=SGD),
                               'cuda', dtype)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):
        wrapper = build_optim_wrapper(model, cfg)
    with wrapper.optim_context(model):
        y = model(torch.ones(3, 4, device='cuda'))
    assert y.dtype == getattr(torch, dtype)
    before = model.weight.detach().clone()
    wrapper.update_params(y.float().sum())
    assert not torch.equal(model.weight, before)
    with pytest.raises(ValueError, match='on cuda'):
        with _cpu_amp_wrapper(model).optim_context(model):
            pass


def test_enable_amp_logs_the_note(monkeypatch):
    notes = []
    monkeypatch.setattr(train_tool, 'print_log',
                        lambda msg, **kwargs: notes.append(msg))
    cfg = Config(dict(optim_wrapper=dict(type='CPUAmpOptimWrapper')))
    train_tool.enable_amp(cfg, 'cuda')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert notes and 'not for cuda' in notes[0]
