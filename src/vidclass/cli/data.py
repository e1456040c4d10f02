"""`synth` (render the embedded datasets) and `prepare` (users' videos → a prepared dataset)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from vidclass.cli.common import console, finish, parse_size
from vidclass.data.sampling import REAL_FPS, REAL_FRAMES
from vidclass.errors import UserError
from vidclass.synth.clips import generate
from vidclass.synth.long import generate_long, generate_windows
from vidclass.synth.multi import DEFAULT_SIZE as MULTI_SIZE
from vidclass.synth.multi import generate_multi, generate_tubes

SYNTH_KINDS = ("clips", "long", "windows", "multi", "tubes")
# The synth options that only some kinds use (--out, --seed, --size and --quiet apply to all):
# option → the kinds it applies to. Given for another kind, it is an error. Each sets the
# generator's keyword of its name (--per-class → per_class); one not given is not passed, so
# the generator's own default applies and the CLI never repeats (or contradicts) it.
SYNTH_OPTIONS: dict[str, tuple[str, ...]] = {
    "--per-class": ("clips",),
    "--workers": ("clips",),
    "--background/--no-background": ("clips",),
    "--count": ("long", "windows", "multi", "tubes"),
    "--seconds": ("long", "windows", "multi", "tubes"),
    "--fps": ("clips", "long", "windows", "multi"),  # tubes: 8 fps, detection's rate
}
GENERATORS: dict[str, Callable[..., dict]] = {
    "clips": generate,
    "long": generate_long,
    "windows": generate_windows,
    "multi": generate_multi,
    "tubes": generate_tubes,
}


def keyword(option: str) -> str:
    """The generator keyword an option sets: --per-class → per_class."""
    return option.split("/")[0].lstrip("-").replace("-", "_")


def synth_default(kind: str, option: str) -> Any:
    """The default of `option` for `kind`: the generator's own."""
    return inspect.signature(GENERATORS[kind]).parameters[keyword(option)].default


def _shown_default(option: str) -> str:
    """`--help`'s default of an option: one value, or the value of each kind that uses it."""
    values = {kind: synth_default(kind, option) for kind in SYNTH_OPTIONS[option]}
    if len(set(values.values())) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{kind} {value}" for kind, value in values.items())


def _synth_options(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """The generator keywords of the options the user gave (not None); a UserError for one
    that `kind` does not use, so it is never silently ignored."""
    if kind not in SYNTH_KINDS:
        raise UserError(f"--kind {kind!r}: choose one of {', '.join(SYNTH_KINDS)}")
    out = {}
    for option, value in given.items():
        kinds = SYNTH_OPTIONS[option]
        if value is None:
            continue
        if kind in kinds:
            out[keyword(option)] = value
        else:
            raise UserError(
                f"{option} does not apply to --kind {kind}; it applies to --kind "
                f"{', '.join(kinds)}: drop it"
            )
    return out


def _generate(kind: str, out: Path, size: str | None, options: dict[str, Any]) -> tuple[dict, str]:
    """Render `kind` into `out` with the generator's keyword `options`; its summary and
    what it wrote, in words."""
    default_size = MULTI_SIZE if kind in ("multi", "tubes") else (160, 120)
    summary = GENERATORS[kind](out, size=parse_size(size) if size else default_size, **options)
    if kind == "windows":
        count = options.get("count", synth_default(kind, "--count"))
        return summary, f"training windows cut from {count} long videos"
    if kind == "long":
        return summary, "long videos with ground truth (.json)"
    if kind == "tubes":
        return summary, f"person-tube clips of {len(summary['classes'])} classes"
    if kind == "multi":
        return summary, "multi-actor scenes with per-frame boxes (.json)"
    return summary, f"videos of {len(summary['classes'])} classes"


def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the videos into."),
    kind: str = typer.Option(
        "clips",
        "--kind",
        help="clips: one action per video, in class folders; long: several actions in sequence with ground truth; windows: training clips cut from long videos for localization; multi: 2-4 actors per scene with per-frame boxes; tubes: per-person training clips cut from multi scenes.",
    ),
    per_class: int | None = typer.Option(
        None,
        "--per-class",
        min=1,
        show_default=_shown_default("--per-class"),
        help="Videos per class (kind clips; one per scene group).",
    ),
    count: int | None = typer.Option(
        None,
        "--count",
        min=1,
        show_default=_shown_default("--count"),
        help="Number of long videos or scenes (kinds long, windows, multi, tubes).",
    ),
    seconds: float | None = typer.Option(
        None,
        "--seconds",
        min=1.0,
        show_default=_shown_default("--seconds"),
        help="Length of each long video or scene (kinds long, windows, multi, tubes).",
    ),
    seed: int = typer.Option(0, "--seed", help="Same seed, same videos."),
    size: str = typer.Option(
        None,
        "--size",
        help="Frame size WIDTHxHEIGHT (even numbers) [default: 160x120; 320x240 for multi and tubes].",
    ),
    fps: int | None = typer.Option(
        None,
        "--fps",
        min=1,
        show_default=_shown_default("--fps"),
        help="Frames per second of the rendered videos (all kinds but tubes: 8 fps).",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        show_default=_shown_default("--workers"),
        help="Processes rendering in parallel (kind clips).",
    ),
    background: bool | None = typer.Option(
        None,
        "--background/--no-background",
        show_default="background",
        help="Add the 'background' class (no action), which localization needs (kind clips).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render the embedded default dataset: real H.264 MP4s of time-reversed action pairs.

    Examples:

        vidclass synth --out data/synth

        vidclass synth --out data/small --per-class 4 --size 96x96 --seed 1

        vidclass synth --kind long --out data/long --count 3 --seconds 90

        vidclass synth --kind windows --out data/windows --count 36   (clips for localization)

        vidclass synth --kind multi --out data/multi --count 20 --seconds 30   (also --count, --seconds)

    An option that the chosen --kind does not use is an error (exit code 1), not ignored.
    """
    given = {
        "--per-class": per_class,
        "--workers": workers,
        "--background/--no-background": background,
        "--count": count,
        "--seconds": seconds,
        "--fps": fps,
    }
    options = _synth_options(kind, given)
    summary, what = _generate(kind, out, size, {"seed": seed, "quiet": quiet, **options})
    console.print(
        f"[green]wrote {summary['num_videos']} {what} to {out}[/green] ({summary['seconds']:.1f} s)"
    )


def prepare(
    src: Path = typer.Argument(
        ...,
        help="Folder of class/video.ext, a UCF101 folder, or a CSV path,label[,split][,group] "
        "(with --merge: the prepared folder).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Prepared dataset folder (manifest.csv + cache/)."
    ),
    frames: str = typer.Option(
        str(REAL_FRAMES),
        "--frames",
        help="Frames per clip, or 'auto' for the longest video's sampled length.",
    ),
    interval: int | None = typer.Option(
        None, "--interval", min=1, help="Take every K-th frame (instead of --fps)."
    ),
    sample_fps: float | None = typer.Option(
        None,
        "--fps",
        min=0.0,
        show_default=False,
        help=f"Take F frames per second from the start [default: {REAL_FPS:g}, the best measured "
        "on real people, unless --interval is given]; 0 spreads the frames evenly over the "
        "whole video.",
    ),
    size: int = typer.Option(
        224,
        "--size",
        min=8,
        help="Square output size (the crop resized to it). 224 measured best on real people "
        "(docs/benchmarks.md); 112 is four times cheaper for the 3D methods.",
    ),
    crop: str = typer.Option(
        "person",
        "--crop",
        help="Region the model sees: 'center' (short side to --size, centre square), 'full' "
        "(whole frame padded to a square) or 'person' (a square following the moving person; "
        "the whole frame where none is found; the best measured on real people). The manifest's crop "
        "column says what each got.",
    ),
    person_boxes: str = typer.Option(
        "motion",
        "--person-boxes",
        help="With --crop person, where the person is found: 'motion' (moving pixels; a still "
        "camera) or 'pose' (the pretrained person detector of `vidclass detect --detector "
        "person`: any camera, people standing still; needs the pose extra: pip install "
        "'vidclass[pose]').",
    ),
    pose: bool = typer.Option(
        False,
        "--pose",
        help="Also store the main person's pose keypoints per frame beside the cache (for "
        "`--model pose`; needs the pose extra: pip install 'vidclass[pose]').",
    ),
    pad: str = typer.Option(
        "zeros", "--pad", help="Buffer frames for short videos: 'zeros' or 'repeat' (last frame)."
    ),
    test_fraction: float = typer.Option(
        0.2, "--test-fraction", min=0.0, max=0.9, help="Share of each class held out for testing."
    ),
    val_fraction: float = typer.Option(
        0.1,
        "--val-fraction",
        min=0.0,
        max=0.9,
        help="Share of each class's clips carved out of train to choose the best epoch.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the randomized split."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes decoding in parallel."),
    export_frames: bool = typer.Option(
        False, "--export-frames", help="Also write frames/<video_id>/000001.jpg and frames.csv."
    ),
    ucf101_splits: Path | None = typer.Option(
        None, "--ucf101-splits", help="Folder with classInd.txt, trainlist0N.txt, testlist0N.txt."
    ),
    fold: int = typer.Option(1, "--fold", min=1, max=3, help="Which official UCF101 split (1-3)."),
    group_regex: str | None = typer.Option(
        None,
        "--group-regex",
        help="Regex on the file name whose first group (or whole match) is the group id.",
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="I/N: prepare only the I-th (from 0) of N shards into --out and write "
        "manifest.shard-I-of-N.csv (docs/scale.md).",
    ),
    merge: bool = typer.Option(
        False, "--merge", help="SRC is a folder of finished shards: write their manifest and split."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Probe, sample, pad, resize and cache every video; write manifest.csv with a leak-free split.

    Broken videos become `failed` rows with a reason; the run goes on and exits 2.
    Running it again resumes and skips finished videos.

    Examples:

        vidclass prepare data/synth --out data/prepared

        vidclass prepare UCF101/ --out data/ucf --ucf101-splits ucfTrainTestlist --fold 1 --fps 5

        vidclass prepare videos.csv --out data/mine --frames auto --interval 4 --export-frames

        vidclass prepare data/people --out data/people-224 --size 224 --crop person

        vidclass prepare data/street --out data/street-224 --crop person --person-boxes pose

        vidclass prepare data/people --out data/people-pose --crop person --pose   (--model pose)

        vidclass prepare data/synth --out data/prepared --shard 0/4   # ... to 3/4, anywhere

        vidclass prepare data/prepared --merge   # once all 4 shards are done (exit 1 if not)
    """
    from vidclass.data.prepare import merge_shards
    from vidclass.data.prepare import prepare as run_prepare
    from vidclass.report.tables import print_prepare_summary

    if merge:
        if shard is not None or out is not None:
            raise UserError("--merge takes only the prepared folder: vidclass prepare DATA --merge")
        result = merge_shards(src)
        print_prepare_summary(result, console)
        finish(len(result.failed))  # 2 when some videos failed: the manifest names them
        return
    if out is None:
        raise UserError("--out is needed: the folder to prepare into")
    if sample_fps is None and interval is None:
        sample_fps = REAL_FPS
    result = run_prepare(
        src,
        out,
        frames=frames,
        interval=interval,
        sample_fps=sample_fps or None,  # 0: spread over the whole video
        size=size,
        pad=pad,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
        workers=workers,
        export_frames=export_frames,
        ucf101_splits=ucf101_splits,
        fold=fold,
        group_regex=group_regex,
        quiet=quiet,
        shard=shard,
        crop=crop,
        person_boxes=person_boxes,
        pose=pose,
    )
    if result.shard is not None:
        _print_shard(result, out)
        return
    print_prepare_summary(result, console)
    if result.keypoints is not None:
        folder, computed = result.keypoints
        console.print(f"keypoints: {folder} ({computed} clips computed, the rest reused)")
    finish(len(result.failed))  # 2 when some videos failed: the manifest names them


def _print_shard(result, out: Path) -> None:
    """One line per shard, exit 0 even with failed videos: the merge lists them (and exits 2),
    so a job scheduler's `afterok` dependency still starts it."""
    index, count = result.shard
    failed = f", [red]{len(result.failed)} failed[/red]" if result.failed else ""
    console.print(
        f"shard {index}/{count}: {len(result.rows)} videos ({result.reused} reused{failed}) "
        f"in {result.seconds:.1f} s; when all {count} are done: vidclass prepare {out} --merge"
    )
