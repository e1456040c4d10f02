"""`--refit`: choose the epoch count on val, then train on every labelled clip.

On a few hundred clips, holding whole groups (actors) out for val costs the model a large
share of its training data: on Weizmann's 3 folds, 1 actor of 6. A refit uses val twice, the
way small-data practice does (choose a setting on held-out data, then refit on all of it):

1. a normal run into `RUN/select/` (a complete run folder: its model is the best epoch on
   val, and `vidclass evaluate RUN/select` scores it) chooses the epoch count on val;
2. the model is trained again from the same initial weights (same seed) on train + val for
   that many epochs, the warm-up + cosine schedule laid over them, and the last epoch is
   kept in `RUN/`.

Why a schedule of the chosen length and not the first pass's schedule stopped at the chosen
epoch: the stopped one keeps a model at a high, un-annealed learning rate, where accuracy
moves by several clips from one epoch to the next; on Weizmann's inner folds (the test actors
never used) it was 2 points worse on average over four frame heads (docs/benchmarks.md,
"Real people").

`refit_epochs="all"` (`--refit-epochs all`) skips the choice: one pass on train + val over the
whole schedule, the last epoch kept; val then chooses and scores nothing. On those inner
folds it was the best use of the val clips: an epoch count chosen on 10 val clips is mostly
noise, and a refit that follows it lost 2.5 points on average against no refit at all
(−4.5 to +2.2 over the four heads), while the whole schedule on train + val gained 1.4.

Val has then trained the final model, so nothing is scored on it again: config.json's
`selection` names the rule, the chosen epoch and `"val_held_out": false`, and the second pass
logs no val figures. The test split still chooses nothing. `--resume` continues whichever
pass was interrupted.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from vidclass.data.prepare import read_manifest
from vidclass.train.config import TrainConfig
from vidclass.train.distributed import Dist
from vidclass.train.loop import TrainResult, _check_request, _train
from vidclass.train.selection import BY_VAL, REFIT, REFIT_ALL

SELECT_DIR = "select"  # the first pass, inside the run folder


def train_and_refit(
    data: Path, out: Path, cfg: TrainConfig, resume: bool, quiet: bool, ctx: Dist
) -> TrainResult:
    """The two passes (or one, with a warning, when there is no val split to fold in; or one
    on train + val with `refit_epochs="all"`, where val chooses nothing)."""
    _check_request(out, cfg, resume, ctx)
    say = print if ctx.is_main and not quiet else _silent
    clips = _clips(data, ("train", cfg.val_split))
    if clips["val"] == 0:
        say(f"warning: --refit: no {cfg.val_split!r} split to choose on or fold in; training once")
        return _train(data, out, cfg, resume, quiet, ctx)
    if cfg.refit_epochs == "all":
        selection = whole_schedule(cfg, clips["train"] + clips["val"])
        refit = {"epochs": cfg.epochs, "schedule_epochs": cfg.epochs, "selection": selection}
        return _train(data, out, cfg, resume, quiet, ctx, refit=refit)
    say(f"refit, pass 1 of 2 (into {out / SELECT_DIR}): the epoch count is chosen on val")
    first = _train(data, out / SELECT_DIR, cfg, resume, quiet, ctx)
    selection = refit_selection(first, cfg, clips["train"] + clips["val"])
    chosen = selection["chosen_epoch"]
    say(f"refit, pass 2 of 2 (into {out}): {chosen} epochs on train + val")
    refit = {"epochs": chosen, "schedule_epochs": chosen, "selection": selection}
    second = _train(data, out, cfg, resume, quiet, ctx, refit=refit)
    # "reused" (compare) only when both passes were found finished.
    found = first.resumed_from_epoch
    if second.resumed_from_epoch < refit["epochs"]:
        found = min(found, cfg.epochs - 1)
    return replace(
        second,
        best_val_acc=first.best_val_acc,
        train_time_s=first.train_time_s + second.train_time_s,
        resumed_from_epoch=found,
        first_pass=first,
    )


def refit_selection(first: TrainResult, cfg: TrainConfig, clips: int) -> dict:
    """config.json["selection"] of the refit: the epoch the first pass kept (its best on val,
    or its last when val could not choose) and what trained the final model."""
    chose = first.selection or {}
    if chose.get("rule") == BY_VAL:
        chosen_by = f"chosen on {cfg.val_split} ({chose['clips']} clips; {BY_VAL})"
        val_loss = first.history[first.best_epoch - 1]["val_loss"]
    else:
        chosen_by = f"of the whole schedule ({chose.get('reason', 'val could not choose')})"
        val_loss = None
    return {
        "split": cfg.val_split,
        "rule": REFIT,
        "chosen_epoch": first.best_epoch,
        "chosen_by": chosen_by,
        "first_pass": {
            "run": SELECT_DIR,
            "selection": chose,
            "val_acc": first.best_val_acc,
            "val_loss": val_loss,
        },
        "schedule": f"warm-up + cosine over the {first.best_epoch} epochs",
        "train_clips": clips,
        "val_held_out": False,  # val trained this model: a figure on it is not held-out
    }


def whole_schedule(cfg: TrainConfig, clips: int) -> dict:
    """config.json["selection"] of `refit_epochs="all"`: one pass on train + val over the
    whole schedule; val chooses nothing and scores nothing."""
    return {
        "split": cfg.val_split,
        "rule": REFIT_ALL,
        "chosen_epoch": cfg.epochs,
        "chosen_by": "of the whole schedule (--refit-epochs all: val chooses nothing)",
        "reason": f"--refit-epochs all: {cfg.val_split} trains too, so nothing chooses the epoch",
        "schedule": f"warm-up + cosine over the {cfg.epochs} epochs",
        "train_clips": clips,
        "val_held_out": False,
    }


def _clips(data: Path, splits: tuple[str, str]) -> dict[str, int]:
    rows = [r for r in read_manifest(data) if r["status"] == "ok"]
    train, val = splits
    return {
        "train": sum(r["split"] == train for r in rows),
        "val": sum(r["split"] == val for r in rows),
    }


def _silent(*args: object) -> None:
    pass
