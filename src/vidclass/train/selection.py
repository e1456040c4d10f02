"""Which epoch a run keeps: the best on `val` (never `test`), or the last when `val` cannot
choose fairly."""

from __future__ import annotations

from vidclass.data.dataset import VideoDataset

BY_VAL = "val accuracy, ties broken by lower val loss"
LAST_EPOCH = "last epoch"
# train/refit.py: the epoch count chosen on val (by BY_VAL), then val trains too.
REFIT = "refit: the epoch count chosen on val, then trained again on train + val, last epoch kept"
REFIT_ALL = "refit: trained on train + val for the whole schedule, last epoch kept"


def selection_rule(train_ds: VideoDataset, val_ds: VideoDataset | None, split: str) -> dict:
    """How the saved epoch is chosen: on `val` when it holds a clip of every class the model
    trains on, else the last epoch (a val split missing classes would pick by luck)."""
    if val_ds is None:
        return {
            "split": None,
            "rule": LAST_EPOCH,
            "reason": f"no {split!r} split in the prepared data (prepare with --val-fraction > 0)",
        }
    missing = sorted(set(train_ds.labels) - set(val_ds.labels))
    if missing:
        names = [train_ds.classes[i] for i in missing]
        return {
            "split": split,
            "rule": LAST_EPOCH,
            "reason": f"the {split!r} split has no clip of {len(names)} classes "
            f"(e.g. {', '.join(names[:3])})",
        }
    return {"split": split, "rule": BY_VAL, "clips": len(val_ds)}


def describe_selection(selection: dict) -> str:
    if selection["rule"] in (REFIT, REFIT_ALL):
        return (
            f"refit: training again from the start on train + {selection['split']} "
            f"({selection['train_clips']} clips) for the {selection['chosen_epoch']} epochs "
            f"{selection['chosen_by']}, keeping the last"
        )
    if selection["rule"] == BY_VAL:
        return f"choosing the epoch on {selection['split']} ({selection['clips']} clips): {BY_VAL}"
    return f"warning: keeping the last epoch: {selection['reason']}"


def is_better(row: dict, best: dict, selection: dict) -> bool:
    """Accuracy first, then lower loss: an early epoch that already names every val clip
    right but with probabilities near uniform loses to a later, confident one."""
    if selection["rule"] != BY_VAL or best["epoch"] == 0:
        return True
    if row["val_acc"] != best["val_acc"]:
        return row["val_acc"] > best["val_acc"]
    return row["val_loss"] < best["val_loss"]
