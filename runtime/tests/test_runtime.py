"""The device package: no TensorFlow, safe model loading, preprocessing, parity with the manifest."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLE, TEST_IMAGES, TEST_LABELS
from synthetic import fine_pen_on_ruled_paper, paper_photo

from mnist_edge_runtime.backends import open_model
from mnist_edge_runtime.bundle import (
    ORIGINAL_ACCURACY,
    PARITY_TOLERANCE,
    parity_tolerance,
    parity_verdict,
    read_manifest,
)
from mnist_edge_runtime.classifier import Classifier
from mnist_edge_runtime.cli import main
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.machine import describe_machine, one_line
from mnist_edge_runtime.preprocess import to_mnist

HAVE_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
HAVE_TFLITE_RUNTIME = importlib.util.find_spec("tflite_runtime") is not None
HAVE_ONNXRUNTIME = importlib.util.find_spec("onnxruntime") is not None
INT8 = BUNDLE / "conv2d.int8.tflite"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", *args], capture_output=True, text=True, timeout=600
    )


def test_runtime_never_imports_tensorflow_or_the_toolchain(test_set):
    code = (
        "import sys, numpy as np\n"
        "from mnist_edge_runtime.classifier import Classifier\n"
        "import mnist_edge_runtime.cli, mnist_edge_runtime.preprocess\n"
        f"c = Classifier.open({str(INT8)!r})\n"
        "c.predict(np.zeros((28, 28), np.uint8))\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'mnist_edge')]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_best_installed_backend_is_chosen():
    expected = "litert" if HAVE_LITERT else "tflite-runtime"
    assert open_model(INT8).backend == expected
    with pytest.raises(RuntimeInputError, match="unknown TFLite backend|is not installed"):
        open_model(INT8, backend="tensorflow" if not HAVE_LITERT else "nonsense")


def test_eval_reproduces_the_manifest_on_every_artifact():
    """The CI parity gate: every artifact of the committed bundle, all 10,000 test images."""
    done = run_cli(
        "eval", "--bundle", str(BUNDLE), "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS), "--json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    if not HAVE_ONNXRUNTIME:
        assert "skipped conv2d.float32.onnx: onnxruntime is not installed" in done.stderr
    rows = {r["artifact"]: r for r in json.loads(done.stdout)}
    manifest = read_manifest(BUNDLE)["artifacts"]
    expected = {n for n in manifest if HAVE_ONNXRUNTIME or not n.endswith(".onnx")}
    expected -= {n for n in manifest if manifest[n]["format"] == "tflm"}  # C source for microcontrollers
    assert "skipped conv2d.int8.tflm.c: C source for microcontrollers" in done.stderr
    assert set(rows) == expected
    for name, row in rows.items():
        assert row["images"] == 10000 and row["parity"] == "pass"
        # Exact (tolerance 0) for int8 on ai-edge-litert, whose int8 arithmetic is the same on every
        # CPU class (tests/emulation/cpu_matrix.py, in CI); 0.05 pp for onnxruntime (its Arm kernels).
        tolerance = parity_tolerance(row["backend"], manifest[name]["precision"])
        assert abs(row["accuracy"] - manifest[name]["validation"]["accuracy"]) <= tolerance + 1e-9


def test_predict_batch_equals_single_calls(test_set):
    images, labels = test_set
    classifier = Classifier.open(INT8)
    batch = classifier.scores(images[:64])
    single = np.concatenate([classifier.scores(images[i : i + 1]) for i in range(64)])
    np.testing.assert_array_equal(batch, single)
    result = classifier.predict(images[:3])
    assert [p.digit for p in result] == labels[:3].tolist()
    first = result[0]
    assert first.runner_up != first.digit and first.confidence >= first.runner_up_confidence
    # The int8 model outputs logits, so even a tiny runner-up score is resolved (not rounded to 0).
    assert 0 < first.runner_up_confidence < 0.5
    assert len(first.scores) == 10


# --- model files that must be refused -------------------------------------------------------------


def test_manifest_checks(bundle_copy):
    model = bundle_copy / "conv2d.int8.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(RuntimeInputError, match="SHA-256 does not match"):
        Classifier.open(model)
    model.write_bytes(bytes(data[:1000]))
    with pytest.raises(RuntimeInputError, match="the manifest says"):
        Classifier.open(model)
    stray = bundle_copy / "other.tflite"
    stray.write_bytes(INT8.read_bytes())
    with pytest.raises(RuntimeInputError, match="not listed in"):
        Classifier.open(stray)


def test_unknown_output_activation_in_the_manifest(bundle_copy):
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"]["conv2d.int8.tflite"]["output"]["activation"] = "relu6"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(
        RuntimeInputError, match="manifest says output activation 'relu6', the model file says 'sigmoid'"
    ):
        Classifier.open(bundle_copy / "conv2d.int8.tflite")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "no TFL3 identifier"),
        (b"\xff\xff\xff\x7fTFL3" + b"\0" * 100, "root offset"),
    ],
)
def test_foreign_and_empty_model_files(tmp_path, content, message):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(RuntimeInputError, match=message):
        Classifier.open(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_model_without_manifest_is_refused_not_crashed(tmp_path, keep):
    path = tmp_path / "model.tflite"
    content = INT8.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])
    with pytest.raises(RuntimeInputError, match="model"):
        Classifier.open(path)


def test_corrupted_models_without_manifest_never_crash_the_process(tmp_path, test_set):
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(test_set[0][0]).save(image)
    rng = np.random.default_rng(0)
    for trial in range(5):
        content = bytearray(INT8.read_bytes())
        # Scramble the flatbuffer's tables (past the header), as a bad download might.
        for index in rng.integers(16, 4000, size=200):
            content[index] = int(rng.integers(0, 256))
        path = tmp_path / f"model{trial}.tflite"
        path.write_bytes(bytes(content))
        done = run_cli("predict", str(image), "--model", str(path))
        # Refused with a one-line error, or (if the damage missed everything) a prediction: never a signal.
        assert done.returncode in (0, 2), done.stderr
        assert "Traceback" not in done.stderr


def test_a_good_model_without_manifest_loads(tmp_path, test_set):
    path = tmp_path / "model.tflite"
    path.write_bytes(INT8.read_bytes())
    assert Classifier.open(path).predict(test_set[0][:1])[0].digit == test_set[1][0]


# --- preprocessing ---------------------------------------------------------------------------------


def test_mnist_arrays_pass_through_untouched(test_set):
    image = test_set[0][0]
    assert to_mnist(image) is image


def test_photos_of_digits_are_normalized_like_mnist_and_classified(test_set):
    images, labels = test_set
    classifier = Classifier.open(INT8)
    rng = np.random.default_rng(1)
    correct, n = 0, 100
    for i in range(n):
        h, w = int(rng.integers(60, 300)), int(rng.integers(60, 300))
        side = int(rng.integers(40, min(h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        photo = paper_photo(images[i], (h, w), (top, left, side, side), seed=i)
        normalized = to_mnist(photo)
        assert normalized.shape == (28, 28) and normalized.dtype == np.uint8
        ys, xs = np.nonzero(normalized > 0)
        assert ys.max() - ys.min() < 22 and xs.max() - xs.min() < 22  # fits the 20x20 box (+ resampling)
        mass = normalized.astype(float)
        cy = (np.indices(mass.shape)[0] * mass).sum() / mass.sum()
        cx = (np.indices(mass.shape)[1] * mass).sum() / mass.sum()
        assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5
        correct += classifier.predict(photo)[0].digit == labels[i]
    assert correct >= 95  # the same digits as MNIST arrays: the int8 model gets 100 of 100 right


def test_fine_pen_on_ruled_paper(test_set):
    images, labels = test_set
    classifier = Classifier.open(INT8)
    correct = 0
    for i in range(50):
        normalized = to_mnist(fine_pen_on_ruled_paper(images[i], seed=i))
        ys, _ = np.nonzero(normalized > 0)
        assert ys.max() - ys.min() < 22  # no ruled line survived into the digit's box
        correct += classifier.predict(normalized)[0].digit == labels[i]
    assert correct >= 47


def test_a_filled_shape_is_read_filled_not_as_its_rim():
    """A cell of the background grid filled with ink is not paper: a filled disc drawn on the
    canvas, or photographed filling most of the picture, stays filled (its rim alone reads as a 0)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(canvas).ellipse([60, 60, 220, 220], fill=0)
    disc = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(disc).ellipse([8, 8, 248, 248], fill=255)
    photo = paper_photo(np.asarray(disc), (256, 256), (0, 0, 256, 256), seed=3)
    for picture in (np.asarray(canvas), photo):
        image = to_mnist(picture)
        ink = image > 127
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        middle = image[(rows[0] + rows[-1]) // 2, (cols[0] + cols[-1]) // 2]
        assert middle > 127, "the middle of the shape was read as paper"


def _seven(size: tuple[int, int], points: list[tuple[int, int]], pen: int) -> np.ndarray:
    """A 7 drawn with ``pen`` through ``points``, as ink coverage 0..1 on a (height, width) page."""
    from PIL import Image, ImageDraw

    ink = Image.new("L", (size[1], size[0]), 0)
    ImageDraw.Draw(ink).line(points, fill=255, width=pen)
    return np.asarray(ink, np.float32) / 255


def test_a_digit_in_a_deep_shadow_is_read_not_swallowed_by_it():
    """Paper darkened by 55-65% under a shadow is not taken for a cell filled with ink (which made
    the shadow a huge piece of ink and this 7 a sure 1)."""
    classifier = Classifier.open(INT8)
    rng = np.random.default_rng(0)
    ink = _seven((450, 600), [(80, 120), (220, 120), (120, 330)], 12)
    for depth in (0.55, 0.58, 0.62, 0.65):
        photo = (225 + rng.normal(0, 3, ink.shape)) * (1 - ink) + 35 * ink
        photo *= 1 - depth / (1 + np.exp((np.arange(600) - 300) / 5))  # the left half in shadow
        answer = classifier.predict(photo.clip(0, 255).astype(np.uint8))[0]
        assert answer.digit == 7 and answer.sure, (depth, answer)


def test_a_stroke_along_a_ruled_line_is_kept_and_the_line_dropped():
    """A 7 whose bar, a marker's width, runs along one of four ruled lines."""
    rng = np.random.default_rng(0)
    ink = _seven((400, 400), [(40, 161), (360, 161), (90, 390)], 14)
    paper = 215 + rng.normal(0, 4, ink.shape)
    for row in (60, 160, 260, 360):
        paper[row : row + 3] -= 70
    answer = Classifier.open(INT8).predict((paper * (1 - ink) + 40 * ink).clip(0, 255).astype(np.uint8))[0]
    assert answer.digit == 7 and answer.sure, answer


def test_image_files_of_any_format(tmp_path, test_set):
    from PIL import Image

    images, labels = test_set
    photo = paper_photo(images[0], (120, 90), (20, 10, 80, 70), seed=0)
    paths = []
    for ext in ("png", "jpg", "bmp", "pgm"):
        paths.append(tmp_path / f"digit.{ext}")
        Image.fromarray(photo).save(paths[-1])
    result = Classifier.open(INT8).predict(paths)
    assert [p.digit for p in result] == [labels[0]] * 4


# --- bad inputs through the CLI: one line each, the other files still answered ----------------------


def bad_inputs(tmp_path):
    from PIL import Image

    (tmp_path / "notes.png").write_text("this is not a picture")
    good = tmp_path / "good.png"
    Image.fromarray(np.full((50, 50), 255, np.uint8)).save(good)
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:60])
    Image.new("1", (12000, 12000)).save(tmp_path / "bomb.png")  # 144 Mpixels, a few kB on disk
    return {
        "notes.png": "not a readable image",
        "truncated.png": "not a readable image",
        "bomb.png": "too large",
        "missing.png": "no such file",
    }


def test_one_bad_file_never_sinks_a_batch(tmp_path, test_set):
    """Each unreadable file gets one line (table row or JSON error), the others their answers; exit 1."""
    from PIL import Image

    images, labels = test_set
    before, after = tmp_path / "a.png", tmp_path / "c.png"
    Image.fromarray(255 - images[0]).save(before)
    Image.fromarray(images[1]).save(after)
    for name, message in bad_inputs(tmp_path).items():
        done = run_cli("predict", str(before), str(tmp_path / name), str(after), "--model", str(INT8))
        assert done.returncode == 1 and not done.stderr, (name, done.stderr)
        rows = done.stdout.strip().splitlines()[1:]
        assert len(rows) == 3 and message in rows[1] and "error" in rows[1], (name, done.stdout)
        assert rows[0].split()[1] == str(labels[0]) and rows[2].split()[1] == str(labels[1])
        as_json = json.loads(
            run_cli("predict", str(before), str(tmp_path / name), "--model", str(INT8), "--json").stdout
        )
        assert as_json[0]["digit"] == labels[0] and as_json[0]["sure"] is True
        assert set(as_json[1]) == {"file", "error"} and message in as_json[1]["error"]


def test_a_folder_is_its_image_files_in_order_and_a_blank_one_is_answered_not_failed(tmp_path, test_set):
    from PIL import Image

    images, labels = test_set
    for i in (2, 0, 1):
        Image.fromarray(images[i]).save(tmp_path / f"{i}.png")
    Image.fromarray(np.full((40, 40), 240, np.uint8)).save(tmp_path / "3-blank.png")
    (tmp_path / "notes.txt").write_text("not a picture, and not an image file name")
    done = run_cli("predict", str(tmp_path), "--model", str(INT8), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [Path(r["file"]).name for r in rows] == ["0.png", "1.png", "2.png", "3-blank.png"]
    assert [r["digit"] for r in rows[:3]] == [int(x) for x in labels[:3]]
    assert rows[3]["digit"] is None and rows[3]["sure"] is False and rows[3]["doubt"] == "blank"
    table = run_cli("predict", str(tmp_path), "--model", str(INT8))
    assert table.returncode == 0 and "sure" in table.stdout.splitlines()[0]
    assert table.stdout.splitlines()[-1].endswith("no: blank")
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run_cli("predict", str(empty), "--model", str(INT8))
    assert nothing.returncode == 2 and "no image files" in nothing.stderr


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 3, 28, 28), np.uint8), "shape"),
        (np.array([["a"]]), "dtype"),
        (np.full((28, 28), np.nan, np.float32), "NaN"),
        (np.full((30, 30), 1000.0), "outside 0..255"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(RuntimeInputError, match=message):
        Classifier.open(INT8).predict(array)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict"], "the following arguments are required"),
        (["bench", "--threads", "0"], "must be at least 1"),
        (["eval", "--images", "nowhere", "--labels", "nowhere"], "cannot read"),
        (["predict", "x.png", "--model", "model.pt"], "no such model file"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_cli_usage_errors(args, message):
    done = run_cli(*args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def table_columns(text: str) -> list[dict[str, str]]:
    """predict's table read by its header: one {column: cell} per row, a cell running from its
    header's first character to the next header's."""
    header, *rows = text.splitlines()
    names = ["file", "predicted", "confidence", "2nd best", "sure"]
    starts = [header.index(name) for name in names]
    assert starts == sorted(starts) and starts[0] == 0, header
    bounds = list(zip(starts, [*starts[1:], None]))
    return [{name: row[a:b].strip() for name, (a, b) in zip(names, bounds)} for row in rows]


def test_cli_predict_table_and_json(tmp_path, test_set):
    from PIL import Image

    from mnist_edge_runtime.classifier import format_confidence

    # Two different digits, in files whose names hold a digit of their own: only the column may answer.
    files = []
    for index in (0, 1):
        path = tmp_path / f"{index}-digit-7.png"
        Image.fromarray(test_set[0][index]).save(path)
        files.append(path)
    assert test_set[1][0] != test_set[1][1]
    done = run_cli("predict", *map(str, files), "--model", str(INT8), "--json")
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert [a["digit"] for a in answers] == [int(test_set[1][0]), int(test_set[1][1])]
    table = run_cli("predict", *map(str, files), "--model", str(INT8))
    assert table.returncode == 0, table.stderr
    rows = table_columns(table.stdout)
    assert [row["file"] for row in rows] == list(map(str, files))
    # The other cells against the library's own answers (the JSON's figures are rounded).
    for row, answer in zip(rows, Classifier.open(INT8).predict(files), strict=True):
        assert row["predicted"] == str(answer.digit)
        assert row["confidence"] == format_confidence(answer.confidence)
        assert row["2nd best"] == f"{answer.runner_up} ({format_confidence(answer.runner_up_confidence)})"
        assert row["sure"] == ("yes" if answer.sure else f"no: {answer.doubt}")
    assert [row["predicted"] for row in rows] == [str(a["digit"]) for a in answers]


def test_bench_reports_latency_throughput_memory():
    done = run_cli("bench", "--model", str(INT8), "--threads", "1", "--repeat", "20")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["single_image_p50_ms"] > 0 and report["peak_rss_mib"] > 0
    assert report["batch256_images_per_s"] > 0


def test_main_returns_exit_code_for_parity_failure(bundle_copy, monkeypatch, capsys):
    """An artifact below its manifest accuracy fails parity with exit code 1."""
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # Claim a figure the model cannot reach: exactly what a silently worsened model looks like.
    manifest["artifacts"]["flat.int8.tflite"]["validation"]["accuracy"] = 0.9999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "eval",
                "--model",
                str(bundle_copy / "flat.int8.tflite"),
                "--images",
                str(TEST_IMAGES),
                "--labels",
                str(TEST_LABELS),
            ]
        )
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    # This machine is printed beside the one the manifest's figure was measured on.
    recorded = manifest["artifacts"]["flat.int8.tflite"]["validation"]["measured_on"]
    assert f"this machine:         {one_line(describe_machine())}" in out
    assert f"manifest measured on: {one_line(recorded)}" in out


def share_right(right: int, images: int = 10000) -> float:
    """An accuracy as eval computes it: the mean of a boolean array."""
    return float(np.mean(np.arange(images) < right))


@pytest.mark.parametrize("model", sorted(ORIGINAL_ACCURACY))
@pytest.mark.parametrize("tolerance", [0.0, PARITY_TOLERANCE])
def test_parity_verdict_boundaries(model, tolerance):
    """Exactly the manifest's figure less the tolerance passes, one image fewer fails; the same at
    the original project's figure. For every figure a 10,000-image manifest can hold above it."""
    allowed = round(tolerance * 10000)  # images the tolerance lets go
    original = round(ORIGINAL_ACCURACY[model] * 10000)
    assert share_right(original) == ORIGINAL_ACCURACY[model]
    for manifest in range(original + allowed, 10001):
        ok, problems = parity_verdict(
            model, share_right(manifest - allowed), share_right(manifest), tolerance
        )
        assert ok and not problems, (manifest, problems)
        ok, problems = parity_verdict(
            model, share_right(manifest - allowed - 1), share_right(manifest), tolerance
        )
        assert not ok and any(p.startswith("below its manifest accuracy") for p in problems), manifest
    assert parity_verdict(model, share_right(original), None, tolerance) == (True, [])
    ok, problems = parity_verdict(model, share_right(original - 1), None, tolerance)
    assert not ok and problems == [f"below the original {ORIGINAL_ACCURACY[model]:.2%}"]


def eval_flat_int8(bundle: Path, *options: str) -> tuple[int, str]:
    """``eval`` of the bundle's flat.int8.tflite on the test set: exit code and printed text."""
    model = bundle / "flat.int8.tflite"
    args = ["eval", "--model", str(model), "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS)]
    done = subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", *args, *options],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout


def claim(bundle: Path, accuracy: float) -> None:
    """Make the manifest claim ``accuracy`` for flat.int8.tflite (nothing else changes)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["artifacts"]["flat.int8.tflite"]["validation"]["accuracy"] = accuracy
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def parity_cells(text: str) -> list[str]:
    """The parity column of eval's table."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("artifact"))
    start = lines[header].index("parity")
    return [line[start:] for line in lines[header + 1 :]]


def test_eval_passes_at_the_tolerance_exactly_and_fails_one_image_below(bundle_copy):
    code, out = eval_flat_int8(bundle_copy, "--json")
    row = json.loads(out)[0]
    assert code == 0 and row["parity"] == "pass" and row["images"] == 10000
    right = round(row["accuracy"] * 10000)
    allowed = round(parity_tolerance(row["backend"], "int8") * 10000)
    assert allowed == {"litert": 0, "tflite-runtime": 5}[row["backend"]]  # exact on the manifest's own
    assert right - 1 >= round(ORIGINAL_ACCURACY["flat"] * 10000)  # only the manifest's figure decides
    claim(bundle_copy, share_right(right + allowed))  # what this device measures, less the tolerance
    code, out = eval_flat_int8(bundle_copy)
    assert (code, parity_cells(out)) == (0, ["pass"])
    claim(bundle_copy, share_right(right + allowed + 1))  # one image more than this device gets right
    code, out = eval_flat_int8(bundle_copy)
    assert code == 1 and len(cells := parity_cells(out)) == 1
    assert cells[0].startswith("FAIL: below its manifest accuracy"), cells


@pytest.mark.parametrize("claimed", ["measured", 0.9999])
def test_eval_with_a_limit_never_gives_a_verdict(bundle_copy, claimed):
    """--limit measures part of the test set: never "pass" (nor FAIL), even where the part's accuracy
    is above the manifest's, and exit 0; all 10,000 images again give the verdict."""
    if claimed != "measured":
        claim(bundle_copy, claimed)
    for limit in ("100", "9999"):
        code, out = eval_flat_int8(bundle_copy, "--limit", limit)
        assert (code, parity_cells(out)) == (0, ["n/a (not the manifest's test set)"]), limit
        code, out = eval_flat_int8(bundle_copy, "--limit", limit, "--json")
        assert code == 0 and json.loads(out)[0]["parity"] == "n/a (not the manifest's test set)"
    code, out = eval_flat_int8(bundle_copy, "--limit", "10000")
    if claimed == "measured":
        assert (code, parity_cells(out)) == (0, ["pass"])
    else:
        assert code == 1 and parity_cells(out)[0].startswith("FAIL"), out


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    """SIGINT while eval is inside its command (reading its images from a pipe nobody writes)."""
    import errno
    import signal
    import time

    pipe = tmp_path / "images.idx"
    os.mkfifo(pipe)
    args = ["eval", "--model", str(INT8), "--images", str(pipe), "--labels", str(TEST_LABELS)]
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_edge_runtime", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = None
    try:
        # The pipe opens for writing once eval has opened it for reading: from then on eval waits
        # inside the command for bytes that never come.
        deadline = time.monotonic() + 120
        while writer is None:
            try:
                writer = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO or process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert err.splitlines() == ["mnist-edge-runtime: interrupted"] and out == ""


X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Some Xeon
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni

processor\t: 1
model name\t: Some Xeon
flags\t\t: fpu
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b
"""


@pytest.mark.parametrize(
    ("text", "model", "features"),
    [
        (X86_CPUINFO, "Some Xeon", ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"]),
        (ARM_CPUINFO, "Cortex-A76 (implementer 0x41, part 0xd0b)", ["asimd", "asimddp"]),
    ],
)
def test_cpu_description_names_the_kernel_features(monkeypatch, tmp_path, text, model, features):
    from mnist_edge_runtime import machine

    monkeypatch.setattr(machine, "_cpuinfo", lambda: machine.parse_cpuinfo(text))
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    described = machine.cpu_description()
    assert described["model"] == model and described["features"] == features
    assert one_line({"cpu": described, "interpreters": {"onnxruntime": "1.0"}}).endswith("; onnxruntime 1.0")


# --- inputs of every form and size, threads -------------------------------------------------------


def _bright_band(size: tuple[int, int], axis: int) -> np.ndarray:
    """Black, with its middle third of rows (or columns) white: a box filled bright, a pixel or two thick."""
    pixels = np.zeros(size, np.uint8)
    third = size[axis] // 3
    band = slice(third, max(third + 1, 2 * third))
    pixels[(band, slice(None)) if axis == 0 else (slice(None), band)] = 255
    return pixels


@pytest.mark.parametrize(
    "size", [(1, 1), (1, 9), (9, 1), (9, 7), (10, 10), (1, 10), (2, 600), (600, 2), (3, 3000)]
)
def test_degenerate_picture_sizes_get_a_prediction_or_one_line(tmp_path, size):
    from PIL import Image

    rng = np.random.default_rng(sum(size))
    for kind, pixels in [
        ("random", rng.integers(0, 256, size, dtype=np.uint8)),
        ("white", np.full(size, 255, np.uint8)),
        ("black", np.zeros(size, np.uint8)),
        ("rows-band", _bright_band(size, axis=0)),
        ("columns-band", _bright_band(size, axis=1)),
    ]:
        path = tmp_path / f"{kind}-{size[0]}x{size[1]}.png"
        Image.fromarray(pixels).save(path)
        done = run_cli("predict", str(path), "--model", str(INT8))
        assert done.returncode in (0, 2), (path.name, done.stderr)
        assert "Traceback" not in done.stderr
        if done.returncode == 2:
            assert len(done.stderr.strip().splitlines()) == 1, (path.name, done.stderr)


def test_eval_predictions_into_a_missing_folder_is_one_line(tmp_path):
    target = tmp_path / "missing" / "dir" / "p.json"
    done = run_cli("eval", "--model", str(INT8), "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS))
    assert done.returncode == 0
    done = run_cli(
        "eval", "--model", str(INT8), "--images", str(TEST_IMAGES), "--labels", str(TEST_LABELS),
        "--limit", "10", "--predictions", str(target),
    )  # fmt: skip
    assert done.returncode == 2 and "cannot write" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not target.parent.exists()


def test_pictures_as_pil_images_rgb_rgba_and_float_arrays(test_set):
    from PIL import Image

    images, labels = test_set
    classifier = Classifier.open(INT8)
    digit, label = images[0], int(labels[0])
    white_paper = 255 - digit  # dark ink on white paper, as photographed
    rgb = np.repeat(white_paper[..., None], 3, axis=2)
    rgba = np.dstack([rgb, np.full(digit.shape, 255, np.uint8)])
    forms = {
        "PIL gray": Image.fromarray(digit),
        "PIL RGB": Image.fromarray(rgb),
        "RGB array": rgb,
        "RGBA array": rgba,
        "(H, W, 1) array": digit[..., None],
        "float 0..1": digit.astype(np.float32) / 255,
        "float 0..255": digit.astype(np.float64),
    }
    for form, picture in forms.items():
        assert classifier.predict(picture)[0].digit == label, form
    # A 28x28 float image in [0, 1] is MNIST already: the same scores as its uint8 twin.
    same = classifier.predict(digit.astype(np.float32) / 255)[0].scores
    assert same == classifier.predict(digit)[0].scores
    # A list of mixed forms is a batch; an (N, H, W, 3) array is a batch of color pictures.
    assert [p.digit for p in classifier.predict([Image.fromarray(digit), rgb, digit])] == [label] * 3
    assert [p.digit for p in classifier.predict(np.stack([rgb, rgb]))] == [label] * 2


def test_a_classifier_shared_by_threads_gives_single_threaded_results(test_set):
    import threading

    images = test_set[0][:300]
    classifier = Classifier.open(INT8)
    expected = [classifier.scores(images[i : i + 1 + i % 3]) for i in range(300)]
    stderr_before = os.fstat(2)
    failures, mismatches = [], []

    def worker(offset: int) -> None:
        for k in range(300):
            i = (k + offset * 75) % 300
            try:
                got = classifier.scores(images[i : i + 1 + i % 3])
            except Exception as exc:  # collected, so one failing thread cannot hide
                failures.append(repr(exc))
                continue
            if not np.array_equal(got, expected[i]):
                mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and mismatches == []
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (stderr_before.st_dev, stderr_before.st_ino)


def test_stderr_silencing_is_shared_by_threads_and_undone_after_errors():
    import threading

    from mnist_edge_runtime.quiet import native_stderr_silenced

    before = os.fstat(2)
    barrier = threading.Barrier(3)

    def load_and_fail() -> None:
        with contextlib.suppress(RuntimeError), native_stderr_silenced():
            barrier.wait()  # all three inside at once
            raise RuntimeError("a model that fails to load")

    threads = [threading.Thread(target=load_and_fail) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_no_process_wide_pillow_or_warning_state_changes(tmp_path):
    import warnings

    from PIL import Image

    from mnist_edge_runtime.preprocess import load_image_file

    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    Image.fromarray(np.full((30, 30), 200, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not an image")
    load_image_file(tmp_path / "a.png")
    with pytest.raises(RuntimeInputError):
        load_image_file(tmp_path / "b.png")
    assert limit == Image.MAX_IMAGE_PIXELS and warnings.filters == filters


def test_a_big_jpeg_is_decoded_reduced(tmp_path):
    import tracemalloc

    from PIL import Image

    from mnist_edge_runtime.preprocess import load_image_file

    photo = np.full((3000, 4000), 235, np.uint8)
    photo[1000:2000, 1900:2100] = 20  # a "1", dark ink on paper
    Image.fromarray(photo).save(tmp_path / "phone.jpg", quality=90)
    tracemalloc.start()
    gray = load_image_file(tmp_path / "phone.jpg")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert max(gray.shape) <= 1000  # decoded at 1/4 or less, never 4000x3000
    assert peak < 16 * 1024 * 1024  # the full picture as float32 would be 48 MB


@pytest.mark.parametrize("size", [(1024, 768), (800, 600), (768, 1024), (4000, 3000), (5000, 700)])
def test_a_jpeg_is_decoded_at_the_scale_nearest_the_working_size(tmp_path, size):
    """The decoder's scale is chosen by the longest side: a 1024x768 photo (the size the page sends)
    is decoded at 512x384, not at full size because its short side is under the working size."""
    from PIL import Image

    from mnist_edge_runtime.preprocess import WORKING_SIDE, load_image_file

    Image.new("L", size, 200).save(tmp_path / "photo.jpg")
    gray = load_image_file(tmp_path / "photo.jpg")
    assert WORKING_SIDE <= max(gray.shape) < 2 * WORKING_SIDE, gray.shape


def test_manifest_keys_must_be_plain_file_names(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["artifacts"]["../x"] = manifest["artifacts"]["flat.int8.tflite"]
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RuntimeInputError, match="not a plain file name"):
        read_manifest(bundle_copy)


def test_eval_knows_the_manifest_test_set_by_checksum_not_count(tmp_path):
    import gzip

    raw_images, raw_labels = tmp_path / "images.idx", tmp_path / "labels.idx"
    raw_images.write_bytes(gzip.decompress(TEST_IMAGES.read_bytes()))
    labels = bytearray(gzip.decompress(TEST_LABELS.read_bytes()))
    raw_labels.write_bytes(bytes(labels))

    def parity(labels_file) -> str:
        done = run_cli(
            "eval", "--model", str(INT8), "--images", str(raw_images), "--labels", str(labels_file), "--json"
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)[0]["parity"]

    assert parity(raw_labels) == "pass"  # the same test set, ungzipped: still recognised
    labels[-1] = (labels[-1] + 1) % 10  # 10,000 labels still, one of them different
    other = tmp_path / "other-labels.idx"
    other.write_bytes(bytes(labels))
    assert parity(other) == "n/a (not the manifest's test set)"


def test_the_public_api_is_the_package_root():
    import mnist_edge_runtime

    assert set(mnist_edge_runtime.__all__) >= {"Classifier", "Prediction", "RuntimeInputError", "__version__"}
    assert all(hasattr(mnist_edge_runtime, name) for name in mnist_edge_runtime.__all__)
    assert (Path(mnist_edge_runtime.__file__).parent / "py.typed").exists()
    from importlib.metadata import metadata

    assert metadata("mnist-edge-runtime")["License-Expression"] == "MIT"


def test_the_load_probe_ignores_modules_in_the_current_folder(tmp_path):
    """A model without a manifest is first loaded in a child `python -I`: a planted numpy is not imported."""
    lone = tmp_path / "lone" / "model.tflite"
    lone.parent.mkdir()
    lone.write_bytes(INT8.read_bytes())
    planted = tmp_path / "work" / "numpy"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text("raise SystemExit('planted numpy was imported')\n")
    code = (
        "import os, sys\n"
        "from mnist_edge_runtime import Classifier\n"
        f"os.chdir({str(planted.parent)!r})\n"
        f"print(Classifier.open({str(lone)!r}).backend)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _flood_fill_components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The obvious pixel-by-pixel 8-connected labelling, as a reference for the run-based one."""
    labels, sizes = np.zeros(mask.shape, np.int32), []
    h, w = mask.shape
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        labels[start] = len(sizes) + 1
        stack, count = [start], 0
        while stack:
            y, x = stack.pop()
            count += 1
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = labels[start]
                        stack.append((ny, nx))
        sizes.append(count)
    return labels, sizes


def test_run_based_labelling_equals_a_flood_fill():
    from mnist_edge_runtime.preprocess import _connected_components

    rng = np.random.default_rng(7)
    for _ in range(200):
        mask = rng.random(tuple(rng.integers(1, 50, 2))) > rng.uniform(0.2, 0.95)
        labels, sizes = _connected_components(mask)
        expected_labels, expected_sizes = _flood_fill_components(mask)
        assert sizes == expected_sizes and np.array_equal(labels, expected_labels)


def test_stroke_morphology_equals_pillows_rank_filters():
    # Pillow's MaxFilter / MinFilter give the same output but sort every (2r+1)^2 window; the
    # separable numpy version is kept because it is many times faster (README, "Speed").
    pil = pytest.importorskip("PIL.Image")
    from PIL import ImageFilter

    from mnist_edge_runtime.preprocess import _grey_morphology

    rng = np.random.default_rng(3)
    for radius in (1, 2, 4):
        for shape in ((1, 1), (2, 9), (30, 17), (64, 64)):
            image = (rng.random(shape) * 255).astype(np.float32)
            for op, rank_filter in ((np.maximum, ImageFilter.MaxFilter), (np.minimum, ImageFilter.MinFilter)):
                expected = np.asarray(pil.fromarray(image, mode="F").filter(rank_filter(2 * radius + 1)))
                assert np.array_equal(_grey_morphology(image, radius, op), expected)


def test_otsu_and_cell_percentiles_match_numpys_definitions():
    from mnist_edge_runtime.preprocess import _cell_percentiles, _otsu, _percentile_rows

    rng = np.random.default_rng(5)
    for shape in ((40, 40), (37, 53), (16, 300)):
        gray = (rng.random(shape) * 255).astype(np.float32)
        ys, xs = np.linspace(0, shape[0], 5).astype(int), np.linspace(0, shape[1], 5).astype(int)
        expected = [
            [np.percentile(gray[ys[i] : ys[i + 1], xs[j] : xs[j + 1]], 10) for j in range(4)]
            for i in range(4)
        ]
        assert np.allclose(_cell_percentiles(gray, 4, 10), expected, rtol=1e-6, atol=1e-4)
        assert np.allclose(_percentile_rows(gray, 95), np.percentile(gray, 95, axis=1), rtol=1e-6, atol=1e-4)
        signal = np.where(rng.random(shape) < 0.8, 0, gray)  # mostly background, like a drawing
        hist, edges = np.histogram(signal, bins=64)
        centres = (edges[:-1] + edges[1:]) / 2
        weight, mean = np.cumsum(hist), np.cumsum(hist * centres)
        between = (mean[-1] * weight - mean * weight[-1]) ** 2 / np.maximum(weight * (weight[-1] - weight), 1)
        assert _otsu(signal) == pytest.approx(float(centres[int(np.argmax(between))]))
