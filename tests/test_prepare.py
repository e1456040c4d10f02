"""`prepare`: folder/CSV/UCF101 → manifest + cache, failures kept, splits leak-free, resumable."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import cli_killed_mid_write
from vidclass.cli import app
from vidclass.data.prepare import MANIFEST_COLUMNS, prepare, read_manifest
from vidclass.data.sampling import REAL_FPS, sample_indices

runner = CliRunner()


def make_folder(make_video, classes=("left", "right"), groups=3, clips=2, n=20) -> Path:
    """UCF101-style tree: <class>/v_<class>_gGG_cCC.mp4 with varying lengths."""
    k = 0
    for c in classes:
        for g in range(1, groups + 1):
            for i in range(1, clips + 1):
                last = make_video(f"src/{c}/v_{c}_g{g:02d}_c{i:02d}.mp4", n=n + k % 7, seed=k)
                k += 1
    return last.parents[1]


def test_mixed_folder_failed_rows_and_exit_code_2(make_video, tmp_path):
    src = make_folder(make_video, groups=2, clips=2)
    (src / "left" / "notes.mp4").write_text("not a video")
    (src / "right" / "empty.avi").write_bytes(b"")
    out = tmp_path / "prep"
    result = runner.invoke(app, ["prepare", str(src), "--out", str(out), "-q", "--workers", "2"])
    assert result.exit_code == 2, result.output
    rows = read_manifest(out)
    assert len(rows) == 10
    failed = {r["video_id"]: r["error"] for r in rows if r["status"] == "failed"}
    assert set(failed) == {"notes", "empty"}
    assert all(failed.values())
    assert "failed" in result.output and "empty.avi" in result.output
    header = (out / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header == MANIFEST_COLUMNS


def test_point10_gif_is_prepared_and_other_files_are_named_as_skipped(
    make_video, make_gif, tmp_path
):
    """Every container users have is a video (a GIF here); a file that is not a video, or a
    video outside any class folder, is counted and named in the summary, never dropped
    without a word."""
    src = make_folder(make_video, groups=2, clips=1, n=10)
    gif = make_gif("src/left/v_left_g03_c01.gif", n=12)
    (src / "right" / "notes.txt").write_text("filmed on a Tuesday")
    loose = make_video("src/loose.mp4", n=10)
    (src / "metadata.csv").write_text("path,label\n")  # the dataset's own index: not a skip
    out = tmp_path / "prep"
    args = ["prepare", str(src), "--out", str(out), "-q", "--frames", "8", "--size", "32"]
    result = runner.invoke(app, [*args, "--fps", "0"])  # spread: 8 of the gif's 12 frames
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in read_manifest(out)}
    assert rows[gif.name]["status"] == "ok" and rows[gif.name]["label"] == "left"
    assert int(rows[gif.name]["num_frames"]) == 12
    assert np.load(out / "cache" / f"{rows[gif.name]['video_id']}.npy").shape == (8, 32, 32, 3)
    assert loose.name not in rows
    text = " ".join(result.output.split())  # rich may wrap
    assert "skipped 2 files (1 .mp4, 1 .txt; e.g." in text, text
    assert "notes.txt" in text and "loose.mp4" in text and "metadata.csv" not in text
    res = prepare(src, tmp_path / "prep2", frames=8, size=32, quiet=True)
    assert sorted(Path(p).name for p in res.skipped) == ["loose.mp4", "notes.txt"]


def test_all_good_exit_code_0_and_cache_shapes(make_video, tmp_path):
    src = make_folder(make_video, groups=2, clips=1, n=10)
    out = tmp_path / "prep"
    result = runner.invoke(
        app, ["prepare", str(src), "--out", str(out), "-q", "--frames", "8", "--size", "32"]
    )
    assert result.exit_code == 0, result.output
    for r in read_manifest(out):
        arr = np.load(out / "cache" / f"{r['video_id']}.npy")
        # The default sampling: REAL_FPS frames a second from the start, up to --frames.
        expect = sample_indices(int(r["num_frames"]), 8, None, float(r["fps"]), REAL_FPS)
        assert arr.shape == (len(expect), 32, 32, 3) and arr.dtype == np.uint8
        assert r["sampled_frames"] == len(expect) and int(r["num_frames"]) >= 10
    meta = json.loads((out / "prepared.json").read_text())
    assert meta["classes"] == ["left", "right"] and meta["frames"] == 8
    assert meta["sample_fps"] == REAL_FPS


def test_missing_source_is_a_user_error_with_exit_1(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidclass",
            "prepare",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "nowhere" in proc.stderr and "not found" in proc.stderr


def test_empty_folder_is_a_user_error(tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    result = runner.invoke(app, ["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "no videos found" in str(result.exception)


def test_group_aware_split_keeps_groups_whole(make_video, tmp_path):
    src = make_folder(make_video, classes=("a", "b", "c"), groups=5, clips=2, n=6)
    result = prepare(src, tmp_path / "prep", frames=4, size=16, quiet=True, workers=1)
    sides: dict[str, set] = {}
    for r in result.rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values()), sides
    for c in ("a", "b", "c"):
        test = sum(r["split"] == "test" for r in result.rows if r["label"] == c)
        assert test == 2  # one group of 2 out of 10 clips: exactly 20 %


def test_split_changes_with_seed(make_video, tmp_path):
    src = make_folder(make_video, classes=("a",), groups=6, clips=1, n=6)
    picks = set()
    for seed in range(6):
        rows = prepare(
            src, tmp_path / f"p{seed}", frames=2, size=16, seed=seed, quiet=True, workers=1
        ).rows
        picks.add(tuple(r["split"] for r in rows))
    assert len(picks) > 1


def test_ucf101_official_split(make_video, tmp_path):
    names = {"ApplyEyeMakeup": [(1, 1), (1, 2), (8, 1)], "Archery": [(2, 1), (9, 1), (9, 2)]}
    for c, clips in names.items():
        for g, i in clips:
            make_video(f"UCF101/{c}/v_{c}_g{g:02d}_c{i:02d}.mp4", n=6)
    splits = tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    # The official files name .avi files; the test tree holds .mp4 files: matched by stem.
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g09_c01.avi 2\n"
        "Archery/v_Archery_g09_c02.avi 2\n"
    )
    (splits / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nApplyEyeMakeup/v_ApplyEyeMakeup_g01_c02.avi\n"
        "Archery/v_Archery_g02_c01.avi\n"
    )
    result = runner.invoke(
        app,
        [
            "prepare",
            str(tmp_path / "UCF101"),
            "--out",
            str(tmp_path / "o"),
            "-q",
            "--frames",
            "4",
            "--size",
            "16",
            "--ucf101-splits",
            str(splits),
            "--fold",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {r["video_id"]: r for r in read_manifest(tmp_path / "o")}
    assert rows["v_ApplyEyeMakeup_g01_c02"]["split"] == "test"
    assert rows["v_ApplyEyeMakeup_g08_c01"]["split"] == "train"
    assert rows["v_Archery_g09_c02"]["split"] == "train"
    assert rows["v_Archery_g02_c01"]["split"] == "test"
    assert rows["v_Archery_g02_c01"]["label_index"] == 1
    assert rows["v_ApplyEyeMakeup_g01_c01"]["group"] == "g01"


def test_ucf101_missing_split_file_is_clear(make_video, tmp_path):
    make_video("U/A/v_A_g01_c01.mp4", n=4)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "classInd.txt").write_text("1 A\n")
    with pytest.raises(Exception, match="trainlist01.txt"):
        prepare(tmp_path / "U", tmp_path / "o", ucf101_splits=tmp_path / "splits", quiet=True)


def test_csv_source_with_split_and_group(make_video, tmp_path):
    a = make_video("clips/one.mp4", n=8)
    b = make_video("clips/two.mp4", n=8, seed=1)
    c = make_video("clips/three.mp4", n=8, seed=2)
    (tmp_path / "list.csv").write_text(
        "path,label,split,group\n"
        f"clips/{a.name},jump,train,s1\n{b},wave,test,s2\nclips/{c.name},jump,test,s3\n"
    )
    result = prepare(tmp_path / "list.csv", tmp_path / "o", frames=4, size=16, quiet=True)
    rows = {r["video_id"]: r for r in result.rows}
    assert [rows[k]["split"] for k in ("one", "two", "three")] == ["train", "test", "test"]
    assert rows["two"]["group"] == "s2" and result.classes == ["jump", "wave"]


def test_frames_auto_takes_longest_sampled_length(make_video, tmp_path):
    make_video("src/a/v_a_g01_c01.mp4", n=12)
    make_video("src/a/v_a_g02_c01.mp4", n=30)
    result = prepare(
        tmp_path / "src", tmp_path / "o", frames="auto", interval=3, size=16, quiet=True
    )
    assert result.frames == 10
    lengths = sorted(r["sampled_frames"] for r in result.rows)
    assert lengths == [4, 10]


def test_export_frames_writes_jpegs_and_csv(make_video, tmp_path):
    make_video("src/a/v_a_g01_c01.mp4", n=5)
    make_video("src/b/v_b_g01_c01.mp4", n=30)
    out = tmp_path / "o"
    prepare(tmp_path / "src", out, frames=8, size=24, export_frames=True, quiet=True)
    with open(out / "frames.csv") as fh:
        rows = {r["video_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"v_a_g01_c01", "v_b_g01_c01"}
    assert rows["v_a_g01_c01"]["frame_count"] == "5" and rows["v_a_g01_c01"]["class"] == "a"
    jpgs = sorted((out / "frames" / "v_b_g01_c01").glob("*.jpg"))
    assert [p.name for p in jpgs[:2]] == ["000001.jpg", "000002.jpg"] and len(jpgs) == 8
    import cv2

    assert cv2.imread(str(jpgs[0])).shape == (24, 24, 3)


def test_rerun_reuses_everything(make_video, tmp_path):
    src = make_folder(make_video, groups=2, clips=2, n=8)
    first = prepare(src, tmp_path / "o", frames=4, size=16, quiet=True)
    second = prepare(src, tmp_path / "o", frames=4, size=16, quiet=True)
    assert second.reused == len(first.rows) == 8
    assert [r["split"] for r in first.rows] == [r["split"] for r in second.rows]
    changed = prepare(src, tmp_path / "o", frames=6, size=16, quiet=True)
    assert changed.reused == 0  # other options: redone, not mixed with the old cache


def test_resume_after_kill(make_video, tmp_path):
    for i in range(24):
        make_video(f"src/c{i % 2}/v_c{i % 2}_g{i:02d}_c01.mp4", n=60, width=160, height=120, seed=i)
    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "vidclass",
        "prepare",
        str(tmp_path / "src"),
        "--out",
        str(out),
        "--workers",
        "1",
        "--frames",
        "16",
        "--size",
        "64",
        "--crop",
        "center",  # what the API calls below default to
        "--fps",
        "0",  # ... and spread over the video, as they do
        "-q",
    ]
    # SIGKILL in the middle of writing the fifth video's frames: placed by counting writes, not
    # by a timer that a fast machine outruns, and leaving a half-written temporary behind.
    proc = subprocess.run([sys.executable, "-c", cli_killed_mid_write(5), *cmd[3:]], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert list((out / "cache").glob(".*.tmp")), "the kill must leave a half-written temporary"
    done_before = len(list((out / "cache").glob("*.json")))
    assert 0 < done_before < 24, "the run must be killed mid-way for this test to mean anything"
    assert not (out / "manifest.csv").exists()
    for npy in (out / "cache").glob("*.npy"):
        assert np.load(npy).shape == (16, 64, 64, 3)  # never a half-written file
    resumed = prepare(tmp_path / "src", out, frames=16, size=64, quiet=True)
    assert resumed.reused >= done_before - 1 and not resumed.failed and len(resumed.rows) == 24
    assert not list(out.rglob(".*.tmp"))
    fresh = prepare(tmp_path / "src", tmp_path / "fresh", frames=16, size=64, quiet=True)
    for r in fresh.rows:
        a = np.load(out / "cache" / f"{r['video_id']}.npy")
        b = np.load(tmp_path / "fresh" / "cache" / f"{r['video_id']}.npy")
        assert np.array_equal(a, b)
    assert [r["split"] for r in resumed.rows] == [r["split"] for r in fresh.rows]


def test_real_clips_all_prepared(realclips, tmp_path):
    result = prepare(
        _realclips_csv(realclips, tmp_path),
        tmp_path / "o",
        frames=16,
        size=112,
        quiet=True,
        workers=2,
    )
    assert not result.failed, result.failed
    with open(realclips / "labels.csv") as fh:
        truth = {r["filename"]: r for r in csv.DictReader(fh)}
    assert len(result.rows) == len(truth)
    for r in result.rows:
        t = truth[Path(r["path"]).name]
        assert (int(r["width"]), int(r["height"])) == (int(t["width"]), int(t["height"]))
        assert float(r["fps"]) == pytest.approx(float(t["fps"]), rel=0.01)
        assert r["sampled_frames"] == 16
        clip = np.load(tmp_path / "o" / "cache" / f"{r['video_id']}.npy")
        assert clip.shape == (16, 112, 112, 3)
        assert clip.std() > 5  # real picture content, not a blank or padded clip


def _realclips_csv(realclips: Path, tmp_path: Path) -> Path:
    with open(realclips / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    out = tmp_path / "real.csv"
    out.write_text(
        "path,label\n" + "".join(f"{realclips / r['filename']},{r['label']}\n" for r in rows)
    )
    return out


def test_interval_replaces_the_default_rate_and_fps_0_spreads(make_video, tmp_path):
    """The CLI's default 12.5 fps must give way to --interval (not clash with it), and
    --fps 0 must mean frames spread over the video, each recorded as such."""
    src = make_folder(make_video, groups=2, clips=1, n=10)
    for name, extra, interval, fps in (
        ("i", ["--interval", "2"], 2, None),
        ("s", ["--fps", "0"], None, None),
    ):
        out = tmp_path / name
        args = ["prepare", str(src), "--out", str(out), "-q", "--frames", "4", "--size", "32"]
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        meta = json.loads((out / "prepared.json").read_text())
        assert (meta["interval"], meta["sample_fps"]) == (interval, fps)
