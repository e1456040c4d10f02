"""Train and evaluate several methods under one budget and report them side by side.

With a recipe (`vidclass compare`'s default, `--recipe auto`), each method is trained as
`vidclass train DATA --model M` would train it, with the flags given here overriding the
recipe for every method: on real footage frozen ImageNet weights and the long schedule of the
frame heads, so the figures are what each method gets by default, not a from-scratch budget.

`DIR/runs/<method>/` holds each run (so an interrupted comparison resumes where it stopped);
`DIR/comparison.json`, `comparison.md`, `comparison.png` and `report.html` hold the result.
Each run's epochs are chosen as its config says (on `val`, or val folded in by the recipe);
every figure is on the `test` split. A saved run
is reused only when it was trained with this budget on this data: otherwise it is moved aside
(`runs/<method>.replaced/`) and trained again, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import shutil
import sys
from pathlib import Path

from vidclass.atomic import write_text
from vidclass.data.dataset import load_prepared_config
from vidclass.data.prepare import read_manifest
from vidclass.errors import UserError
from vidclass.models import DESCRIPTIONS, MODELS, RGB_MODELS, build, count_flops, example_batch
from vidclass.train.config import TrainConfig
from vidclass.train.evaluate import evaluate
from vidclass.train.loop import train
from vidclass.train.recipe import apply_recipe, choose_recipe, describe
from vidclass.train.resume import RunMismatch
from vidclass.train.selection import LAST_EPOCH, REFIT, REFIT_ALL

REPORT_SPLIT = "test"


def parse_models(text: str) -> list[str]:
    """'all' (every method fed pixels; a skeleton method needs the pose extra: name it) or a
    comma-separated list of method names."""
    if text.strip().lower() == "all":
        return list(RGB_MODELS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise UserError(
            f"unknown model(s) {unknown or text!r}; choose from: all, {', '.join(MODELS)}"
        )
    return names


def model_cost(
    name: str, options: dict, num_classes: int, frames: int, size: int
) -> tuple[int, float]:
    """(parameters, GFLOPs per clip) at the dataset's input size."""
    model = build(name, num_classes, **options)
    params = sum(p.numel() for p in model.parameters())
    return params, count_flops(model, example_batch(model, frames=frames, size=size)) / 1e9


def compare(
    data: str | Path,
    models: list[str],
    out: str | Path,
    base: TrainConfig,
    options: dict[str, dict] | None = None,
    quiet: bool = False,
    log=print,
    recipe: str | None = None,
    given: frozenset[str] = frozenset(),
) -> dict:
    """Train + evaluate each method (resuming finished or interrupted runs); write the report.

    `recipe` (auto | real | quick, see `vidclass.train.recipe`): each method's config is
    `base` with the recipe's values in every field not in `given` (the fields the user set);
    None trains every method with `base` as it is."""
    data, out = Path(data), Path(out)
    prepared = load_prepared_config(data)
    dataset = _dataset_summary(data, prepared, base.val_split)
    options = options or {}
    methods, configs, chosen = [], [], {}
    for name in models:
        cfg = TrainConfig(**{**base.__dict__, "model": name, "options": options.get(name, {})})
        if recipe is not None:
            picked = choose_recipe(data, name, recipe)
            cfg = apply_recipe(picked, cfg, set(given))
            if picked.why not in chosen:  # one line per distinct recipe, not per method
                chosen[picked.why] = picked
                log(describe(picked))
        log(f"[{len(methods) + 1}/{len(models)}] {name}")
        entry = _compare_one(data, out, cfg, prepared, quiet, log)
        entry["epochs"] = cfg.epochs
        methods.append(entry)
        configs.append(cfg)

    comparison = {
        "title": f"vidclass: {len(models)} methods on {data.name}",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "dataset": dataset,
        "budget": _budget(base, configs),
        "chart_png": "comparison.png",
        "methods": methods,
    }
    write_outputs(out, comparison)
    return comparison


def _budget(base: TrainConfig, configs: list[TrainConfig]) -> dict:
    """What every method was trained with: one value per field where all share it; the
    recipe's name and "per method" where the recipe gave methods different values."""
    configs = configs or [base]

    def shared(key: str, show=lambda v: v):
        values = {json.dumps(getattr(c, key), sort_keys=True) for c in configs}
        return show(getattr(configs[0], key)) if len(values) == 1 else "per method"

    budget = {"recipe": configs[0].recipe} if configs[0].recipe else {}
    budget.update(
        {
            "epochs": shared("epochs"),
            "batch_size": shared("batch_size"),
            "lr": shared("lr"),
            "seed": shared("seed"),
            "augment": shared("augment", lambda v: "auto" if v is None else v),
        }
    )
    if all(c.options.get("pretrained") and c.options.get("freeze_backbone") for c in configs):
        budget["weights"] = f"ImageNet {configs[0].options.get('backbone')}, frozen"
    budget["hflip"] = shared("hflip")
    if all(c.refit for c in configs):
        whole = all(c.refit_epochs == "all" for c in configs)
        how = "for the whole schedule" if whole else "for the epochs val chose"
        budget["selection"] = f"val folded into training {how}, reported on {REPORT_SPLIT}"
    else:
        budget["selection"] = f"best epoch on {base.val_split}, reported on {REPORT_SPLIT}"
    return budget


def _compare_one(data: Path, out: Path, cfg: TrainConfig, prepared: dict, quiet: bool, log) -> dict:
    """Train (or resume, or reuse) and evaluate one method → its entry of the report; a
    method that fails is reported with its error and the comparison goes on."""
    name, run = cfg.model, out / "runs" / cfg.model
    entry: dict = {"name": name, "description": DESCRIPTIONS.get(name, ""), "run_dir": str(run)}
    try:
        result, replaced = _train_or_retrain(data, run, cfg, quiet, log)
        metrics = evaluate(run, data, split=REPORT_SPLIT, quiet=True)
        params, gflops = model_cost(
            name, cfg.options, len(prepared["classes"]), prepared["frames"], prepared["size"]
        )
        entry.update(
            {
                "params": params,
                "gflops": gflops,
                "train_time_s": result.train_time_s,
                "clips_per_s": metrics["clips_per_s"],
                "top1": metrics["top1"],
                "top5": metrics["top5"],
                "pair_accuracy": metrics["pair_accuracy"],
                "best_epoch": result.best_epoch,
                "selection": result.selection,
                "run": _run_status(result, cfg.epochs, replaced),
                "replaced_because": replaced,
                "curves_png": str((run / "curves.png").relative_to(out)),
                "confusion_png": str((run / f"confusion-{REPORT_SPLIT}.png").relative_to(out)),
                "error": None,
            }
        )
        log(
            f"    top-1 {metrics['top1']:.1%} on {REPORT_SPLIT}, pair accuracy "
            f"{_pct(metrics['pair_accuracy'])}, epoch {result.best_epoch} "
            f"({_chosen(result.selection)}), {result.train_time_s:.0f} s, {entry['run']}"
        )
    except (UserError, RuntimeError, ValueError) as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
        log(f"    failed: {entry['error']}")
    return entry


def _dataset_summary(data: Path, prepared: dict, val_split: str) -> dict:
    """The report's description of the prepared data: classes, videos per split, input."""
    rows = [r for r in read_manifest(data) if r["status"] == "ok"]
    return {
        "root": str(data.resolve()),
        "classes": prepared["classes"],
        "pairs": prepared.get("pairs", []),
        "train_videos": sum(r["split"] == "train" for r in rows),
        "val_videos": sum(r["split"] == val_split for r in rows),
        "test_videos": sum(r["split"] == REPORT_SPLIT for r in rows),
        "report_split": REPORT_SPLIT,
        "frames": prepared["frames"],
        "size": prepared["size"],
    }


def _train_or_retrain(
    data: Path, run: Path, cfg: TrainConfig, quiet: bool, log
) -> tuple[object, list[str] | None]:
    """Resume or reuse `run` when it was trained with `cfg` on `data`; otherwise move it aside
    and train anew. Returns (result, the differences that made it retrain, or None)."""
    try:
        return train(data, run, cfg, resume=True, quiet=quiet), None
    except RunMismatch as exc:
        aside = run.with_name(f"{run.name}.replaced")
        shutil.rmtree(aside, ignore_errors=True)
        run.rename(aside)
        log(
            f"    retraining: the saved run differs ({'; '.join(exc.differences)}); old run in {aside}"
        )
        return train(data, run, cfg, resume=False, quiet=quiet), exc.differences


def _run_status(result, epochs: int, replaced: list[str] | None) -> str:
    """'trained', 'resumed' (finished an interrupted run) or 'reused' (found finished)."""
    if replaced is not None or result.resumed_from_epoch == 0:
        return "trained"
    return "reused" if result.resumed_from_epoch >= epochs else "resumed"


def write_outputs(out: Path, comparison: dict) -> None:
    from vidclass.report.html import write_comparison_markdown, write_comparison_report
    from vidclass.report.plots import plot_comparison

    out.mkdir(parents=True, exist_ok=True)
    plot_comparison(comparison["methods"], out / "comparison.png")
    write_text(out / "comparison.json", json.dumps(comparison, indent=2))
    write_comparison_markdown(out, comparison)
    write_comparison_report(out, comparison)


def _chosen(selection: dict | None) -> str:
    if selection and selection.get("rule") in (REFIT, REFIT_ALL):
        return f"{selection['chosen_by']}, then refit on train + {selection['split']}"
    if selection and selection.get("split") and selection.get("rule") != LAST_EPOCH:
        return f"chosen on {selection['split']}"
    return "the last: " + (selection or {}).get("reason", "no validation split")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"
