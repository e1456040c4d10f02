"""The embedded default dataset: files, metadata, determinism and the time-reversed pair property."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from vidclass.errors import UserError
from vidclass.synth.clips import GROUP_REGEX, generate, group_sizes, render_clip
from vidclass.synth.labels import CLASSES, PAIRS
from vidclass.synth.scene import sample_scene
from vidclass.video.writer import write_video

SIZE = (64, 48)
PER_CLASS = 2


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.mp4"))
    }


def read_metadata(root: Path) -> list[dict[str, str]]:
    with open(root / "metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "data"
    summary = generate(out, per_class=PER_CLASS, seed=3, size=SIZE, fps=10, workers=2, quiet=True)
    return out, summary


def test_files_have_ucf101_style_names_and_groups(dataset: tuple[Path, dict]) -> None:
    out, summary = dataset
    assert summary["num_videos"] == len(CLASSES) * PER_CLASS
    assert summary["classes"] == CLASSES and summary["out"] == str(out)
    assert summary["seconds"] > 0
    files = sorted(out.rglob("*.mp4"))
    assert len(files) == len(CLASSES) * PER_CLASS
    for label in CLASSES:
        names = sorted(p.name for p in (out / label).glob("*.mp4"))
        groups = {re.match(GROUP_REGEX, n).group(1) for n in names}  # type: ignore[union-attr]
        assert len(names) == PER_CLASS
        assert all(re.fullmatch(rf"v_{label}_g\d\d_c\d\d\.mp4", n) for n in names)
        assert groups == {"g01", "g02"}  # at least two groups (scenes) per class
    assert not list(out.rglob("*.part"))


def test_videos_decode_to_expected_frames_and_size(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    for row in read_metadata(out):
        with av.open(str(out / row["path"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == int(row["num_frames"])
        assert frames[0].shape == (SIZE[1], SIZE[0], 3)


def test_metadata_and_classes_json(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    rows = read_metadata(out)
    assert list(rows[0]) == ["path", "label", "group", "pair", "num_frames", "fps", "seed"]
    assert len(rows) == len(CLASSES) * PER_CLASS
    twins = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}
    for row in rows:
        assert (out / row["path"]).is_file()
        assert row["path"].startswith(row["label"] + "/")
        assert re.match(GROUP_REGEX, Path(row["path"]).name).group(1) == row["group"]  # type: ignore[union-attr]
        assert row["pair"] == twins.get(row["label"], "")
        assert row["fps"] == "10" and row["seed"] == "3"
    info = json.loads((out / "classes.json").read_text())
    assert info["classes"] == CLASSES and len(CLASSES) == 13 and CLASSES[-1] == "background"
    assert [tuple(p) for p in info["pairs"]] == PAIRS
    assert {"wave", "jump", "background"} <= set(CLASSES) - set(twins)


def test_lengths_vary(dataset: tuple[Path, dict]) -> None:
    lengths = [int(r["num_frames"]) for r in read_metadata(dataset[0])]
    assert len(set(lengths)) >= 6
    # 1.5-4 s of motion at 10 fps, plus up to a quarter of it still on each side
    assert min(lengths) >= 15 and max(lengths) <= 60


def test_same_seed_same_bytes_whatever_workers(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    again = tmp_path / "again"
    generate(again, per_class=PER_CLASS, seed=3, size=SIZE, fps=10, workers=1, quiet=True)
    assert digests(again) == digests(out)
    assert (again / "metadata.csv").read_bytes() == (out / "metadata.csv").read_bytes()


def test_different_seed_different_videos(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    other = tmp_path / "other"
    generate(other, per_class=1, seed=4, size=SIZE, fps=10, workers=2, quiet=True)
    theirs, ours = digests(other), digests(out)
    assert theirs and all(ours[name] != digest for name, digest in theirs.items())


def _pair_clips(forward: str, backward: str, seed: int, fps: int = 10):
    scene = sample_scene(np.random.default_rng(seed), *SIZE)
    fwd = render_clip(forward, scene, np.random.default_rng(seed + 1), fps)
    bwd = render_clip(backward, scene, np.random.default_rng(seed + 1), fps)
    return fwd, bwd


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_twin_is_the_exact_reverse(forward: str, backward: str) -> None:
    for seed in (0, 10):
        fwd, bwd = _pair_clips(forward, backward, seed)
        # the same frames as a multiset: a single frame cannot tell the pair apart
        key = [f.tobytes() for f in fwd.frames]
        assert sorted(key) == sorted(f.tobytes() for f in bwd.frames)
        # ... and exactly reversed in time
        np.testing.assert_array_equal(bwd.frames, fwd.frames[::-1])
        np.testing.assert_array_equal(bwd.boxes, fwd.boxes[::-1])
        # but not a palindrome: the order carries the class
        start, end = fwd.frames[0].astype(int), fwd.frames[-1].astype(int)
        assert np.abs(start - end).mean() > 3


def test_twin_reverse_survives_encoding(tmp_path: Path) -> None:
    """Intra-only constant-QP coding keeps the property on the decoded frames too."""
    fwd, bwd = _pair_clips("open_door", "close_door", seed=5)
    write_video(tmp_path / "fwd.mp4", fwd.frames, 10)
    write_video(tmp_path / "bwd.mp4", bwd.frames, 10)
    np.testing.assert_array_equal(decode(tmp_path / "bwd.mp4"), decode(tmp_path / "fwd.mp4")[::-1])


@pytest.mark.parametrize(("label", "axis", "sign"), [("move_right", 0, 1), ("rise", 1, -1)])
def test_motion_spans_the_clip(label: str, axis: int, sign: int) -> None:
    """The motion runs over most of the clip, so any 16 sampled frames show it."""
    scene = sample_scene(np.random.default_rng(1), 160, 120)
    clip = render_clip(label, scene, np.random.default_rng(2), 15)
    centre = (clip.boxes[:, axis] + clip.boxes[:, axis + 2]) / 2 * sign
    steps = np.diff(centre[np.linspace(0, len(centre) - 1, 16).round().astype(int)])
    assert (steps > -2).all() and centre[-1] - centre[0] > 40  # monotonic up to camera jitter
    assert (np.abs(steps) > 0.3).sum() >= 12


def test_hold_keeps_the_first_and_last_pose() -> None:
    """Held frames show the actor still in the action's first / last pose, also for a twin
    class, whose first pose is its forward motion's last."""
    scene = sample_scene(np.random.default_rng(3), 160, 120)
    for label in ("move_right", "move_left"):
        plain = render_clip(label, scene, np.random.default_rng(4), 15)
        held = render_clip(label, scene, np.random.default_rng(4), 15, hold=(6, 4))
        assert len(held.frames) == len(plain.frames) + 10
        centre = (held.boxes[:, 0] + held.boxes[:, 2]) / 2
        # still up to camera jitter (< 2 px), then moving across the frame, then still again
        assert np.ptp(centre[:7]) < 3 and np.ptp(centre[-5:]) < 3
        assert abs(centre[-1] - centre[0]) > 40
        assert np.sign(centre[-1] - centre[0]) == (1 if label == "move_right" else -1)


def test_background_clips_hold_still_or_cut_once() -> None:
    """No motion: one pose held, or (as between two actions of a long video) one cut from
    a held pose to another held pose."""
    poses, cuts = set(), 0
    for seed in range(12):
        scene = sample_scene(np.random.default_rng(seed), 160, 120)
        clip = render_clip("background", scene, np.random.default_rng(seed + 50), 15)
        assert len(clip.frames) >= 8
        step = np.abs(np.diff(clip.boxes, axis=0)).max(1)
        jumps = np.flatnonzero(step > 4.0)  # camera jitter moves a box by < 1 px per frame
        assert len(jumps) <= 1
        for part in np.split(clip.boxes, jumps + 1):  # still between cuts, up to jitter
            assert np.ptp(part, axis=0).max() < 4.0
        cuts += len(jumps)
        poses.add(tuple(np.round(clip.boxes[0]).astype(int)))
    assert len(poses) == 12 and 2 <= cuts <= 10


def test_slack_adds_still_frames_around_the_motion() -> None:
    scene = sample_scene(np.random.default_rng(5), 160, 120)
    plain = render_clip("move_right", scene, np.random.default_rng(6), 15)
    lengths = set()
    for seed in range(6):
        clip = render_clip("move_right", scene, np.random.default_rng(seed), 15, slack=0.25)
        centre = (clip.boxes[:, 0] + clip.boxes[:, 2]) / 2
        moving = np.flatnonzero(np.abs(np.diff(centre)) > 1.5)
        assert moving.size and centre[-1] - centre[0] > 40
        lengths.add(len(clip.frames))
    assert len(lengths) > 1 and max(lengths) > len(plain.frames) // 2
    # a twin rendered from the same random state is still the exact reverse
    fwd = render_clip("grow", scene, np.random.default_rng(8), 15, slack=0.25)
    bwd = render_clip("shrink", scene, np.random.default_rng(8), 15, slack=0.25)
    np.testing.assert_array_equal(bwd.frames, fwd.frames[::-1])


def test_without_background_the_twelve_actions(tmp_path: Path) -> None:
    summary = generate(
        tmp_path / "d", per_class=1, size=SIZE, fps=6, quiet=True, workers=1, background=False
    )
    assert summary["classes"] == CLASSES[:-1] and len(summary["classes"]) == 12
    assert not (tmp_path / "d" / "background").exists()


def test_long_videos_mix_gaps_no_gaps_short_and_long_actions() -> None:
    from vidclass.synth.long import render_long

    durations, gaps = [], []
    for index in range(4):
        frames, segments = render_long(0, index, size=(96, 72), fps=10, seconds=60)
        _, repeated = render_long(0, index, size=(96, 72), fps=10, seconds=60, repeats=(2, 2))
        assert min(s["t_end"] - s["t_start"] for s in repeated) >= 3.0
        assert len(frames) >= 600
        durations += [s["t_end"] - s["t_start"] for s in segments]
        gaps += [b["t_start"] - a["t_end"] for a, b in zip(segments, segments[1:], strict=False)]
        assert all(s["label"] in CLASSES[:-1] for s in segments)
        assert all(a["label"] != b["label"] for a, b in zip(segments, segments[1:], strict=False))
    assert min(durations) < 2 and max(durations) > 3.5
    assert min(gaps) == 0 and max(gaps) >= 1.5 and all(g >= 0 for g in gaps)


def test_grow_box_grows() -> None:
    scene = sample_scene(np.random.default_rng(7), 160, 120)
    boxes = render_clip("grow", scene, np.random.default_rng(8), 15).boxes
    width = boxes[:, 2] - boxes[:, 0]
    assert width[-1] > 2.5 * width[0] and (np.diff(width) > -1).all()


def test_group_sizes() -> None:
    # One clip of each class per scene: a scene never tells the class.
    assert group_sizes(20) == [1] * 20
    assert group_sizes(2) == [1, 1]
    assert group_sizes(1) == [1]


def test_write_video_round_trips(tmp_path: Path) -> None:
    t, h, w = 7, 32, 48
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.stack(
        [np.stack([(xx * 5 + 20 * i) % 256, yy * 7, np.full_like(xx, 90)], -1) for i in range(t)]
    ).astype(np.uint8)
    path = tmp_path / "sub" / "x.mp4"
    write_video(path, frames, fps=12)
    decoded = decode(path)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 4
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == 12
    assert [p.name for p in path.parent.iterdir()] == ["x.mp4"]
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", frames[:, :, :47], fps=12)
    assert not (tmp_path / "odd.mp4").exists()


def test_rerun_with_fewer_videos_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "d"
    generate(out, per_class=2, size=SIZE, fps=6, quiet=True, workers=1)
    summary = generate(out, per_class=1, size=SIZE, fps=6, quiet=True, workers=1)
    assert len(list(out.rglob("*.mp4"))) == summary["num_videos"] == len(CLASSES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "long"},
        {"kind": "nope"},
        {"per_class": 0},
        {"size": (63, 48)},
        {"size": (16, 16)},
        {"fps": 0},
        {"workers": 0},
    ],
)
def test_bad_arguments_raise_user_error(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(UserError):
        generate(tmp_path / "d", quiet=True, **kwargs)


def test_refuses_foreign_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(UserError, match="empty"):
        generate(tmp_path, per_class=1, size=SIZE, quiet=True)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_unknown_label_is_a_user_error() -> None:
    scene = sample_scene(np.random.default_rng(0), *SIZE)
    with pytest.raises(UserError, match="unknown class"):
        render_clip("dance", scene, np.random.default_rng(0), 10)


def test_point8_synth_refuses_options_of_other_kinds(tmp_path: Path) -> None:
    """Every option of `synth` is checked against every kind: one the kind does not use is
    exit code 1 naming the option and the kinds it applies to (it used to be ignored)."""
    import subprocess
    import sys

    import typer
    from typer.testing import CliRunner

    from vidclass.cli import app
    from vidclass.cli.data import SYNTH_KINDS, SYNTH_OPTIONS

    command = typer.main.get_command(app).get_command(None, "synth")  # type: ignore[attr-defined]
    for_all = {"--out", "--kind", "--seed", "--size", "--quiet"}
    assert {p.opts[0] for p in command.params} - for_all == {o.split("/")[0] for o in SYNTH_OPTIONS}
    args = {
        "--per-class": ["--per-class", str(PER_CLASS)],
        "--workers": ["--workers", "2"],  # given, even at its default: still an error
        "--background/--no-background": ["--no-background"],
        "--count": ["--count", "1"],
        "--seconds": ["--seconds", "5"],
        "--fps": ["--fps", "15"],
    }
    out = tmp_path / "never"
    refused = []
    for option, kinds in SYNTH_OPTIONS.items():
        for kind in sorted(set(SYNTH_KINDS) - set(kinds)):
            res = CliRunner().invoke(
                app, ["synth", "--kind", kind, "--out", str(out), "-q", *args[option]]
            )
            assert res.exit_code == 1, (option, kind, res.output)
            assert isinstance(res.exception, UserError)
            message = str(res.exception)
            assert option in message and f"--kind {', '.join(kinds)}" in message, message
            assert not out.exists()  # refused before anything is rendered
            refused.append((option, kind))
    assert ("--fps", "tubes") in refused and ("--workers", "multi") in refused
    assert ("--per-class", "long") in refused and ("--seconds", "clips") in refused
    proc = subprocess.run(
        [sys.executable, "-m", "vidclass", "synth", "--kind", "tubes", "--out", str(out),
         "--fps", "30"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and "--fps does not apply to --kind tubes" in proc.stderr


def test_synth_defaults_are_the_generators_own(tmp_path: Path, monkeypatch) -> None:
    """An option left out is not passed, so each kind renders its generator's default recipe
    (the CLI once made 1 window video where generate_windows makes 40, and 60 s scenes where
    generate_multi makes 30 s); --help shows those defaults, kind by kind."""
    import functools
    import inspect

    from typer.testing import CliRunner

    from vidclass.cli import app
    from vidclass.cli import data as cli_data

    for kind, real in list(cli_data.GENERATORS.items()):
        calls = []

        @functools.wraps(real)
        def fake(out, calls=calls, **kwargs):
            calls.append(kwargs)
            return {"num_videos": 0, "seconds": 0.0, "classes": []}

        monkeypatch.setitem(cli_data.GENERATORS, kind, fake)
        res = CliRunner().invoke(app, ["synth", "--kind", kind, "--out", str(tmp_path), "-q"])
        assert res.exit_code == 0, res.output
        assert set(calls[0]) == {"size", "seed", "quiet"}, (kind, calls[0])
        for option, kinds in cli_data.SYNTH_OPTIONS.items():
            if kind in kinds:
                name = cli_data.keyword(option)
                assert cli_data.synth_default(kind, option) == (
                    inspect.signature(real).parameters[name].default
                )
    output = CliRunner().invoke(app, ["synth", "--help"]).output
    help_text = " ".join(output.replace("│", " ").split())  # rich's box, wrapped lines joined
    assert "windows 40" in help_text and "multi 30.0" in help_text
