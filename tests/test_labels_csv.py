"""The labels CSV (issue 21, points 1-3 and the one parser): a review written into another
folder still names every clip, the user's other columns survive every rewrite, a second
`vidclass label` on one CSV is refused, and prepare and label read a CSV the same way."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from vidclass.data.prepare import prepare
from vidclass.data.sources import discover
from vidclass.errors import UserError
from vidclass.serve.label_lock import lock_path
from vidclass.serve.label_store import LabelStore, read_rows

ROOT = Path(__file__).resolve().parents[1]


def rows_of(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def header_of(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def test_review_into_another_folder_rewrites_paths_so_prepare_finds_every_clip(
    make_video, tmp_path
):
    """`vidclass label --review data/labels.csv --out out/fixed.csv`: the rows copied from
    data/ name their clips for out/ (not `clips/a.mp4`, which there means out/clips/a.mp4),
    keep their other columns, and `prepare out/fixed.csv` finds every clip."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from test_label import FakeModel
    from vidclass.serve.label_app import create_label_app

    data = tmp_path / "data"
    names = ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    for i, n in enumerate(names):
        make_video(f"data/clips/{n}", n=8, seed=i)
    given = data / "labels.csv"
    given.write_text(
        "path,label,split,notes\n"
        "clips/a.mp4,walk,train,good\nclips/b.mp4,run,train,\n"
        "clips/c.mp4,walk,test,blurry\nclips/d.mp4,run,test,\n"
    )
    # the model (classes run, walk) disagrees with a.mp4's label only
    probs = {"a.mp4": [0.95, 0.05], "b.mp4": [0.9, 0.1], "c.mp4": [0.1, 0.9], "d.mp4": [0.9, 0.1]}
    model = FakeModel(["run", "walk"], probs)
    fixed = tmp_path / "out" / "fixed.csv"
    app = create_label_app(None, None, fixed, model=model, review=given, cache_dir=tmp_path)
    app.state.session.wait_scored()
    with TestClient(app, base_url="http://127.0.0.1") as c:
        st = c.get("/v1/state").json()
        assert [o["name"] for o in st["order"]] == ["clips/a.mp4"]
        res = c.post(f"/v1/clips/{st['next']}/label", json={"label": "walk"})  # keep
        assert res.status_code == 200
    rows = rows_of(fixed)
    assert [(fixed.parent / r["path"]).resolve() for r in rows] == [
        (data / "clips" / n).resolve() for n in names
    ]
    assert [r["notes"] for r in rows] == ["good", "", "blurry", ""]
    assert [r["split"] for r in rows] == ["train", "train", "test", "test"]
    result = prepare(fixed, tmp_path / "prepared", frames=4, size=16, quiet=True)
    assert [r["status"] for r in result.rows] == ["ok"] * 4, [r["error"] for r in result.rows]
    assert sorted(Path(r["path"]).name for r in result.rows) == names
    assert given.read_text().startswith("path,label,split,notes\nclips/a.mp4,walk,train,good")


def test_label_mode_keeps_the_csvs_other_columns(tmp_path):
    """Labelling into a CSV with a `notes` column (anywhere in the header) keeps the column
    and its cells; a header-less CSV with more than four cells keeps the extra cells."""
    out = tmp_path / "labels.csv"
    out.write_text('path,notes,label\na.mp4,"blurry, redo",walk\nb.mp4,,run\n')
    store = LabelStore(out)
    store.set(tmp_path / "c.mp4", "walk")  # a new row
    store.set(tmp_path / "b.mp4", "walk")  # a relabelled one
    assert header_of(out) == ["path", "notes", "label", "split", "group"]
    assert rows_of(out) == [
        {"path": "a.mp4", "notes": "blurry, redo", "label": "walk", "split": "", "group": ""},
        {"path": "b.mp4", "notes": "", "label": "walk", "split": "", "group": ""},
        {"path": "c.mp4", "notes": "", "label": "walk", "split": "", "group": ""},
    ]
    plain = tmp_path / "plain.csv"
    plain.write_text("a.mp4,walk,train,g1,keep me,and me\nb.mp4,run,test,g2\n")
    other = LabelStore(plain)
    other.set(tmp_path / "b.mp4", "walk")
    assert header_of(plain) == ["path", "label", "split", "group", "column5", "column6"]
    assert [(r["path"], r["label"], r["column5"], r["column6"]) for r in rows_of(plain)] == [
        ("a.mp4", "walk", "keep me", "and me"),
        ("b.mp4", "walk", "", ""),
    ]
    # prepare reads the rewritten files, the extra columns ignored
    classes, videos, mode, _ = discover(plain)
    assert (classes, [v.split for v in videos], mode) == (["walk"], ["train", "test"], "csv")
    assert [v.label for v in discover(out)[1]] == ["walk"] * 3
    store.close()
    other.close()


HOLD = """
import sys
from vidclass.serve.label_store import LabelStore
store = LabelStore(sys.argv[1])
store.set(sys.argv[2], "walk")
print("holding", flush=True)
sys.stdin.read()
"""


def test_second_label_session_on_one_csv_is_refused_naming_the_holder(tmp_path, caplog):
    """A second `vidclass label` on a CSV another session holds exits 1 naming that session
    (its pid) and changes nothing; once the holder is killed its lock file is stale and the
    next session takes it over, saying so; closing removes the lock file."""
    out, clips = tmp_path / "labels.csv", tmp_path / "clips"
    clips.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out), str(tmp_path / "a.mp4")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(UserError, match=rf"pid {holder.pid} on .*--out other\.csv"):
            LabelStore(out)
        pytest.importorskip("fastapi", reason="the serve extra is not installed")
        (clips / "x.mp4").write_bytes(b"")  # the refusal comes before any clip is read
        cli = subprocess.run(
            [sys.executable, "-m", "vidclass", "label", str(clips), "--classes", "walk,run",
             "--out", str(out), "--port", "1"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert cli.returncode == 1, cli.stdout + cli.stderr
        assert f"pid {holder.pid}" in " ".join(cli.stderr.split())
        assert [r["path"] for r in rows_of(out)] == ["a.mp4"]  # the holder's label is intact
    finally:
        holder.kill()
        holder.wait(10)
    assert lock_path(out).exists()  # a killed session leaves its lock file behind
    with caplog.at_level(logging.WARNING, "vidclass.label"):
        store = LabelStore(out)
    assert f"stale lock {lock_path(out)}" in caplog.text and f"pid {holder.pid}" in caplog.text
    assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()  # the holder's, whole
    with pytest.raises(UserError, match=f"pid {os.getpid()}"):
        LabelStore(out)  # one session per CSV within one process too
    store.set(tmp_path / "b.mp4", "run")
    assert store.label_of(tmp_path / "a.mp4") == "walk"  # read back under the lock
    store.close()
    assert not lock_path(out).exists()
    with pytest.raises(RuntimeError, match="closed"):
        store.set(tmp_path / "c.mp4", "run")
    LabelStore(out).close()  # free again


def test_without_flock_the_lock_file_itself_refuses_a_second_session(tmp_path, monkeypatch):
    """Where there is no fcntl (Windows) the lock file is created exclusively: a second
    session is refused, told to delete the file if no session runs; closing removes it."""
    from vidclass.serve import label_lock

    monkeypatch.setattr(label_lock, "fcntl", None)
    out = tmp_path / "labels.csv"
    first = LabelStore(out)
    with pytest.raises(UserError, match=rf"pid {os.getpid()} .*delete .*labels\.csv\.lock"):
        LabelStore(out)
    first.close()
    assert not lock_path(out).exists()
    LabelStore(out).close()


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,label,split\na.mp4,walk,training\n", r"labels\.csv:2: split must be 'train'"),
        ("a.mp4,walk,train\nb.mp4,run,Holdout\n", r"labels\.csv:2: split must be 'train'"),
        ("path,label\na.mp4,walk\nb.mp4,\n", r"labels\.csv:3: .*needs a path and a label"),
        ("path,labels\na.mp4,walk\n", r"labels\.csv: the header has no label column"),
        ("path,label,notes,notes\na.mp4,walk,x,y\n", r"column 'notes' appears twice"),
    ],
)
def test_prepare_and_label_refuse_the_same_labels_csv_mistakes(tmp_path, text, message):
    """One parser: prepare's discover and the label store's reader refuse a bad split, a row
    without a label, a header without a label column and a doubled column alike, at the
    row's own line (a header-less file counts from 1)."""
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        discover(path)
    with pytest.raises(UserError, match=message):
        read_rows(path)
    with pytest.raises(UserError, match=message):
        LabelStore(path)
    assert not lock_path(path).exists()  # a refused CSV does not stay locked


def test_prepare_and_label_read_a_labels_csv_the_same_way(tmp_path):
    """Any header order, a UTF-8 BOM (a spreadsheet's export), upper-case split values,
    blank lines and short rows: discover and read_rows agree on every row."""
    path = tmp_path / "labels.csv"
    path.write_bytes(
        "\ufeffLabel,Path,split,group\nwalk,clips/a.mp4,TRAIN,g1\n\nrun,/abs/b.mp4,test,\n"
        "walk,c.mp4,Val\n".encode()
    )
    _, videos, mode, _ = discover(path)
    rows = read_rows(path)
    as_prepare = [(v.path.resolve(), v.label, v.split) for v in videos]
    assert as_prepare == [(Path(r.key), r.label, r.split) for r in rows]
    assert as_prepare == [
        ((tmp_path / "clips" / "a.mp4").resolve(), "walk", "train"),
        (Path("/abs/b.mp4").resolve(), "run", "test"),
        ((tmp_path / "c.mp4").resolve(), "walk", "val"),
    ]
    assert videos[0].group == rows[0].group == "g1"
    assert [r.group for r in rows[1:]] == ["", ""]  # prepare derives these from the names
    assert mode == "csv"  # every row gives its split


def test_review_of_a_ucf101_manifest_writes_a_csv_that_reads_back(tmp_path):
    """A UCF101 fold's manifest marks the clips of neither list `unused`, which a labels CSV
    cannot hold: the review leaves that split empty, so its CSV opens again after a restart."""
    from vidclass.serve.label_session import review_rows

    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "manifest.csv").write_text(
        "path,label,split,group,status\n"
        f"{tmp_path}/a.avi,walk,train,g1,ok\n{tmp_path}/b.avi,run,unused,g2,ok\n"
    )
    rows, _ = review_rows(prepared)
    assert [r.split for r in rows] == ["train", ""]
    out = tmp_path / "labels.csv"
    with LabelStore(out) as store:
        store.seed(rows)
    with LabelStore(out) as again:
        assert [(r.path, r.split, r.group) for r in again.rows.values()] == [
            ("a.avi", "train", "g1"),
            ("b.avi", "", "g2"),
        ]
