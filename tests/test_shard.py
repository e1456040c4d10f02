"""Issue 16: `prepare --shard I/N` run as concurrent processes into one folder, then `--merge`,
gives what one `prepare` gives; a missing shard is named; a killed shard resumes; the frozen
feature cache fills in shards to the same bytes, and `train` then encodes nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import cli_killed_mid_write
from vidclass.cli import app
from vidclass.data.cache import remove_stale_temporaries
from vidclass.data.derived import open_derived
from vidclass.data.prepare import merge_shards, prepare
from vidclass.data.shard import parse_shard, shard_key, shard_of
from vidclass.data.sources import discover
from vidclass.errors import UserError

runner = CliRunner()
OPTIONS = dict(frames=6, size=16, test_fraction=0.25, val_fraction=0.25, seed=3)
CLI_OPTIONS = ["--frames", "6", "--size", "16", "--test-fraction", "0.25"]
CLI_OPTIONS += ["--val-fraction", "0.25", "--seed", "3", "--workers", "1", "-q"]
CLI_OPTIONS += ["--crop", "center", "--fps", "0"]  # what the API calls below default to
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def make_source(make_video, videos: int = 24) -> Path:
    """UCF101-style names over 3 classes and videos / 3 groups, lengths 10-14 frames."""
    for k in range(videos):
        c = ("left", "right", "up")[k % 3]
        last = make_video(f"src/{c}/v_{c}_g{k // 3:02d}_c01.mp4", n=10 + k % 5, seed=k)
    return last.parents[1]


def prepare_cmd(src: Path, out: Path, shard: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vidclass", "prepare", str(src), "--out", str(out),
            "--shard", shard, *CLI_OPTIONS, *extra]  # fmt: skip


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def assert_same_dataset(one: Path, merged: Path) -> None:
    """The same manifest rows in the same order, split, prepared.json and cache bytes."""
    for name in ("manifest.csv", "prepared.json"):
        assert (one / name).read_text() == (merged / name).read_text(), name
    assert files_of(one / "cache") == files_of(merged / "cache")


def test_shard_of_is_a_stable_hash_of_the_relative_path(make_video, tmp_path):
    # sha1, not Python's per-interpreter hash(): fixed values, in every process.
    assert [shard_of(f"left/v_left_g{g:02d}_c01.mp4", 4) for g in range(6)] == [
        shard_of(f"left/v_left_g{g:02d}_c01.mp4", 4) for g in range(6)
    ]
    code = "from vidclass.data.shard import shard_of; print(shard_of('a/b.mp4', 1000))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**ENV, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}  # fmt: skip
    assert runs == {f"{shard_of('a/b.mp4', 1000)}\n"}
    src = make_source(make_video, 9)
    _, videos, _, _ = discover(src)
    keys = [shard_key(v, src) for v in videos]
    assert keys[0] == "left/v_left_g00_c01.mp4"
    # Another machine, listing in another order, picks the same videos.
    assert {k for k in keys if shard_of(k, 3) == 1} == {
        k for k in reversed(keys) if shard_of(k, 3) == 1
    }


def test_three_concurrent_shards_and_merge_equal_one_prepare(make_video, tmp_path):
    src = make_source(make_video)
    one = tmp_path / "one"
    prepare(src, one, export_frames=True, quiet=True, workers=1, **OPTIONS)
    merged = tmp_path / "merged"
    procs = [
        subprocess.Popen(prepare_cmd(src, merged, f"{i}/3", "--export-frames"), env=ENV)
        for i in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert not (merged / "manifest.csv").exists() and not (merged / "prepared.json").exists()
    sizes = [len((merged / f"manifest.shard-{i}-of-3.csv").read_text().splitlines()) - 2
             for i in range(3)]  # fmt: skip
    assert sum(sizes) == 24 and all(sizes), sizes
    result = runner.invoke(app, ["prepare", str(merged), "--merge"])
    assert result.exit_code == 0, result.output
    # the summary says where the videos came from, not "reused from an earlier run"
    assert "24 ok, 0 failed, merged from 3 shards" in " ".join(result.output.split())
    assert_same_dataset(one, merged)
    for name in ("frames.csv",):
        assert (one / name).read_text() == (merged / name).read_text()
    assert files_of(one / "frames") == files_of(merged / "frames")
    assert not list(merged.rglob(".*.tmp"))


def test_shards_of_a_csv_with_its_own_split_merge_equal_one_prepare(make_video, tmp_path):
    """The given-split path (val carved out of the CSV's train side) merges the same too."""
    lines = ["path,label,split,group"]
    for k in range(12):
        c = ("a", "b")[k % 2]
        make_video(f"clips/{c}{k}.mp4", n=10 + k % 3, seed=k)
        lines.append(f"clips/{c}{k}.mp4,{c},{'test' if k >= 8 else 'train'},s{k // 2}")
    csv_src = tmp_path / "list.csv"
    csv_src.write_text("\n".join(lines) + "\n")
    prepare(csv_src, tmp_path / "one", quiet=True, workers=1, **OPTIONS)
    for i in range(3):
        prepare(csv_src, tmp_path / "sh", shard=(i, 3), quiet=True, workers=1, **OPTIONS)
    merged = merge_shards(tmp_path / "sh")
    assert merged.split_mode == "csv" and {r["split"] for r in merged.rows} == {
        "train",
        "val",
        "test",
    }
    assert_same_dataset(tmp_path / "one", tmp_path / "sh")


def test_a_missing_shard_makes_merge_fail_naming_it(make_video, tmp_path):
    src = make_source(make_video, 12)
    out = tmp_path / "o"
    for i in (0, 2):
        prepare(src, out, shard=(i, 3), quiet=True, workers=1, **OPTIONS)
    with pytest.raises(UserError, match=r"1 of 3 shards not finished: 1/3"):
        merge_shards(out)
    proc = subprocess.run([sys.executable, "-m", "vidclass", "prepare", str(out), "--merge"],
                          capture_output=True, text=True, env=ENV, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert "1/3" in proc.stderr and "--shard I/3" in proc.stderr
    assert not (out / "manifest.csv").exists()
    with pytest.raises(UserError, match="not found"):  # a mistyped folder is named as such
        merge_shards(tmp_path / "no-such-folder")


def test_shards_prepared_with_other_options_are_refused(make_video, tmp_path):
    src = make_source(make_video, 6)
    out = tmp_path / "o"
    prepare(src, out, shard="0/2", quiet=True, workers=1, **OPTIONS)
    prepare(src, out, shard="1/2", quiet=True, workers=1, **{**OPTIONS, "size": 24})
    with pytest.raises(UserError, match=r"shard 1 has sampling=.*'size': 24"):
        merge_shards(out)
    prepare(src, out, shard="0/3", quiet=True, workers=1, **OPTIONS)
    with pytest.raises(UserError, match="different shard counts"):
        merge_shards(out)


def test_a_shard_over_an_unsharded_prepare_removes_its_stale_dataset_files(make_video, tmp_path):
    """The unsharded prepared.json would describe 16 px clips while the shard rewrites the
    cache at 24 px: gone as the shard starts, written again by the merge."""
    from vidclass.data.dataset import VideoDataset

    src = make_source(make_video, 6)
    out = tmp_path / "o"
    prepare(src, out, quiet=True, workers=1, export_frames=True, **OPTIONS)
    assert (out / "prepared.json").is_file() and (out / "frames.csv").is_file()
    resized = {**OPTIONS, "size": 24}
    prepare(src, out, shard="0/2", quiet=True, workers=1, **resized)
    for name in ("prepared.json", "manifest.csv", "frames.csv"):
        assert not (out / name).exists(), name
    with pytest.raises(UserError, match="--merge"):
        VideoDataset(out, split=None)
    prepare(src, out, shard="1/2", quiet=True, workers=1, **resized)
    merge_shards(out)
    ds = VideoDataset(out, split=None)
    assert ds.config["size"] == 24 and len(ds) == 6
    assert {tuple(ds.load_frames(i).shape[1:3]) for i in range(len(ds))} == {(24, 24)}


def test_an_unsharded_prepare_over_shards_removes_their_manifests(make_video, tmp_path):
    """The mirror image: shards at 16 px, merged, then one prepare at 24 px. The old shard
    manifests would let a later --merge write the 16 px prepared.json over 24 px clips."""
    from vidclass.data.dataset import VideoDataset

    src = make_source(make_video, 6)
    out = tmp_path / "o"
    for i in range(2):
        prepare(src, out, shard=f"{i}/2", quiet=True, workers=1, **OPTIONS)
    merge_shards(out)
    prepare(src, out, quiet=True, workers=1, **{**OPTIONS, "size": 24})
    assert not list(out.glob("manifest.shard-*.csv"))
    with pytest.raises(UserError):
        merge_shards(out)
    assert VideoDataset(out, split=None).config["size"] == 24


def test_train_on_unmerged_shards_says_to_run_merge(make_video, tmp_path):
    src = make_source(make_video, 6)
    out = tmp_path / "o"
    prepare(src, out, shard="0/2", quiet=True, workers=1, **OPTIONS)
    result = runner.invoke(app, ["train", str(out), "--model", "single_frame", "-q"])
    assert result.exit_code == 1 and isinstance(result.exception, UserError)
    message = str(result.exception)
    assert "not merged" in message and f"vidclass prepare {out} --merge" in message


def test_a_killed_shard_rerun_completes_and_merges_equal(make_video, tmp_path):
    src = make_source(make_video)
    out = tmp_path / "o"
    cmd = prepare_cmd(src, out, "0/2")
    killed = subprocess.run([sys.executable, "-c", cli_killed_mid_write(4), *cmd[3:]], env=ENV,
                            timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert len(list((out / "cache").glob("*.json"))) == 3  # counted, not timed
    assert list((out / "cache").glob(".*.tmp")), "the kill leaves a half-written temporary"
    assert not (out / "manifest.shard-0-of-2.csv").exists()
    prepare(src, out, shard=(1, 2), quiet=True, workers=1, **OPTIONS)
    with pytest.raises(UserError, match="0/2"):
        merge_shards(out)
    rerun = prepare(src, out, shard=(0, 2), quiet=True, workers=1, **OPTIONS)
    assert rerun.reused == 3 and not rerun.failed
    merge_shards(out)
    one = tmp_path / "one"
    prepare(src, one, quiet=True, workers=1, **OPTIONS)
    assert_same_dataset(one, out)
    assert not list(out.rglob(".*.tmp"))


def test_a_shard_sweeps_only_its_own_temporaries(make_video, tmp_path):
    src = make_source(make_video, 12)
    out = tmp_path / "o"
    _, videos, _, _ = discover(src)
    owner = {v.video_id: shard_of(shard_key(v, src), 2) for v in videos}
    theirs = next(v for v, s in owner.items() if s == 1)
    mine = next(v for v, s in owner.items() if s == 0)
    (out / "cache").mkdir(parents=True)
    # Another machine's pid: a temporary shard 1 is writing right now.
    running = out / "cache" / f".{theirs}.npy.4242.tmp"
    stale = out / "cache" / f".{mine}.npy.4242.tmp"
    other_marker = out / ".manifest.shard-1-of-2.csv.4242.tmp"
    for p in (running, stale, other_marker):
        p.write_bytes(b"x")
    prepare(src, out, shard=(0, 2), quiet=True, workers=1, **OPTIONS)
    assert running.exists() and other_marker.exists() and not stale.exists()
    remove_stale_temporaries(out)  # one run owning the whole folder sweeps everything
    assert not running.exists() and not other_marker.exists()


@pytest.mark.parametrize("text", ["0/0", "3/3", "a/b", "-1/2", "1", "1/2/3", ""])
def test_bad_shard_values_are_user_errors(text, tmp_path):
    with pytest.raises(UserError, match="expected I/N with 0 <= I < N"):
        parse_shard(text)


def test_bad_shard_on_the_command_line_exits_1(make_video, tmp_path):
    src = make_source(make_video, 3)
    for bad in ("3/3", "a/b"):
        proc = subprocess.run(prepare_cmd(src, tmp_path / "o", bad), capture_output=True,
                              text=True, env=ENV, timeout=120)  # fmt: skip
        assert proc.returncode == 1 and "expected I/N" in proc.stderr, proc.stderr
    with pytest.raises(UserError, match="--frames auto"):
        prepare(src, tmp_path / "o", frames="auto", interval=2, shard="0/2", quiet=True)


def _open_and_write(k: int, parent: Path, barrier: threading.Barrier, folders: list) -> None:
    barrier.wait()
    folder = open_derived(parent, "x", {"k": 1})
    (folder / f"{k}.npy").write_bytes(b"x")
    folders.append(folder)


def test_open_derived_from_many_threads_keeps_every_file(tmp_path):
    """Every opener gets the one folder and nobody's file is swept away by another's open
    (20 rounds of 8 threads let loose at once: a race shows within a few)."""
    for round_ in range(20):
        parent = tmp_path / str(round_) / "features"
        barrier, folders = threading.Barrier(8), []
        args = [(k, parent, barrier, folders) for k in range(8)]
        threads = [threading.Thread(target=_open_and_write, args=a) for a in args]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (folder,) = set(folders)
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted([f"{k}.npy" for k in range(8)] + ["spec.json"]), round_
        assert [p.name for p in parent.iterdir()] == [folder.name]


FROZEN = ["--model", "single_frame", "--backbone", "small", "--freeze-backbone", "--seed", "2"]


def test_sharded_feature_fill_equals_one_fill_and_train_reads_it(tiny_data, tmp_path):
    from vidclass.train.config import TrainConfig
    from vidclass.train.features import fill_features
    from vidclass.train.loop import train

    one, sharded = (
        shutil.copytree(tiny_data, tmp_path / name, ignore=shutil.ignore_patterns("features"))
        for name in ("one", "sharded")
    )
    cfg = TrainConfig(
        model="single_frame",
        options={"backbone": "small", "freeze_backbone": True},
        seed=2,
        epochs=1,
        batch_size=4,
    )
    whole = fill_features(one, cfg, quiet=True)
    assert whole.encoded == whole.videos == 24  # train and val, not test
    cmd = [sys.executable, "-m", "vidclass", "features", str(sharded), *FROZEN, "-q"]
    procs = [subprocess.Popen([*cmd, "--shard", f"{i}/3"], env=ENV) for i in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    expected = files_of(one / "features")
    assert files_of(sharded / "features") == expected and len(expected) == 25

    before = {p: p.stat().st_mtime_ns for p in (sharded / "features").rglob("*")}
    train(sharded, tmp_path / "run", cfg, quiet=True)
    after = {p: p.stat().st_mtime_ns for p in (sharded / "features").rglob("*")}
    assert after == before, "train found every clip encoded: the cache it reads"
    again = fill_features(sharded, cfg, shard=(1, 3), quiet=True)
    assert again.encoded == 0 and again.videos > 0
    with pytest.raises(UserError, match="no features to cache"):
        fill_features(one, TrainConfig(model="single_frame", options={"backbone": "small"}))
    assert np.abs(np.load(next((one / "features").rglob("*.npy")))).sum() > 0
