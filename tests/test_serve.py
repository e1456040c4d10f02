"""The HTTP service and the web page: API with TestClient (happy path, 413, 415/422, job
progress, 503 under a full queue, 501 for missing tasks) and one real-browser test."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip(
    "fastapi", reason="the serve extra is not installed: pip install vidclass[serve]"
)

with warnings.catch_warnings():
    # Starlette 1.x would rather have `httpx2` under its TestClient; httpx works the same here.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from vidclass import Classifier  # noqa: E402
from vidclass.data.prepare import prepare  # noqa: E402
from vidclass.detect.detectors import AUTO, available_detectors, default_detector  # noqa: E402
from vidclass.errors import UserError, VideoError  # noqa: E402
from vidclass.serve.app import create_app  # noqa: E402
from vidclass.serve.errors import RequestError  # noqa: E402
from vidclass.serve.upload import receive_upload  # noqa: E402
from vidclass.synth.clips import generate  # noqa: E402
from vidclass.train.loop import TrainConfig, train  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """An early_fusion run trained for one epoch on tiny synthetic data."""
    root = tmp_path_factory.mktemp("serve")
    generate(root / "videos", per_class=2, size=(64, 48), fps=8, seed=3, quiet=True)
    prepare(root / "videos", root / "prepared", frames=8, size=32, quiet=True)
    train(
        root / "prepared",
        root / "run",
        TrainConfig(model="early_fusion", epochs=1, batch_size=4),
        quiet=True,
    )
    return root / "run"


@pytest.fixture(scope="module")
def clf(run) -> Classifier:
    return Classifier.load(run)


@pytest.fixture
def video(make_video) -> Path:
    return make_video("clip.mp4", n=30, fps=10)


def client_for(model, tmp_path: Path, **options) -> TestClient:
    """A TestClient whose private upload folder lives under tmp_path (to check it's emptied)."""
    (tmp_path / "uploads").mkdir(exist_ok=True)
    app = create_app(model, temp_dir=tmp_path / "uploads", **options)
    return TestClient(app, base_url="http://127.0.0.1")  # the server answers to its own names


def leftover_uploads(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]


def post_video(client: TestClient, route: str, path: Path, **fields):
    with open(path, "rb") as f:
        return client.post(
            route,
            files={"video": (path.name, f, "video/mp4")},
            data={k: str(v) for k, v in fields.items()},
        )


class Gated:
    """The real classifier whose predict reports half progress, then waits for `release`
    (so a test can see a running job and fill the queue deterministically)."""

    def __init__(self, clf: Classifier, fail: Exception | None = None) -> None:
        self._clf, self.fail = clf, fail
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def __getattr__(self, name):
        return getattr(self._clf, name)

    def predict(self, video, progress=None, **options) -> dict:
        if progress:
            progress(0.5)
        self.started.release()
        assert self.release.wait(30), "test never released the job"
        if self.fail:
            raise self.fail
        return self._clf.predict(video, **options)


def wait_for(client: TestClient, job_id: str, status: str, timeout: float = 60) -> dict:
    """Poll GET /v1/jobs/{id} until `status`; the last body."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body.get("status") == status:
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {status}: {body}")


# ---------------------------------------------------------------------- API


def test_page_health_model_and_docs(clf, tmp_path):
    with client_for(clf, tmp_path) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        model = client.get("/v1/model").json()
        assert model["classes"] == clf.classes and model["model"] == "early_fusion"
        assert model["input"] == {
            "frames": 8,
            "size": [32, 32],
            "sample_fps": clf.sample_fps,
            "normalize": clf.config["normalize"],
        }
        assert model["tasks"] == {"predict": True, "localize": True, "detect": True}
        assert ".gif" in model["video_extensions"]  # the page accepts what the server reads
        page = client.get("/")
        assert page.status_code == 200 and 'id="result-label"' in page.text
        assert "http://" not in page.text and "https://" not in page.text  # works offline
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
        assert {"/v1/predict", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/model"} <= set(spec["paths"])


def test_predict_happy_path_matches_the_classifier(clf, video, tmp_path):
    expected = clf.predict(video, smooth=3, top_k=3)
    with client_for(clf, tmp_path) as client:
        res = post_video(client, "/v1/predict", video, smooth=3, top_k=3)
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["label"] == expected["label"]
        assert len(body["top_k"]) == 3 and body["smooth"] == 3
        assert [u["probs"] for u in body["timeline"]] == [u["probs"] for u in expected["timeline"]]
        assert body["video"] == "clip.mp4"  # the client's name, never the server's temp path
        # a raw body works too (curl --data-binary @clip.mp4 -H 'Content-Type: video/mp4')
        raw = client.post(
            "/v1/predict", content=video.read_bytes(), headers={"content-type": "video/mp4"}
        )
        assert raw.status_code == 200 and raw.json()["label"] == expected["label"]
    assert leftover_uploads(tmp_path) == []


def test_upload_folder_is_private_and_removed_at_shutdown(clf, video, tmp_path):
    with client_for(clf, tmp_path) as client:
        folder = client.app.state.upload_dir
        assert folder.parent == tmp_path / "uploads"
        assert folder.stat().st_mode & 0o077 == 0  # owner only
        assert post_video(client, "/v1/predict", video).status_code == 200
        assert list(folder.iterdir()) == []  # deleted after processing
    assert not folder.exists()


def test_bad_options_are_422_with_the_fix(clf, video, tmp_path):
    with client_for(clf, tmp_path) as client:
        res = post_video(client, "/v1/predict", video, window=99)
        assert res.status_code == 422 and "at most the model's 8 frames" in res.json()["detail"]
        res = post_video(client, "/v1/predict", video, smooth="abc")
        assert res.status_code == 422 and "whole number" in res.json()["detail"]
        res = post_video(client, "/v1/predict", video, annotate="/etc/x.mp4")
        assert res.status_code == 422 and "cannot be set" in res.json()["detail"]
        res = post_video(client, "/v1/predict", video, nope=1)
        assert res.status_code == 422 and "unknown option" in res.json()["detail"]
        res = client.post("/v1/predict", data={"smooth": "3"}, files={"other": ("a.txt", b"x")})
        assert res.status_code == 422 and "'video'" in res.json()["detail"]
    assert leftover_uploads(tmp_path) == []


def test_too_large_is_413(clf, video, tmp_path):
    limit_mb = 0.002  # 2 kB; the test clip is larger
    assert video.stat().st_size > 4_000
    with client_for(clf, tmp_path, max_upload_mb=limit_mb) as client:
        res = post_video(client, "/v1/predict", video)
        assert res.status_code == 413
        assert "--max-upload-mb" in res.json()["detail"]

        # no Content-Length (chunked): refused while counting the bytes received
        def chunks():
            data = video.read_bytes()
            for i in range(0, len(data), 4096):
                yield data[i : i + 4096]

        res = client.post("/v1/jobs", content=chunks(), headers={"content-type": "video/mp4"})
        assert res.status_code == 413
    assert leftover_uploads(tmp_path) == []


def test_upload_stops_reading_past_the_limit(tmp_path):
    """A lying Content-Length: the stream is abandoned at the limit, not read to its end."""
    from starlette.requests import Request

    sent = {"chunks": 0}
    total_chunks = 1000  # 64 MB if it were read whole

    async def receive():
        sent["chunks"] += 1
        more = sent["chunks"] < total_chunks
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": more}

    headers = [(b"content-type", b"video/mp4"), (b"content-length", b"1000")]
    request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
    with pytest.raises(RequestError) as err:
        asyncio.run(receive_upload(request, tmp_path, max_bytes=200_000))
    assert err.value.status == 413
    assert sent["chunks"] <= 4
    assert list(tmp_path.iterdir()) == []
    # an honest Content-Length over the limit: refused before reading anything
    sent["chunks"] = 0
    headers = [(b"content-type", b"video/mp4"), (b"content-length", str(10**9).encode())]
    request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
    with pytest.raises(RequestError) as err:
        asyncio.run(receive_upload(request, tmp_path, max_bytes=200_000))
    assert err.value.status == 413 and sent["chunks"] == 0


def test_not_a_video_and_corrupt_are_415_422(clf, video, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(video.read_bytes()[:600])
    with client_for(clf, tmp_path) as client:
        res = post_video(client, "/v1/predict", text)
        assert res.status_code == 415, res.text
        detail = res.json()["detail"]
        assert detail.startswith("notes.mp4: ") and "not" in detail and str(tmp_path) not in detail
        res = post_video(client, "/v1/jobs", corrupt)
        assert res.status_code in (415, 422), res.text
        assert res.json()["detail"].startswith("corrupt.mp4: ")
        res = client.post("/v1/predict", content=b"", headers={"content-type": "video/mp4"})
        assert res.status_code == 422 and "no video received" in res.json()["detail"]
    assert leftover_uploads(tmp_path) == []


def test_a_task_the_classifier_lacks_is_501(clf, video, tmp_path, monkeypatch):
    monkeypatch.setattr(Classifier, "detect", None)  # a model without detection
    with client_for(clf, tmp_path) as client:
        for task in ("detect",):
            res = post_video(client, f"/v1/{task}", video)
            assert res.status_code == 501
            assert f"{task} is not available" in res.json()["detail"]
        res = client.post("/v1/jobs?task=detect", files={"video": ("a.mp4", video.read_bytes())})
        assert res.status_code == 501
        res = post_video(client, "/v1/jobs", video, task="detect")
        assert res.status_code == 501
    assert leftover_uploads(tmp_path) == []


def test_localize_is_called_with_its_options(clf, video, tmp_path):
    with client_for(clf, tmp_path) as client:
        assert client.get("/v1/model").json()["tasks"]["localize"] is True
        res = post_video(client, "/v1/localize", video, min_score=0.25)
        assert res.status_code == 200, res.text
        body = res.json()
        assert isinstance(body["segments"], list) and body["options"]["min_score"] == 0.25
        assert body["video"] == "clip.mp4" and body["duration_s"] > 0
        res = post_video(client, "/v1/localize", video, options='{"spans": [0.5, 1.0]}')
        assert res.status_code == 200 and res.json()["options"]["spans"] == [0.5, 1.0]
        res = post_video(client, "/v1/localize", video, soft_nms=0.3)  # not an option
        assert res.status_code == 422 and "min_score" in res.json()["detail"]
        res = post_video(client, "/v1/localize", video, stride=0)
        assert res.status_code == 422 and "stride" in res.json()["detail"]
        for reserved in ("plot", "truth"):
            res = post_video(client, "/v1/localize", video, **{reserved: "[]"})
            assert res.status_code == 422 and "cannot be set" in res.json()["detail"]
        job = post_video(client, "/v1/jobs", video, task="localize").json()
        assert "segments" in wait_for(client, job["id"], "done")["result"]
    assert leftover_uploads(tmp_path) == []


def test_point7_options_are_typed_and_no_client_option_names_a_server_path(clf, video, tmp_path):
    """Bad values are 422 naming the field (they were 500s from inside the method), and a
    detector is chosen by name only: a path is refused the same way whether it exists."""
    with client_for(clf, tmp_path) as client:
        bad = {
            "/v1/detect": {"smooth": "abc", "min_track_s": "soon", "stride": "0"},
            "/v1/localize": {"spans": "abc", "min_score": "high"},
            "/v1/predict": {"top_k": "2.5", "stride": "-1"},
        }
        for route, fields in bad.items():
            for name, value in fields.items():
                res = post_video(client, route, video, **{name: value})
                assert res.status_code == 422, (route, name, res.text)
                assert res.json()["detail"].startswith(f"{name}"), res.json()["detail"]
        res = post_video(client, "/v1/localize", video, options='{"spans": ["x"]}')
        assert res.status_code == 422 and "spans[0]" in res.json()["detail"]

        details = set()
        for path in ("/etc", "../x", str(tmp_path), str(tmp_path / "missing"), "runs/detector"):
            for res in (
                post_video(client, "/v1/detect", video, detector=path),
                post_video(client, "/v1/jobs", video, task="detect", detector=path),
                post_video(client, "/v1/detect", video, options=f'{{"detector": "{path}"}}'),
            ):
                assert res.status_code == 422, res.text
                details.add(res.json()["detail"])
        assert len(details) == 1, details  # nothing depends on what the path is
        (detail,) = details
        assert "motion" in detail and "hog" in detail and "/" not in detail
        # person is offered where the pose extra is installed (issue 23)
        assert client.get("/v1/model").json()["detectors"] == available_detectors()
        assert available_detectors()[:2] == ["motion", "hog"]

        res = post_video(client, "/v1/detect", video, detector="motion", smooth=2)
        assert res.status_code == 200, res.text
        assert res.json()["detector"] == "motion" and res.json()["smooth"] == 2
    assert leftover_uploads(tmp_path) == []


def test_option_models_take_the_library_defaults(clf, tmp_path):
    from vidclass.predict.options import DetectOptions, LocalizeOptions, PredictOptions
    from vidclass.serve.options import TRAINED, ServedDetectors, request_models

    models = request_models(ServedDetectors())
    assert models["predict"]().model_dump() == {
        "window": None, "stride": None, "smooth": PredictOptions.smooth,
        "top_k": PredictOptions.top_k,
    }  # fmt: skip
    assert models["localize"]().spans == LocalizeOptions.spans
    assert DetectOptions.detector == AUTO  # the server offers what auto means there
    assert models["detect"]().detector == default_detector()
    assert models["detect"]().min_track_s == DetectOptions.min_track_s
    with client_for(clf, tmp_path) as client:
        spec = client.get("/openapi.json").json()
        body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
        props = body["multipart/form-data"]["schema"]["properties"]
        assert (
            props["smooth"]["default"] == PredictOptions.smooth and props["smooth"]["minimum"] == 1
        )
    # a server started with a trained detector offers it by a public name, not its path
    served = ServedDetectors("/srv/models/detector")
    assert served.default == TRAINED and served.specs[TRAINED] == "/srv/models/detector"
    assert ServedDetectors("hog").default == "hog" and TRAINED not in ServedDetectors("hog").specs
    with pytest.raises(UserError):  # a wrong detector stops the server at startup
        create_app(clf, temp_dir=tmp_path, detector=str(tmp_path / "missing"))


def test_predict_reports_progress(clf, make_video):
    seen: list[float] = []
    clf.predict(make_video("long.mp4", n=120, fps=10), progress=seen.append)
    assert seen and seen == sorted(seen)
    assert 0 < seen[0] < 1 and seen[-1] == pytest.approx(1.0, abs=0.15)


def test_job_progress_result_once_then_gone(clf, video, tmp_path):
    gated = Gated(clf)
    with client_for(gated, tmp_path) as client:
        res = post_video(client, "/v1/jobs", video, smooth=2)
        assert res.status_code == 202, res.text
        job = res.json()
        assert res.headers["location"] == f"/v1/jobs/{job['id']}"
        running = wait_for(client, job["id"], "running")
        assert running["progress"] == 0.5 and "result" not in running
        assert client.get("/healthz").json()["running"] == 1
        gated.release.set()
        done = wait_for(client, job["id"], "done")
        assert done["progress"] == 1.0 and done["result"]["label"] in clf.classes
        assert done["result"]["smooth"] == 2
        gone = client.get(f"/v1/jobs/{job['id']}")
        assert gone.status_code == 404 and "already fetched" in gone.json()["detail"]
        assert client.get("/v1/jobs/nope").status_code == 404
    assert leftover_uploads(tmp_path) == []


def test_real_job_runs_to_done(clf, make_video, tmp_path):
    long = make_video("long.mp4", n=120, fps=10)
    with client_for(clf, tmp_path) as client:
        job = post_video(client, "/v1/jobs", long).json()
        done = wait_for(client, job["id"], "done")
        assert done["result"]["duration_s"] == pytest.approx(12.0, abs=0.2)
        assert len(done["result"]["timeline"]) > 5


def test_failed_job_names_the_upload_not_the_temp_path(clf, video, tmp_path):
    gated = Gated(clf, fail=VideoError("/tmp/whatever", "decoding failed at frame 7"))
    gated.release.set()
    with client_for(gated, tmp_path) as client:
        res = post_video(client, "/v1/predict", video)
        assert res.status_code == 422 and "decoding failed at frame 7" in res.json()["detail"]
        job = post_video(client, "/v1/jobs", video).json()
        failed = wait_for(client, job["id"], "failed")
        assert failed["error_status"] == 422 and "decoding failed" in failed["error"]


def test_full_queue_is_503_with_retry_after_and_nothing_is_lost(clf, video, tmp_path):
    gated = Gated(clf)
    with client_for(gated, tmp_path, workers=1, max_queue=1) as client:
        first = post_video(client, "/v1/jobs", video).json()
        assert gated.started.acquire(timeout=30)  # running
        second = post_video(client, "/v1/jobs", video).json()  # queued
        assert client.get(f"/v1/jobs/{second['id']}").json()["status"] == "queued"
        for route in ("/v1/jobs", "/v1/predict"):
            busy = post_video(client, route, video)
            assert busy.status_code == 503
            assert int(busy.headers["retry-after"]) >= 1
            assert "busy" in busy.json()["detail"]
        health = client.get("/healthz").json()
        assert (health["running"], health["queued"]) == (1, 1)
        gated.release.set()
        for job in (first, second):
            assert wait_for(client, job["id"], "done")["result"]["label"] in clf.classes
        # capacity is back
        assert post_video(client, "/v1/predict", video).status_code == 200
    assert leftover_uploads(tmp_path) == []


def test_pool_reserves_slots_and_expires_results():
    from vidclass.serve.jobs import JobPool, PoolFull

    pool = JobPool(workers=1, max_queue=1, result_ttl_s=0.2, max_results=1)
    try:
        pool.reserve()  # an upload being received holds a slot
        pool.reserve()
        with pytest.raises(PoolFull) as full:
            pool.reserve()
        assert full.value.retry_after_s >= 1 and "busy" in str(full.value)
        pool.unreserve()
        pool.unreserve()
        a = pool.submit("predict", lambda progress: "a")
        b = pool.submit("predict", lambda progress: "b")
        a.future.result(10), b.future.result(10)
        time.sleep(0.05)
        assert pool.get(a.id) is None and pool.get(b.id).result == "b"  # max_results=1
        time.sleep(0.3)
        assert pool.get(b.id) is None  # expired unfetched
        assert pool.counts()["queued"] == 0
    finally:
        pool.shutdown()


def test_pool_shutdown_gives_back_slots_and_cleans_up():
    from vidclass.serve.jobs import JobPool

    gate, cleaned = threading.Event(), []
    pool = JobPool(workers=1, max_queue=1)
    pool.submit("predict", lambda progress: gate.wait(10), on_done=lambda: cleaned.append("a"))
    pool.submit("predict", lambda progress: "b", on_done=lambda: cleaned.append("b"))
    threading.Timer(0.3, gate.set).start()
    pool.shutdown()  # the queued job is cancelled, the running one finishes
    assert sorted(cleaned) == ["a", "b"]
    assert pool.counts()["running"] == pool.counts()["queued"] == 0


def test_cli_serve_refuses_a_folder_without_safetensors(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.pt").write_bytes(b"pickle")
    proc = subprocess.run(
        [sys.executable, "-m", "vidclass", "serve", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "model.safetensors" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------- the web page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_or_skip() -> str:
    pytest.importorskip(
        "playwright.sync_api", reason="python playwright is not installed (pip install -e '.[dev]')"
    )
    path = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    if path is None:
        pytest.skip(
            "Chromium is not installed and could not be (make test installs Debian's "
            "`chromium` package when run as root: apt-get install -y chromium)"
        )
    return path


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """`app` under uvicorn on a free local port, in a thread: its base URL; stopped on exit."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < end, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()


@pytest.fixture
def server(clf, tmp_path):
    """The app under uvicorn on a free local port, in a thread; stopped at teardown."""
    with serving(create_app(clf, temp_dir=tmp_path)) as url:
        yield url


def test_browser_upload_shows_the_api_label(server, clf, make_video, tmp_path):
    chromium = chromium_or_skip()
    import httpx
    from playwright.sync_api import sync_playwright

    video = make_video("browser.mp4", n=40, fps=10, width=160, height=120)
    with open(video, "rb") as f:
        api = httpx.post(
            f"{server}/v1/predict", files={"video": (video.name, f, "video/mp4")}, timeout=60
        )
    assert api.status_code == 200, api.text
    api_label = api.json()["label"]

    shot = tmp_path / "page.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1200})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server + "/")
            page.wait_for_function(
                "document.getElementById('model-info').textContent.includes('early_fusion')"
            )
            assert page.locator("#task option[value=detect]").is_enabled()  # Classifier.detect
            page.set_input_files("#file", str(video))
            page.click("#run")
            page.wait_for_selector("#result:not([hidden])", timeout=60_000)
            assert page.text_content("#result-label") == api_label
            assert page.locator("#job-progress").evaluate("e => e.value") == 1
            assert page.locator("#upload-progress").evaluate("e => e.value") == 1
            units = page.locator("#timeline").get_attribute("data-units")
            assert int(units) == len(api.json()["timeline"])
            assert page.locator("#topk tbody tr").count() == len(api.json()["top_k"])
            assert page.text_content("#overlay-label").split(" ")[0] in clf.classes
            page.screenshot(path=str(shot), full_page=True)

            # detection results (boxes on the video, segments on the lane) draw too
            drawn = page.evaluate(
                """() => {
                  const r = {classes: ["a", "b"], duration_s: 4, width: 160, height: 120,
                    tracks: [{track_id: 1, boxes: [[0, 10, 10, 60, 90], [1, 12, 10, 62, 90]],
                              segments: [{label: "b", t_start: 0, t_end: 2, score: 0.8}]}]};
                  window.vidclass.render(r, "detect");
                  return [document.getElementById("boxes").dataset.boxes,
                          document.getElementById("segments").dataset.segments,
                          document.getElementById("overlay-label").textContent,
                          document.getElementById("result-label").textContent];
                }"""
            )
            assert drawn == ["1", "1", "", "b"]
            assert errors == []
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
