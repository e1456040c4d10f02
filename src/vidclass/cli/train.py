"""`models` (the methods), `train`, `features` (fill the frozen-feature cache), `evaluate` and
`compare` (train and evaluate several)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from vidclass.cli.common import console, err_console, finish
from vidclass.train.config import DEFAULTS as TRAIN

if TYPE_CHECKING:
    from vidclass.train.config import TrainConfig
    from vidclass.train.loop import TrainResult


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
    backbone: str | None, pretrained: bool | None, freeze: bool | None, option: list[str]
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
    if freeze is not None:
        options["freeze_backbone"] = freeze
    for item in option:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--option {item!r}: expected key=value, e.g. hidden=256")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


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
    freeze_backbone: bool | None = typer.Option(
        None,
        "--freeze-backbone/--no-freeze-backbone",
        help="Keep the pretrained 2D weights; train only the temporal parts and the head "
        "(frame methods: features are computed once and cached) [default: the recipe's].",
        show_default=False,
    ),
    option: list[str] = typer.Option(
        [], "--option", help="Extra model option key=value (repeatable), e.g. --option hidden=256."
    ),
    recipe: str = typer.Option(
        "auto",
        "--recipe",
        help="auto | real | quick: the defaults of every flag not given (auto: quick for the "
        "embedded synthetic set, real otherwise; see README, 'Training').",
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="[default: the recipe's: real 60 for frame heads, else 12]"
    ),
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
    pretrained_bn: str = typer.Option(
        TRAIN.pretrained_bn,
        "--pretrained-bn",
        help="Fine-tuning: frozen keeps the ImageNet layers' BatchNorm statistics (small "
        "batches); train re-estimates them from each batch.",
    ),
    weight_decay: float = typer.Option(
        TRAIN.weight_decay, "--weight-decay", min=0.0, help="AdamW's decoupled weight decay."
    ),
    label_smoothing: float = typer.Option(
        TRAIN.label_smoothing,
        "--label-smoothing",
        min=0.0,
        max=0.99,
        help="Cross-entropy target: 1 - s on the label, s spread over the classes.",
    ),
    normalize: str = typer.Option(
        TRAIN.normalize,
        "--normalize",
        help="auto | imagenet | clip | none (auto: imagenet for pretrained backbones, else per clip).",
    ),
    augment: bool | None = typer.Option(
        TRAIN.augment,
        "--augment/--no-augment",
        help="Random crops and temporal jitter [default: on, off with a frozen backbone].",
        show_default=False,
    ),
    hflip: bool | None = typer.Option(
        None,
        "--hflip/--no-hflip",
        help="Train on mirrored clips too (a frozen backbone caches both views); refused for "
        "mirror-pair classes (move_left) [default: the recipe's].",
        show_default=False,
    ),
    tta: str | None = typer.Option(
        None,
        "--tta",
        help="Test-time flip of val, evaluate and predict: auto (on with --hflip) | flip | "
        "none [default: the recipe's; real: flip, and none halves predict's work].",
        show_default=False,
    ),
    refit: bool | None = typer.Option(
        None,
        "--refit/--no-refit",
        help="Choose the epoch count on val (pass 1, in RUN/select), then train again on "
        "train + val for that many epochs and keep the last (val is then no longer held out) "
        "[default: the recipe's].",
        show_default=False,
    ),
    refit_epochs: str | None = typer.Option(
        None,
        "--refit-epochs",
        help="With --refit: chosen (the epoch count val chose) | all (one pass on train + val "
        "over every epoch; val chooses nothing) [default: the recipe's; real: all].",
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

        vidclass train data/ucf --model cnn_lstm --backbone efficientnet_lite0 --freeze-backbone --hflip

        vidclass train data/prepared --model slowfast --out runs/sf --resume

        vidclass train data/ucf --model tsn --backbone efficientnet_lite0 --freeze-backbone --refit

        torchrun --standalone --nproc_per_node 2 -m vidclass train data/prepared --model early_fusion
    """
    from vidclass.train.loop import train as run_train

    cfg = _recipe_config(
        data,
        recipe,
        quiet,
        model=model,
        options=_model_options(backbone, pretrained, freeze_backbone, option),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        pretrained_lr_scale=pretrained_lr_scale,
        pretrained_bn=pretrained_bn,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        seed=seed,
        workers=workers,
        normalize=normalize,
        augment=augment,
        hflip=hflip,
        tta=tta,
        refit=refit,
        refit_epochs=refit_epochs,
    )
    result = run_train(data, out or Path("runs") / model, cfg, resume=resume, quiet=quiet)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process reports
        _print_trained(result)


def _recipe_config(data: Path, recipe: str, quiet: bool, **flags) -> TrainConfig:
    """The flags given (None = not given), the recipe's values for the rest; the recipe's
    one-line reason printed (once under torchrun)."""
    from vidclass.train.recipe import config_for, describe

    cfg, chosen = config_for(data, recipe, **flags)
    if not quiet and int(os.environ.get("RANK", "0")) == 0:
        console.print(escape(describe(chosen)), soft_wrap=True)
    return cfg


def _print_trained(result: TrainResult) -> None:
    """The best epoch chosen on val (or why the last one was kept), and where the run is."""
    if result.first_pass is not None:
        chosen = result.selection["chosen_by"]
        console.print(
            f"[green]refit: {result.best_epoch} epochs ({escape(chosen)}), trained again on "
            f"{result.selection['train_clips']} train + val clips[/green]; run in {result.run} "
            f"(the pass that chose: {result.first_pass.run})"
        )
        return
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
    hflip: bool = typer.Option(
        TRAIN.hflip, "--hflip/--no-hflip", help="Also the mirrored view, as for `vidclass train`."
    ),
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
        hflip=hflip,
    )
    result = fill_features(data, cfg, shard=shard, quiet=quiet)
    folders = result.folders or {"orig": result.folder}
    there = result.videos * len(folders) - result.encoded
    console.print(
        f"features: {result.encoded} encoded, {there} already there, in "
        + ", ".join(str(f) for f in folders.values())
    )


def evaluate(
    run: Path = typer.Argument(..., help="A run folder (from `vidclass train`)."),
    data: Path = typer.Argument(..., help="A prepared dataset folder with the same classes."),
    split: str = typer.Option("test", "--split", help="Which split of the manifest."),
    views: int = typer.Option(
        1, "--views", min=1, help="Views averaged per video (temporal windows or crops)."
    ),
    tta: str = typer.Option(
        "auto",
        "--tta",
        help="auto | flip | none: average each view with its mirror image (auto: when the "
        "run was trained with --hflip).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the metrics JSON here."),
    allow_mismatch: bool = typer.Option(
        False,
        "--allow-mismatch",
        help="Score data prepared with other options (size, pad, sampling) than the run's "
        "training data, with a warning (refused otherwise).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Top-1/top-5, per-class precision/recall/F1, pair accuracy and a confusion matrix.

    Data prepared with other options than the run's training data (size, pad, sampling) is
    refused, each difference named; `--allow-mismatch` scores it with a warning.

    Examples:

        vidclass evaluate runs/slow_fusion data/prepared

        vidclass evaluate runs/cnn_lstm data/ucf --split test --views 3 --json eval.json

        vidclass evaluate runs/cnn_lstm data/ucf --tta none
    """
    import json

    from vidclass.report.tables import print_evaluation
    from vidclass.train.evaluate import evaluate as run_evaluate

    metrics = run_evaluate(
        run,
        data,
        split=split,
        views=views,
        quiet=quiet,
        tta=tta,
        allow_mismatch=allow_mismatch,
    )
    if json_out:
        json_out.write_text(json.dumps(metrics, indent=2))
    print_evaluation(metrics, console)
    # Last, so it is what the user reads: the figures above are not comparable.
    if differ := metrics.get("input_mismatch"):
        err_console.print(
            f"[bold yellow]warning: {escape(str(data))} was prepared otherwise than the data "
            f"{escape(str(run))} was trained on ({escape('; '.join(differ))}): these figures "
            "are not the model's on its own kind of input[/bold yellow]",
            soft_wrap=True,
        )


def compare(
    data: Path = typer.Argument(..., help="A prepared dataset folder."),
    models: str = typer.Option("all", "--models", help="'all' or a comma-separated list."),
    out: Path = typer.Option(Path("compare-out"), "--out", "-o"),
    recipe: str = typer.Option(
        "auto",
        "--recipe",
        help="auto | real | quick: each method trained as `vidclass train` trains it (auto: "
        "quick on the embedded synthetic set, real otherwise); the flags below override it.",
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="[default: the recipe's: real 60 for frame heads, else 12]"
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    lr: float | None = typer.Option(None, "--lr"),
    augment: bool | None = typer.Option(
        None,
        "--augment/--no-augment",
        help="Random crops and temporal jitter [default: on, off with a frozen backbone].",
        show_default=False,
    ),
    seed: int | None = typer.Option(None, "--seed"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train and evaluate methods under one recipe; write comparison.md/.json, a chart and report.html.

    Each method is trained as `vidclass train DATA --model M` would train it (the recipe line
    says how); the figures are on the test split, which chooses nothing. On real footage the
    frame heads (tsn, temporal_conv, single_frame, cnn_lstm, late_fusion, two_stream) train on
    cached features in minutes; the 3D methods encode every clip each epoch and at 224 px take
    hours on a laptop CPU. An interrupted comparison resumes where it stopped when run again;
    a finished run is reused only when it was trained with the same config and data.

    Examples:

        vidclass compare data/prepared --models tsn,temporal_conv,cnn_lstm --out compare-out

        vidclass compare data/synth-prepared --models all --epochs 5
    """
    from vidclass.train.compare import compare as run_compare
    from vidclass.train.compare import parse_models
    from vidclass.train.config import TrainConfig

    flags = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "augment": augment, "seed": seed}
    given = frozenset(k for k, v in flags.items() if v is not None)
    base = TrainConfig(model="", **{k: v for k, v in flags.items() if v is not None})
    result = run_compare(
        data,
        parse_models(models),
        out,
        base,
        quiet=quiet,
        log=lambda line: console.print(escape(str(line)), soft_wrap=True),
        recipe=recipe,
        given=given,
    )
    console.print(f"report: {out / 'report.html'}")
    finish(sum(1 for m in result["methods"] if m.get("error")))  # 2: the report names them
