"""Collecting corrections on the device: ``serve --collect``, ``predict --collect``, ``samples``.

Nothing stored without asking, nothing half-written, nothing overwritten, and bounded.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLE
from serving import PATIENCE, running_server, wait_until

from mnist_edge_runtime import samples as samples_module
from mnist_edge_runtime.errors import RuntimeInputError
from mnist_edge_runtime.samples import (
    SAMPLE_FILE,
    CollectionFullError,
    SampleStore,
    png_bytes,
    read_png_28,
    read_samples,
)

pytest.importorskip("starlette")
pytest.importorskip("httpx")
Image = pytest.importorskip("PIL.Image")

from starlette.testclient import TestClient  # noqa: E402

from mnist_edge_runtime.classifier import Classifier  # noqa: E402
from mnist_edge_runtime.serve import ServeLimits, create_app  # noqa: E402

INT8 = BUNDLE / "conv2d.int8.tflite"
COLLECTING = ServeLimits(own_hosts_only=True)


def drawing(digit: int = 1, seed: int = 0) -> bytes:
    """A 280x280 canvas drawing of a 1 or a 7 (black on white), as the page sends it."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    x = 140 + rng.integers(-20, 20)
    if digit == 1:
        draw.line([(x, 40), (x - 10, 240)], fill=0, width=18)
    else:
        draw.line([(x - 70, 50), (x + 60, 50), (x - 20, 240)], fill=0, width=18, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def classifier():
    return Classifier.open(INT8, threads=1)


def collecting_client(classifier, folder: Path, **store_options) -> TestClient:
    return TestClient(create_app(classifier, COLLECTING, SampleStore(folder, **store_options)))


def sample_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / SAMPLE_FILE).is_file() and not p.name.startswith("."))


def test_a_correction_is_stored_whole(classifier, tmp_path):
    picture = drawing(7)
    with collecting_client(classifier, tmp_path / "c") as client:
        reply = client.post("/api/samples?label=7", content=picture, headers={"Content-Type": "image/png"})
        assert reply.status_code == 201, reply.text
        state = client.get("/api/model").json()["collect"]
    assert state["on"] and state["stored"] == 1
    (sample,) = sample_folders(tmp_path / "c")
    record = json.loads((sample / SAMPLE_FILE).read_text())
    assert record["label"] == "7" and record["answer"] == reply.json()["answer"]["digit"]
    assert record["model_sha256"] == hashlib.sha256(INT8.read_bytes()).hexdigest()
    assert (sample / "picture.png").read_bytes() == picture  # as received, byte for byte
    assert read_png_28((sample / "mnist.png").read_bytes(), "mnist.png").shape == (28, 28)
    assert sorted(p.name for p in sample.iterdir()) == ["mnist.png", "picture.png", "sample.json"]
    assert (sample / SAMPLE_FILE).read_text().count("\n") == 1  # one JSON line


def test_json_pixels_and_not_a_digit(classifier, tmp_path):
    pixels = np.zeros((28, 28), int)
    pixels[4:24, 13:15] = 255
    with collecting_client(classifier, tmp_path / "c") as client:
        reply = client.post("/api/samples", json={"image": pixels.tolist(), "label": "n"})
    assert reply.status_code == 201, reply.text
    (sample,) = sample_folders(tmp_path / "c")
    assert json.loads((sample / SAMPLE_FILE).read_text())["label"] == "n"
    assert (sample / "picture.json").is_file()


@pytest.mark.parametrize(
    "query, body, status",
    [
        ("?label=x", None, 400),
        ("?label=10", None, 400),
        ("?label=", None, 400),
        ("", None, 400),  # no label at all
        ("?label=3", b"not an image", 400),
    ],
)
def test_bad_labels_and_bodies_are_refused_and_store_nothing(classifier, tmp_path, query, body, status):
    with collecting_client(classifier, tmp_path / "c") as client:
        reply = client.post(
            f"/api/samples{query}", content=body or drawing(), headers={"Content-Type": "image/png"}
        )
        json_reply = client.post("/api/samples", json={"image": [[0] * 28] * 28, "label": 12})
    assert reply.status_code == status and "error" in reply.json()
    assert json_reply.status_code == 400
    assert not list((tmp_path / "c").iterdir())


def test_cross_site_posts_and_rebinding_hosts_are_refused(classifier, tmp_path):
    with collecting_client(classifier, tmp_path / "c") as client:
        headers = {"Content-Type": "image/png"}
        cross = client.post(
            "/api/samples?label=1", content=drawing(), headers={**headers, "Origin": "http://evil.example"}
        )
        fetch = client.post(
            "/api/samples?label=1", content=drawing(), headers={**headers, "Sec-Fetch-Site": "cross-site"}
        )
        rebound = client.post(
            "/api/samples?label=1", content=drawing(), headers={**headers, "Host": "evil.example:8000"}
        )
        page = client.get("/", headers={"Host": "evil.example"})
        local = client.post(
            "/api/samples?label=1", content=drawing(), headers={**headers, "Host": "localhost:8000"}
        )
    assert (cross.status_code, fetch.status_code, rebound.status_code, page.status_code) == (
        403,
        403,
        400,
        400,
    )
    assert local.status_code == 201
    assert len(sample_folders(tmp_path / "c")) == 1


def test_collection_is_off_unless_asked(classifier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(classifier, ServeLimits())) as client:
        reply = client.post("/api/samples?label=1", content=drawing(), headers={"Content-Type": "image/png"})
        state = client.get("/api/model").json()["collect"]
        # Without --collect the Host rule stays as it was: any name (the page works by IP or name).
        other_host = client.get("/", headers={"Host": "pi.example"})
    assert reply.status_code == 404 and state == {"on": False}
    assert other_host.status_code == 200
    assert not list(tmp_path.iterdir())
    from mnist_edge_runtime.cli import build_parser

    assert build_parser().parse_args(["serve"]).collect is None


def test_the_cap_stops_storing_and_answering_goes_on(classifier, tmp_path):
    with collecting_client(classifier, tmp_path / "c", max_samples=2) as client:
        codes = [
            client.post(
                "/api/samples?label=1", content=drawing(seed=i), headers={"Content-Type": "image/png"}
            ).status_code
            for i in range(4)
        ]
        full = client.post("/api/samples?label=1", content=drawing(), headers={"Content-Type": "image/png"})
        answered = client.post("/api/predict", content=drawing(), headers={"Content-Type": "image/png"})
        state = client.get("/api/model").json()["collect"]
    assert codes == [201, 201, 507, 507]
    assert "maximum of 2" in full.json()["error"]
    assert answered.status_code == 200 and answered.json()["digit"] is not None
    assert state["full"] and state["stored"] == 2
    assert len(sample_folders(tmp_path / "c")) == 2


def test_the_cap_holds_with_many_threads_at_once(tmp_path):
    store = SampleStore(tmp_path / "c", max_samples=5)
    answer = {"digit": 1, "confidence": 0.9, "sure": True, "doubt": None}
    outcomes: list[str] = []

    def add() -> None:
        try:
            store.add(b"x", ".bin", np.zeros((28, 28), np.uint8), "1", answer, "0" * 64, "test")
            outcomes.append("stored")
        except CollectionFullError:
            outcomes.append("full")

    threads = [threading.Thread(target=add) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("stored") == 5 and len(sample_folders(tmp_path / "c")) == 5


def test_a_disk_under_its_floor_is_full(classifier, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(samples_module.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    with collecting_client(classifier, tmp_path / "c") as client:
        reply = client.post("/api/samples?label=1", content=drawing(), headers={"Content-Type": "image/png"})
        answered = client.post("/api/predict", content=drawing(), headers={"Content-Type": "image/png"})
    assert reply.status_code == 507 and "MiB free" in reply.json()["error"]
    assert answered.status_code == 200
    assert not list((tmp_path / "c").iterdir())


def test_a_disk_that_fills_while_writing_leaves_no_partial_sample(classifier, tmp_path, monkeypatch):
    real = samples_module._write_synced
    written = []

    def fills_up(path: Path, content: bytes) -> None:
        if written:  # the picture is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        real(path, content)

    monkeypatch.setattr(samples_module, "_write_synced", fills_up)
    with collecting_client(classifier, tmp_path / "c") as client:
        reply = client.post("/api/samples?label=1", content=drawing(), headers={"Content-Type": "image/png"})
    assert reply.status_code == 507 and "disk" in reply.json()["error"]
    assert written and not list((tmp_path / "c").iterdir())  # the picture written first is gone too


def test_a_sample_cut_short_is_not_a_sample_and_is_cleared_on_the_next_start(tmp_path):
    folder = tmp_path / "c"
    store = SampleStore(folder)
    answer = {"digit": 1, "confidence": 0.9, "sure": True, "doubt": None}
    store.add(b"x", ".bin", np.zeros((28, 28), np.uint8), "1", answer, "0" * 64, "test")
    cut = folder / ".partial-20261203T000000-deadbeef"  # a power cut between two writes, long ago
    cut.mkdir()
    (cut / "picture.png").write_bytes(b"\x89PNG half")
    os.utime(cut, (time.time() - 3600,) * 2)
    notes = folder / "notes.txt"  # the user's own file: never touched
    notes.write_text("mine")
    assert len(read_samples(folder)) == 1
    assert SampleStore(folder).count == 1
    assert not cut.exists() and notes.read_text() == "mine"


def test_killing_the_server_mid_collection_leaves_only_whole_samples(tmp_path):
    folder = tmp_path / "c"
    stop_posting = threading.Event()
    with running_server(BUNDLE, "--collect", str(folder), "--workers", "2") as server:

        def post_forever(seed: int) -> None:
            body = drawing(seed=seed)
            while not stop_posting.is_set():
                request = urllib.request.Request(
                    f"{server.url}/api/samples?label=1", body, {"Content-Type": "image/png"}, method="POST"
                )
                try:
                    urllib.request.urlopen(request, timeout=PATIENCE).read()
                except OSError:
                    return  # the server is gone

        posters = [threading.Thread(target=post_forever, args=(i,)) for i in range(4)]
        for poster in posters:
            poster.start()
        wait_until(lambda: len(sample_folders(folder)) >= 20, "20 samples stored")
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(PATIENCE)
        stop_posting.set()
        for poster in posters:
            poster.join(PATIENCE)
    for entry in folder.iterdir():
        if entry.name.startswith(".partial-"):
            continue  # not a sample: cleared on the next start
        assert sorted(p.name for p in entry.iterdir()) == ["mnist.png", "picture.png", "sample.json"], entry
        json.loads((entry / SAMPLE_FILE).read_text())
        read_png_28((entry / "mnist.png").read_bytes(), str(entry))
    assert len(read_samples(folder)) == len(sample_folders(folder)) >= 20
    for partial in folder.glob(".partial-*"):  # as if the next start came long after
        os.utime(partial, (time.time() - 3600,) * 2)
    SampleStore(folder)
    assert not [p for p in folder.iterdir() if p.name.startswith(".partial-")]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_edge_runtime", *args], capture_output=True, text=True, cwd=cwd
    )


def test_predict_collect_and_samples_export(tmp_path):
    for i in range(3):
        (tmp_path / f"seven{i}.png").write_bytes(drawing(7, seed=i))
    folder, export = tmp_path / "c", tmp_path / "out.npz"
    done = run_cli(
        "predict", "--collect", str(folder), "--label", "7", *(str(p) for p in sorted(tmp_path.glob("*.png")))
    )
    assert done.returncode == 0, done.stderr
    listed = run_cli("samples", str(folder), "--export", str(export), "--json")
    assert listed.returncode == 0, listed.stderr
    summary = json.loads(listed.stdout)
    assert summary["samples"] == 3 and summary["labels"]["7"]["samples"] == 3
    sevens = summary["labels"]["7"]
    assert sum(sevens["wrong_answers"].values()) == 3 - sevens["model_right"]

    from_folder, from_file = read_samples(folder), read_samples(export)
    assert from_file.sha256 == from_folder.sha256 == summary["sha256"]
    np.testing.assert_array_equal(from_file.images, from_folder.images)
    again = run_cli("samples", str(folder), "--export", str(export))
    assert again.returncode == 2 and "already exists" in again.stderr and again.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "--collect", "{d}", "x.png"], "go together"),
        (["predict", "--label", "7", "x.png"], "go together"),
        (["predict", "--collect", "{d}", "--label", "seven", "x.png"], "not a digit 0-9"),
        (["samples", "{d}/nothing"], "no such collection"),
        (["samples", "{d}/file.txt"], "not a samples file"),
        (["samples", "{d}/empty"], "no samples"),
        (["samples", "{d}/empty", "--export", "{d}/x.npz"], "no samples"),
    ],
)
def test_bad_collection_input_is_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "file.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    done = run_cli(*(a.format(d=tmp_path) for a in args), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_the_28x28_png_round_trips_and_refuses_foreign_pictures():
    image = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(read_png_28(png_bytes(image), "x"), image)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(image)))), image)  # a real PNG
    buffer = io.BytesIO()
    Image.fromarray(image[:20]).save(buffer, format="PNG")
    with pytest.raises(RuntimeInputError):
        read_png_28(buffer.getvalue(), "x")


def test_the_systemd_unit_lets_the_service_write_the_collection_only(tmp_path):
    done = run_cli("serve", "--collect", str(tmp_path / "c"), "--systemd-unit")
    assert done.returncode == 0, done.stderr
    assert f"ReadWritePaths={tmp_path / 'c'}" in done.stdout
    assert "ProtectSystem=strict" in done.stdout and "--collect" in done.stdout


def test_version_names_the_sample_sets_a_bundle_learned_from(tmp_path, monkeypatch):
    from mnist_edge_runtime import bundle

    manifest = {"artifacts": {"conv2d.int8.tflite": {"collected_samples": {"sets": [{"sha256": "ab" * 32}]}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(bundle, "PACKAGED_BUNDLE", tmp_path)
    assert "learned from collected samples abababababab" in bundle.packaged_bundle_id()
    manifest["artifacts"]["conv2d.int8.tflite"] = {}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert "learned" not in bundle.packaged_bundle_id()


def _answer() -> dict:
    return {"digit": 1, "confidence": 0.9, "sure": True, "doubt": None}


def test_only_this_tools_stale_partial_samples_are_removed(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    fresh = folder / ".partial-20261203T000000-0123abcd"  # another process is writing it now
    stale = folder / ".partial-20261203T000000-deadbeef"  # cut short an hour ago
    mine = folder / ".partial-my-notes"  # the user's own folder
    for path in (fresh, stale, mine):
        path.mkdir()
        (path / "picture.png").write_bytes(b"x")
    hour_ago = time.time() - 3600
    for path in (stale, mine):
        os.utime(path, (hour_ago, hour_ago))
    SampleStore(folder)
    assert fresh.exists() and mine.exists() and not stale.exists()


def test_a_collection_emptied_or_moved_while_serving(classifier, tmp_path):
    folder = tmp_path / "c"
    with collecting_client(classifier, folder, max_samples=1) as client:

        def post():
            return client.post(
                "/api/samples?label=1", content=drawing(), headers={"Content-Type": "image/png"}
            )

        assert post().status_code == 201 and post().status_code == 507
        (sample,) = sample_folders(folder)
        sample.rename(tmp_path / "exported")  # the teacher carried it off
        assert post().status_code == 201  # room again, without a restart
        folder.rename(tmp_path / "moved")
        state = client.get("/api/model")
        gone = post()
    assert (
        state.status_code == 200
        and state.json()["collect"]["full"]
        and "cannot use" in state.json()["collect"]["why"]
    )
    assert gone.status_code == 507 and "cannot use" in gone.json()["error"]


def test_an_unreadable_sample_is_skipped_and_said_not_fatal(tmp_path):
    folder = tmp_path / "c"
    store = SampleStore(folder)
    for _ in range(3):
        store.add(b"x", ".bin", np.zeros((28, 28), np.uint8), "1", _answer(), "0" * 64, "test")
    broken = sample_folders(folder)[0]
    (broken / SAMPLE_FILE).write_text('["not", "a record"]')  # a damaged card
    copy = folder / (broken.name[:-1] + ("0" if broken.name[-1] != "0" else "1"))
    shutil.copytree(sample_folders(folder)[1], copy)  # a user's copy under another name
    listed = run_cli("samples", str(folder), "--export", str(tmp_path / "out.npz"))
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.count("skipped") == 2 and "Traceback" not in listed.stderr
    assert len(read_samples(tmp_path / "out.npz")) == 2  # the two whole ones, each once


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays",
    [
        {
            "images": np.zeros((2, 28, 28), np.uint8),
            "labels": np.array(["1", "2"]),
            "records": np.array(["[1]", "null"]),
        },
        {"images": np.zeros((2, 28, 28), np.uint8), "labels": np.array("1"), "records": np.array("{}")},
        {"images": np.zeros((1, 28, 28), np.float32), "labels": np.array(["1"]), "records": np.array(["{}"])},
        {"images": np.zeros((1, 28, 28), np.uint8), "labels": np.array(["x"]), "records": np.array(["{}"])},
        {
            "images": np.zeros((1, 28, 28), np.uint8),
            "labels": np.array(["1"]),
            "records": np.array(["[" * 100_000]),
        },
    ],
    ids=["records-not-objects", "0-d", "float-images", "bad-label", "deep-json"],
)
def test_a_crafted_export_file_is_one_line_exit_2(tmp_path, arrays):
    path = _npz(tmp_path / "s.npz", **arrays)
    done = run_cli("samples", str(path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, (
        done.stderr
    )


@pytest.mark.parametrize(
    "member, descr, shape",
    [
        ("images", "|u1", (10**9, 28, 28)),
        ("images", "|u1", (1, 200_000, 200_000)),  # 40 GB in one picture
        ("labels", "<U100000000", (4,)),  # 1.6 GB of text
    ],
    ids=["a-billion-pictures", "one-huge-picture", "huge-labels"],
)
def test_an_export_declaring_a_huge_array_is_refused_unread(tmp_path, member, descr, shape):
    import zipfile

    path = _npz(
        tmp_path / "s.npz",
        images=np.zeros((1, 28, 28), np.uint8),
        labels=np.array(["1"]),
        records=np.array(["{}"]),
    )
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(f"{member}.npy", np.lib.format.magic(1, 0) + header.getvalue(), zipfile.ZIP_STORED)
    done = run_cli("samples", str(path))
    assert done.returncode == 2 and "not a samples file" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def test_labels_given_twice_or_as_json_numbers(classifier, tmp_path):
    pixels = np.zeros((28, 28), int)
    pixels[4:24, 13:15] = 255
    with collecting_client(classifier, tmp_path / "c") as client:
        number = client.post("/api/samples", json={"image": pixels.tolist(), "label": 1})
        both = client.post("/api/samples?label=3", json={"image": pixels.tolist(), "label": "9"})
        repeated = client.post(
            "/api/samples?label=x&label=4", content=drawing(), headers={"Content-Type": "image/png"}
        )
    assert number.status_code == 201 and number.json()["label"] == "1"
    assert both.status_code == 400 and "two labels" in both.json()["error"]
    assert repeated.status_code == 400 and "more than once" in repeated.json()["error"]
    assert len(sample_folders(tmp_path / "c")) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--collect-max", "5"], "applies to --collect"),
        (
            ["serve", "--collect", "/srv/x\nExecStartPre=/bin/touch /pwned", "--systemd-unit"],
            "control characters",
        ),
        (["serve", "--collect", "", "--port", "1"], "folder of its own"),
        (["samples", "{d}/c", "--export", "{d}/afile/x.npz"], "cannot write the export"),
    ],
)
def test_bad_collect_options_are_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "afile").write_text("x")
    SampleStore(tmp_path / "c").add(
        b"x", ".bin", np.zeros((28, 28), np.uint8), "1", _answer(), "0" * 64, "test"
    )
    done = run_cli(*(a.format(d=tmp_path) for a in args))
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_samples_says_what_the_model_answered_when_it_was_wrong(tmp_path):
    store = SampleStore(tmp_path / "c")
    image = np.zeros((28, 28), np.uint8)
    answers = [
        ("1", 7, True),
        ("1", 7, True),
        ("1", 1, True),
        ("1", 4, False),
        ("n", 0, True),
        ("n", 8, False),
    ]
    for label, digit, sure in answers:
        store.add(
            b"x",
            ".bin",
            image,
            label,
            {"digit": digit, "confidence": 0.9, "sure": sure, "doubt": None},
            "0" * 64,
            "t",
        )
    summary = read_samples(tmp_path / "c").summary()
    assert summary["labels"]["1"] == {"samples": 4, "model_right": 1, "wrong_answers": {"7": 2, "doubted": 1}}
    assert summary["labels"]["n"] == {"samples": 2, "model_right": 1, "wrong_answers": {"0": 1}}
    listed = run_cli("samples", str(tmp_path / "c"))
    assert "7 x2, doubted x1" in listed.stdout


def test_predict_collect_keeps_no_blank_picture_and_says_so(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (280, 280), 255).save(blank)
    seven = tmp_path / "seven.png"
    seven.write_bytes(drawing(7))
    done = run_cli("predict", "--collect", str(tmp_path / "c"), "--label", "7", str(blank), str(seven))
    assert done.returncode == 1, done.stderr
    assert "not collected: blank" in done.stdout
    assert [r["label"] for r in read_samples(tmp_path / "c").records] == ["7"]
