"""The page of `vidclass label` in a real browser (Playwright + Debian's chromium, skipped
as tests/test_serve.py's browser test is): label by keyboard, undo, SIGKILL the server,
restart, resume; an AVI's preview plays; with a model, Enter accepts the suggestion."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "fastapi", reason="the serve extra is not installed: pip install vidclass[serve]"
)

from test_label import CLASSES, FakeModel, make_clips, rows_of  # noqa: E402
from test_serve import chromium_or_skip, free_port, serving  # noqa: E402
from vidclass.serve.label_app import create_label_app  # noqa: E402


@pytest.fixture
def clips(tmp_path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "clips"
    return folder, make_clips(folder)


def start_label_server(folder: Path, out: Path, port: int, cache: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vidclass", "label", str(folder), "--classes", ",".join(CLASSES),
           "--out", str(out), "--port", str(port), "--cache", str(cache)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import httpx

    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("vidclass label did not start")


def test_browser_labels_by_keyboard_survives_sigkill_and_plays_an_avi(clips, tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    folder, truth = clips
    names = sorted(truth)
    out, cache = tmp_path / "labels.csv", tmp_path / "cache"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_label_server(folder, out, port, cache)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 800})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(url)
                page.wait_for_function(
                    "document.getElementById('progress').textContent === '0 of 12 labelled'"
                )
                assert page.text_content("#clip-name") == names[0]
                for i, key in enumerate("12312"):
                    page.keyboard.press(key)
                    page.wait_for_function(
                        f"document.getElementById('progress').textContent === '{i + 1} of 12 labelled'"
                    )
                page.wait_for_function(
                    f"document.getElementById('clip-name').textContent === '{names[5]}'"
                )
                page.keyboard.press("u")
                page.wait_for_function(
                    "document.getElementById('progress').textContent === '4 of 12 labelled'"
                )
                page.wait_for_function(
                    f"document.getElementById('clip-name').textContent === '{names[4]}'"
                )
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                labelled = {Path(r["path"]).name: r["label"] for r in rows_of(out)}
                assert labelled == {names[i]: CLASSES[int(k) - 1] for i, k in enumerate("1231")}

                proc = start_label_server(folder, out, port, cache)
                page.goto(url)
                page.wait_for_function(
                    "document.getElementById('progress').textContent === '4 of 12 labelled'"
                )
                assert page.text_content("#clip-name") == names[4]  # resumes at the next clip
                assert names[4].endswith(".avi")
                duration = page.wait_for_function(
                    "(() => { const v = document.getElementById('video');"
                    " return v.readyState >= 1 && v.duration > 0 ? v.duration : 0; })()",
                    timeout=30_000,
                ).json_value()
                assert duration > 0
                assert page.locator("#video").evaluate("v => v.error") is None
                assert errors == []
            finally:
                browser.close()
    finally:
        proc.kill()
        proc.wait(10)


def test_browser_enter_accepts_the_suggestion_and_keys_move(clips, tmp_path):
    """With a model: the suggestion and its top-3 are shown, Enter accepts it, S skips, the
    arrows move, and the least confident clip comes first."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    folder, truth = clips
    names = sorted(truth)
    probs = {n: [0.6, 0.3, 0.1] for n in names}
    probs[names[3]] = [0.1, 0.4, 0.5]  # the least confident
    out = tmp_path / "labels.csv"
    app = create_label_app(
        folder, CLASSES, out, model=FakeModel(CLASSES, probs), cache_dir=tmp_path / "cache"
    )
    app.state.session.wait_scored()
    text = "document.getElementById('{}').textContent"
    with serving(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/")
            page.wait_for_function(f"{text.format('clip-name')} === '{names[3]}'")
            assert page.text_content("#suggestion") == "still 50 %"
            assert page.locator("#top3 tbody tr").count() == 3
            assert page.text_content("#position") == "clip 1 of 12"
            page.keyboard.press("Enter")
            page.wait_for_function(f"{text.format('progress')} === '1 of 12 labelled'")
            page.wait_for_function(f"{text.format('clip-name')} === '{names[0]}'")
            page.keyboard.press("s")
            page.wait_for_function(f"{text.format('clip-name')} === '{names[1]}'")
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(f"{text.format('clip-name')} === '{names[0]}'")
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(f"{text.format('clip-name')} === '{names[3]}'")
            assert page.text_content("#current-label") == "still"
            page.click("#classes button[data-label=right]")  # a class by mouse: relabel
            page.wait_for_function(f"{text.format('clip-name')} === '{names[1]}'")
            assert errors == []
        finally:
            browser.close()
    assert [(Path(r["path"]).name, r["label"]) for r in rows_of(out)] == [(names[3], "right")]
