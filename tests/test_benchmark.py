"""The shared timing and agreement helpers of ``ssd_plugin.utils.benchmark``
and the parts of the inference benchmark (``ssd_plugin.benchmarks.inference``,
``tools/analysis_tools/benchmark_inference.py``) that run without building
SSD300.

Timing runs on a fake clock (every reading one tick later), so the expected
seconds and call orders are worked out by hand.
"""
import itertools
import math
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from conftest import REPO_ROOT, load_tool
from ssd_plugin.benchmarks.inference import print_agreement
from ssd_plugin.utils.benchmark import (check_timing_args,
                                        detection_agreement, quartiles,
                                        read_images, report, report_rounds,
                                        sample_dir, set_process_threads,
                                        time_interleaved)
from ssd_plugin.utils.mmdet_ssd import count_candidates


def test_time_interleaved_alternates_the_order_with_a_fake_clock():
    clock = itertools.count().__next__  # every call takes one tick
    calls = []
    fns = dict(a=lambda x: calls.append('a'), b=lambda x: calls.append('b'))
    times = time_interleaved(fns, [None], rounds=3, warmup=1, clock=clock)
    assert times == dict(a=[1, 1, 1], b=[1, 1, 1])
    assert calls == ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b']
    assert time_interleaved({}, [None], rounds=2) == {}
    with pytest.raises(ValueError, match='rounds=0'):
        time_interleaved(fns, [None], rounds=0)
    with pytest.raises(ValueError, match='no inputs'):
        time_interleaved(fns, [], rounds=1)


def test_time_interleaved_walks_the_inputs_and_prepares_them_untimed():
    ticks = itertools.count()
    calls = []

    def prepare(x):
        next(ticks)  # preparing costs a tick that must not be counted
        return x * 10

    fns = dict(a=lambda x: calls.append(('a', x)),
               b=lambda x: calls.append(('b', x)))
    times = time_interleaved(fns, [1, 2], rounds=2, warmup=3,
                             prepare=prepare, clock=ticks.__next__)
    assert times == dict(a=[1] * 4, b=[1] * 4)
    assert calls == [('a', 10), ('a', 20), ('a', 10),  # warm-up, in turn
                     ('b', 10), ('b', 20), ('b', 10),
                     ('a', 10), ('b', 10), ('b', 20), ('a', 20),
                     ('a', 10), ('b', 10), ('b', 20), ('a', 20)]


def test_quartiles():
    assert quartiles([5, 1, 4, 2, 3]) == [2, 3, 4]
    assert quartiles([1, 2]) == [1.25, 1.5, 1.75]
    assert quartiles([7.0]) == [7.0, 7.0, 7.0]


def test_report_prints_ratios_of_medians(capsys):
    ratios = report(dict(slow=[0.2, 0.4, 0.3], fast=[0.1, 0.1, 0.4]), 'slow')
    assert ratios == pytest.approx(dict(slow=1.0, fast=3.0))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ('slow:    300.0 ms (median; quartiles 250.0-350.0), '
                      '1.00x as fast as slow')
    assert out[1].startswith('fast:    100.0 ms') and '3.00x' in out[1]
    with pytest.raises(ValueError, match="'mmdet' is not a contender"):
        report(dict(slow=[1.0]), 'mmdet')


def test_report_rounds_prints_each_round_then_the_medians(capsys):
    # Two rounds of two calls: slow means 0.2 and 0.4 s, fast 0.1 and 0.1 s.
    ratios = report_rounds(dict(slow=[0.1, 0.3, 0.4, 0.4],
                                fast=[0.1, 0.1, 0.05, 0.15]), 2, 'slow')
    assert list(ratios) == ['slow', 'fast']
    assert ratios['slow'] == [1, 1] and ratios['fast'] == pytest.approx([2, 4])
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        'round 0: slow 200.0 ms (1.00x), fast 100.0 ms (2.00x)',
        'round 1: slow 400.0 ms (1.00x), fast 100.0 ms (4.00x)',
        'median over 2 rounds:']
    assert out[4].startswith('fast:    100.0 ms') and '3.00x' in out[4]
    with pytest.raises(ValueError, match="'mmdet' is not a contender"):
        report_rounds(dict(slow=[1.0]), 1, 'mmdet')


def test_read_images_and_timing_flags(tmp_path):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.full((3, 5, 3), 7, np.uint8))
    (image, ) = read_images([path])
    assert image.shape == (3, 5, 3) and image.dtype == np.uint8
    assert read_images([]) == []
    with pytest.raises(FileNotFoundError, match=r"\['nope.jpg'\].*--images"):
        read_images([path, 'nope.jpg'])
    threads = torch.get_num_threads()
    for rounds, flag_threads, flag in ((0, 1, '--rounds=0'),
                                       (1, 0, '--threads=0')):
        with pytest.raises(ValueError, match=flag):
            check_timing_args(rounds, flag_threads)
    check_timing_args(1, threads + 1)  # checks only
    assert torch.get_num_threads() == threads
    set_process_threads(None)  # None: leave the threads as they are
    assert torch.get_num_threads() == threads


def test_sample_photos_are_located_when_asked(monkeypatch):
    assert osp.isfile(osp.join(sample_dir(), 'grace_hopper.jpg'))
    monkeypatch.setattr('importlib.util.find_spec', lambda name: None)
    with pytest.raises(ImportError, match='pip install matplotlib'):
        sample_dir()


def detections(boxes, scores, labels) -> InstanceData:
    return InstanceData(bboxes=torch.as_tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores),
                        labels=torch.tensor(labels))


def test_detection_agreement_by_hand():
    ref = detections([[0, 0, 100, 100], [200, 200, 300, 300],
                      [0, 0, 50, 50]], [0.9, 0.5, 0.3], [1, 2, 3])
    assert detection_agreement(ref, ref) == (3, 3)
    # IoU 100*100 / (100*100.5) = 0.995 agrees; 100*100 / (100*102) = 0.980
    # does not; nor a score 2e-3 apart, nor another label.
    other = detections([[0, 0, 100, 100.5], [200, 200, 300, 302],
                        [0, 0, 50, 50], [0, 0, 50, 50]],
                       [0.9005, 0.5, 0.302, 0.3], [1, 2, 3, 4])
    assert detection_agreement(ref, other) == (1, 4)
    assert detection_agreement(ref, other, iou_thr=0.97,
                               score_tol=3e-3) == (3, 4)


def test_detection_agreement_empty():
    empty = detections(torch.zeros(0, 4), [], [])
    ref = detections([[0, 0, 10, 10]], [0.5], [0])
    assert detection_agreement(empty, empty) == (0, 0)
    assert detection_agreement(ref, empty) == (0, 1)
    assert detection_agreement(empty, ref) == (0, 1)


def test_count_candidates_on_the_model_given():
    # One level, 1 x 2 cells, one box each, 2 classes + background (last):
    # softmax of (0, 0, 0) is 1/3 each; of (log 6, log 3, 0) 0.6, 0.3, 0.1.
    logits = torch.tensor([[0., 0., 0.], [math.log(6), math.log(3), 0.]])

    def head(feats):
        return [logits.T.reshape(1, 3, 1, 2)], [None]

    head.cls_out_channels = 3
    model = SimpleNamespace(extract_feat=lambda x: [x], bbox_head=head)
    inputs = [torch.zeros(1, 3, 5, 7)] * 2
    assert count_candidates(model, inputs, 0.25) == [4, 4]
    assert count_candidates(model, inputs, 0.4) == [1, 1]
    assert count_candidates(model, inputs[:1], 0.65) == [0]
    assert count_candidates(model, [], 0.1) == []


def sample(boxes, scores, labels) -> DetDataSample:
    return DetDataSample(pred_instances=detections(boxes, scores, labels))


def test_print_agreement_against_the_reference(capsys):
    ref = sample([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])
    off = sample([[0, 0, 10, 10], [20, 20, 40, 44]], [0.9, 0.8], [0, 1])
    empty = sample(torch.zeros(0, 4), [], [])
    images = [np.zeros((4, 4, 3), np.uint8)] * 2
    print_agreement([('mmdet', lambda ims: [off]),
                     ('ssd_plugin', lambda ims: [ref]),
                     ('nothing', lambda ims: [empty])], images)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        '     mmdet: detections per image [2, 2], 2 of 4 agree with '
        'ssd_plugin (50.0%)',
        'ssd_plugin: detections per image [2, 2], 4 of 4 agree with '
        'ssd_plugin (100.0%)',
        '   nothing: detections per image [0, 0], 0 of 4 agree with '
        'ssd_plugin (0.0%)']
    print_agreement([('ssd_plugin', lambda ims: [empty])], images[:1])
    assert 'both empty' in capsys.readouterr().out


def test_benchmark_train_step_on_the_quickstart_config(capsys):
    # ResNet-18 at 128 px: a few seconds; threads left as they are.
    tool = load_tool('analysis_tools/benchmark_train_step.py')
    config = osp.join(REPO_ROOT, 'configs', 'quickstart', 'ssd_shapes.py')
    ratios = tool.main([
        '--config', config, '--batch', '1', '--steps', '1', '--rounds', '1'])
    assert ratios['float32'] == [1] and len(ratios['bf16']) == 1
    assert ratios['bf16'][0] > 0
    out = capsys.readouterr().out
    assert 'batch 1' in out and '1 rounds of 1 steps' in out
    assert out.startswith('CPU: ') and 'torch ' in out.splitlines()[0]
    assert 'round 0: float32' in out and 'x as fast as float32' in out


@pytest.mark.slow
def test_benchmark_inference_end_to_end(capsys):
    # Same weights (through the converter) and the same post-processing:
    # every candidate count and detection must agree.
    bench = load_tool('analysis_tools/benchmark_inference.py')
    ratio = bench.main(['--images', '--random-images', '1', '--rounds', '1',
                        '--threads', '1', '--test-cfg', 'same'])
    out = capsys.readouterr().out
    counts = [line.split('candidates per image: ')[1]
              for line in out.splitlines() if 'candidates' in line]
    assert len(counts) == 2 and counts[0] == counts[1]
    assert '     mmdet: detections per image [200], 200 of 200 agree' in out
    assert out.startswith('CPU: ') and 'threads: 1' in out.splitlines()[0]
    assert ratio > 0 and 'x as fast as mmdet' in out


@pytest.mark.slow
def test_benchmark_runtime_end_to_end(capsys):
    # The quickstart's small model through every runtime contender, then
    # ssd-detect on a generated video with and without the drawn video.
    bench = load_tool('deployment/benchmark_runtime.py')
    fps = bench.main(['--config', 'configs/quickstart/ssd_shapes.py',
                      '--sizes', '--threads', '1', '--rounds', '1',
                      '--calls', '1', '--video-frames', '6'])
    out = capsys.readouterr().out
    assert out.startswith('CPU: ') and 'threads: 1' in out.splitlines()[0]
    names = ('ORT FP32', 'ORT INT8', 'OV FP32', 'OV BF16', 'OV INT8')
    assert sorted(fps) == sorted(names)  # 1 thread: no throughput rows
    assert all(value > 0 for value in fps.values())
    rows = {line.split(':')[0].strip(): line for line in out.splitlines()
            if ' FPS (' in line}
    for name in names:
        assert rows[name].endswith('x ORT FP32'), rows[name]
    assert 'Throughput' not in out
    head = [line for line in out.splitlines() if line.startswith(
        'ssd-detect on a 640x480 video of 6 frames (OV INT8, --streams 1)')]
    assert len(head) == 1 and 'runtime, 1 stream: ' in head[0], out
    detect = [line for line in out.splitlines()
              if line.startswith('  ssd-detect ')]
    assert len(detect) == 2, out
    assert '--out video, --json' in detect[0] and '--json only' in detect[1]
    for line in detect:
        assert line.endswith('of runtime, 1 stream')
        share = line.split(' FPS, ')[1].split('%')[0]
        assert int(share) > 0, line


@pytest.mark.slow
def test_benchmark_runtime_throughput_rows(capsys):
    # With 2 threads: each INT8 contender with 1 and 2 streams, and
    # ssd-detect against the runtime alone with each.
    bench = load_tool('deployment/benchmark_runtime.py')
    fps = bench.main(['--config', 'configs/quickstart/ssd_shapes.py',
                      '--sizes', '--threads', '2', '--rounds', '1',
                      '--calls', '2', '--video-frames', '6'])
    out = capsys.readouterr().out
    assert 'Throughput: images side by side in 2 streams' in out
    rows = {line.split(':')[0].strip(): line for line in out.splitlines()
            if ' FPS (' in line}
    for name in ('OV INT8 x1', 'OV INT8 x2', 'ORT INT8 x1', 'ORT INT8 x2'):
        assert fps[name] > 0 and rows[name].endswith('x OV INT8 x1')
    detect = [line for line in out.splitlines()
              if line.startswith('  ssd-detect ')]
    assert len(detect) == 2
    assert all('of runtime, 1 stream, ' in line and
               line.endswith('of runtime, 2 streams') for line in detect)


def test_init_without_checkpoint_drops_only_mmdet_coco_warning(monkeypatch):
    import warnings

    import mmdet.apis

    from ssd_plugin.utils.mmdet_ssd import (init_without_checkpoint,
                                            random_detector)

    def fake_init(config, checkpoint, device):
        warnings.simplefilter('once')  # as mmdet does before its warning
        warnings.warn('checkpoint is None, use COCO classes by default.')
        warnings.warn('something else the user should see')
        return (config, checkpoint, device)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with monkeypatch.context() as patch:
            patch.setattr(mmdet.apis, 'init_detector', fake_init)
            assert init_without_checkpoint('cfg') == ('cfg', None, 'cpu')
        model = random_detector('configs/quickstart/ssd_shapes.py')
    messages = [str(w.message) for w in caught]
    assert 'something else the user should see' in messages
    assert not [m for m in messages if m.startswith('checkpoint is None')]
    assert not model.training
