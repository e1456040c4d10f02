"""The `vidclass` command line: one sub-command per user job; parsing only, the work is in the API.

Exit codes: 0 success, 1 user error, 2 partial failure (some inputs failed, the rest done).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vidclass.errors import UserError
from vidclass.predict.options import DetectOptions, LocalizeOptions, PredictOptions
from vidclass.synth.clips import PER_CLASS
from vidclass.train.config import DEFAULTS as TRAIN

app = typer.Typer(
    name="vidclass",
    help="Video classification and human action recognition on a CPU laptop.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_USER_ERROR, EXIT_PARTIAL = 0, 1, 2


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 160x120, got {text!r}") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise typer.BadParameter(f"{text!r}: width and height must be positive and even (H.264)")
    return w, h


SYNTH_KINDS = ("clips", "long", "windows", "multi", "tubes")
# The synth options that only some kinds use (--out, --seed, --size and --quiet apply to all):
# option → (the kinds it applies to, its default). Given for another kind, it is an error.
SYNTH_OPTIONS: dict[str, tuple[tuple[str, ...], Any]] = {
    "--per-class": (("clips",), PER_CLASS),
    "--workers": (("clips",), 2),
    "--background/--no-background": (("clips",), True),
    "--count": (("long", "windows", "multi", "tubes"), 1),
    "--seconds": (("long", "windows", "multi", "tubes"), 60.0),
    "--fps": (("clips", "long", "windows", "multi"), 15),  # tubes: 8 fps, detection's rate
}


def _synth_options(kind: str, given: dict[str, Any]) -> dict[str, Any]:
    """The options of `synth` for `kind`, defaults filled in; a UserError for one that the
    user gave (not None) but `kind` does not use, so it is never silently ignored."""
    if kind not in SYNTH_KINDS:
        raise UserError(f"--kind {kind!r}: choose one of {', '.join(SYNTH_KINDS)}")
    out = {}
    for option, value in given.items():
        kinds, default = SYNTH_OPTIONS[option]
        if kind in kinds:
            out[option] = default if value is None else value
        elif value is not None:
            raise UserError(
                f"{option} does not apply to --kind {kind}; it applies to --kind "
                f"{', '.join(kinds)}: drop it"
            )
    return out


@app.command()
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
        show_default=str(SYNTH_OPTIONS["--per-class"][1]),
        help="Videos per class (kind clips; one per scene group).",
    ),
    count: int | None = typer.Option(
        None,
        "--count",
        min=1,
        show_default=str(SYNTH_OPTIONS["--count"][1]),
        help="Number of long videos or scenes (kinds long, windows, multi, tubes).",
    ),
    seconds: float | None = typer.Option(
        None,
        "--seconds",
        min=1.0,
        show_default=str(SYNTH_OPTIONS["--seconds"][1]),
        help="Length of each long video or scene (kinds long, windows, multi, tubes).",
    ),
    seed: int = typer.Option(0, "--seed", help="Same seed, same videos."),
    size: str = typer.Option(
        None,
        "--size",
        help="Frame size WIDTHxHEIGHT (even numbers) [default: 160x120; 320x240 for multi].",
    ),
    fps: int | None = typer.Option(
        None,
        "--fps",
        min=1,
        show_default=str(SYNTH_OPTIONS["--fps"][1]),
        help="Frames per second of the rendered videos (all kinds but tubes: 8 fps).",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        show_default=str(SYNTH_OPTIONS["--workers"][1]),
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
    opts = _synth_options(
        kind,
        {
            "--per-class": per_class,
            "--workers": workers,
            "--background/--no-background": background,
            "--count": count,
            "--seconds": seconds,
            "--fps": fps,
        },
    )
    per_class, workers = opts.get("--per-class"), opts.get("--workers")
    background, count = opts.get("--background/--no-background"), opts.get("--count")
    seconds, fps = opts.get("--seconds"), opts.get("--fps")
    if kind in ("long", "windows"):
        from vidclass.synth.long import generate_long, generate_windows

        windows = kind == "windows"
        make = generate_windows if windows else generate_long
        summary = make(
            out,
            count=count,
            seed=seed,
            size=_parse_size(size or "160x120"),
            fps=fps,
            seconds=seconds,
            quiet=quiet,
        )
        what = (
            f"training windows cut from {count} long videos"
            if windows
            else "long videos with ground truth (.json)"
        )
        console.print(
            f"[green]wrote {summary['num_videos']} {what} to {out}[/green] "
            f"({summary['seconds']:.1f} s)"
        )
        return
    if kind == "multi":
        from vidclass.synth.multi import DEFAULT_SIZE, generate_multi

        summary = generate_multi(
            out,
            count=count,
            seed=seed,
            size=_parse_size(size) if size else DEFAULT_SIZE,
            fps=fps,
            seconds=seconds,
            quiet=quiet,
        )
        console.print(
            f"[green]wrote {summary['num_videos']} multi-actor scenes with per-frame boxes "
            f"(.json) to {out}[/green] ({summary['seconds']:.1f} s)"
        )
        return
    if kind == "tubes":
        from vidclass.synth.multi import DEFAULT_SIZE, generate_tubes

        summary = generate_tubes(
            out,
            count=count,
            seed=seed,
            size=_parse_size(size) if size else DEFAULT_SIZE,
            seconds=seconds,
            quiet=quiet,
        )
        console.print(
            f"[green]wrote {summary['num_videos']} person-tube clips of "
            f"{len(summary['classes'])} classes to {out}[/green] ({summary['seconds']:.1f} s)"
        )
        return
    from vidclass.synth.clips import generate

    summary = generate(
        out,
        per_class=per_class,
        seed=seed,
        size=_parse_size(size or "160x120"),
        fps=fps,
        workers=workers,
        quiet=quiet,
        background=background,
    )
    console.print(
        f"[green]wrote {summary['num_videos']} videos of {len(summary['classes'])} classes "
        f"to {out}[/green] ({summary['seconds']:.1f} s)"
    )


@app.command()
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
        "16", "--frames", help="Frames per clip, or 'auto' for the longest video's sampled length."
    ),
    interval: int | None = typer.Option(None, "--interval", min=1, help="Take every K-th frame."),
    sample_fps: float | None = typer.Option(
        None, "--fps", help="Take F frames per second (instead of --interval)."
    ),
    size: int = typer.Option(
        112, "--size", min=8, help="Square output size (short side resize, centre crop)."
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
        if result.failed:
            raise typer.Exit(EXIT_PARTIAL)
        return
    if out is None:
        raise UserError("--out is needed: the folder to prepare into")
    result = run_prepare(
        src,
        out,
        frames=frames,
        interval=interval,
        sample_fps=sample_fps,
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
    )
    if result.shard is not None:
        # Exit 0 with failed videos too: the merge lists them (and exits 2), and a job
        # scheduler's `afterok` dependency then still starts it.
        index, count = result.shard
        failed = f", [red]{len(result.failed)} failed[/red]" if result.failed else ""
        console.print(
            f"shard {index}/{count}: {len(result.rows)} videos ({result.reused} reused{failed}) "
            f"in {result.seconds:.1f} s; when all {count} are done: "
            f"vidclass prepare {out} --merge"
        )
        return
    print_prepare_summary(result, console)
    if result.failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def models() -> None:
    """List the methods: size and GFLOPs per clip from scratch and from ImageNet, and what each is.

    Every method can start from ImageNet (--backbone efficientnet_lite0); the pretrained
    columns say how and what it costs per 16-frame clip at 112 and 224 px.

    Example:

        vidclass models
    """
    from vidclass.models import describe

    table = Table(title="vidclass methods (GFLOPs per 16-frame clip)")
    columns = ("name", "scratch params", "112 px", "how it starts from ImageNet", "params",
               "112 px", "224 px")  # fmt: skip
    for col in columns:
        table.add_column(col, no_wrap=col in ("name", "112 px", "224 px"))
    rows = describe()
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['params'] / 1e6:.2f} M",
            f"{row['gflops']:.2f}",
            row["pretrained"],
            f"{row['pretrained_params'] / 1e6:.2f} M",
            f"{row['pretrained_gflops'][112]:.2f}",
            f"{row['pretrained_gflops'][224]:.2f}",
        )
    console.print(table)
    for row in rows:
        console.print(f"[bold]{row['name']}[/bold]: {escape(row['description'])}")


def _model_options(
    backbone: str | None, pretrained: bool | None, freeze: bool, option: list[str]
) -> dict:
    """--backbone/--pretrained/--freeze-backbone and repeated --option key=value → options."""
    import json

    options: dict = {}
    if backbone:
        options["backbone"] = backbone
        if pretrained is None and backbone != "small":
            pretrained = True
    if pretrained is not None:
        options["pretrained"] = pretrained
    if freeze:
        options["freeze_backbone"] = True
    for item in option:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--option {item!r}: expected key=value, e.g. hidden=256")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


@app.command()
def train(
    data: Path = typer.Argument(..., help="A prepared dataset folder (from `vidclass prepare`)."),
    model: str = typer.Option(..., "--model", "-m", help="Method name; see `vidclass models`."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder [default: runs/<model>]."),
    backbone: str | None = typer.Option(
        None,
        "--backbone",
        help="small (from scratch) | efficientnet_lite0 (ImageNet weights; every method).",
    ),
    pretrained: bool | None = typer.Option(
        None,
        "--pretrained/--no-pretrained",
        help="ImageNet weights (default on for efficientnet_lite0).",
    ),
    freeze_backbone: bool = typer.Option(
        False,
        "--freeze-backbone",
        help="Keep the pretrained 2D weights; train only the temporal parts and the head "
        "(frame methods: features are computed once and cached).",
    ),
    option: list[str] = typer.Option(
        [], "--option", help="Extra model option key=value (repeatable), e.g. --option hidden=256."
    ),
    epochs: int = typer.Option(TRAIN.epochs, "--epochs", min=1),
    batch_size: int = typer.Option(
        TRAIN.batch_size,
        "--batch-size",
        min=1,
        help="Global batch size (split over torchrun processes).",
    ),
    lr: float = typer.Option(
        TRAIN.lr, "--lr", help="Peak learning rate (AdamW, warm-up then cosine)."
    ),
    pretrained_lr_scale: float = typer.Option(
        TRAIN.pretrained_lr_scale,
        "--pretrained-lr-scale",
        help="Fine-tuning: ImageNet layers train at lr x this, new layers at lr.",
    ),
    normalize: str = typer.Option(
        "auto",
        "--normalize",
        help="auto | imagenet | clip | none (auto: imagenet for pretrained backbones, else per clip).",
    ),
    augment: bool | None = typer.Option(
        TRAIN.augment,
        "--augment/--no-augment",
        help="Random crops and temporal jitter [default: on, off with a frozen backbone].",
        show_default=False,
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from its last saved epoch."
    ),
    seed: int = typer.Option(TRAIN.seed, "--seed"),
    workers: int = typer.Option(
        TRAIN.workers, "--workers", min=0, help="DataLoader worker processes."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train one method on a prepared dataset; keep the best epoch and the state to resume.

    Writes RUN/model.safetensors, config.json, metrics.csv, curves.png and state.safetensors.

    Examples:

        vidclass train data/prepared --model slow_fusion --epochs 15

        vidclass train data/ucf --model cnn_lstm --backbone efficientnet_lite0 --freeze-backbone

        vidclass train data/prepared --model slowfast --out runs/sf --resume

        torchrun --standalone --nproc_per_node 2 -m vidclass train data/prepared --model early_fusion
    """
    from vidclass.train.loop import TrainConfig
    from vidclass.train.loop import train as run_train

    cfg = TrainConfig(
        model=model,
        options=_model_options(backbone, pretrained, freeze_backbone, option),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        pretrained_lr_scale=pretrained_lr_scale,
        seed=seed,
        workers=workers,
        normalize=normalize,
        augment=augment,
    )
    result = run_train(data, out or Path("runs") / model, cfg, resume=resume, quiet=quiet)
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        if result.best_val_acc is None:
            console.print(
                f"[yellow]kept the last epoch ({result.best_epoch}): "
                f"{escape(result.selection['reason'])}[/yellow]; run in {result.run}"
            )
        else:
            best = result.history[result.best_epoch - 1]
            console.print(
                f"[green]best epoch {result.best_epoch} on val: accuracy "
                f"{result.best_val_acc:.1%}, loss {best['val_loss']:.3f}[/green]; "
                f"run in {result.run}"
            )


@app.command()
def features(
    data: Path = typer.Argument(..., help="A prepared dataset folder (from `vidclass prepare`)."),
    model: str = typer.Option(..., "--model", "-m", help="Method name; see `vidclass models`."),
    backbone: str | None = typer.Option(None, "--backbone", help="As for `vidclass train`."),
    pretrained: bool | None = typer.Option(
        None, "--pretrained/--no-pretrained", help="As for `vidclass train`."
    ),
    freeze_backbone: bool = typer.Option(
        False, "--freeze-backbone", help="Needed: only a frozen backbone's features are cached."
    ),
    option: list[str] = typer.Option([], "--option", help="As for `vidclass train`."),
    normalize: str = typer.Option("auto", "--normalize", help="As for `vidclass train`."),
    seed: int = typer.Option(TRAIN.seed, "--seed", help="As for `vidclass train`."),
    shard: str | None = typer.Option(
        None, "--shard", help="I/N: only the I-th (from 0) of N shards of the videos."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Fill the frozen-feature cache (DATA/features/) that `train` with the same options reads.

    Give the model options `train` will get; with --shard I/N, N processes or machines fill
    it together (docs/scale.md), and `train` then finds every clip encoded.

    Examples:

        vidclass features data/ucf --model cnn_lstm --backbone efficientnet_lite0 --freeze-backbone

        vidclass features data/ucf --model cnn_lstm --backbone efficientnet_lite0 --freeze-backbone --shard 3/8
    """
    from vidclass.train.config import TrainConfig
    from vidclass.train.features import fill_features

    cfg = TrainConfig(
        model=model,
        options=_model_options(backbone, pretrained, freeze_backbone, option),
        seed=seed,
        normalize=normalize,
    )
    result = fill_features(data, cfg, shard=shard, quiet=quiet)
    console.print(
        f"features: {result.encoded} encoded, {result.videos - result.encoded} already there, "
        f"in {result.folder}"
    )


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`)."),
    data: Path = typer.Argument(..., help="A prepared dataset folder with the same classes."),
    split: str = typer.Option("test", "--split", help="Which split of the manifest."),
    views: int = typer.Option(
        1, "--views", min=1, help="Views averaged per video (temporal windows or crops)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the metrics JSON here."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Top-1/top-5, per-class precision/recall/F1, pair accuracy and a confusion matrix.

    Examples:

        vidclass evaluate runs/slow_fusion data/prepared

        vidclass evaluate runs/cnn_lstm data/ucf --split test --views 3 --json eval.json
    """
    import json

    from vidclass.report.tables import print_evaluation
    from vidclass.train.evaluate import evaluate as run_evaluate

    metrics = run_evaluate(run, data, split=split, views=views, quiet=quiet)
    if json_out:
        json_out.write_text(json.dumps(metrics, indent=2))
    print_evaluation(metrics, console)


@app.command()
def compare(
    data: Path = typer.Argument(..., help="A prepared dataset folder."),
    models: str = typer.Option("all", "--models", help="'all' or a comma-separated list."),
    out: Path = typer.Option(Path("compare-out"), "--out", "-o"),
    epochs: int = typer.Option(TRAIN.epochs, "--epochs", min=1),
    batch_size: int = typer.Option(TRAIN.batch_size, "--batch-size", min=1),
    lr: float = typer.Option(TRAIN.lr, "--lr"),
    augment: bool | None = typer.Option(
        TRAIN.augment,
        "--augment/--no-augment",
        help="Random crops and temporal jitter [default: on, off with a frozen backbone].",
        show_default=False,
    ),
    seed: int = typer.Option(TRAIN.seed, "--seed"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train and evaluate methods under one budget; write comparison.md/.json, a chart and report.html.

    Each method's epoch is chosen on the val split; the figures are on the test split. An
    interrupted comparison resumes where it stopped when run again; a finished run is reused
    only when it was trained with the same budget and data (else it is trained again).

    Examples:

        vidclass compare data/prepared --models all --out compare-out

        vidclass compare data/prepared --models single_frame,slow_fusion,cnn_lstm --epochs 5
    """
    from vidclass.train.compare import compare as run_compare
    from vidclass.train.compare import parse_models
    from vidclass.train.loop import TrainConfig

    base = TrainConfig(
        model="", epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, augment=augment
    )
    result = run_compare(data, parse_models(models), out, base, quiet=quiet, log=console.print)
    console.print(f"report: {out / 'report.html'}")
    if any(m.get("error") for m in result["methods"]):
        raise typer.Exit(EXIT_PARTIAL)


def video_inputs(items: list[str]) -> list[str]:
    """The videos that predict/localize/detect work on (folders scanned, see `scan_inputs`);
    the files a folder scan skipped are named in one line, never dropped without a word."""
    from vidclass.predict.inputs import scan_inputs
    from vidclass.video.probe import VIDEO_EXTENSIONS, skipped_summary

    sources, skipped = scan_inputs(items)
    if skipped:
        hint = f"videos end in {', '.join(VIDEO_EXTENSIONS)}"
        err_console.print(
            f"[yellow]{escape(skipped_summary(skipped, hint))}[/yellow]", soft_wrap=True
        )
    return sources


@app.command()
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
    json_out: Path | None = typer.Option(
        None, "--json", help="Write the predictions (a list for several videos) as JSON."
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
        "torch", "--backend", help="torch | onnx (exports RUN/model.onnx once)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Label whole videos, with a per-window timeline, smoothing against flicker, an annotated copy.

    Exit code 2 when some videos failed (the others are still predicted).

    Examples:

        vidclass predict runs/slow_fusion clip.mp4 --smooth 5 --annotate out.mp4 --plot out.png

        vidclass predict runs/slow_fusion videos/ --json predictions.json

        vidclass predict runs/cnn_lstm /dev/video0
    """
    import json

    from vidclass.predict.classifier import Classifier
    from vidclass.predict.inputs import output_path
    from vidclass.video.reader import is_live_source

    clf = Classifier.load(run, backend=backend)
    sources = video_inputs(videos)
    many = len(sources) > 1
    results, failed = [], 0
    for src in sources:
        try:
            if is_live_source(src):
                console.print(f"[bold]{escape(str(src))}[/bold] (live; Ctrl-C to stop)")
                for unit in clf.stream(src, window=window, stride=stride, smooth=smooth):
                    console.print(
                        f"{unit['t_end']:8.2f} s  {unit['smoothed_label']:<16} "
                        f"{unit['smoothed_score']:.0%}   (raw {unit['label']})"
                    )
                continue
            result = clf.predict(
                src,
                window=window,
                stride=stride,
                smooth=smooth,
                top_k=top_k,
                annotate=output_path(annotate, src, ".mp4", many),
                plot=output_path(plot, src, ".png", many),
            )
        except UserError as exc:
            failed += 1
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            continue
        results.append(result)
        warn_if_truncated(result)
        if not quiet:
            print_prediction(result)
    if json_out:
        json_out.write_text(
            json.dumps(results if many else (results[0] if results else []), indent=2)
        )
    if failed and not results:
        raise typer.Exit(EXIT_USER_ERROR)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def warn_if_truncated(result: dict) -> None:
    """One warning line for a video whose decoding stopped early: its results are partial."""
    if result.get("truncated"):
        err_console.print(
            f"[yellow]warning:[/yellow] {escape(str(result['video']))}: decoding stopped after "
            f"{result['decoded_duration_s']:.1f} s ({escape(str(result.get('truncated_reason')))}"
            "); the results cover that part only",
            soft_wrap=True,
        )


def print_prediction(result: dict) -> None:
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


@app.command()
def localize(
    run: Path = typer.Argument(..., help="A run folder trained with the 'background' class."),
    videos: list[str] = typer.Argument(..., help="Long video files or folders of videos."),
    json_out: str | None = typer.Option(
        None,
        "--json",
        help="Write the segments as JSON; a folder (DIR/, or for several videos) for one each.",
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
    backend: str = typer.Option("torch", "--backend", help="torch | onnx."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Find every action in long videos: segments with label, start, end and score.

    Dense multi-scale sliding windows classified by the model (background included),
    per-class probability curves grouped into proposals at several thresholds, re-scored
    by completeness, then temporal NMS. Exit code 2 when some videos failed.

    Examples:

        vidclass localize runs/slow_fusion long.mp4 --plot long.png

        vidclass localize runs/slow_fusion data/long/ --json preds/ --plot plots/

        vidclass localize runs/early_fusion long.mp4 --ensemble runs/early_fusion_windows
    """
    import json

    from vidclass.localize.localize import read_truth
    from vidclass.predict.classifier import Classifier
    from vidclass.predict.inputs import output_path
    from vidclass.predict.options import localize_options
    from vidclass.progress import make_progress

    factors = None if spans is None else _parse_floats("--spans", spans, "0.4,0.8")
    localize_options(factors, stride, min_score, nms_iou, nms)  # bad options fail here, once
    clf = Classifier.load(run, backend=backend)
    others = [Classifier.load(r, backend=backend) for r in ensemble]
    if "background" not in clf.classes and not quiet:
        console.print(
            "[yellow]this model has no 'background' class: it cannot say 'no action', so "
            "segments come from the dips of each class's own curve (train on data made by "
            "`vidclass synth`, or add a background class to yours)[/yellow]"
        )
    sources = video_inputs(videos)
    many = len(sources) > 1
    failed = 0
    with make_progress(quiet) as progress:
        for src in sources:
            task = progress.add_task(Path(src).name, total=1.0, status="")
            try:
                result = clf.localize(
                    src,
                    spans=factors,
                    stride=stride,
                    min_score=min_score,
                    nms=nms,
                    nms_iou=nms_iou,
                    ensemble=others,
                    plot=output_path(plot, src, ".png", many),
                    truth=read_truth(src),
                    progress=lambda f, task=task: progress.update(task, completed=f),
                )
            except UserError as exc:
                failed += 1
                err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
                continue
            target = output_path(json_out, src, ".json", many)
            if target is not None:
                target.write_text(json.dumps(result, indent=1))
            warn_if_truncated(result)
            if not quiet:
                progress.console.print(format_segments(result), soft_wrap=True)
    if failed and failed == len(sources):
        raise typer.Exit(EXIT_USER_ERROR)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


def _parse_floats(option: str, text: str, example: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(
            f"{option} {text!r}: give numbers separated by commas, e.g. {example}"
        ) from None


def format_segments(result: dict, min_score: float = 0.3) -> str:
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


@app.command("evaluate-localization")
def evaluate_localization(
    pred_dir: Path = typer.Argument(..., help="Folder of predictions (`localize --json DIR`)."),
    gt_dir: Path = typer.Argument(..., help="Folder of ground-truth .json (same file stems)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics as JSON."),
    tious: str = typer.Option(
        "0.3,0.5,0.7", "--tious", help="Temporal IoU thresholds, each in (0, 1]."
    ),
) -> None:
    """mAP at temporal IoU 0.3, 0.5 and 0.7 (or --tious) and their average (ActivityNet/THUMOS).

    Examples:

        vidclass localize runs/slow_fusion data/long/ --json preds/

        vidclass evaluate-localization preds/ data/long/ --json map.json --tious 0.5,0.75
    """
    import json

    from vidclass.evaluation.localization import evaluate_folders

    thresholds = _parse_floats("--tious", tious, "0.3,0.5,0.7")
    if not all(0 < t <= 1 for t in thresholds):
        raise UserError(f"--tious {tious!r}: each threshold must lie in (0, 1], e.g. 0.3,0.5,0.7")
    result = evaluate_folders(pred_dir, gt_dir, tious=thresholds)
    maps = "  ".join(f"mAP@{t}: {v:.3f}" for t, v in result["mAP"].items())
    console.print(
        f"{result['num_videos']} videos, {result['num_ground_truth']} ground-truth segments, "
        f"{result['num_predictions']} predicted\n{maps}  average: {result['average_mAP']:.3f}"
    )
    if result["missing_predictions"]:
        console.print(
            f"[yellow]no prediction for {len(result['missing_predictions'])} videos "
            f"(counted as missed): {', '.join(result['missing_predictions'][:5])}[/yellow]"
        )
    if json_out:
        json_out.write_text(json.dumps(result, indent=1))


@app.command()
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


@app.command()
def detect(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`): the action model."),
    videos: list[str] = typer.Argument(..., help="Video files or folders of videos."),
    detector: str = typer.Option(
        DetectOptions.detector,
        "--detector",
        help="motion (static camera), hog (real pedestrians), or a folder from "
        "`vidclass train-detector`.",
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Write the tracks as JSON: a .json file, or a folder (one per video)."
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

    Exit code 2 when some videos failed (the others are still processed).

    Examples:

        vidclass detect runs/slow_fusion scene.mp4 --json scene.json --annotate scene_boxes.mp4

        vidclass detect runs/slow_fusion street.mp4 --detector hog --annotate street_boxes.mp4

        vidclass detect runs/tubes data/multi/ --detector runs/detector --json preds/
    """
    import json

    from vidclass.detect.detect import load_detector
    from vidclass.predict.classifier import Classifier
    from vidclass.predict.inputs import output_path

    clf = Classifier.load(run)
    load_detector(detector)  # a wrong name or folder fails here, before any decoding
    sources = video_inputs(videos)
    many = len(sources) > 1
    failed = done = 0
    for src in sources:
        try:
            result = clf.detect(
                src,
                detector=detector,
                stride=stride,
                smooth=smooth,
                annotate=output_path(annotate, src, ".mp4", many),
            )
        except UserError as exc:
            failed += 1
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            continue
        done += 1
        warn_if_truncated(result)
        # --json names a file (x.json) or a folder (anything else): one file per video
        folder = json_out is not None and json_out.suffix.lower() != ".json"
        target = output_path(json_out, src, ".json", many or folder)
        if target is not None:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_text(json.dumps(result, indent=1))
        if not quiet:
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
    if failed and not done:
        raise typer.Exit(EXIT_USER_ERROR)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("evaluate-detection")
def evaluate_detection_cmd(
    pred: Path = typer.Argument(..., help="`vidclass detect --json` output: a file or a folder."),
    gt: Path = typer.Argument(..., help="`synth --kind multi` truth: a file or a folder."),
    iou: float = typer.Option(0.5, "--iou", min=0.05, max=0.95, help="Box IoU for a match."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the scores as JSON."),
) -> None:
    """Frame-mAP (AVA-style, per action class over all frames) and tracking quality (MOTA,
    ID switches, IDF1). Folders are matched by file name (multi_000.json in both).

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
    if result["missing_predictions"]:
        console.print(
            f"[yellow]no prediction for {len(result['missing_predictions'])} videos "
            f"(counted as missed): {', '.join(result['missing_predictions'][:5])}[/yellow]"
        )
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))


@app.command("train-detector")
def train_detector_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the trained detector."),
    scenes: int = typer.Option(48, "--scenes", min=1, help="Rendered multi-actor scenes."),
    seconds: float = typer.Option(20.0, "--seconds", min=1.0, help="Length of each scene."),
    steps: int = typer.Option(3000, "--steps", min=1, help="Training steps (batch 16)."),
    seed: int = typer.Option(1000, "--seed", help="Scene seed: keep it apart from test scenes."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train the small CenterNet person detector on rendered multi-actor scenes (CPU minutes).

    Example:

        vidclass train-detector --out runs/detector && vidclass detect RUN v.mp4 --detector runs/detector
    """
    from vidclass.detect.centernet import train_detector

    summary = train_detector(out, scenes=scenes, seconds=seconds, steps=steps, seed=seed,
                             batch_size=16, quiet=quiet)  # fmt: skip
    console.print(
        f"[green]wrote {out}[/green] (final loss {summary['final_loss']:.3f}, "
        f"{summary['render_s'] + summary['train_s']:.0f} s)"
    )


@app.command()
def serve(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes it to the network."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    max_upload_mb: float = typer.Option(
        200, "--max-upload-mb", min=1, help="Larger uploads are refused with 413."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Videos processed at once (threads; 1-2 on a small CPU)."
    ),
    max_queue: int = typer.Option(
        4, "--max-queue", min=0, help="Videos waiting beyond those; more get 503 + Retry-After."
    ),
    detector: str | None = typer.Option(
        None,
        "--detector",
        help="Default person detector of /v1/detect: motion, hog, or a folder from "
        "`vidclass train-detector` (offered to clients as 'trained') [default: motion].",
    ),
) -> None:
    """Serve a model: a web page to try it and an HTTP API (OpenAPI docs at /docs).

    Examples:

        vidclass serve runs/slow_fusion    # then open http://127.0.0.1:8000/

        curl -F video=@clip.mp4 http://127.0.0.1:8000/v1/predict
    """
    from vidclass.serve import run_server

    run_server(
        run,
        host=host,
        port=port,
        max_upload_mb=max_upload_mb,
        workers=workers,
        max_queue=max_queue,
        detector=detector,
        log=console.print,
    )


@app.command()
def demo(
    out: Path = typer.Option(
        Path("demo-out"), "--out", "-o", help="Where the demo writes everything."
    ),
    per_class: int = typer.Option(
        PER_CLASS, "--per-class", min=2, help="Synthetic videos per class."
    ),
    seed: int = typer.Option(0, "--seed"),
    epochs: int = typer.Option(
        None, "--epochs", min=1, help="Epochs per method [default: the quick budget]."
    ),
    models: str = typer.Option("all", "--models", help="'all' or a comma-separated list."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Run the main job end to end on the embedded default dataset.

    Renders the synthetic videos, prepares them, trains and evaluates every method under a
    quick budget and writes an HTML report. Running it again resumes finished stages.

    Examples:

        vidclass demo --out demo-out

        vidclass demo --out demo-small --per-class 10 --models single_frame,slow_fusion --epochs 3
    """
    from vidclass.demo import DEMO_EPOCHS, run_demo
    from vidclass.train.compare import parse_models

    code = run_demo(
        out,
        per_class=per_class,
        seed=seed,
        epochs=epochs or DEMO_EPOCHS,
        models=parse_models(models),
        quiet=quiet,
        console=console,
    )
    raise typer.Exit(code)


def main() -> None:
    """Entry point: user errors become one red line and exit code 1."""
    try:
        app()
    except UserError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
