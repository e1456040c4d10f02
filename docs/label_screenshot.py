"""Make docs/label.png, the README's screenshot of `vidclass label` (a few CPU minutes).

Renders a small synthetic dataset, trains a quick early_fusion model on it, then serves a
folder of unseen synthetic clips (renamed clip_NNN.mp4, so the name tells nothing) with that
model as the labeller's helper, labels three of them with the keyboard in headless Chromium
(Playwright, Debian's `chromium`), and saves the page:

    PYTHONPATH=src .venv/bin/python docs/label_screenshot.py --out docs/label.png
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from vidclass.data.prepare import prepare
from vidclass.serve.label_app import create_label_app
from vidclass.synth.clips import generate
from vidclass.train.loop import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/label.png"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidclass-label-shot-"))
    generate(work / "videos", per_class=6, size=(160, 120), fps=8, seed=3, quiet=True)
    prepare(work / "videos", work / "prepared", frames=8, size=32, quiet=True)
    config = TrainConfig(model="early_fusion", epochs=12, batch_size=8)
    train(work / "prepared", work / "run", config, quiet=True)
    generate(work / "unseen", per_class=1, size=(160, 120), fps=8, seed=11, quiet=True)
    clips = work / "clips"
    clips.mkdir()
    for i, video in enumerate(sorted((work / "unseen").rglob("*.mp4"))):
        shutil.copy(video, clips / f"clip_{i:03d}.mp4")

    app = create_label_app(clips, None, work / "labels.csv", model=work / "run",
                           cache_dir=work / "cache")  # fmt: skip
    app.state.session.wait_scored(300)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    progress = "document.getElementById('progress').textContent"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(f"{progress}.startsWith('0 of')")
        for n, key in enumerate(["Enter", "3", "Enter"], 1):
            page.keyboard.press(key)
            page.wait_for_function(f"{progress}.startsWith('{n} of')")
        # the next clip is shown and its video has a frame a moment in
        page.wait_for_function(
            "document.body.dataset.busy === '0' && document.getElementById('video')"
            ".currentSrc.includes(document.body.dataset.clip)"
        )
        page.wait_for_function("document.getElementById('video').readyState >= 2")
        page.evaluate(
            "new Promise((r) => { const v = document.getElementById('video'); v.pause();"
            " v.onseeked = r; v.currentTime = 0.6; })"
        )
        page.screenshot(path=str(args.out))
        browser.close()
    server.should_exit = True
    thread.join(10)
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
