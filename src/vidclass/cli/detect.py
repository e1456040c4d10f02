"""`detect` (people tracked and what each does when), `evaluate-detection` and
`train-detector` (the CenterNet person detector)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vidclass.cli.common import console, finish, print_missing
from vidclass.cli.sources import run_each, video_inputs
from vidclass.detect.config import DETECTOR_TRAIN
from vidclass.predict.options import DetectOptions


def detect(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`): the action model."),
    videos: list[str] = typer.Argument(..., help="Video files or folders of videos."),
    detector: str = typer.Option(
        DetectOptions.detector,
        "--detector",
        help="person (pretrained person detector, any pose and camera; needs the pose extra: "
        "pip install 'vidclass[pose]'), motion (static camera), hog (real pedestrians), or a "
        "folder from `vidclass train-detector`; auto: person when installed, else motion.",
    ),
    json_out: str | None = typer.Option(
        None,
        "--json",
        help="Write the tracks as JSON: one file (a list for several videos), or a folder "
        "(DIR/) of one file per video, for evaluate-detection.",
    ),
    annotate: str | None = typer.Option(
        None,
        "--annotate",
        help="Annotated copy (.mp4) with boxes, ids, actions; or a folder (DIR/).",
    ),
    stride: int | None = typer.Option(
        None, "--stride", min=1, help="Sampled frames between a track's windows [window / 8]."
    ),
    smooth: int = typer.Option(
        DetectOptions.smooth, "--smooth", min=1, help="Rolling average over N windows."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Find every person, track them, and say what each does when (spatio-temporal detection).

    Exit code 2 when some videos failed (the others are still processed); a failed video's
    outputs from an earlier run are removed.

    Examples:

        vidclass detect runs/slow_fusion scene.mp4 --json scene.json --annotate scene_boxes.mp4

        vidclass detect runs/slow_fusion street.mp4 --detector hog --annotate street_boxes.mp4

        vidclass detect runs/tsn hugging.mp4 --detector person --annotate hugging_boxes.mp4

        vidclass detect runs/tubes data/multi/ --detector runs/detector --json preds/
    """
    from vidclass.detect.detect import load_detector
    from vidclass.outputs import JsonTarget, Target
    from vidclass.predict.classifier import Classifier

    load_detector(detector)  # a wrong name or folder, or a missing extra, fails first
    clf = Classifier.load(run)
    inputs = video_inputs(videos)
    many = len(inputs.videos) > 1
    to_json = JsonTarget(json_out, inputs.names, many)
    to_mp4 = Target("--annotate", annotate, ".mp4", inputs.names, many)

    def job(src: str) -> dict:
        return clf.detect(
            src,
            detector=detector,
            stride=stride,
            smooth=smooth,
            annotate=to_mp4.path(src),
        )

    def show(src: str, result: dict) -> None:
        to_json.write(src, result)
        if not quiet:
            print_tracks(src, result)

    tally = run_each(inputs.videos, job, show, outputs=(to_json, to_mp4))
    to_json.finish()
    finish(tally.failed, tally.done)


def print_tracks(src: str, result: dict) -> None:
    """One line per video, then one per track: its actions scored 0.3 or more, in order."""
    n_seg = sum(len(t["segments"]) for t in result["tracks"])
    console.print(
        f"[bold]{escape(str(src))}[/bold]: {len(result['tracks'])} tracks, {n_seg} action "
        f"segments in {result['duration_s']:.1f} s of video ({result['seconds']:.1f} s)",
        soft_wrap=True,
    )
    for tr in result["tracks"]:
        acts = ", ".join(
            f"{s['label']} {s['t_start']:.1f}-{s['t_end']:.1f} s"
            for s in sorted(tr["segments"], key=lambda s: s["t_start"])
            if s["score"] >= 0.3
        )
        console.print(f"  #{tr['track_id']}: {escape(acts) or '(no action)'}")


def evaluate_detection_cmd(
    pred: Path = typer.Argument(..., help="`vidclass detect --json` output: a file or a folder."),
    gt: Path = typer.Argument(..., help="`synth --kind multi` truth: a file or a folder."),
    iou: float = typer.Option(0.5, "--iou", min=0.05, max=0.95, help="Box IoU for a match."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the scores as JSON."),
) -> None:
    """Frame-mAP (AVA-style, per action class over all frames) and tracking quality (MOTA,
    ID switches, IDF1). Folders are matched by the path under each (multi_000.json in both,
    sub-folders too); a video without a prediction counts as missed.

    Example:

        vidclass evaluate-detection preds/ data/multi/
    """
    import json

    from vidclass.evaluation.detection import evaluate_detection

    result = evaluate_detection(pred, gt, iou_threshold=iou)
    table = Table(title=f"frame-mAP@{iou:g} over {result['videos']} videos")
    table.add_column("class")
    table.add_column("AP", justify="right")
    table.add_column("truth boxes", justify="right")
    for label, ap in result["ap"].items():
        table.add_row(label, f"{ap:.3f}", str(result["num_gt"][label]))
    table.add_row("[bold]frame-mAP[/bold]", f"[bold]{result['frame_mAP']:.3f}[/bold]", "")
    console.print(table)
    t = result["tracking"]
    console.print(
        f"tracking: MOTA {t['mota']:.3f}, IDF1 {t['idf1']:.3f}, ID switches {t['id_switches']}, "
        f"misses {t['misses']}, false positives {t['false_positives']} "
        f"(of {t['num_gt']} person boxes)"
    )
    print_missing(result["missing_predictions"])
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


def train_detector_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the trained detector."),
    scenes: int = typer.Option(
        DETECTOR_TRAIN.scenes, "--scenes", min=1, help="Rendered multi-actor scenes."
    ),
    seconds: float = typer.Option(
        DETECTOR_TRAIN.seconds, "--seconds", min=1.0, help="Length of each scene."
    ),
    steps: int = typer.Option(
        DETECTOR_TRAIN.steps,
        "--steps",
        min=1,
        help=f"Training steps (batch {DETECTOR_TRAIN.batch_size}).",
    ),
    seed: int = typer.Option(
        DETECTOR_TRAIN.seed, "--seed", help="Scene seed: keep it apart from test scenes."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train the small CenterNet person detector on rendered multi-actor scenes (CPU minutes).

    Example:

        vidclass train-detector --out runs/detector && vidclass detect RUN v.mp4 --detector runs/detector
    """
    from vidclass.detect.centernet import train_detector

    summary = train_detector(out, scenes=scenes, seconds=seconds, steps=steps, seed=seed,
                             quiet=quiet)  # fmt: skip
    console.print(
        f"[green]wrote {out}[/green] (final loss {summary['final_loss']:.3f}, "
        f"{summary['render_s'] + summary['train_s']:.0f} s)"
    )
