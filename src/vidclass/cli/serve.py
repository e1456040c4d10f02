"""`serve` (the web page and HTTP API), `label` (the labelling page) and `demo` (the main job
end to end)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidclass.cli.common import console
from vidclass.serve import CACHE_MB, JOB_TIMEOUT_S
from vidclass.synth.clips import PER_CLASS

ALLOW_HOST_HELP = (
    "Another name the server answers to (e.g. the one a reverse proxy passes on); repeat "
    "for more. Besides it: localhost, IP addresses and --host."
)


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
        help="Default person detector of /v1/detect: person (the pose extra), motion, hog, or a "
        "folder from `vidclass train-detector` (offered to clients as 'trained') [default: "
        "person when the pose extra is installed, else motion].",
    ),
    job_timeout_s: float = typer.Option(
        JOB_TIMEOUT_S,
        "--job-timeout-s",
        min=1,
        help="A job's wall time once it runs; past it the job fails with 504.",
    ),
    allow_host: list[str] = typer.Option([], "--allow-host", metavar="NAME", help=ALLOW_HOST_HELP),
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
        job_timeout_s=job_timeout_s,
        allow_hosts=allow_host,
        log=console.print,
    )


def label(
    folder: Path | None = typer.Argument(
        None, help="The folder of clips to label (any depth; .mp4, .avi, .mkv, .gif, ...)."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="The classes, comma-separated [default: the model's]."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="The labels CSV (path,label,split,group), resumed if it exists "
        "[default: labels.csv; with --review of a CSV: that CSV].",
    ),
    model: Path | None = typer.Option(
        None, "--model", help="A run folder: suggests labels, least confident clips first."
    ),
    review: Path | None = typer.Option(
        None,
        "--review",
        help="Review a labelled set (CSV, prepared folder or class folders) instead: the "
        "clips where --model disagrees, most confident first.",
    ),
    group_regex: str | None = typer.Option(
        None, "--group-regex", help="Regex on the file name whose first group is the group id."
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="Where previews are kept [default: ~/.cache/vidclass/previews]."
    ),
    cache_mb: float = typer.Option(
        CACHE_MB,
        "--cache-mb",
        min=1,
        help="The previews folder's bound; the least recently used go first.",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes it to the network."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    allow_host: list[str] = typer.Option([], "--allow-host", metavar="NAME", help=ALLOW_HOST_HELP),
) -> None:
    """Label clips in the browser into the CSV that `vidclass prepare` reads.

    One key per class (1-9, then letters), Enter accepts the model's suggestion, S skips,
    U undoes, arrows move. Every label is saved at once; a restart resumes.

    Examples:

        vidclass label clips/ --classes walk,run,jump    # then open http://127.0.0.1:8000/

        vidclass label clips/ --model runs/first --out labels.csv

        vidclass label --review labels.csv --model runs/slow_fusion
    """
    from vidclass.serve import _require_serve_extra

    _require_serve_extra()
    from vidclass.serve.label_app import parse_classes, run

    run(folder, parse_classes(classes), out, model=model, review=review,
        group_regex=group_regex, cache_dir=cache, host=host, port=port,
        log=console.print, cache_mb=cache_mb, allow_hosts=allow_host)  # fmt: skip


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
    models: str | None = typer.Option(
        None,
        "--models",
        help="'all' or a comma-separated list [default: the eight classic methods; not the "
        "frozen-feature heads tsn and temporal_conv].",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Run the main job end to end on the embedded default dataset.

    Renders the synthetic videos, prepares them, trains and evaluates the eight classic
    methods under a quick budget and writes an HTML report. Running it again resumes finished stages.

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
        models=parse_models(models) if models else None,
        quiet=quiet,
        console=console,
    )
    raise typer.Exit(code)
