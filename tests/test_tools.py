"""tools/train.py, tools/test.py, the torchrun scripts and ``mim``, end to end.

Fast tests check how the command line becomes a config. The ``slow`` ones
train the real paper configs (``configs/ssd/*.py``) for an iteration or two
on the tiny synthetic sets of ``conftest.py`` and evaluate with mmdet's
``CocoMetric`` / ``VOCMetric``; they run in CI too (marker registered in
pytest.ini). Runs in this process call the tools' ``main``; runs that need a
process of their own (torchrun, mim, SIGKILL) use subprocesses.
"""
import glob
import os
import os.path as osp
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import List

import pytest
import torch
from mmengine.config import Config

from conftest import load_tool
from ssd_plugin.engine import EvalProgressBarHook

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO_ROOT, 'tools')
sys.path.insert(0, TOOLS)  # as for `python tools/train.py`: finds _launch
import _launch  # noqa: E402


train_tool = load_tool('train.py')
test_tool = load_tool('test.py')


def _env() -> dict:
    """Subprocess environment: this venv first on PATH (python, mim)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    return env


def _run(cmd: List[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _log(work_dir: str) -> str:
    """Text of the newest run log under ``work_dir/<timestamp>/``."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    assert logs, f'no log under {work_dir}'
    return open(logs[-1]).read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# No validation during these runs: they test the tools, not the metric.
NO_VAL = 'val_dataloader = None\nval_cfg = None\nval_evaluator = None\n'


# --- command line -> config (fast) -------------------------------------------
@pytest.fixture(scope='module')
def cfg_file(tiny_config) -> str:
    return tiny_config('ssd300_coco')


def test_train_resume_flag_forms():
    assert train_tool.parse_args(['c.py']).resume is None
    assert train_tool.parse_args(['c.py', '--resume']).resume == 'auto'
    assert train_tool.parse_args(['c.py', '--resume', 'x.pth']).resume == \
        'x.pth'


def test_train_config_from_command_line(cfg_file, tmp_path):
    cfg = train_tool.build_config(train_tool.parse_args([cfg_file]))
    name = osp.splitext(osp.basename(cfg_file))[0]
    assert cfg.work_dir == osp.join('./work_dirs', name)
    assert cfg.launcher == 'none' and cfg.resume is False
    assert cfg.optim_wrapper.type == 'OptimWrapper'

    cfg = train_tool.build_config(train_tool.parse_args([
        cfg_file, '--work-dir', str(tmp_path), '--amp', '--resume',
        '--launcher', 'pytorch', '--auto-scale-lr', '--cfg-options',
        'train_cfg.max_iters=7', 'work_dir=ignored']))
    assert cfg.work_dir == str(tmp_path)  # --work-dir beats --cfg-options
    assert cfg.train_cfg.max_iters == 7 and cfg.launcher == 'pytorch'
    if torch.cuda.is_available():
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    else:  # mmengine's AmpOptimWrapper refuses to start without CUDA
        assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert cfg.resume is True and cfg.load_from is None  # latest in work_dir
    assert cfg.auto_scale_lr.enable is True

    cfg = train_tool.build_config(train_tool.parse_args(
        [cfg_file, '--resume', 'work_dirs/x/iter_5.pth']))
    assert cfg.resume is True and cfg.load_from == 'work_dirs/x/iter_5.pth'


def test_cpu_amp_wrapper_runs_the_forward_in_bfloat16():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    model = torch.nn.Linear(4, 2)
    with DefaultScope.overwrite_default_scope('ssd_plugin'):  # the runner's
        wrapper = build_optim_wrapper(model, dict(
            type='CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    x = torch.ones(3, 4)
    with wrapper.optim_context(model):
        y = model(x)
    assert y.dtype == torch.bfloat16
    assert model(x).dtype == torch.float32  # only inside the context
    before = model.weight.detach().clone()
    wrapper.update_params(y.float().sum())
    assert model.weight.grad is None  # zeroed after the step
    assert not torch.equal(model.weight, before)


def test_test_config_from_command_line(cfg_file, tmp_path):
    ckpt = tmp_path / 'iter_1.pth'
    ckpt.write_bytes(b'')
    cfg = test_tool.build_config(test_tool.parse_args([
        cfg_file, str(ckpt), '--out', str(tmp_path / 'r.pkl'), '--show-dir',
        'vis', '--cfg-options', 'test_dataloader.batch_size=3']))
    assert cfg.load_from == str(ckpt)
    assert cfg.test_dataloader.batch_size == 3
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.test_out_dir == 'vis'


def test_test_tool_errors_name_the_value(cfg_file, tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        test_tool.build_config(test_tool.parse_args(
            [cfg_file, str(tmp_path / 'nothing.pth')]))
    ckpt = tmp_path / 'iter_1.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(ValueError, match="'r.json'"):
        test_tool.build_config(test_tool.parse_args(
            [cfg_file, str(ckpt), '--out', 'r.json']))


@pytest.mark.parametrize('script,need', [('dist_train.sh', 2),
                                         ('dist_test.sh', 3)])
def test_dist_scripts_say_their_usage(script, need):
    result = _run(['bash', osp.join(TOOLS, script)] + ['x'] * (need - 1))
    assert result.returncode == 2
    assert 'usage:' in result.stdout and 'NPROC' in result.stdout


def test_cpu_ddp_setup_only_for_torchrun_without_cuda():
    assert _launch.setup_cpu_ddp(Config(dict(launcher='none'))) is False
    if torch.cuda.is_available():
        pytest.skip('with CUDA mmengine starts DDP itself')
    cfg = Config(dict(launcher='pytorch',
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    with pytest.raises(ValueError, match=r"backend='nccl' needs CUDA.*"
                       r'env_cfg\.dist_cfg\.backend=gloo'):
        _launch.setup_cpu_ddp(cfg)


class _FakeRunner:
    val_dataloader = test_dataloader = [None] * 3


def test_eval_progress_bar_counts_batches_and_ends_its_line(capsys):
    hook = EvalProgressBarHook()
    for split in ('val', 'test'):
        getattr(hook, f'before_{split}_epoch')(_FakeRunner())
        for i in range(3):
            getattr(hook, f'after_{split}_iter')(_FakeRunner(), i)
        out = capsys.readouterr().out
        assert '0/3' in out and '3/3' in out and out.endswith('\n')
        getattr(hook, f'after_{split}_epoch')(_FakeRunner())
        assert capsys.readouterr().out == ''  # the line was already ended


def test_eval_progress_bar_on_an_empty_loader_prints_nothing(capsys):
    class Empty:
        val_dataloader = []

    hook = EvalProgressBarHook()
    hook.before_val_epoch(Empty())
    hook.after_val_epoch(Empty())
    assert capsys.readouterr().out == ''
    with pytest.raises(ValueError, match='bar_width=0'):
        EvalProgressBarHook(bar_width=0)


# --- the four paper configs, both data formats, both metrics -----------------
@pytest.mark.slow
@pytest.mark.parametrize('name', ['ssd300_coco', 'ssd512_coco',
                                  'ssd300_voc0712', 'ssd512_voc0712'])
def test_paper_config_trains_and_evaluates(name, tiny_config, tmp_path,
                                           capfd):
    cfg = tiny_config(name, max_iters=1, val_images=1)
    work_dir = str(tmp_path / 'work')
    train_tool.main([cfg, '--work-dir', work_dir, '--cfg-options',
                     f'experiment_name={name}_train'])
    log = _log(work_dir)
    assert re.search(r'Iter\(train\) \[1/1\].* eta: ', log)  # ETA logged
    assert osp.isfile(osp.join(work_dir, 'iter_1.pth'))
    out = capfd.readouterr().out
    assert '1/1, ' in out and 'elapsed' in out  # evaluation progress bar
    if 'coco' in name:
        assert re.search(r'coco/bbox_mAP: -?\d', log)
    else:
        assert re.search(r'pascal_voc/mAP: -?\d', log)
        # VOC07's 11-point protocol (paper section 3.2), and the per-class
        # table names our classes, not VOC's.
        assert Config.fromfile(cfg).val_evaluator.eval_mode == '11points'
        assert '| circle ' in log and 'aeroplane' not in log


@pytest.mark.slow
def test_test_tool_evaluates_and_dumps(tiny_config, tmp_path):
    cfg = tiny_config('ssd300_coco', max_iters=1, val_images=2, extra=NO_VAL)
    work_dir = str(tmp_path / 'work')
    # --amp: bfloat16 autocast on the CPU, float16 on CUDA.
    train_tool.main([cfg, '--work-dir', work_dir, '--amp', '--cfg-options',
                     'experiment_name=test_tool_train'])
    wrapper = 'AmpOptimWrapper' if torch.cuda.is_available() else \
        'CPUAmpOptimWrapper'
    assert f"type='{wrapper}'" in _log(work_dir)
    out = str(tmp_path / 'results.pkl')
    metrics = test_tool.main([cfg, osp.join(work_dir, 'iter_1.pth'),
                              '--work-dir', work_dir, '--out', out,
                              '--cfg-options', 'experiment_name=test_tool'])
    assert 'coco/bbox_mAP' in metrics
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 2 and 'pred_instances' in results[0]


# --- resume after SIGKILL ----------------------------------------------------
@pytest.mark.slow
def test_resume_after_sigkill_continues_from_the_checkpoint(tiny_config,
                                                            tmp_path):
    cfg = tiny_config('ssd300_voc0712', max_iters=2, checkpoint_interval=1,
                      extra=NO_VAL)
    work_dir = str(tmp_path / 'work')
    cmd = [sys.executable, osp.join(TOOLS, 'train.py'), cfg, '--work-dir',
           work_dir]
    with open(tmp_path / 'killed.txt', 'w') as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(), stdout=log,
                                stderr=subprocess.STDOUT)
        # CheckpointHook writes last_checkpoint once iter_1.pth is complete.
        deadline = time.time() + 240
        while (not osp.exists(osp.join(work_dir, 'last_checkpoint'))
               and proc.poll() is None and time.time() < deadline):
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, open(tmp_path /
                                                    'killed.txt').read()
    assert osp.isfile(osp.join(work_dir, 'iter_1.pth'))
    assert not osp.exists(osp.join(work_dir, 'iter_2.pth'))

    result = _run(cmd + ['--resume'])
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r'Auto resumed from the latest checkpoint \S*iter_1\.pth',
                     result.stdout)
    assert 'resumed epoch: 0, iter: 1' in result.stdout
    train_lines = re.findall(r'Iter\(train\) \[(\d)/2\]', result.stdout)
    assert train_lines == ['2']  # iteration 1 is not redone
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


# --- DDP through torchrun, 2 CPU processes -----------------------------------
@pytest.mark.slow
def test_torchrun_two_processes_train_and_test(tiny_config, tmp_path):
    cfg = tiny_config('ssd300_coco', max_iters=2, val_images=2, extra=NO_VAL)
    work_dir = str(tmp_path / 'work')
    gloo = ['--cfg-options', 'env_cfg.dist_cfg.backend=gloo']
    env = dict(_env(), PYTHON=sys.executable, PORT=str(_free_port()))
    result = subprocess.run(
        ['bash', osp.join(TOOLS, 'dist_train.sh'), cfg, '2', '--work-dir',
         work_dir] + gloo, cwd=REPO_ROOT, env=env, timeout=400,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    log = _log(work_dir)
    assert 'Distributed launcher: pytorch' in log
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert re.search(r'Iter\(train\) \[2/2\]', log)

    env['PORT'] = str(_free_port())
    result = subprocess.run(
        ['bash', osp.join(TOOLS, 'dist_test.sh'), cfg,
         osp.join(work_dir, 'iter_2.pth'), '2', '--work-dir', work_dir] +
        gloo, cwd=REPO_ROOT, env=env, timeout=400, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    # Two processes, one image each, one COCO evaluation over both.
    assert re.search(r'Iter\(test\) \[1/1\].*coco/bbox_mAP: ', result.stdout)


# --- mim ---------------------------------------------------------------------
@pytest.mark.slow
def test_mim_train_and_test_run_our_config(tiny_config, tmp_path):
    cfg = tiny_config('ssd300_voc0712', max_iters=1, val_images=1,
                      extra=NO_VAL)
    work_dir = str(tmp_path / 'work')
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    result = _run([mim, 'train', 'mmdet', cfg, '--work-dir', work_dir,
                   '--cfg-options', 'randomness.seed=0'])
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'mmdet/.mim/tools/train.py' in result.stdout  # mmdet's script
    assert osp.isfile(osp.join(work_dir, 'iter_1.pth'))
    result = _run([mim, 'test', 'mmdet', cfg, '--checkpoint',
                   osp.join(work_dir, 'iter_1.pth'), '--work-dir', work_dir])
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r'pascal_voc/mAP: \d', result.stdout)


# --- clear errors through the tools ------------------------------------------
def test_missing_dataset_named_by_train_tool(tiny_config, tmp_path):
    missing = str(tmp_path / 'no_such_data')
    cfg = tiny_config('ssd300_coco', root=missing)
    with pytest.raises(FileNotFoundError) as info:
        train_tool.main([cfg, '--work-dir', str(tmp_path / 'work'),
                         '--cfg-options', 'experiment_name=missing_data'])
    assert f"CheckedCocoDataset: data_root '{missing}' is not a folder" in \
        str(info.value)
    assert 'make_shapes.py' in str(info.value)


@pytest.mark.slow
def test_missing_dataset_named_through_mim(tiny_config, tmp_path):
    # mim runs mmdet's own tools/train.py: the check must not depend on ours.
    missing = str(tmp_path / 'no_such_data')
    cfg = tiny_config('ssd300_voc0712', root=missing)
    result = _run([osp.join(osp.dirname(sys.executable), 'mim'), 'train',
                   'mmdet', cfg, '--work-dir', str(tmp_path / 'work')])
    assert result.returncode != 0
    assert (f"FileNotFoundError: CheckedVOCDataset: data_root '{missing}/VOCdevkit/'"
            ' is not a folder') in result.stdout
    assert 'make_shapes.py' in result.stdout
    assert 'Iter(train)' not in result.stdout


@pytest.mark.slow
def test_class_count_mismatch_stops_before_training(tiny_config, tmp_path):
    cfg = tiny_config('ssd300_coco', num_classes=80)
    with pytest.raises(ValueError) as info:
        train_tool.main([cfg, '--work-dir', str(tmp_path), '--cfg-options',
                         'experiment_name=class_count'])
    assert 'model.bbox_head.num_classes=80' in str(info.value)
    assert 'train dataset has 4 classes' in str(info.value)
    assert 'Iter(train)' not in _log(str(tmp_path))


@pytest.mark.slow
def test_input_size_the_model_cannot_take_says_which_work(tiny_config,
                                                          tmp_path):
    # SSD300's extra layers take fc7 maps of at least 17x17 (conv6_2 s2 p1 ->
    # 9, conv7_2 s2 p1 -> 5, conv8_2 k3 -> 3, conv9_2 k3 -> 1), and
    # fc7 = ceil(side / 16), so the image side must be at least 16*16+1.
    small = ("train_dataloader['dataset']['pipeline'] = [dict(step, "
             "scale=(128, 128)) if step['type'] == 'Resize' else step "
             'for step in _base_.train_pipeline]\n')
    cfg = tiny_config('ssd300_coco', extra=small)
    with pytest.raises(ValueError, match=r'at least 257x257'):
        train_tool.main([cfg, '--work-dir', str(tmp_path), '--cfg-options',
                         'experiment_name=input_size'])


@pytest.mark.slow
def test_nan_loss_through_the_config_stops_with_last_losses(tiny_config,
                                                            tmp_path):
    # An absurd learning rate: iteration 1 is finite, its update blows the
    # weights up, iteration 2's losses are not finite.
    cfg = tiny_config('ssd300_coco', max_iters=3, checkpoint_interval=1,
                      extra=NO_VAL)
    with pytest.raises(FloatingPointError) as info:
        train_tool.main([cfg, '--work-dir', str(tmp_path), '--cfg-options',
                         'optim_wrapper.optimizer.lr=1e30',
                         'experiment_name=nan_loss'])
    message = str(info.value)
    assert 'non-finite loss at iteration 2' in message
    # The loss the log printed for iteration 1 (4 decimals) is the one the
    # message reports as the last finite one (4 significant digits).
    logged = float(re.search(r'Iter\(train\) \[1/3\].* loss: (\S+)',
                             _log(str(tmp_path))).group(1))
    reported = float(re.search(r'last finite losses \(iteration 1\): '
                               r'loss=(\S+),', message).group(1))
    assert reported == pytest.approx(logged, rel=1e-3)
    assert osp.isfile(tmp_path / 'iter_1.pth')
    assert not osp.exists(tmp_path / 'iter_2.pth')


@pytest.mark.slow
def test_corrupt_image_is_named_through_the_runner(tiny_config, tmp_path,
                                                   shapes_root):
    root = shutil.copytree(shapes_root, tmp_path / 'data')
    for jpg in (root / 'train').iterdir():
        jpg.write_bytes(b'\xff\xd8 truncated')
    cfg = tiny_config('ssd300_coco', root=str(root), extra=NO_VAL)
    with pytest.raises(ValueError, match=r"image '\S+/train/0000\d\d\.jpg' "
                       r"\(listed in '\S+instances_train\.json'\) is corrupt"):
        train_tool.main([cfg, '--work-dir', str(tmp_path / 'work'),
                         '--cfg-options', 'experiment_name=corrupt'])
