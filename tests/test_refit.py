"""`--refit` and the small-data training options: the epoch count is chosen on val by a first
pass, then the model trains again on train + val for exactly that many epochs; test never
trains or chooses. Frozen small backbones, so each run is a matter of seconds."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import vidclass.train.loop as loop
from vidclass.cli import app
from vidclass.errors import UserError
from vidclass.train.config import TrainConfig
from vidclass.train.loop import train
from vidclass.train.optim import lr_at
from vidclass.train.selection import BY_VAL, REFIT, REFIT_ALL

runner = CliRunner()
FROZEN = {"backbone": "small", "freeze_backbone": True}


@pytest.fixture
def data(tiny_data, tmp_path) -> Path:
    """A copy of the shared tiny set: training writes its feature cache into it."""
    return Path(shutil.copytree(tiny_data, tmp_path / "prepared"))


def split_ids(data: Path) -> dict[str, set[str]]:
    with open(data / "manifest.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    return {s: {r["video_id"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}


def record_clips(monkeypatch) -> list[tuple[int, set[str]]]:
    """(epoch, video ids trained on) per epoch of every pass, in order."""
    seen: list[tuple[int, set[str]]] = []
    real = loop._train_epoch

    def spy(net, loader, optimizer, device, epoch, *args):
        ids: set[str] = set()

        class Recording:
            def __len__(self):
                return len(loader)

            def __iter__(self):
                for batch in loader:
                    ids.update(batch["video_id"])
                    yield batch

        out = real(net, Recording(), optimizer, device, epoch, *args)
        seen.append((epoch, ids))
        return out

    monkeypatch.setattr(loop, "_train_epoch", spy)
    return seen


def test_refit_trains_on_train_and_val_for_the_epochs_val_chose(data, tmp_path, monkeypatch):
    seen = record_clips(monkeypatch)
    # Val scores that peak at epoch 2 of 5 (tiny random features would keep val at chance
    # and the choice at the last epoch, which would not tell a refit of 5 from one of 2).
    scripted = iter([(0.2, 2.0), (0.9, 1.0), (0.5, 1.5), (0.5, 1.4), (0.4, 1.6)])
    monkeypatch.setattr(loop, "val_scores", lambda net, loader, device: next(scripted))
    run = tmp_path / "run"
    cfg = TrainConfig(model="tsn", options=FROZEN, epochs=5, batch_size=4, lr=0.05, refit=True)
    result = train(data, run, cfg, quiet=True)
    ids = split_ids(data)

    first = json.loads((run / "select" / "config.json").read_text())
    assert first["selection"]["rule"] == BY_VAL
    with open(run / "select" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    # The first pass's best epoch by its own rule (val accuracy, then lower loss).
    best = max(rows, key=lambda r: (float(r["val_acc"]), -float(r["val_loss"])))
    chosen = int(best["epoch"])
    assert first["best"]["epoch"] == chosen == result.first_pass.best_epoch == 2

    config = json.loads((run / "config.json").read_text())
    selection = config["selection"]
    assert selection["rule"] == REFIT and selection["chosen_epoch"] == chosen
    assert selection["val_held_out"] is False
    assert selection["train_clips"] == len(ids["train"]) + len(ids["val"]) == 24
    assert config["best"]["epoch"] == chosen and result.best_epoch == chosen

    # Pass 1: every epoch on train alone; pass 2: exactly `chosen` epochs on train + val.
    assert [e for e, _ in seen] == [*range(1, 6), *range(1, chosen + 1)]
    assert all(clips == ids["train"] for _, clips in seen[:5])
    assert all(clips == ids["train"] | ids["val"] for _, clips in seen[5:])
    assert not any(clips & ids["test"] for _, clips in seen)

    with open(run / "metrics.csv") as fh:
        refit_rows = list(csv.DictReader(fh))
    assert len(refit_rows) == chosen
    assert all(r["val_acc"] == "" for r in refit_rows), "no val figure for a model val trained"
    # The warm-up + cosine schedule laid over the chosen epochs: it ends annealed.
    steps = 24 // 4
    total = chosen * steps
    assert float(refit_rows[-1]["lr"]) == pytest.approx(lr_at(total - 1, total, steps, 0.05))
    # The kept model is the refit's last epoch, not the first pass's.
    kept, last = (
        load_file(str(run / "model.safetensors")),
        load_file(str(run / "select" / "model.safetensors")),
    )
    assert any(not torch.equal(kept[k], last[k]) for k in kept)


def test_a_refit_resumed_after_its_first_pass_ends_as_one_that_never_stopped(data, tmp_path):
    cfg = TrainConfig(model="temporal_conv", options=FROZEN, epochs=3, batch_size=4, refit=True)
    straight = tmp_path / "straight"
    train(data, straight, cfg, quiet=True)

    # As if killed after the first pass: only RUN/select is there.
    stopped = tmp_path / "stopped"
    shutil.copytree(straight / "select", stopped / "select")
    result = train(data, stopped, cfg, resume=True, quiet=True)
    assert result.first_pass.resumed_from_epoch == 3  # pass 1 found done, not retrained
    a, b = (
        load_file(str(straight / "model.safetensors")),
        load_file(str(stopped / "model.safetensors")),
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    again = train(data, stopped, cfg, resume=True, quiet=True)  # both passes done: reused
    assert again.resumed_from_epoch == 3 and again.history == result.history
    with pytest.raises(UserError, match="--resume"):
        train(data, stopped, cfg, quiet=True)
    # A run trained without --refit is another recipe: resuming it with --refit is refused.
    plain = tmp_path / "plain"
    train(
        data,
        plain,
        TrainConfig(model="temporal_conv", options=FROZEN, epochs=3, batch_size=4),
        quiet=True,
    )
    with pytest.raises(UserError, match="refit"):
        train(data, plain, cfg, resume=True, quiet=True)


def test_refit_all_epochs_is_one_pass_on_train_and_val(data, tmp_path, monkeypatch):
    seen = record_clips(monkeypatch)
    run = tmp_path / "run"
    cfg = TrainConfig(
        model="tsn", options=FROZEN, epochs=3, batch_size=4, refit=True, refit_epochs="all"
    )
    result = train(data, run, cfg, quiet=True)
    ids = split_ids(data)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert all(clips == ids["train"] | ids["val"] for _, clips in seen)
    assert not (run / "select").exists() and result.first_pass is None
    selection = json.loads((run / "config.json").read_text())["selection"]
    assert selection["rule"] == REFIT_ALL and selection["val_held_out"] is False
    assert result.best_epoch == 3 and result.best_val_acc is None
    with pytest.raises(UserError, match="--refit-epochs"):
        train(data, tmp_path / "bad", TrainConfig(model="tsn", refit_epochs="all"), quiet=True)


def test_refit_without_a_val_split_trains_once_and_says_so(data, tmp_path, capsys):
    manifest = data / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",val,", ",train,"))
    cfg = TrainConfig(model="tsn", options=FROZEN, epochs=2, batch_size=4, refit=True)
    result = train(data, tmp_path / "run", cfg)
    assert "no 'val' split" in capsys.readouterr().out
    assert result.first_pass is None and not (tmp_path / "run" / "select").exists()
    assert result.selection["split"] is None


def test_cli_refit_label_smoothing_and_weight_decay_reach_the_run(data, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(data), "--model", "tsn", "--freeze-backbone", "--epochs", "2"]
    args += ["--batch-size", "4", "--refit", "--label-smoothing", "0.1", "--weight-decay", "0.05"]
    result = runner.invoke(app, [*args, "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert "refit" in result.output and "24 train + val clips" in result.output
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["refit"] is True and saved["label_smoothing"] == 0.1
    assert saved["weight_decay"] == 0.05


def test_label_smoothing_is_the_loss_the_optimiser_sees():
    """One step of `train_epoch` on confident logits: the loss it reports (and steps on) is
    cross-entropy against (1 - s) on the label + s/K on every class, computed here by hand."""
    from vidclass.train.epoch import train_epoch
    from vidclass.train.optim import Schedule

    k, s = 4, 0.3
    labels = torch.tensor([0, 2, 3])
    logits = 10 * torch.nn.functional.one_hot(labels, k).float()
    logits[1] = torch.tensor([9.0, 0.0, 1.0, 0.0])  # one clip named wrong

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, batch):
            return batch["x"] * self.scale

    net = Logits()
    opt = torch.optim.SGD([{"params": list(net.parameters()), "lr_scale": 0.0}], lr=0.0)
    schedule = Schedule(base_lr=1e-9, epochs=1, steps_per_epoch=1, warmup_epochs=0)
    batch = {"x": logits, "label": labels}
    for smoothing in (0.0, s):
        loss_sum, correct, seen = train_epoch(
            net, [batch], opt, torch.device("cpu"), 1, schedule, True, smoothing
        )
        target = (1 - smoothing) * torch.nn.functional.one_hot(labels, k) + smoothing / k
        expected = -(target * logits.log_softmax(1)).sum(1).mean()
        assert loss_sum / seen == pytest.approx(float(expected), rel=1e-5)
        assert (correct, seen) == (2, 3)


def test_label_smoothing_out_of_range_is_refused(data, tmp_path):
    cfg = TrainConfig(model="tsn", options=FROZEN, epochs=1, batch_size=4, label_smoothing=1.0)
    with pytest.raises(UserError, match="label-smoothing"):
        train(data, tmp_path / "run", cfg, quiet=True)
