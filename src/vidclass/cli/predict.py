"""`predict` (label whole videos or live sources) and `export` (a run to ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from vidclass.cli.common import console, finish
from vidclass.cli.sources import run_each, video_inputs
from vidclass.predict.options import PredictOptions

if TYPE_CHECKING:
    from vidclass.predict.classifier import Classifier


def predict(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`)."),
    videos: list[str] = typer.Argument(
        ...,
        help="Video files, folders of videos, or a live source (webcam device, stream address).",
    ),
    window: int | None = typer.Option(
        None, "--window", min=1, help="Frames per window [default: the model's clip length]."
    ),
    stride: int | None = typer.Option(
        None, "--stride", min=1, help="Frames between windows [default: half a window]."
    ),
    smooth: int = typer.Option(
        PredictOptions.smooth,
        "--smooth",
        min=1,
        help="Rolling average over the last N windows (frames for single_frame).",
    ),
    top_k: int = typer.Option(PredictOptions.top_k, "--top-k", min=1),
    json_out: str | None = typer.Option(
        None,
        "--json",
        help="Write the predictions as JSON: one file (a list for several videos), or a "
        "folder (DIR/) of one file per video.",
    ),
    annotate: str | None = typer.Option(
        None,
        "--annotate",
        help="Write an annotated copy (.mp4); a folder (DIR/) for one per video.",
    ),
    plot: str | None = typer.Option(
        None,
        "--plot",
        help="Timeline PNG of the top classes, raw vs smoothed; a folder (DIR/) for one per video.",
    ),
    backend: str = typer.Option(
        "torch",
        "--backend",
        help="torch | onnx (exports RUN/model.onnx once) | onnx-int8 (onnx with the frame "
        "encoder in int8, calibrated on the run's training clips; frame-based methods).",
    ),
    tta: str = typer.Option(
        "auto",
        "--tta",
        help="auto | flip | none: average each window with its mirror image (auto: when the "
        "run was trained with --hflip; flip doubles the cost).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Label whole videos, with a per-window timeline, smoothing against flicker, an annotated copy.

    Exit code 2 when some videos failed (the others are still predicted); a failed video's
    outputs from an earlier run are removed.

    Examples:

        vidclass predict runs/slow_fusion clip.mp4 --smooth 5 --annotate out.mp4 --plot out.png

        vidclass predict runs/slow_fusion videos/ --json predictions.json

        vidclass predict runs/slow_fusion videos/ --json preds/ --plot plots/

        vidclass predict runs/cnn_lstm /dev/video0
    """
    from vidclass.outputs import JsonTarget, Target
    from vidclass.predict.classifier import Classifier
    from vidclass.video.reader import is_live_source

    clf = Classifier.load(run, backend=backend, tta=tta)
    inputs = video_inputs(videos)
    many = len(inputs.videos) > 1
    to_json = JsonTarget(json_out, inputs.names, many)
    to_mp4 = Target("--annotate", annotate, ".mp4", inputs.names, many)
    to_png = Target("--plot", plot, ".png", inputs.names, many)

    def job(src: str) -> dict | None:
        if is_live_source(src):
            _stream(clf, src, window=window, stride=stride, smooth=smooth)
            return None
        return clf.predict(
            src,
            window=window,
            stride=stride,
            smooth=smooth,
            top_k=top_k,
            annotate=to_mp4.path(src),
            plot=to_png.path(src),
        )

    def show(src: str, result: dict) -> None:
        to_json.write(src, result)
        if not quiet:
            print_prediction(result)

    tally = run_each(inputs.videos, job, show, outputs=(to_json, to_mp4, to_png))
    to_json.finish()
    finish(tally.failed, tally.done)


def _stream(clf: Classifier, src: str, **options: int | None) -> None:
    """A live source's windows, one line each as they come, until it ends or Ctrl-C."""
    console.print(f"[bold]{escape(str(src))}[/bold] (live; Ctrl-C to stop)")
    for unit in clf.stream(src, **options):
        console.print(
            f"{unit['t_end']:8.2f} s  {unit['smoothed_label']:<16} "
            f"{unit['smoothed_score']:.0%}   (raw {unit['label']})"
        )


def print_prediction(result: dict) -> None:
    """One line per video: the label, the runners-up, the timeline's length and flicker."""
    top = ", ".join(f"{t['label']} {t['score']:.0%}" for t in result["top_k"][:3])
    extra = (
        f", majority of frames: {result['majority_label']}" if "majority_label" in result else ""
    )
    fr = result["flicker_rate"]
    console.print(
        f"[bold]{escape(result['video'])}[/bold]: [green]{escape(result['label'])}[/green] "
        f"({top}{extra}); {len(result['timeline'])} {result['unit']}s over "
        f"{result['duration_s']:.1f} s, flicker {fr['raw']:.1f} -> {fr['smoothed']:.1f} changes/min",
        soft_wrap=True,
    )


def export(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`)."),
    onnx: Path = typer.Option(..., "--onnx", help="Where to write the ONNX model."),
    dynamic_batch: bool = typer.Option(
        False, "--dynamic-batch", help="Any batch size at run time (T, H, W stay fixed)."
    ),
    opset: int = typer.Option(17, "--opset", min=13),
) -> None:
    """Export a trained model to ONNX, checked against PyTorch (max difference 1e-4).

    Inputs: video (B,3,T,S,S) float32, mask (B,T) bool, and flow (B,2,T-1,S,S) for
    two_stream; output: logits. Every method exports.

    Examples:

        vidclass export runs/slow_fusion --onnx slow_fusion.onnx --dynamic-batch

        vidclass predict runs/slow_fusion clip.mp4 --backend onnx
    """
    from vidclass.predict.onnx import export_onnx

    path = export_onnx(run, onnx, dynamic_batch=dynamic_batch, opset=opset)
    console.print(f"[green]wrote {path}[/green] ({path.stat().st_size / 1e6:.1f} MB)")
