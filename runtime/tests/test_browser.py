"""The draw-a-digit page in a real browser: Debian's Chromium driven by Playwright.

Starts ``mnist-edge-runtime serve`` on a free local port, draws digits on the canvas with mouse
strokes, checks the digit the page shows, uploads a PNG through the file input and saves a
screenshot. Skipped where Playwright or Chromium is missing, unless MNIST_EDGE_REQUIRE_BROWSER=1
(CI sets it, so there the test cannot quietly skip).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLE, MNIST
from serving import running_server

CHROMIUM = os.environ.get("MNIST_EDGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("MNIST_EDGE_REQUIRE_BROWSER") == "1"


def _need(condition: bool, why: str) -> None:
    if not condition:
        if REQUIRED:
            pytest.fail(f"browser test required but {why}")
        pytest.skip(why)


def _ellipse(cx: float, cy: float, rx: float, ry: float, start: float = 0, end: float = 360, n: int = 24):
    return [
        (cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
        for a in np.linspace(start, end, n)
    ]


# Strokes (polylines on the 280x280 canvas) of digits as a person draws them.
STROKES = {
    0: [_ellipse(140, 140, 55, 95)],
    1: [[(125, 70), (150, 45), (150, 235)]],
    2: [_ellipse(140, 100, 55, 50, 200, 360, 12) + [(180, 140), (90, 230), (200, 230)]],
    3: [_ellipse(135, 95, 50, 45, 210, 450, 14), _ellipse(135, 185, 55, 50, 270, 500, 14)],
    4: [[(160, 45), (80, 170), (200, 170)], [(165, 110), (165, 240)]],
    7: [[(80, 55), (200, 55), (120, 235)]],
}
# Digits drawn as big as the canvas: the 7's bar and the 4's stem run from edge to edge.
EDGE_TO_EDGE = {
    7: [[(1, 12), (279, 12), (130, 279)]],
    4: [[(150, 8), (30, 185), (279, 185)], [(190, 1), (190, 279)]],
}


@pytest.fixture(scope="module")
def server():
    with running_server(BUNDLE) as (url, process):
        yield url
    assert process.returncode == 0  # stopped cleanly by SIGTERM


@pytest.fixture(scope="module")
def page(server):
    try:
        from playwright import sync_api
    except ImportError:
        _need(False, "Playwright is not installed (pip install playwright)")
    _need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.refusals = []  # what the Content-Security-Policy blocked: must stay empty
        page.on("console", lambda m: "Content Security Policy" in m.text and page.refusals.append(m.text))
        page.goto(server + "/")
        page.wait_for_selector("#model:not(:has-text('loading'))")
        yield page
        assert not page.refusals
        browser.close()


def draw(page, strokes) -> None:
    box = page.locator("#canvas").bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


@pytest.mark.parametrize("drawings", [STROKES, EDGE_TO_EDGE], ids=["ordinary", "touching-the-edges"])
def test_drawn_digits_are_recognized(page, tmp_path, drawings):
    for digit, strokes in drawings.items():
        page.click("#clear")
        draw(page, strokes)
        page.wait_for_function(
            "d => document.querySelector('#digit').textContent === String(d)", arg=digit, timeout=10_000
        )
        assert page.locator("#bars li").count() == 10
        assert page.get_attribute("#seen", "src").startswith("data:image/png;base64,")
    page.screenshot(path=str(_screenshot_path(tmp_path)))


def validation_upload(tmp_path: Path, index: int) -> tuple[Path, int]:
    """A validation digit as a 200x200 dark-on-white PNG to upload, and its label."""
    from PIL import Image

    from mnist_edge_runtime.idx import read_images_and_labels

    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    digit, label = images[-5000 + index], int(labels[-5000 + index])  # the validation split
    photo = tmp_path / "upload.png"
    Image.fromarray(255 - np.asarray(Image.fromarray(digit).resize((200, 200), Image.BICUBIC))).save(photo)
    return photo, label


def test_an_uploaded_png_is_recognized(page, tmp_path):
    photo, label = validation_upload(tmp_path, 3)
    page.click("#clear")
    page.set_input_files("#file", str(photo))
    page.wait_for_function(
        "d => document.querySelector('#digit').textContent === String(d)", arg=label, timeout=10_000
    )


def test_a_big_phone_photo_is_shrunk_before_it_is_sent(page, tmp_path):
    from PIL import Image

    from mnist_edge_runtime.idx import read_images_and_labels

    images, labels = read_images_and_labels(
        MNIST / "train-images-idx3-ubyte.gz", MNIST / "train-labels-idx1-ubyte.gz"
    )
    digit, label = images[-5000 + 5], int(labels[-5000 + 5])  # a validation digit
    # A 12-megapixel photo: dark ink on gray paper, with sensor noise so the JPEG stays big.
    ink = np.asarray(Image.fromarray(digit).resize((2400, 2400), Image.BICUBIC), dtype=np.float32)
    paper = np.random.default_rng(0).normal(200, 12, (3000, 4000)).astype(np.float32)
    paper[300:2700, 800:3200] -= ink * 0.7
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB").save(photo, quality=95)
    # Playwright cannot read a Blob request body: the test records what the page sends instead.
    page.evaluate(
        """() => { const fetch = window.fetch; window.uploads = [];
        window.fetch = (url, options) => {
          if (options && options.body instanceof Blob) createImageBitmap(options.body).then((b) =>
            window.uploads.push([options.body.size, options.headers["Content-Type"], b.width, b.height]));
          return fetch(url, options); }; }"""
    )
    page.click("#clear")
    page.set_input_files("#file", str(photo))
    page.wait_for_function(
        "d => document.querySelector('#digit').textContent === String(d)", arg=label, timeout=20_000
    )
    page.wait_for_function("() => window.uploads.length > 0")
    size, content_type, width, height = page.evaluate("() => window.uploads.at(-1)")
    assert content_type == "image/jpeg" and (width, height) == (1024, 768)
    assert photo.stat().st_size > 3_000_000 and size < 400_000


def test_a_blank_or_scribbled_canvas_is_not_called_a_digit(page):
    page.click("#clear")
    rng = np.random.default_rng(0)
    draw(page, [[(float(x), float(y)) for x, y in rng.uniform(20, 260, (2, 2))] for _ in range(25)])
    page.wait_for_function("() => document.querySelector('#digit').textContent === '?'", timeout=10_000)
    assert "Not sure" in page.inner_text("#confidence")


def test_no_broken_image_before_the_first_answer(page):
    page.click("#clear")
    assert page.is_hidden("#seen-box")
    draw(page, STROKES[7])
    page.wait_for_function("() => document.querySelector('#digit').textContent === '7'", timeout=10_000)
    assert page.is_visible("#seen-box")


def test_the_bars_say_that_conv2ds_scores_can_pass_100_percent(page):
    page.click("#clear")
    draw(page, STROKES[1])
    page.wait_for_function("() => document.querySelector('#digit').textContent === '1'", timeout=10_000)
    assert "can pass 100%" in page.inner_text("#scores-note")


def test_an_unreadable_upload_is_explained_in_words(page, tmp_path):
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("shopping list: eggs, milk")
    page.click("#clear")
    page.set_input_files("#file", str(not_a_picture))
    page.wait_for_function(
        "() => document.querySelector('#confidence').textContent.includes('not a picture')", timeout=10_000
    )
    said = page.inner_text("#confidence")
    assert "body:" not in said and "PNG, JPEG" in said and page.is_hidden("#seen-box")


def _screenshot_path(tmp_path: Path) -> Path:
    folder = os.environ.get("MNIST_EDGE_SCREENSHOTS")
    return Path(folder) / "serve.png" if folder else tmp_path / "serve.png"


def test_nothing_is_offered_for_collection_unless_the_server_collects(page):
    page.click("#clear")
    draw(page, STROKES[7])
    page.wait_for_function("() => document.querySelector('#digit').textContent === '7'", timeout=10_000)
    assert page.is_hidden("#teach")
    page.keyboard.press("1")  # the correction keys do nothing here


def test_a_correction_made_on_the_page_is_stored(page, tmp_path):
    """With serve --collect: draw, press "Wrong, it was 4" (and the 1 key for a second drawing):
    the samples are in the folder with those labels, and the page says what it stored."""
    import json

    folder = tmp_path / "samples"
    with running_server(BUNDLE, "--collect", str(folder)) as (url, _):
        collecting = page.context.browser.new_page(viewport={"width": 900, "height": 640})
        collecting.goto(url + "/")
        collecting.wait_for_selector("#teach-state:has-text('Collecting corrections')")
        for stored, (strokes, correct) in enumerate([(STROKES[7], "click"), (STROKES[1], "key")], start=1):
            collecting.click("#clear")
            draw(collecting, strokes)
            collecting.wait_for_selector("#teach-buttons:not([hidden])", timeout=10_000)
            if correct == "click":
                collecting.click("#digits button[data-label='4']")
            else:
                collecting.keyboard.press("1")
            collecting.wait_for_function(
                "n => document.querySelector('#teach-state').textContent.includes(`(${n} of`)",
                arg=stored,
                timeout=10_000,
            )
        assert "Stored as 1" in collecting.inner_text("#teach-result")
        # Starting a new drawing withdraws the buttons at once: a key pressed now cannot label
        # the previous picture with this one's digit.
        collecting.click("#clear")
        draw(collecting, STROKES[7])
        collecting.wait_for_selector("#teach-buttons:not([hidden])", timeout=10_000)
        box = collecting.locator("#canvas").bounding_box()
        collecting.mouse.move(box["x"] + 140, box["y"] + 140)
        collecting.mouse.down()
        assert collecting.is_hidden("#teach-buttons")
        collecting.keyboard.press("7")
        collecting.mouse.up()
        collecting.close()
    labels = sorted(json.loads(p.read_text())["label"] for p in folder.glob("*/sample.json"))
    assert labels == ["1", "4"]


def test_the_upload_opens_from_the_keyboard(page, tmp_path):
    """Tab to "Photo or file", press Enter: the file chooser opens, and the picture is answered."""
    photo, label = validation_upload(tmp_path, 7)
    # Playwright asks Chromium to hand it file choosers only once a listener exists, and sends
    # that request without waiting for it: a key pressed at once can beat it, and the chooser
    # then opens unseen. So the listener comes first, and Enter is pressed again (at most three
    # times) while no chooser has arrived; a page whose Enter opens nothing still fails.
    choosers = []

    def chooser_opened(chooser) -> None:
        choosers.append(chooser)

    page.on("filechooser", chooser_opened)
    try:
        page.bring_to_front()  # an earlier test opened a page of its own in this browser
        page.click("#clear")
        page.focus("#upload")
        for _ in range(3):
            page.keyboard.press("Enter")
            for _ in range(50):
                if choosers:
                    break
                page.wait_for_timeout(100)
            if choosers:
                break
    finally:  # the page is shared with later tests: no chooser interception left behind
        page.remove_listener("filechooser", chooser_opened)
    assert choosers, "Enter on 'Photo or file' opened no file chooser"
    choosers[0].set_files(str(photo))
    page.wait_for_function(
        "d => document.querySelector('#digit').textContent === String(d)", arg=label, timeout=10_000
    )
