"""`localize` (segments of actions in long videos) and `evaluate-localization` (their mAP)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from vidclass.cli.common import console, finish, parse_floats, print_missing
from vidclass.cli.sources import run_each, video_inputs
from vidclass.errors import UserError
from vidclass.predict.options import LocalizeOptions


def localize(
    run: Path = typer.Argument(..., help="A run folder trained with the 'background' class."),
    videos: list[str] = typer.Argument(..., help="Long video files or folders of videos."),
    json_out: str | None = typer.Option(
        None,
        "--json",
        help="Write the segments as JSON: one file (a list for several videos), or a folder "
        "(DIR/) of one file per video, for evaluate-localization.",
    ),
    plot: str | None = typer.Option(
        None,
        "--plot",
        help="Timeline PNG of the segments (and the ground truth beside the video, if any); "
        "a folder (DIR/) for one per video.",
    ),
    spans: str | None = typer.Option(
        None,
        "--spans",
        help="Window time spans, as factors of a training clip's span, each a whole multiple "
        "of the smallest [0.4,0.8, raised to fit videos of low frame rate].",
    ),
    stride: int = typer.Option(
        LocalizeOptions.stride, "--stride", min=1, help="Sampled frames between windows."
    ),
    min_score: float = typer.Option(
        LocalizeOptions.min_score, "--min-score", help="Drop weaker segments."
    ),
    nms: str = typer.Option(
        "soft",
        "--nms",
        help="soft: overlapping segments of a class lose score (Gaussian decay); hard: dropped.",
    ),
    nms_iou: float | None = typer.Option(
        None,
        "--nms-iou",
        help="IoU above which NMS acts [hard: 0.4; soft: any overlap].",
    ),
    ensemble: list[Path] = typer.Option(
        [],
        "--ensemble",
        help="Another run (same classes) whose curves are averaged in; repeatable.",
    ),
    backend: str = typer.Option(
        "torch", "--backend", help="torch | onnx | onnx-int8 (int8 frame encoder)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Find every action in long videos: segments with label, start, end and score.

    Dense multi-scale sliding windows classified by the model (background included),
    per-class probability curves grouped into proposals at several thresholds, re-scored
    by completeness, then temporal NMS. Exit code 2 when some videos failed; a failed
    video's outputs from an earlier run are removed.

    Examples:

        vidclass localize runs/slow_fusion long.mp4 --plot long.png

        vidclass localize runs/slow_fusion data/long/ --json preds/ --plot plots/

        vidclass localize runs/early_fusion long.mp4 --ensemble runs/early_fusion_windows
    """
    from vidclass.localize.localize import read_truth
    from vidclass.outputs import JsonTarget, Target
    from vidclass.predict.classifier import Classifier
    from vidclass.predict.options import localize_options
    from vidclass.progress import make_progress

    factors = None if spans is None else parse_floats("--spans", spans, "0.4,0.8")
    localize_options(factors, stride, min_score, nms_iou, nms)  # bad options fail here, once
    clf = Classifier.load(run, backend=backend)
    others = [Classifier.load(r, backend=backend) for r in ensemble]
    if "background" not in clf.classes and not quiet:
        console.print(
            "[yellow]this model has no 'background' class: it cannot say 'no action', so "
            "segments come from the dips of each class's own curve (train on data made by "
            "`vidclass synth`, or add a background class to yours)[/yellow]"
        )
    inputs = video_inputs(videos)
    many = len(inputs.videos) > 1
    to_json = JsonTarget(json_out, inputs.names, many)
    to_png = Target("--plot", plot, ".png", inputs.names, many)
    with make_progress(quiet) as progress:

        def job(src: str) -> dict:
            task = progress.add_task(Path(src).name, total=1.0, status="")
            return clf.localize(
                src,
                spans=factors,
                stride=stride,
                min_score=min_score,
                nms=nms,
                nms_iou=nms_iou,
                ensemble=others,
                plot=to_png.path(src),
                truth=read_truth(src),
                progress=lambda f: progress.update(task, completed=f),
            )

        def show(src: str, result: dict) -> None:
            to_json.write(src, result)
            if not quiet:
                progress.console.print(format_segments(result), soft_wrap=True)

        tally = run_each(inputs.videos, job, show, outputs=(to_json, to_png))
    to_json.finish()
    finish(tally.failed, tally.done)


def format_segments(result: dict, min_score: float = 0.3) -> str:
    """A video's segments, one line each; those scored under `min_score` are only counted."""
    shown = [s for s in result["segments"] if s["score"] >= min_score]
    lines = [
        f"[bold]{escape(result['video'])}[/bold]: {len(result['segments'])} segments "
        f"({len(shown)} scored {min_score:.0%} or more) over {result['duration_s']:.1f} s"
    ]
    for s in shown:
        lines.append(
            f"  {s['t_start']:7.2f} - {s['t_end']:7.2f} s  {escape(s['label']):<14} {s['score']:.2f}"
        )
    return "\n".join(lines)


def evaluate_localization(
    pred_dir: Path = typer.Argument(..., help="Folder of predictions (`localize --json DIR/`)."),
    gt_dir: Path = typer.Argument(
        ..., help="Folder of ground-truth .json (the same paths under it, sub-folders too)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON."),
    tious: str = typer.Option(
        "0.3,0.5,0.7", "--tious", help="Temporal IoU thresholds, each in (0, 1]."
    ),
) -> None:
    """mAP at temporal IoU 0.3, 0.5 and 0.7 (or --tious) and their average (ActivityNet/THUMOS).

    A prediction is matched to the ground truth at the same path under the other folder
    (preds/walk/p1.json to data/long/walk/p1.json); a video without one counts as missed.

    Examples:

        vidclass localize runs/slow_fusion data/long/ --json preds/

        vidclass evaluate-localization preds/ data/long/ --json map.json --tious 0.5,0.75
    """
    import json

    from vidclass.evaluation.localization import evaluate_folders

    thresholds = parse_floats("--tious", tious, "0.3,0.5,0.7")
    if not all(0 < t <= 1 for t in thresholds):
        raise UserError(f"--tious {tious!r}: each threshold must lie in (0, 1], e.g. 0.3,0.5,0.7")
    result = evaluate_folders(pred_dir, gt_dir, tious=thresholds)
    maps = "  ".join(f"mAP@{t}: {v:.3f}" for t, v in result["mAP"].items())
    console.print(
        f"{result['num_videos']} videos, {result['num_ground_truth']} ground-truth segments, "
        f"{result['num_predictions']} predicted\n{maps}  average: {result['average_mAP']:.3f}"
    )
    print_missing(result["missing_predictions"])
    if json_out:
        json_out.write_text(json.dumps(result, indent=1))
