"""Files a careless or hostile user may hand the runtime: each gets the right answer or one line
and exit status 2, and nothing the user had is replaced."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_IMAGES, TEST_LABELS
from PIL import Image

from mnist_edge_runtime import decoding
from mnist_edge_runtime.cli import main
from mnist_edge_runtime.errors import RuntimeInputError


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", *args], capture_output=True, text=True, timeout=600
    )


def one_line_exit_2(done: subprocess.CompletedProcess) -> bool:
    return (
        done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    )


def _jpeg_of_many_scans(copies: int) -> bytes:
    """A progressive JPEG whose last scan is repeated ``copies`` times more: each costs the decoder
    a pass over the whole picture, and a few bytes of file."""
    out = io.BytesIO()
    Image.new("L", (256, 256), 255).save(out, "JPEG", progressive=True, quality=90)
    data = out.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    scan = data[last_scan:-2]  # up to the end-of-image marker
    return data[:-2] + scan * copies + data[-2:]


def test_a_jpeg_of_many_scans_is_refused_before_it_is_decoded(monkeypatch, tmp_path):
    bomb = _jpeg_of_many_scans(decoding.MAX_JPEG_SCANS)
    with pytest.raises(RuntimeInputError, match=f"more than {decoding.MAX_JPEG_SCANS} scans"):
        decoding.load_image_bytes(bomb, "upload")
    (tmp_path / "scans.jpg").write_bytes(bomb)
    with pytest.raises(RuntimeInputError, match="scans"):
        decoding.load_image_file(tmp_path / "scans.jpg")
    # The same file is a picture like any other below the limit: the count alone refused it.
    monkeypatch.setattr(decoding, "MAX_JPEG_SCANS", 10 * decoding.MAX_JPEG_SCANS)
    assert decoding.load_image_bytes(bomb, "upload").shape == (256, 256)


def test_an_ordinary_progressive_jpeg_is_read():
    for mode in ("L", "RGB"):
        out = io.BytesIO()
        Image.new(mode, (640, 480), "white").save(out, "JPEG", progressive=True)
        assert decoding.load_image_bytes(out.getvalue()).shape == (480, 640)


@pytest.mark.parametrize(
    "orientation, stored", [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90)]
)
def test_a_tiff_with_an_orientation_tag_is_turned_upright_once(test_set, orientation, stored):
    images, _ = test_set
    upright = Image.fromarray(255 - images[0])  # dark ink on white
    exif = Image.Exif()
    exif[0x0112] = orientation  # the picture is stored turned; the tag says how to turn it back
    as_read = {}
    for fmt in ("TIFF", "PNG"):
        out = io.BytesIO()
        upright.transpose(stored).save(out, fmt, exif=exif)
        as_read[fmt] = decoding.load_image_bytes(out.getvalue())
    assert np.array_equal(as_read["TIFF"], as_read["PNG"])
    assert np.array_equal(as_read["PNG"], 255 - images[0])


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: {"validation": {**entry["validation"], "accuracy": math.nan}},
        lambda entry: {"validation": {**entry["validation"], "accuracy": "0.99"}},
        lambda entry: {"validation": {**entry["validation"], "accuracy": 1.5}},
        lambda entry: {"validation": "passed"},
        lambda entry: 5,
    ],
    ids=["nan", "text", "above-1", "validation-not-a-table", "entry-not-a-table"],
)
def test_a_damaged_manifest_is_one_line_never_a_pass(bundle_copy, damage):
    path = bundle_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    entry = manifest["artifacts"]["conv2d.int8.tflite"]
    changed = damage(entry)
    manifest["artifacts"]["conv2d.int8.tflite"] = (
        {**entry, **changed} if isinstance(changed, dict) else changed
    )
    path.write_text(json.dumps(manifest))  # json writes nan as NaN, as Python reads it back
    done = run_cli("eval", "--model", str(bundle_copy / "conv2d.int8.tflite"), "--limit", "100")
    assert one_line_exit_2(done) and "manifest.json" in done.stderr, done.stdout[-500:] + done.stderr[-500:]
    assert "pass" not in done.stdout


def test_eval_never_replaces_a_file_with_its_predictions(tmp_path):
    picture = tmp_path / "seven.png"
    picture.write_bytes(b"a picture the user keeps")
    done = run_cli("eval", "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS), "--limit", "10",
                   "--predictions", str(picture))  # fmt: skip
    assert one_line_exit_2(done) and "already exists" in done.stderr, done.stderr
    assert picture.read_bytes() == b"a picture the user keeps"
    fresh = tmp_path / "predictions.json"
    done = run_cli("eval", "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS), "--limit", "10",
                   "--predictions", str(fresh))  # fmt: skip
    assert done.returncode == 0 and len(next(iter(json.loads(fresh.read_text()).values()))) == 10


@pytest.mark.parametrize("count", ["50000", "2147483648"])
def test_a_thread_count_beyond_any_board_is_refused(count, tmp_path):
    picture = tmp_path / "blank.png"
    Image.new("L", (28, 28)).save(picture)
    for command in (["predict", str(picture)], ["eval", "--limit", "10"], ["serve", "--systemd-unit"]):
        option = "--workers" if command[0] == "serve" else "--threads"
        done = run_cli(*command, option, count)
        assert one_line_exit_2(done) and "at most" in done.stderr, (command, done.stderr)


def test_a_path_the_user_may_not_enter_is_one_line(monkeypatch, capsys):
    # Root enters every folder, and tests often run as root: the refusal is raised where the
    # runtime first touches the path, as Python 3.11's Path.is_file raises it.
    def refused(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", refused)
    with pytest.raises(SystemExit) as exited:
        main(["predict", "locked/a.png"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mnist-edge-runtime: error: ") and err.endswith(": permission denied\n"), err
    assert err.count("\n") == 1


def test_a_folder_or_a_pipe_is_not_taken_for_a_missing_file(tmp_path):
    import os

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for path in (tmp_path, pipe):
        done = run_cli("predict", "--model-file", str(path), str(path))
        assert one_line_exit_2(done) and "not a regular file" in done.stderr, done.stderr
    picture = run_cli("predict", str(pipe))
    assert picture.returncode == 1 and "not a regular file" in picture.stdout, picture.stdout


def test_a_photo_with_a_video_after_it_is_read(tmp_path):
    # Phone "motion photos" append an MP4 after the JPEG's end: its bytes are not scans.
    import os

    out = io.BytesIO()
    Image.effect_noise((640, 480), 40).convert("RGB").save(out, "JPEG", progressive=True)
    picture = out.getvalue() + os.urandom(8_000_000)
    assert decoding.load_image_bytes(picture).shape == (480, 640)


def test_eval_never_replaces_a_file_that_appears_while_it_runs(tmp_path, monkeypatch):
    from mnist_edge_runtime import cli

    target = tmp_path / "predictions.json"
    target.write_text("someone else's")
    with pytest.raises(RuntimeInputError, match="already exists"):
        cli._write_new_text(target, "[]\n")
    assert target.read_text() == "someone else's" and sorted(tmp_path.iterdir()) == [target]


def test_without_hard_links_the_file_is_created_whole_or_not_at_all(tmp_path, monkeypatch):
    """A FAT memory stick has no hard links: the file is created exclusively, and a write that
    fails there (the stick is full) leaves nothing behind."""
    import errno
    import os

    from mnist_edge_runtime import cli

    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "predictions.json"
    cli._write_new_text(target, "[1, 2]\n")
    assert target.read_text() == "[1, 2]\n" and sorted(tmp_path.iterdir()) == [target]

    class FullStick(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    full, real_open = tmp_path / "full.json", open

    def opened(file, mode="r", *args, **kwargs):
        if file == full and mode == "x":
            real_open(file, mode).close()  # created, as the real call would
            return FullStick()
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", opened)
    with pytest.raises(RuntimeInputError, match="cannot write"):
        cli._write_new_text(full, "[]\n")
    assert not full.exists() and sorted(tmp_path.iterdir()) == [target]


def test_one_locked_picture_is_its_own_error_not_the_batch(tmp_path, monkeypatch, capsys):
    picture, locked = tmp_path / "blank.png", tmp_path / "locked" / "a.png"
    Image.new("L", (280, 280), 255).save(picture)
    is_file = Path.is_file

    def refused(self: Path) -> bool:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return is_file(self)

    monkeypatch.setattr(Path, "is_file", refused)
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(picture), str(locked)])
    out = capsys.readouterr().out
    assert exited.value.code == 1  # some file could not be read; the others are answered
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "error: permission denied" in rows[str(locked)] and "blank" in rows[str(picture)]
