"""Issue 21, points 4, 5 and 10: the two web apps (`vidclass label`, `vidclass serve`) take
writes only from their own page, keep previews bounded and say when one is cut short, and
bound what one request may ask for. Each test is named after the point it guards."""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip(
    "fastapi", reason="the serve extra is not installed: pip install vidclass[serve]"
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette would rather have httpx2 under TestClient
    from fastapi.testclient import TestClient  # noqa: E402

from test_label import CLASSES, make_clips, motion_frames, rows_of, write_clip  # noqa: E402
from test_serve import chromium_or_skip, serving  # noqa: E402
from vidclass.errors import UserError  # noqa: E402
from vidclass.predict.options import LocalizeOptions  # noqa: E402
from vidclass.serve import preview  # noqa: E402
from vidclass.serve.app import create_app  # noqa: E402
from vidclass.serve.label_app import create_label_app  # noqa: E402
from vidclass.serve.preview import PreviewCache, PreviewParams  # noqa: E402

OWN = "http://127.0.0.1:8000"
EVIL = "http://evil.example"
JSON = {"content-type": "application/json"}


class FakeClassifier:
    """What the serve app needs of a Classifier, without a model: predict reports progress
    every 20 ms for 4 s; detect reports none and waits for `release`."""

    classes = ["a", "b"]
    frames, size, sample_fps = 8, 32, 8.0
    config = {"model": "fake", "normalize": "imagenet"}

    def __init__(self) -> None:
        self.release = threading.Event()
        self.steps = 0
        self.localized: list[dict] = []

    def predict(self, video, progress=None, **_) -> dict:
        for i in range(200):
            self.steps = i
            if progress:
                progress(i / 200)
            time.sleep(0.02)
        return {"label": "a", "score": 1.0, "top_k": [], "timeline": []}

    def localize(self, video, progress=None, **options) -> dict:
        self.localized.append(options)
        return {"segments": [], "options": options}

    def detect(self, video, **_) -> dict:
        assert self.release.wait(30), "the test never released detect"
        return {"tracks": []}


def serve_client(tmp_path: Path, **options) -> tuple[TestClient, FakeClassifier]:
    clf = FakeClassifier()
    (tmp_path / "uploads").mkdir(exist_ok=True)
    app = create_app(clf, temp_dir=tmp_path / "uploads", **options)
    return TestClient(app, base_url=OWN), clf


def upload(client: TestClient, route: str, video: Path, headers=None, **fields):
    with open(video, "rb") as f:
        return client.post(
            route, files={"video": (video.name, f, "video/mp4")}, data=fields, headers=headers
        )


@pytest.fixture
def label_clips(tmp_path) -> Path:
    folder = tmp_path / "clips"
    make_clips(folder, n=3)
    return folder


# ---------------------------------------------------------------- point 4: whose writes


def test_label_page_refuses_cross_origin_and_non_json_writes_and_foreign_hosts(
    label_clips, tmp_path
):
    out = tmp_path / "labels.csv"
    app = create_label_app(label_clips, CLASSES, out, cache_dir=tmp_path / "cache")
    with TestClient(app, base_url=OWN) as c:
        first = c.get("/v1/state").json()["next"]
        route = f"/v1/clips/{first}/label"
        body = json.dumps({"label": CLASSES[0]})

        # another site's page: a form or fetch POST carries its Origin
        res = c.post(route, content=body, headers={**JSON, "origin": EVIL})
        assert res.status_code == 403 and "only this server's own page" in res.json()["detail"]
        assert c.post("/v1/undo", headers={"origin": EVIL}).status_code == 403
        assert c.post("/v1/undo", headers={**JSON, "origin": "null"}).status_code == 403
        res = c.post("/v1/undo", headers={**JSON, "sec-fetch-site": "cross-site"})
        assert res.status_code == 403
        # a body not declared JSON (what a form or a no-cors fetch can send) is 415
        res = c.post(route, content=body, headers={"content-type": "text/plain"})
        assert res.status_code == 415 and "Content-Type: application/json" in res.json()["detail"]
        assert c.post("/v1/undo").status_code == 415
        assert not out.exists() or rows_of(out) == []  # nothing was written

        # DNS rebinding: the attacker's name pointing at 127.0.0.1 reads nothing
        res = c.get("/v1/state", headers={"host": "evil.example:8000"})
        assert res.status_code == 421 and "--allow-host evil.example" in res.json()["detail"]
        assert c.get("/", headers={"host": "evil.example"}).status_code == 421
        # IP addresses and the local names are this server
        for host in ("192.168.1.7:8000", "[::1]:8000", "localhost:8000"):
            assert c.get("/v1/state", headers={"host": host}).status_code == 200, host

        # the page itself: same origin, JSON
        res = c.post(route, content=body, headers={**JSON, "origin": OWN})
        assert res.status_code == 200, res.text
        assert [r["label"] for r in rows_of(out)] == [CLASSES[0]]
        assert c.post("/v1/undo", headers={**JSON, "origin": OWN}).status_code == 200
        assert c.post("/v1/undo", headers=JSON).status_code == 409  # curl: no Origin, nothing left

    # a name given with --allow-host (e.g. behind a reverse proxy) is answered
    app = create_label_app(label_clips, CLASSES, out, cache_dir=tmp_path / "cache",
                           allow_hosts=["labels.lan"])  # fmt: skip
    with TestClient(app, base_url="https://labels.lan") as c:
        assert c.get("/v1/state").status_code == 200
        res = c.post("/v1/undo", headers={**JSON, "origin": "https://labels.lan"})
        assert res.status_code == 409  # passed the guard; nothing to undo


def test_serve_api_refuses_cross_origin_uploads_and_foreign_hosts(make_video, tmp_path):
    video = make_video("clip.mp4", n=20, fps=10)
    client, _ = serve_client(tmp_path)
    with client:
        res = upload(client, "/v1/predict", video, headers={"origin": EVIL})
        assert res.status_code == 403
        res = upload(client, "/v1/jobs", video, headers={"origin": "http://localhost:3000"})
        assert res.status_code == 403  # another local page (another port) is another origin
        assert upload(client, "/v1/preview", video, headers={"origin": EVIL}).status_code == 403
        res = client.get("/v1/model", headers={"host": "evil.example:8000"})
        assert res.status_code == 421
        assert [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []
        # the page (same origin, multipart) and curl (no Origin, a raw body) keep working
        assert upload(client, "/v1/localize", video, headers={"origin": OWN}).status_code == 200
        res = client.post(
            "/v1/localize", content=video.read_bytes(), headers={"content-type": "video/mp4"}
        )
        assert res.status_code == 200, res.text


# ---------------------------------------------------------------- point 5: label previews


def test_label_preview_cache_stays_under_its_size_cap_least_recently_used_first(tmp_path):
    params = PreviewParams(max_seconds=2.0, max_fps=8)
    small = [
        write_clip(tmp_path / f"{k}.avi", motion_frames("left", seed=i))
        for i, k in enumerate("acd")
    ]
    big = write_clip(tmp_path / "b.avi", motion_frames("right", n=16, width=320, height=240))
    a, c, d = small
    folder = tmp_path / "cache"
    made = {s: PreviewCache(folder, params).get(s) for s in (a, big, c)}
    size_d = PreviewCache(tmp_path / "other", params).get(d).stat().st_size
    now = time.time()
    for age, s in ((300, big), (200, a), (100, c)):  # last used: b long ago, then a, then c
        os.utime(made[s], (now - age, now - age))
    cap = made[a].stat().st_size + made[c].stat().st_size + size_d - 1  # two small ones fit
    assert made[big].stat().st_size > size_d

    cache = PreviewCache(folder, params, max_bytes=cap)  # opening it trims it: b goes
    assert sorted(folder.glob("*.mp4")) == sorted([made[a], made[c]])
    assert cache.cached(a) == made[a]  # a is used again: now c is the least recently used
    new = cache.get(d)
    assert sorted(folder.glob("*.mp4")) == sorted([made[a], new])

    # the label app bounds its folder with --cache-mb (500 MB by default) when it starts
    old = folder / "0000000000000000-old.mp4"
    old.write_bytes(b"\0" * 2_000_000)
    os.utime(old, (now - 1000, now - 1000))
    clips = tmp_path / "clips"
    write_clip(clips / "x.mp4", motion_frames("left"))
    create_label_app(clips, CLASSES, tmp_path / "l.csv", cache_dir=folder, cache_mb=1)
    assert not old.exists() and made[a].exists()


def test_label_previews_are_made_one_at_a_time_and_a_burst_is_503(tmp_path, monkeypatch):
    folder = tmp_path / "clips"
    for k in range(5):
        write_clip(folder / f"c{k}.avi", motion_frames("left", n=8, seed=k))
    go, lock = threading.Event(), threading.Lock()
    at_once = {"now": 0, "most": 0}
    real = preview.make_preview

    def slow_make(*args):
        with lock:
            at_once["now"] += 1
            at_once["most"] = max(at_once["most"], at_once["now"])
        try:
            assert go.wait(30)
            return real(*args)
        finally:
            with lock:
                at_once["now"] -= 1

    monkeypatch.setattr(preview, "make_preview", slow_make)
    app = create_label_app(folder, CLASSES, tmp_path / "labels.csv", cache_dir=tmp_path / "c")
    with TestClient(app, base_url=OWN) as c:
        ids = [clip["id"] for clip in c.get("/v1/state").json()["order"]]
        answers: list = []
        threads = [
            threading.Thread(target=lambda i=i: answers.append(c.get(f"/v1/clips/{i}/preview")))
            for i in ids
        ]
        for t in threads:
            t.start()
        end = time.monotonic() + 30
        while sum(r.status_code == 503 for r in answers) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        go.set()  # one was being made and two waited their turn; the other two were refused
        for t in threads:
            t.join(30)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 200, 503, 503] and at_once["most"] == 1
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.headers["retry-after"] == "2" and "retry" in busy.json()["detail"]


def test_label_page_says_when_the_preview_is_shorter_than_the_clip(tmp_path):
    folder = tmp_path / "clips"
    write_clip(folder / "long.avi", motion_frames("left", n=64, width=32, height=24), fps=2)
    write_clip(folder / "short.avi", motion_frames("left", n=16, width=32, height=24), fps=8)
    write_clip(folder / "plays.mp4", motion_frames("left", n=64, width=32, height=24), fps=2)
    app = create_label_app(folder, CLASSES, tmp_path / "labels.csv", cache_dir=tmp_path / "c")
    with TestClient(app, base_url=OWN) as c:
        order = c.get("/v1/state").json()["order"]
        clips = {x["name"]: c.get(f"/v1/clips/{x['id']}").json() for x in order}
    long, short, plays = clips["long.avi"], clips["short.avi"], clips["plays.mp4"]
    assert not long["plays_as_is"] and long["duration_s"] == pytest.approx(32, abs=0.6)
    assert "first 30 s of this 32" in long["preview_note"]
    assert short["preview_note"] is None and not short["plays_as_is"]
    assert plays["plays_as_is"]  # the file itself is sent: the whole clip


def test_label_page_shows_the_short_preview_note_in_a_browser(tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "clips"
    write_clip(folder / "a_long.avi", motion_frames("left", n=64, width=32, height=24), fps=2)
    write_clip(folder / "b_short.mp4", motion_frames("left", n=16, width=32, height=24))
    app = create_label_app(folder, CLASSES, tmp_path / "labels.csv", cache_dir=tmp_path / "c")
    with serving(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_function(
                "document.getElementById('clip-name').textContent === 'a_long.avi'"
            )
            page.wait_for_selector("#video-note:not([hidden])", timeout=30_000)
            assert "first 30 s of this 32" in page.text_content("#video-note")
            page.keyboard.press("1")  # labelled: on to the short MP4, which plays whole
            page.wait_for_function(
                "document.getElementById('clip-name').textContent === 'b_short.mp4'"
            )
            assert page.locator("#video-note").is_hidden()
            assert (tmp_path / "labels.csv").read_text().count("a_long.avi") == 1  # JSON POST
        finally:
            browser.close()


# ---------------------------------------------------------------- point 10: serve limits


def test_localize_spans_are_bounded_in_number_length_and_ratio_422_naming_spans(
    make_video, tmp_path
):
    video = make_video("clip.mp4", n=20, fps=10)
    client, clf = serve_client(tmp_path)
    refused = {
        "[0.4, 400]": "400 is longer than 8",  # 15,001 frames held at once
        json.dumps([0.4] * 800): "800 spans, at most 8",  # 800 x the model calls
        "[0.4, 0.4]": "given twice",
        "[0.25, 0.5, 4.5]": "18 x the shortest",  # whole multiples, but a 19-fold window
    }
    with client:
        for spans, why in refused.items():
            options = json.dumps({"spans": json.loads(spans)})
            res = upload(client, "/v1/localize", video, options=options)
            detail = res.json()["detail"]
            assert res.status_code == 422 and detail.startswith("localize options: spans ")
            assert why in detail and len(detail) < 300, detail
        assert clf.localized == []
        res = upload(client, "/v1/localize", video, spans="0.4,0.8,1.6,3.2")
        assert res.status_code == 200, res.text
        assert res.json()["options"] == {"spans": [0.4, 0.8, 1.6, 3.2]}
    with pytest.raises(UserError, match="spans"):
        LocalizeOptions(spans=(0.4, 400.0))  # the CLI and the library are bounded alike


def test_a_job_past_its_wall_time_fails_with_the_reason(make_video, tmp_path):
    video = make_video("clip.mp4", n=20, fps=10)
    client, clf = serve_client(tmp_path, job_timeout_s=0.5)
    with client:
        # work that reports progress (predict) is stopped at its next report
        start = time.monotonic()
        res = upload(client, "/v1/predict", video)
        assert res.status_code == 504 and "limit of 0.5 s" in res.json()["detail"]
        assert "--job-timeout-s" in res.json()["detail"]
        assert time.monotonic() - start < 3 and clf.steps < 100  # not run to its 4 s end

        # work that reports none (detect) is failed at the limit; its result is dropped
        job = upload(client, "/v1/jobs", video, task="detect").json()
        end = time.monotonic() + 10
        while (body := client.get(f"/v1/jobs/{job['id']}").json())["status"] != "failed":
            assert body["status"] in ("queued", "running") and time.monotonic() < end
            time.sleep(0.1)
        assert body["error_status"] == 504 and "limit of 0.5 s" in body["error"]
        assert client.get("/healthz").json()["running"] == 1  # its worker is still busy
        clf.release.set()
        while client.get("/healthz").json()["running"]:
            assert time.monotonic() < end + 10
            time.sleep(0.05)
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404  # handed out once
        assert [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []
