"""Training: runs end to end, resumes after SIGKILL to the same numbers, DDP matches one
process, checkpoints load safely, evaluate and compare write what they promise."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from vidclass.cli import app
from vidclass.errors import UserError
from vidclass.models import run as run_format
from vidclass.train import checkpoint as ckpt
from vidclass.train.loop import TrainConfig, train

runner = CliRunner()


def read_metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def test_train_writes_the_run_folder(tiny_data, tmp_path):
    run = tmp_path / "run"
    result = train(
        tiny_data, run, TrainConfig(model="early_fusion", epochs=2, batch_size=4), quiet=True
    )
    for name in (
        "model.safetensors",
        "config.json",
        "metrics.csv",
        "curves.png",
        "state.safetensors",
    ):
        assert (run / name).is_file(), name
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["train_loss"]) > 0 for r in rows)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "early_fusion" and len(config["classes"]) == 12
    assert config["frames"] == 8 and config["size"] == 32 and config["normalize"] == "clip"
    assert result.best_epoch in (1, 2)


def test_existing_run_needs_resume(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_data, run, TrainConfig(model="late_fusion", epochs=1, batch_size=4), quiet=True)
    with pytest.raises(UserError, match="--resume"):
        train(tiny_data, run, TrainConfig(model="late_fusion", epochs=1, batch_size=4), quiet=True)


_KILL_IN_EPOCH_2 = """
import os, signal, sys
import vidclass.train.loop as loop
from vidclass.cli import main

class DieAfterOneBatch:
    def __init__(self, loader):
        self.loader = loader
    def __len__(self):
        return len(self.loader)
    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch

real = loop._train_epoch
def train_epoch(net, loader, optimizer, device, epoch, *args):
    return real(net, DieAfterOneBatch(loader) if epoch == 2 else loader, optimizer, device, epoch, *args)
loop._train_epoch = train_epoch
sys.argv = ["vidclass", *sys.argv[1:]]
main()
"""


def test_resume_after_sigkill_equals_uninterrupted(tiny_data, tmp_path):
    args = [
        "train",
        str(tiny_data),
        "--model",
        "slow_fusion",
        "--epochs",
        "4",
        "--batch-size",
        "4",
        "--seed",
        "3",
        "-q",
    ]
    straight = tmp_path / "straight"
    assert runner.invoke(app, [*args, "--out", str(straight)]).exit_code == 0

    # The second run kills itself with SIGKILL after the first optimizer step of epoch 2: a
    # real kill mid-epoch (optimizer and RNG moved on in memory, nothing saved), placed by
    # counting batches rather than by a timer that a fast machine outruns.
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_IN_EPOCH_2, *args, "--out", str(killed)], timeout=300
    )
    assert proc.returncode == -signal.SIGKILL
    _, state = ckpt.load_state(killed / "state.safetensors")
    assert state["epoch"] == 1, "the last saved state is the end of epoch 1"

    resumed = runner.invoke(app, [*args, "--out", str(killed), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    a, b = read_metrics(straight), read_metrics(killed)
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), abs=1e-6), key
    wa, wb = (
        load_file(str(straight / "model.safetensors")),
        load_file(str(killed / "model.safetensors")),
    )
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def _ddp_args(data: Path) -> list[str]:
    # Dropout draws from each process's own random stream, so it is switched off here; every
    # other source of difference (sampling, gradient averaging, BatchNorm statistics) is not.
    return [
        "train",
        str(data),
        "--model",
        "early_fusion",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--seed",
        "5",
        "--option",
        "dropout=0",
        "--no-augment",
        "-q",
    ]


@pytest.fixture(scope="module")
def one_process_run(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "single"
    assert runner.invoke(app, [*_ddp_args(tiny_data), "--out", str(out)]).exit_code == 0
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("layout", ["one_node_two_processes", "two_nodes_one_process_each"])
def test_ddp_matches_one_process(one_process_run, tiny_data, tmp_path, layout):
    """2 processes train the same model as 1, on one node (`--standalone`) and on two "nodes"
    (two torchrun launchers meeting at a c10d rendezvous: the multi-node recipe of
    docs/scale.md, with both nodes writing to one shared output folder)."""
    ddp = tmp_path / "ddp"
    if layout == "one_node_two_processes":
        launchers = [["--standalone", "--nproc_per_node", "2"]]
    else:
        rdzv = ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{_free_port()}"]
        node = ["--nnodes", "2", "--nproc_per_node", "1", *rdzv, "--rdzv_id", "vidclass-test"]
        launchers = [node, node]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "vidclass"]
            + [*_ddp_args(tiny_data), "--out", str(ddp)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for launcher in launchers
    ]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    a, b = read_metrics(one_process_run), read_metrics(ddp)
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), abs=1e-4), key
    wa = load_file(str(one_process_run / "state.safetensors"))
    wb = load_file(str(ddp / "state.safetensors"))
    for k in wa:
        if k.startswith("model."):
            assert torch.allclose(wa[k].float(), wb[k].float(), atol=1e-4), k
    assert not list(ddp.glob(".*.tmp"))


def test_checkpoint_errors_are_clear(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_data, run, TrainConfig(model="early_fusion", epochs=1, batch_size=4), quiet=True)
    model, config = run_format.load_model(run)
    assert not model.training and config["model"] == "early_fusion"

    config_path = run / "config.json"
    good = config_path.read_text()
    wrong = json.loads(good)
    wrong["model"] = "slow_fusion"
    with pytest.raises(UserError, match="unknown option"):  # options of another model
        config_path.write_text(json.dumps(wrong))
        run_format.load_model(run)
    wrong["options"] = {}
    config_path.write_text(json.dumps(wrong))
    with pytest.raises(UserError, match="does not fit model 'slow_fusion'"):
        run_format.load_model(run)
    config_path.write_text(good.replace('"model": "early_fusion"', '"model": "resnet9000"'))
    with pytest.raises(UserError, match="unknown model"):
        run_format.load_model(run)
    config_path.write_text(good)

    weights = load_file(str(run / "model.safetensors"))
    key = next(k for k, v in weights.items() if v.dim() == 2)
    weights[key] = torch.zeros(weights[key].shape[0] + 1, weights[key].shape[1])
    save_file(weights, str(run / "model.safetensors"))
    with pytest.raises(UserError, match="shape mismatch"):
        run_format.load_model(run)
    (run / "model.safetensors").write_bytes(b"\x80\x04 not safetensors (a pickle?)")
    with pytest.raises(UserError, match="not a readable safetensors"):
        run_format.load_model(run)


def test_evaluate_on_a_hand_made_confusion_case(tiny_data, tmp_path, monkeypatch):
    """3 test classes' clips predicted by hand → top-1, recall and confusion by hand."""
    from vidclass.data.dataset import VideoDataset
    from vidclass.train import evaluate as ev

    run = tmp_path / "run"
    train(tiny_data, run, TrainConfig(model="early_fusion", epochs=1, batch_size=4), quiet=True)
    test = VideoDataset(tiny_data, split="test")
    labels = np.array(test.labels)
    preds = labels.copy()
    k = len(test.classes)
    preds[0] = (labels[0] + 1) % k  # one mistake
    preds[1] = (labels[1] + 2) % k  # two mistakes
    scores = np.full((len(labels), k), -5.0)
    scores[np.arange(len(labels)), preds] = 5.0
    index = {r["video_id"]: i for i, r in enumerate(test.rows)}

    class Model(torch.nn.Module):
        needs_flow = False

        def forward(self, batch):
            rows = [index[v] for v in batch["video_id"]]
            return torch.from_numpy(scores[rows]).float()

    def predict(model, loader, device):
        probs, labs, ids = [], [], []
        for batch in loader:
            probs.append(torch.softmax(model(batch), 1))
            labs.append(batch["label"])
            ids.extend(batch["video_id"])
        return torch.cat(probs).numpy(), torch.cat(labs).numpy(), ids, 1.0

    config = json.loads((run / "config.json").read_text())
    monkeypatch.setattr(ev, "load_model", lambda r: (Model(), config))
    monkeypatch.setattr(ev, "predict_loader", predict)
    metrics = ev.evaluate(run, tiny_data, split="test", quiet=True)
    n = len(labels)
    assert metrics["top1"] == pytest.approx((n - 2) / n)
    confusion = np.array(metrics["confusion"])
    assert confusion.sum() == n and np.trace(confusion) == n - 2
    assert confusion[labels[0], preds[0]] >= 1 and confusion[labels[1], preds[1]] >= 1
    assert (run / "confusion-test.png").is_file() and (run / "eval-test.json").is_file()


def test_evaluate_cli_and_views(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_data, run, TrainConfig(model="single_frame", epochs=1, batch_size=4), quiet=True)
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(run),
            str(tiny_data),
            "--views",
            "3",
            "-q",
            "--json",
            str(tmp_path / "m.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["views"] == 3 and metrics["num_videos"] == 12
    assert 0 <= metrics["top1"] <= 1 and metrics["pair_accuracy"] is not None
    assert "pair accuracy" in result.output


def test_evaluate_refuses_data_prepared_with_other_size_or_pad_unless_allowed(tiny_data, tmp_path):
    from vidclass.data.prepare import prepare

    run = tmp_path / "run"
    train(tiny_data, run, TrainConfig(model="single_frame", epochs=1, batch_size=4), quiet=True)
    videos = tiny_data.parent / "videos"
    other = tmp_path / "other"
    prepare(videos, other, frames=8, size=24, pad="repeat", test_fraction=1 / 3, quiet=True)
    refused = runner.invoke(app, ["evaluate", str(run), str(other), "-q"])
    assert refused.exit_code == 1 and isinstance(refused.exception, UserError)
    message = str(refused.exception)
    assert "size: run 32, data 24" in message and "pad: run zeros, data repeat" in message
    assert "--size 32 --pad zeros" in message and "--allow-mismatch" in message
    assert not (run / "eval-test.json").exists()  # no figures written for refused data

    allowed = runner.invoke(app, ["evaluate", str(run), str(other), "-q", "--allow-mismatch"])
    assert allowed.exit_code == 0, allowed.output
    assert "warning" in allowed.output and "size: run 32, data 24" in allowed.output
    saved = json.loads((run / "eval-test.json").read_text())
    assert saved["input_mismatch"] == ["size: run 32, data 24", "pad: run zeros, data repeat"]


def test_evaluate_refuses_data_cropped_otherwise_than_the_run(tiny_data, tmp_path):
    """A run on centre crops (prepared.json without a crop) scored on full-frame data, and
    one on full frames scored on centre crops: both refused, naming the crop."""
    from vidclass.data.prepare import prepare

    videos = tiny_data.parent / "videos"
    full = tmp_path / "full"
    prepare(videos, full, frames=8, size=32, crop="full", test_fraction=1 / 3, quiet=True)
    cfg = TrainConfig(model="single_frame", epochs=1, batch_size=4)
    for run_data, other, words in (
        (tiny_data, full, "crop: run center, data full"),
        (full, tiny_data, "crop: run full, data center"),
    ):
        run = tmp_path / f"run-{run_data.name}"
        train(run_data, run, cfg, quiet=True)
        refused = runner.invoke(app, ["evaluate", str(run), str(other), "-q"])
        assert isinstance(refused.exception, UserError), refused.output
        assert words in str(refused.exception)
        same = runner.invoke(app, ["evaluate", str(run), str(run_data), "-q"])
        assert same.exit_code == 0, same.output


def test_evaluate_accepts_data_that_differs_only_in_workers_export_or_split(tiny_data, tmp_path):
    from vidclass.data.prepare import prepare

    run = tmp_path / "run"
    train(tiny_data, run, TrainConfig(model="single_frame", epochs=1, batch_size=4), quiet=True)
    same = tmp_path / "same"
    prepare(
        tiny_data.parent / "videos",
        same,
        frames=8,
        size=32,
        workers=1,
        export_frames=True,
        seed=5,
        test_fraction=1 / 3,
        quiet=True,
    )
    result = runner.invoke(app, ["evaluate", str(run), str(same), "-q"])
    assert result.exit_code == 0, result.output
    assert "input_mismatch" not in json.loads((run / "eval-test.json").read_text())


def test_evaluate_mismatch_rules_for_frames_sampling_and_older_runs():
    from vidclass.train.evaluate import input_mismatches

    spread = {"frames": 8, "interval": None, "sample_fps": None, "size": 112, "pad": "zeros"}
    run = {"prepared": spread}
    assert input_mismatches(run, {**spread, "frames": 16}) == {"frames": (8, 16)}
    assert input_mismatches(run, {**spread, "interval": 2}) == {"interval": (None, 2)}
    # With a fixed step, frames is only a cap: a longer cache gives --views its windows.
    stepped = {**spread, "interval": 2}
    assert input_mismatches({"prepared": stepped}, {**stepped, "frames": 32}) == {}
    assert input_mismatches({"prepared": stepped}, {**stepped, "interval": 4}) == {
        "interval": (2, 4)
    }
    # A run saved before config.json held "prepared" is checked on what it did record.
    old = {"frames": 8, "size": 224, "pad": "repeat", "normalize": "imagenet"}
    assert input_mismatches(old, {**spread, "size": 112}) == {
        "size": (224, 112),
        "pad": ("repeat", "zeros"),
    }


def test_compare_writes_all_its_files(tiny_data, tmp_path):
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        [
            "compare",
            str(tiny_data),
            "--models",
            "single_frame,late_fusion",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("comparison.md", "comparison.json", "comparison.png", "report.html"):
        assert (out / name).is_file(), name
    data = json.loads((out / "comparison.json").read_text())
    assert [m["name"] for m in data["methods"]] == ["single_frame", "late_fusion"]
    for m in data["methods"]:
        assert m["error"] is None and m["params"] > 0 and m["gflops"] > 0 and m["top1"] >= 0
        assert (out / m["curves_png"]).is_file() and (out / m["confusion_png"]).is_file()
    html = (out / "report.html").read_text()
    assert "late_fusion" in html and "data:image/png;base64," in html


def test_frozen_backbone_caches_features(tiny_data, tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(
        model="cnn_lstm",
        epochs=2,
        batch_size=4,
        options={"backbone": "small", "freeze_backbone": True},
    )
    train(tiny_data, run, cfg, quiet=True)
    folders = list((tiny_data / "features").iterdir())
    assert len(folders) == 1
    cached = list(folders[0].glob("*.npy"))
    assert len(cached) == 24  # train + val clips; test clips are never encoded for training
    feats = np.load(cached[0])
    assert feats.shape[0] == 8 and feats.dtype == np.float32
    model, _ = run_format.load_model(run)
    assert model.encoder.frozen


def test_a_last_batch_of_one_clip_is_left_for_the_next_epoch(tiny_data, tmp_path):
    """12 training clips in batches of 11: the lone 12th would stop BatchNorm in training
    mode; it waits for the next epoch's shuffle instead."""
    result = train(
        tiny_data,
        tmp_path / "run",
        TrainConfig(model="late_fusion", epochs=1, batch_size=11),
        quiet=True,
    )
    assert result.history[0]["train_loss"] > 0


def test_compare_trains_each_method_with_the_recipe_and_the_flags_given(tiny_data, tmp_path):
    from vidclass.train.compare import _budget, compare

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    base = TrainConfig(model="", epochs=1, batch_size=4)
    given = frozenset({"epochs", "batch_size"})
    lines: list[str] = []
    out = compare(
        data, ["temporal_conv", "single_frame"], tmp_path / "cmp", base, quiet=True, log=lines.append,
        recipe="real", given=given,
    )  # fmt: skip
    # One recipe for both (tsn's would add its grid and motion): said once, not per method.
    assert sum(line.startswith("recipe real:") for line in lines) == 1
    for m in out["methods"]:
        assert m["error"] is None, m["error"]
        config = json.loads((Path(m["run_dir"]) / "config.json").read_text())
        assert config["train"]["recipe"] == "real"
        assert config["options"]["backbone"] == "efficientnet_lite0"
        assert config["options"]["freeze_backbone"] is True
        assert config["train"]["epochs"] == 1 and m["epochs"] == 1  # the flag wins
        assert config["train"]["hflip"] is False  # move_left/move_right: mirrors swap labels
    budget = out["budget"]
    assert budget["recipe"] == "real" and budget["epochs"] == 1
    assert budget["weights"] == "ImageNet efficientnet_lite0, frozen"
    assert budget["selection"].startswith("val folded into training")
    assert "real recipe" in (tmp_path / "cmp" / "report.html").read_text()
    # Where the recipe gives methods different schedules the budget says so.
    mixed = [TrainConfig(model="tsn", epochs=60), TrainConfig(model="slow_fusion", epochs=12)]
    assert _budget(base, mixed)["epochs"] == "per method"
