"""``ssd-detect`` (ssd_runtime.detect) and its frame sources.

Inputs are files written here (images, a Motion-JPEG video with one frame's
JPEG data destroyed); the model is conftest's uint8 export of the quickstart
SSD. Nothing a source cannot read may vanish: it is counted, reported and
listed in the JSON.
"""
import json
import os

import cv2
import numpy as np
import pytest

from conftest import sample_images
from ssd_runtime.detect import main, parse_args, report, run
from ssd_runtime.sources import open_source

pytest.importorskip('onnxruntime', reason='the deploy extra')


def _video(path, frames: int = 8, size=(64, 48), fourcc: str = 'MJPG'):
    """Frame i is grey level 30 i with a white square at x = 5 i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10,
                             size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 30 * i, np.uint8)
        frame[10:20, 5 * i:5 * i + 10] = 255
        writer.write(frame)
    writer.release()
    return str(path)


def _break_frame(path, index: int) -> None:
    """Destroy the start of frame ``index``'s JPEG data in a MJPG AVI."""
    data = bytearray(open(path, 'rb').read())
    starts = [i for i in range(len(data) - 1)
              if data[i] == 0xFF and data[i + 1] == 0xD8]
    data[starts[index]:starts[index] + 200] = bytes(200)
    open(path, 'wb').write(bytes(data))


def test_images_folder_and_glob(quickstart_onnx, tmp_path, capsys):
    folder = tmp_path / 'images'
    folder.mkdir()
    for index, image in enumerate(sample_images()[:3]):
        cv2.imwrite(str(folder / f'{index}.png'), image)
    (folder / 'notes.txt').write_text('not an image')
    out, coco = tmp_path / 'drawn', tmp_path / 'd.json'
    assert main([quickstart_onnx.uint8, str(folder), '--out', str(out),
                 '--json', str(coco), '--no-progress']) == 0
    assert sorted(os.listdir(out)) == ['0.png', '1.png', '2.png']
    drawn = cv2.imread(str(out / '1.png'))
    assert drawn.shape == sample_images()[1].shape
    assert not np.array_equal(drawn, sample_images()[1])  # boxes drawn
    data = json.loads(coco.read_text())
    assert [im['file_name'] for im in data['images']] == [
        str(folder / f'{i}.png') for i in range(3)]
    text = capsys.readouterr().out
    assert '3 frames in' in text and 'inference' in text
    summary = run(parse_args([quickstart_onnx.uint8, str(folder / '*.png'),
                              '--no-progress']))
    assert summary['frames'] == 3 and summary['skipped'] == []
    assert set(summary['times']) == {'read/decode', 'resize', 'inference',
                                     'postprocess', 'draw/encode'}


def test_frame_that_fails_to_decode_is_skipped_and_reported(
        quickstart_onnx, tmp_path, capsys):
    path = _video(tmp_path / 'broken.avi')
    _break_frame(path, 3)
    coco = tmp_path / 'd.json'
    args = parse_args([quickstart_onnx.uint8, path, '--json', str(coco),
                       '--out', str(tmp_path / 'drawn.avi')])
    summary = run(args)
    assert summary['frames'] == 7
    assert summary['skipped'] == [(3, 'failed to decode')]
    data = json.loads(coco.read_text())
    assert [im['id'] for im in data['images']] == [0, 1, 2, 4, 5, 6, 7]
    assert data['skipped'] == [dict(id=3, reason='failed to decode')]
    assert 'skipped 1 frames that could not be read: 3 (failed to decode)' \
        in report(summary)
    assert '] 8/8' in capsys.readouterr().err  # the bar counts skips too


def test_video_ending_early_is_reported(tmp_path):
    path = _video(tmp_path / 'short.avi', frames=6)
    _break_frame(path, 5)
    _break_frame(path, 4)
    source = open_source(path)
    assert [f.index for f in source] == [0, 1, 2, 3]
    reason = 'missing at the end (failed to decode, or the stream ended)'
    assert source.skipped == [(4, reason), (5, reason)]


@pytest.mark.parametrize('make, error, match', [
    (lambda p: str(p / 'missing.mp4'), FileNotFoundError,
     'no file, folder, glob match or camera index'),
    (lambda p: (p / 'junk.mp4').write_bytes(b'\x00' * 100) and
     str(p / 'junk.mp4'), ValueError, 'OpenCV cannot open the video'),
    (lambda p: '99', ValueError, 'camera 99 does not open'),
    (lambda p: (p / 'empty').mkdir() or str(p / 'empty'), ValueError,
     'no images .* in the folder'),
])
def test_sources_that_do_not_open(tmp_path, make, error, match):
    with pytest.raises(error, match=match):
        open_source(make(tmp_path))


def test_bad_command_lines_exit_with_the_message(quickstart_onnx, tmp_path,
                                                 capsys):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), sample_images()[1])
    (tmp_path / 'empty').mkdir()
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    for argv, message in [
            ([str(image), '--out', str(tmp_path / 'x.mp4')],
             'names a video, but the input is images'),
            ([str(tmp_path / 'empty')], 'no images'),
            ([str(broken)], 'no frame .* could be read'),
            ([str(image), '--threads', '0'], '--threads=0'),
            ([str(image), '--score-thr', '2'], r'--score-thr=2\.0')]:
        assert main([quickstart_onnx.uint8, *argv, '--no-progress']) == 2
        err = capsys.readouterr().err
        assert err.startswith('ssd-detect: error:'), err
        assert __import__('re').search(message, err), (message, err)
    assert main([str(tmp_path / 'missing.onnx'), str(image)]) == 2
    assert 'export_onnx.py' in capsys.readouterr().err


def test_an_output_that_fails_in_the_writer_thread(quickstart_onnx, tmp_path,
                                                   capsys):
    video = _video(tmp_path / 'v.avi', frames=3)
    (tmp_path / 'file').write_text('a file, not a folder')
    out = str(tmp_path / 'file' / 'drawn.mp4')
    assert main([quickstart_onnx.uint8, video, '--out', out,
                 '--no-progress']) == 2
    err = capsys.readouterr().err
    assert err.startswith('ssd-detect: error: ') and 'File exists' in err


def test_threads_keep_the_order_and_raise_errors():
    from ssd_runtime.pipeline import ReadAhead, WriteBehind
    assert list(ReadAhead(range(50), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise ValueError('frame 2 is bad')

    reader = ReadAhead(failing())
    with pytest.raises(ValueError, match='frame 2 is bad'):
        list(reader)
    seen = []
    writer = WriteBehind(seen.append, depth=2)
    for item in range(50):
        writer.put(item)
    writer.close()
    assert seen == list(range(50))
    writer = WriteBehind(lambda item: 1 / item)
    writer.put(0)
    with pytest.raises(ZeroDivisionError):
        for item in range(1, 20):
            writer.put(item)
        writer.close()


def test_max_frames_stops_early(quickstart_onnx, tmp_path):
    video = _video(tmp_path / 'v.avi', frames=8)
    summary = run(parse_args([quickstart_onnx.uint8, video, '--max-frames',
                              '2', '--no-progress']))
    assert summary['frames'] == 2 and summary['skipped'] == []


def _matched(a, b) -> bool:
    """COCO result lists equal up to float order: per image and class, the
    same boxes (0.05 px) and scores (1e-4)."""
    if len(a) != len(b):
        return False
    rest = list(b)
    for x in a:
        hit = next((y for y in rest if y['image_id'] == x['image_id'] and
                    y['category_id'] == x['category_id'] and
                    np.allclose(y['bbox'], x['bbox'], atol=0.05) and
                    abs(y['score'] - x['score']) < 1e-4), None)
        if hit is None:
            return False
        rest.remove(hit)
    return True


def test_streams_keep_every_frame_in_order(quickstart_onnx, tmp_path):
    path = _video(tmp_path / 'v.avi', frames=8, size=(160, 120))
    found = {}
    for streams in (1, 2):
        coco = tmp_path / f'{streams}.json'
        summary = run(parse_args([
            quickstart_onnx.uint8, path, '--json', str(coco), '--threads',
            '2', '--streams', str(streams), '--score-thr', '0',
            '--no-progress']))
        assert summary['frames'] == 8 and summary['streams'] == streams
        found[streams] = json.loads(coco.read_text())
    assert [im['id'] for im in found[2]['images']] == list(range(8))
    assert len(found[1]['annotations']) > 8
    assert _matched(found[1]['annotations'], found[2]['annotations'])
    summary = run(parse_args([quickstart_onnx.uint8, path, '--threads', '2',
                              '--streams', '2', '--max-frames', '5',
                              '--no-progress']))
    assert summary['frames'] == 5
    assert '2 streams side by side' in report(summary)


def test_streams_flag_checked(quickstart_onnx, tmp_path, capsys):
    path = _video(tmp_path / 'v.avi', frames=2)
    assert main([quickstart_onnx.uint8, path, '--streams', '0']) == 2
    assert '--streams=0: give at least 1' in capsys.readouterr().err
    assert main([quickstart_onnx.uint8, path, '--threads', '1',
                 '--streams', '2']) == 2
    assert 'streams=2 is more than the 1 threads' in capsys.readouterr().err
    from ssd_runtime.detect import default_streams
    assert default_streams(1) == 1 and default_streams(2) == 2
    assert default_streams(16) == 2
