"""The compiled stack works: mmcv's NMS ops on the CPU, checkpoints and resume.

The resume test drives mmengine's real ``Runner`` on a toy model, under our
scope, so it also checks that building a runner logs no registry warnings.
A malicious pickle is refused on every loading path (issue 9.10).
"""
import pickle
import re

import pytest
import torch
from mmcv.ops import batched_nms, nms
from mmengine.dataset import pseudo_collate  # noqa: F401  (collate by name)
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint, save_checkpoint
from torch import nn
from torch.utils.data import Dataset

import ssd_plugin  # noqa: F401  (installs the checkpoint loader)

REGISTRY_WARNINGS = re.compile(
    r'Failed to search registry|Failed to import `|is not installed and its '
    r'modules will not be registered')


# Three boxes: box 1 overlaps box 0 with IoU 81 / 119 = 0.68; box 2 is apart.
BOXES = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                      [20., 20., 30., 30.]])
SCORES = torch.tensor([0.9, 0.8, 0.7])


def test_nms_cpu():
    dets, keep = nms(BOXES, SCORES, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets[:, 4].tolist() == pytest.approx([0.9, 0.7])
    # Above the overlap nothing is suppressed.
    _, keep = nms(BOXES, SCORES, iou_threshold=0.7)
    assert keep.tolist() == [0, 1, 2]


def test_batched_nms_cpu_suppresses_within_a_class_only():
    same = torch.tensor([0, 0, 0])
    apart = torch.tensor([0, 1, 0])
    nms_cfg = dict(type='nms', iou_threshold=0.5)
    _, keep = batched_nms(BOXES, SCORES, same, nms_cfg)
    assert sorted(keep.tolist()) == [0, 2]
    _, keep = batched_nms(BOXES, SCORES, apart, nms_cfg)
    assert sorted(keep.tolist()) == [0, 1, 2]


def test_nms_empty():
    dets, keep = nms(torch.zeros(0, 4), torch.zeros(0), iou_threshold=0.5)
    assert keep.numel() == 0 and dets.shape == (0, 5)


class ToyModel(BaseModel):
    """y = w x; loss = mean (y - 2 x)^2."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1, bias=False)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs)
        y = self.linear(x)
        if mode == 'loss':
            return dict(loss=((y - 2 * x)**2).mean())
        return y


class ToyDataset(Dataset):
    metainfo = dict(classes=('toy', ))

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.tensor([float(index + 1)]))


def make_runner(work_dir, max_epochs, **kwargs) -> Runner:
    torch.manual_seed(0)  # the same initial weights for every runner
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            batch_size=4),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.001)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], gamma=0.5),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='ssd_plugin',
        experiment_name=f'toy_{max_epochs}_{kwargs.get("resume", False)}',
        **kwargs)


def test_runner_checkpoint_and_resume_under_torch_2_6_plus(tmp_path, capfd):
    first = make_runner(tmp_path, max_epochs=2)
    first.train()
    ckpt = tmp_path / 'epoch_2.pth'
    assert ckpt.is_file()
    weight = first.model.linear.weight.detach().clone()

    # The runner's own checkpoint is not weights-only (HistoryBuffer's pickle
    # calls getattr): plain torch.load, as mmengine 0.10.7 calls it, fails.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt)

    second = make_runner(tmp_path, max_epochs=3, resume=True,
                         load_from=str(ckpt))
    second.train()
    assert second.epoch == 3
    # 8 samples / batch 4 = 2 iterations per epoch; resumed at iteration 4.
    assert second.iter == 6
    # lr was halved after epoch 1 (MultiStepLR) and stays halved on resume.
    assert second.optim_wrapper.get_lr()['lr'] == [pytest.approx(0.0005)]

    # 2 epochs + resume + 1 epoch ends exactly where 3 straight epochs end
    # (no shuffling): weights, momentum-free SGD state and schedule restored.
    straight = make_runner(tmp_path / 'straight', max_epochs=3)
    straight.train()
    assert torch.equal(second.model.linear.weight, straight.model.linear.weight)
    assert not torch.equal(second.model.linear.weight, weight)

    out, err = capfd.readouterr()
    assert not REGISTRY_WARNINGS.search(out + err), out + err
    # Resumed weights-only: no warning, no fallback to a full unpickle.
    assert 'weights_only=False' not in out + err


def test_weights_only_state_dict_loads_without_warning(tmp_path, capfd):
    model = nn.Linear(3, 2)
    path = tmp_path / 'weights.pth'
    save_checkpoint(model.state_dict(), str(path))
    copy = nn.Linear(3, 2)
    load_checkpoint(copy, str(path), map_location='cpu')
    assert torch.equal(copy.weight, model.weight)
    out, err = capfd.readouterr()
    assert 'weights-only' not in out + err


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint(nn.Linear(1, 1), str(missing))


class Malicious:
    """Unpickling it writes ``path``: what a crafted checkpoint could do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def malicious(tmp_path):
    """``(checkpoint path, marker path)``: a state dict plus the payload."""
    marker = tmp_path / 'MARKER'
    path = tmp_path / 'malicious.pth'
    torch.save(dict(state_dict=nn.Linear(1, 1).state_dict(),
                    payload=Malicious(str(marker))), str(path))
    return str(path), marker


def pretrained_init(path: str) -> None:
    from mmengine.model import BaseModule

    class Net(BaseModule):
        def __init__(self):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=path))
            self.linear = nn.Linear(1, 1)

    Net().init_weights()


def runner_load_from(path: str, work_dir: str) -> None:
    runner = make_runner(work_dir, max_epochs=1, load_from=path)
    runner.load_or_resume()


@pytest.mark.parametrize('how', ['load_checkpoint', 'Pretrained',
                                 'runner load_from', 'runner resume'])
def test_malicious_checkpoint_is_refused_on_every_path(how, malicious,
                                                       tmp_path, monkeypatch):
    from ssd_plugin.compat import UNSAFE_ENV
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    path, marker = malicious
    load = {
        'load_checkpoint': lambda: load_checkpoint(nn.Linear(1, 1), path),
        'Pretrained': lambda: pretrained_init(path),
        'runner load_from': lambda: runner_load_from(path, tmp_path / 'w'),
        'runner resume': lambda: make_runner(
            tmp_path / 'r', 1, resume=True, load_from=path).load_or_resume(),
    }[how]
    with pytest.raises(pickle.UnpicklingError) as info:
        load()
    message = str(info.value)
    assert 'malicious.pth is not a weights-only checkpoint' in message
    assert 'builtins.open' in message or 'io.open' in message
    assert f'set {UNSAFE_ENV}=1' in message  # how to opt in
    assert not marker.exists()


def test_unsafe_load_is_an_explicit_opt_in(malicious, monkeypatch):
    import logging

    from mmengine.logging import MMLogger

    from ssd_plugin.compat import UNSAFE_ENV
    path, marker = malicious
    monkeypatch.setenv(UNSAFE_ENV, '1')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        load_checkpoint(nn.Linear(1, 1), path)
    finally:
        logger.removeHandler(handler)
    assert marker.exists()  # what the user accepted by opting in
    assert any(f'{UNSAFE_ENV}=1: loading' in r.getMessage() and
               r.levelno == logging.WARNING for r in records)
