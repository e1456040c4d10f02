"""`vidclass label` (issue 15): the labels CSV store, H.264 previews of any container, the
page's API (and its refusals), review mode, labels.csv → prepare → train, and the page in a
real browser (label by keyboard, undo, SIGKILL, restart, resume; an AVI's preview plays)."""

from __future__ import annotations

import csv
import os
import time
import warnings
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip(
    "fastapi", reason="the serve extra is not installed: pip install vidclass[serve]"
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette would rather have httpx2 under TestClient
    from fastapi.testclient import TestClient  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from vidclass.cli import app as cli_app  # noqa: E402
from vidclass.data.prepare import read_manifest  # noqa: E402
from vidclass.serve import label_store  # noqa: E402
from vidclass.serve.label_app import create_label_app  # noqa: E402
from vidclass.serve.label_store import ChangeLog, LabelStore, read_rows  # noqa: E402
from vidclass.serve.preview import PreviewCache, PreviewParams, browser_plays  # noqa: E402
from vidclass.video.writer import write_video  # noqa: E402

CLASSES = ["left", "right", "still"]
# clip_04 is the AVI: the fifth clip in name order, where the browser test resumes
SUFFIXES = {4: ".avi", 7: ".mkv", 9: ".gif"}


def motion_frames(kind: str, n: int = 16, width: int = 64, height: int = 48, seed: int = 0):
    """A square moving left, right, or standing still, on a background colour of `seed`."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 200, size=3, dtype=np.uint8)
    frames = np.empty((n, height, width, 3), np.uint8)
    frames[:] = bg
    for t in range(n):
        f = t / max(1, n - 1)
        x = {"left": 1 - f, "right": f, "still": 0.5}[kind]
        x0 = int((width - 12) * x)
        frames[t, height // 2 - 6 : height // 2 + 6, x0 : x0 + 12] = 255
    return frames


def write_clip(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """MP4 through the project's writer; AVI and MKV as MPEG-4 part 2 (what browsers do not
    play, as UCF101's AVIs); GIF with Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        write_video(path, frames, fps)
    elif path.suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps)
    else:
        with av.open(str(path), "w") as c:
            stream = c.add_stream("mpeg4", rate=fps)
            stream.width, stream.height, stream.pix_fmt = (
                frames.shape[2],
                frames.shape[1],
                "yuv420p",
            )
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                c.mux(stream.encode(frame))
            c.mux(stream.encode(None))
    return path


def make_clips(folder: Path, n: int = 12) -> dict[str, str]:
    """n clips `clip_NN.ext`, class CLASSES[i % 3]; {name: true label}."""
    truth = {}
    for i in range(n):
        kind = CLASSES[i % len(CLASSES)]
        path = folder / f"clip_{i:02d}{SUFFIXES.get(i, '.mp4')}"
        write_clip(path, motion_frames(kind, seed=i))
        truth[path.name] = kind
    return truth


class FakeModel:
    """A Classifier stand-in with fixed probabilities per file name (deterministic order)."""

    def __init__(self, classes: list[str], probs: dict[str, list[float]]) -> None:
        self.classes, self.probs = classes, probs
        self.config = {"model": "fake"}

    def predict(self, video, top_k: int = 1, **_) -> dict:
        p = np.array(self.probs[Path(video).name])
        order = np.argsort(-p)[:top_k]
        return {
            "label": self.classes[order[0]],
            "score": float(p[order[0]]),
            "top_k": [{"label": self.classes[i], "score": float(p[i])} for i in order],
        }


JSON = {"content-type": "application/json"}  # every write of the label API is JSON


def client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1")  # the server answers to its own names


def rows_of(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def clips(tmp_path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "clips"
    return folder, make_clips(folder)


# ---------------------------------------------------------------------- the store


def test_store_writes_every_label_atomically_and_durably(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "clips"
    a, b = folder / "a" / "v_x_g01_c01.mp4", folder / "b.avi"
    outside = tmp_path / "elsewhere" / "c.mp4"
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(label_store.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    out = tmp_path / "data" / "labels.csv"
    store = LabelStore(out, group_regex=r"_(g\d+)_")
    assert store.set(a, "walk") is None
    assert synced, "every label is fsynced"
    assert [r["path"] for r in rows_of(out)] == ["clips/a/v_x_g01_c01.mp4"]  # relative to the CSV
    store.set(b, "run")
    store.set(outside, "jump")
    assert rows_of(out) == [
        {"path": "clips/a/v_x_g01_c01.mp4", "label": "walk", "split": "", "group": "g01"},
        {"path": "clips/b.avi", "label": "run", "split": "", "group": ""},
        {"path": str(outside.resolve()), "label": "jump", "split": "", "group": ""},
    ]
    # relabelling keeps the row's place; nothing half-written is ever left beside it
    assert store.set(b, "walk").label == "run"
    assert [r["label"] for r in rows_of(out)] == ["walk", "walk", "jump"]
    beside = sorted(p.name for p in out.parent.iterdir() if p.is_file())
    assert beside == ["labels.csv", "labels.csv.lock"]  # the session's lock, nothing half-written

    # a crash while writing leaves the old file whole
    def boom(path, text, durable=False):
        raise OSError("disk full")

    monkeypatch.setattr(label_store, "write_text", boom)
    with pytest.raises(OSError):
        store.set(a, "run")
    assert [r["label"] for r in rows_of(out)] == ["walk", "walk", "jump"]


def test_store_resumes_and_undoes_this_sessions_changes(tmp_path):
    out = tmp_path / "labels.csv"
    a, b, c = (tmp_path / n for n in ("a.mp4", "b.mp4", "c.mp4"))
    first = LabelStore(out)
    first.set(a, "x")
    first.set(b, "y")
    first.close()
    again = LabelStore(out)  # a restarted server
    assert (again.label_of(a), again.label_of(b), len(again)) == ("x", "y", 2)
    assert not again.can_undo  # undo is for this session's changes
    again.set(c, "z")
    again.set(a, "y")
    assert again.undo() == (str(a.resolve()), again.rows[str(a.resolve())])
    assert again.label_of(a) == "x"
    key, old = again.undo()
    assert key == str(c.resolve()) and old is None and again.label_of(c) is None
    assert again.undo() is None
    assert [(r.path, r.label) for r in read_rows(out)] == [("a.mp4", "x"), ("b.mp4", "y")]
    # prepare's CSV reading: a header-less CSV, relative paths against the CSV's folder
    (tmp_path / "plain.csv").write_text("a.mp4,x\nsub/b.mp4,y,test,g1\n")
    plain = read_rows(tmp_path / "plain.csv")
    assert [(r.key, r.split, r.group) for r in plain] == [
        (str(a.resolve()), "", ""),
        (str((tmp_path / "sub" / "b.mp4").resolve()), "test", "g1"),
    ]


def test_change_log_appends_and_reads_back_what_was_reviewed(tmp_path):
    log = ChangeLog(tmp_path / "labels.changes.csv")
    log.append("a.mp4", "correct", "x", "y", "y", 0.91)
    log.append("b.mp4", "confirm", "x", "x", "y", 0.8)
    log.append("a.mp4", "undo", "y", "x")
    assert ChangeLog(log.path).reviewed == {str((tmp_path / "b.mp4").resolve())}
    rows = rows_of(log.path)
    assert [r["action"] for r in rows] == ["correct", "confirm", "undo"]
    assert rows[0]["model_score"] == "0.9100" and rows[0]["time_utc"].endswith("Z")


# ---------------------------------------------------------------------- previews


def h264_info(path: Path) -> tuple[str, str, int, int, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        return s.codec_context.name, s.codec_context.format.name, s.width, s.height, frames


def test_avi_preview_is_small_h264_cached_and_remade_when_the_source_changes(
    tmp_path, monkeypatch, make_gif
):
    from vidclass.serve import preview

    avi = write_clip(tmp_path / "big.avi", motion_frames("right", n=40, width=400, height=300), 20)
    assert not browser_plays(avi)
    cache = PreviewCache(tmp_path / "cache", PreviewParams(max_seconds=1.5, max_fps=10))
    made = []
    real = preview.make_preview
    monkeypatch.setattr(preview, "make_preview", lambda *a: made.append(a) or real(*a))
    out = cache.get(avi)
    codec, pix, w, h, n = h264_info(out)
    assert (codec, pix, w, h) == ("h264", "yuv420p", 320, 240)  # at most 320 px wide
    assert n == 15  # 1.5 s at 10 fps of a 2 s, 20 fps source
    assert browser_plays(out)
    assert cache.get(avi) == out and len(made) == 1  # made once
    # a changed source (new bytes, new mtime) gets a new preview; the old one goes
    write_clip(avi, motion_frames("left", n=10, width=400, height=300), 20)
    os.utime(avi, ns=(time.time_ns(), time.time_ns() + 10**9))
    again = cache.get(avi)
    assert again != out and not out.exists() and len(made) == 2
    assert h264_info(again)[4] == 5
    gif = make_gif("anim.gif", n=12)
    assert h264_info(cache.get(gif))[:2] == ("h264", "yuv420p")


def test_serve_page_preview_route_turns_an_upload_into_h264(tmp_path):
    from fastapi import FastAPI

    from vidclass.serve.preview import preview_router

    avi = write_clip(tmp_path / "clip.avi", motion_frames("left"))
    app = FastAPI()
    app.include_router(preview_router(tmp_path / "uploads", max_bytes=10**6))
    (tmp_path / "uploads").mkdir()
    with client(app) as c:
        res = c.post("/v1/preview", files={"video": ("clip.avi", avi.read_bytes())})
        assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
        (tmp_path / "got.mp4").write_bytes(res.content)
        assert h264_info(tmp_path / "got.mp4")[:2] == ("h264", "yuv420p")
        res = c.post("/v1/preview", files={"video": ("notes.avi", b"not a video" * 100)})
        assert res.status_code == 422 and res.json()["detail"].startswith("notes.avi: ")
    left = [p.name for p in (tmp_path / "uploads").iterdir() if p.is_file()]
    assert left == []  # uploads are deleted; only previews/ stays


# ---------------------------------------------------------------------- the API


def test_labelling_through_the_api(clips, tmp_path):
    folder, truth = clips
    out = tmp_path / "labels.csv"
    app = create_label_app(folder, CLASSES, out, cache_dir=tmp_path / "cache")
    with client(app) as c:
        page = c.get("/")
        assert page.status_code == 200 and 'id="progress"' in page.text
        assert "http://" not in page.text and "https://" not in page.text  # works offline
        assert c.get("/static/label.js").status_code == 200
        st = c.get("/v1/state").json()
        names = [o["name"] for o in st["order"]]
        assert names == sorted(truth) and st["total"] == 12 and st["done"] == 0
        assert [k["key"] for k in st["classes"]] == ["1", "2", "3"]
        ids = [o["id"] for o in st["order"]]
        assert st["next"] == ids[0]
        st = c.post(f"/v1/clips/{ids[0]}/label", json={"label": "left"}).json()
        assert (st["done"], st["next"]) == (1, ids[1])
        st = c.post(f"/v1/clips/{ids[1]}/skip", headers=JSON).json()
        assert st["next"] == ids[2]
        st = c.post(f"/v1/clips/{ids[2]}/label", json={"label": "still"}).json()
        assert st["next"] == ids[3]
        st = c.post("/v1/undo", headers=JSON).json()
        assert (st["undone"], st["done"], st["next"]) == (ids[2], 1, ids[2])
        assert rows_of(out) == [
            {"path": "clips/clip_00.mp4", "label": "left", "split": "", "group": ""}
        ]
        one = c.get(f"/v1/clips/{ids[0]}").json()
        assert one["label"] == "left" and one["suggestion"] is None and one["position"] == 1
        # an MP4 is sent as it is, the AVI as its H.264 preview
        mp4 = c.get(f"/v1/clips/{ids[0]}/video")
        assert mp4.content == (folder / names[0]).read_bytes()
        avi = c.get(f"/v1/clips/{ids[4]}/video")
        assert names[4].endswith(".avi") and avi.headers["content-type"] == "video/mp4"
        (tmp_path / "p.mp4").write_bytes(avi.content)
        assert h264_info(tmp_path / "p.mp4")[0] == "h264"
        assert c.post("/v1/undo", headers=JSON).json()["undone"] == ids[0]
        res = c.post("/v1/undo", headers=JSON)
        assert res.status_code == 409 and "nothing to undo" in res.json()["detail"]
    assert rows_of(out) == []


def test_bad_requests_are_4xx_with_a_clear_message_and_touch_nothing(clips, tmp_path):
    folder, _ = clips
    out = tmp_path / "labels.csv"
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    app = create_label_app(folder, CLASSES, out, cache_dir=tmp_path / "cache")
    with client(app) as c:
        cid = c.get("/v1/state").json()["order"][0]["id"]
        res = c.post(f"/v1/clips/{cid}/label", json={"label": "jump"})
        assert res.status_code == 422
        assert res.json()["detail"] == "unknown class 'jump'; choose one of: left, right, still"
        res = c.get("/v1/clips/0123456789ab")
        assert res.status_code == 404 and "unknown clip id" in res.json()["detail"]
        traversal = [
            "../../secret.txt",
            str(secret),
            "..",
            "%2e%2e%2fsecret.txt",
            "..%2F..%2Fsecret.txt",
        ]
        for bad in traversal:
            for route in ("", "/video", "/preview", "/label", "/skip"):
                if route in ("/label", "/skip"):
                    res = c.post(f"/v1/clips/{bad}{route}", json={"label": "left"})
                else:
                    res = c.get(f"/v1/clips/{bad}{route}")
                assert 400 <= res.status_code < 500, (bad, route, res.status_code)
                detail = res.json()["detail"]
                assert "clip id" in detail or "ids of GET /v1/state" in detail, detail
                assert "do not read" not in res.text
        for body in (
            {"label": "../../secret.txt"},
            {"label": str(secret)},
            {"label": ["left"]},
        ):
            res = c.post(f"/v1/clips/{cid}/label", json=body)
            assert res.status_code == 422 and "unknown class" in res.json()["detail"]
        res = c.post(f"/v1/clips/{cid}/label", json={"label": "left", "path": str(secret)})
        assert res.status_code == 422 and "unexpected field 'path'" in res.json()["detail"]
        res = c.post(f"/v1/clips/{cid}/label", json={"label": "left", "out": "../x.csv"})
        assert res.status_code == 422 and "unexpected field 'out'" in res.json()["detail"]
        res = c.post(f"/v1/clips/{cid}/label", content=b"left", headers=JSON)
        assert res.status_code == 400 and "JSON" in res.json()["detail"]
        res = c.post(f"/v1/clips/{cid}/label", content=b"left")  # not declared JSON
        assert res.status_code == 415 and "application/json" in res.json()["detail"]
        for query in ("path=../secret.txt", f"out={secret}", "clip=../../etc/passwd"):
            for url in ("/v1/state", f"/v1/clips/{cid}", f"/v1/clips/{cid}/video"):
                res = c.get(f"{url}?{query}")
                assert res.status_code == 422 and "no query parameters" in res.json()["detail"]
            res = c.post(f"/v1/clips/{cid}/label?{query}", json={"label": "left"})
            assert res.status_code == 422
        res = c.get("/static/../secret.txt")
        assert res.status_code == 404 and "do not read" not in res.text
        res = c.post("/v1/rescore", headers=JSON)
        assert res.status_code == 409 and "--model" in res.json()["detail"]
    assert not out.exists()  # nothing was labelled
    assert secret.read_text() == "do not read"


def test_model_orders_least_confident_first_and_rescores(clips, tmp_path):
    folder, truth = clips
    names = sorted(truth)
    rng = np.random.default_rng(0)
    probs = {n: list(rng.dirichlet([1, 1, 1])) for n in names}
    app = create_label_app(
        folder, None, tmp_path / "labels.csv", model=FakeModel(CLASSES, probs),
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    app.state.session.wait_scored()
    with client(app) as c:
        st = c.get("/v1/state").json()
        assert [k["name"] for k in st["classes"]] == CLASSES  # the model's classes
        expected = sorted(names, key=lambda n: max(probs[n]))
        assert [o["name"] for o in st["order"]] == expected
        assert st["scoring"] == {"model": "fake", "scored": 12, "clips": 12, "running": False}
        first = c.get(f"/v1/clips/{st['next']}").json()
        p = probs[expected[0]]
        assert first["suggestion"]["label"] == CLASSES[int(np.argmax(p))]
        assert [t["score"] for t in first["suggestion"]["top"]] == sorted(p, reverse=True)
        st = c.post("/v1/rescore", headers=JSON).json()
        app.state.session.wait_scored()
        assert [o["name"] for o in c.get("/v1/state").json()["order"]] == expected


def test_review_shows_confident_disagreements_first_and_logs_changes(clips, tmp_path):
    folder, truth = clips
    names = sorted(truth)
    given = tmp_path / "given.csv"
    given.write_text("path,label\n" + "".join(f"clips/{n},{truth[n]}\n" for n in names))
    # the model agrees with every label but three, with 0.9, 0.6 and 0.8 confidence
    probs = {n: [0.0, 0.0, 0.0] for n in names}
    for n in names:
        probs[n][CLASSES.index(truth[n])] = 0.7
    wrong = {names[1]: 0.9, names[2]: 0.6, names[5]: 0.8}
    for n, p in wrong.items():
        probs[n] = [0.0, 0.0, 0.0]
        probs[n][(CLASSES.index(truth[n]) + 1) % 3] = p
    model = FakeModel(CLASSES, probs)

    def review_app():
        app = create_label_app(None, None, None, model=model, review=given, cache_dir=tmp_path)
        app.state.session.wait_scored()
        return app

    with client(review_app()) as c:
        st = c.get("/v1/state").json()
        assert st["mode"] == "review" and st["csv"] == "given.csv"
        assert [o["name"] for o in st["order"]] == [f"clips/{names[i]}" for i in (1, 5, 2)]
        ids = [o["id"] for o in st["order"]]
        top = c.get(f"/v1/clips/{ids[0]}").json()
        assert top["label"] == truth[names[1]] and top["suggestion"]["score"] == 0.9
        fixed = top["suggestion"]["label"]
        st = c.post(f"/v1/clips/{ids[0]}/label", json={"label": fixed}).json()  # correct
        assert (st["done"], st["total"], st["next"]) == (1, 3, ids[1])
        st = c.post(f"/v1/clips/{ids[1]}/label", json={"label": truth[names[5]]}).json()  # keep
        st = c.post(f"/v1/clips/{ids[2]}/label", json={"label": "left"}).json()
        st = c.post("/v1/undo", headers=JSON).json()
        assert st["undone"] == ids[2] and st["done"] == 2
    labels = {r["path"]: r["label"] for r in rows_of(given)}
    assert labels[f"clips/{names[1]}"] == fixed and len(labels) == 12
    assert labels[f"clips/{names[5]}"] == truth[names[5]]
    assert labels[f"clips/{names[2]}"] == truth[names[2]]  # undone
    log = rows_of(tmp_path / "given.changes.csv")
    assert [(r["path"], r["action"]) for r in log] == [
        (f"clips/{names[1]}", "correct"),
        (f"clips/{names[5]}", "confirm"),
        (f"clips/{names[2]}", "correct"),
        (f"clips/{names[2]}", "undo"),
    ]
    assert log[0]["old_label"] == truth[names[1]] and log[0]["new_label"] == fixed
    # a restart resumes: the two decisions stay done, the corrected clip stays in the queue
    with client(review_app()) as c:
        st = c.get("/v1/state").json()
        assert [o["name"] for o in st["order"]] == [f"clips/{names[i]}" for i in (1, 5, 2)]
        assert (st["done"], st["next"]) == (2, ids[2])


# ---------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> dict:
    """Label synthetic clips through the API → `vidclass prepare labels.csv` → `vidclass
    train` 1 epoch (what the end-to-end test checks; the run serves the other tests)."""
    root = tmp_path_factory.mktemp("labelled")
    folder, out = root / "clips", root / "labels.csv"
    truth = make_clips(folder)
    with client(create_label_app(folder, CLASSES, out, cache_dir=root / "cache")) as c:
        for item in c.get("/v1/state").json()["order"]:
            res = c.post(f"/v1/clips/{item['id']}/label", json={"label": truth[item["name"]]})
            assert res.status_code == 200
    runner = CliRunner()
    prepared, run = root / "prepared", root / "run"
    prep = runner.invoke(
        cli_app,
        ["prepare", str(out), "--out", str(prepared), "--frames", "8", "--size", "32",
         "--workers", "1", "--test-fraction", "0.25", "-q"],
    )  # fmt: skip
    train = runner.invoke(
        cli_app,
        ["train", str(prepared), "--model", "early_fusion", "--epochs", "1", "--batch-size",
         "4", "--out", str(run), "-q"],
    )  # fmt: skip
    return {"root": root, "folder": folder, "truth": truth, "csv": out, "prepared": prepared,
            "run": run, "prepare": prep, "train": train}  # fmt: skip


def test_labels_csv_prepares_and_trains_and_the_run_suggests(labelled, tmp_path):
    assert labelled["prepare"].exit_code == 0, labelled["prepare"].output
    manifest = read_manifest(labelled["prepared"])
    assert {Path(r["path"]).name: r["label"] for r in manifest} == labelled["truth"]
    assert {r["status"] for r in manifest} == {"ok"}  # the AVI, MKV and GIF too
    assert {r["split"] for r in manifest} >= {"train", "test"}
    assert labelled["train"].exit_code == 0, labelled["train"].output
    run = labelled["run"]
    assert (run / "model.safetensors").is_file()
    app = create_label_app(
        labelled["folder"], None, tmp_path / "again.csv", model=run, cache_dir=tmp_path
    )
    app.state.session.wait_scored()
    with client(app) as c:
        st = c.get("/v1/state").json()
        assert st["scoring"]["scored"] == 12 and sorted(k["name"] for k in st["classes"]) == CLASSES
        clip = c.get(f"/v1/clips/{st['next']}").json()
        assert clip["suggestion"]["label"] in CLASSES and len(clip["suggestion"]["top"]) == 3
        scores = [app.state.session.scores[o["id"]].score for o in st["order"]]
        assert scores == sorted(scores)
        assert c.post("/v1/rescore", headers=JSON).status_code == 200  # the run is loaded again
        app.state.session.wait_scored()
        assert c.get("/v1/state").json()["scoring"]["scored"] == 12


# ---------------------------------------------------------------------- the page


def test_review_reads_a_prepared_folder_and_class_folders(labelled, tmp_path):
    from vidclass.serve.label_session import review_rows

    rows, root = review_rows(labelled["prepared"])
    assert {Path(r.key).name: r.label for r in rows} == labelled["truth"]
    assert {r.split for r in rows} >= {"train", "test"}  # prepare's split is kept
    assert root == labelled["folder"].resolve()
    for name, label in labelled["truth"].items():
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / name).symlink_to(labelled["folder"] / name)
    rows, root = review_rows(tmp_path)
    assert sorted((Path(r.path).name, r.label) for r in rows) == sorted(labelled["truth"].items())


def test_serve_page_plays_an_avi_upload_through_the_preview(labelled, tmp_path):
    """`vidclass serve`'s page: an AVI it cannot play is played as the server's preview."""
    from test_serve import chromium_or_skip, serving

    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    from vidclass.serve import create_app

    avi = labelled["folder"] / "clip_04.avi"
    with serving(create_app(labelled["run"], temp_dir=tmp_path)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{url}/")
            page.wait_for_function(
                "document.getElementById('model-info').textContent.includes('early_fusion')"
            )
            page.set_input_files("#file", str(avi))
            page.click("#run")
            page.wait_for_selector("#result:not([hidden])", timeout=60_000)
            page.wait_for_selector("#preview-note:not([hidden])", timeout=30_000)
            duration = page.wait_for_function(
                "(() => { const v = document.getElementById('video');"
                " return v.readyState >= 1 && v.duration > 0 ? v.duration : 0; })()",
                timeout=30_000,
            ).json_value()
            assert duration > 0
            assert page.locator("#playback-note").is_hidden()
        finally:
            browser.close()
