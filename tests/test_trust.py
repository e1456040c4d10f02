"""Issue 12, points 1-4: caches, resumes, splits and model selection never give a silently
wrong figure. Each test is named after the point it guards."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vidclass.data.dataset import VideoDataset
from vidclass.data.prepare import prepare, read_manifest
from vidclass.errors import UserError
from vidclass.models import run as run_format
from vidclass.train.compare import compare
from vidclass.train.features import feature_folder, feature_path
from vidclass.train.loop import BY_VAL, LAST_EPOCH, RunMismatch, TrainConfig, is_better, train
from vidclass.video.writer import write_video

FROZEN = {"backbone": "small", "freeze_backbone": True}


def copy_prepared(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("features", "flow"))
    return dst


def metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- 1. caches


def test_point1_frozen_features_do_not_depend_on_what_trained_before(tiny_data, tmp_path):
    """cnn_lstm (deltas: 2D-wide features) after single_frame on the same folder trains exactly
    as on a fresh copy: the cache key holds the model's feature transform."""
    shared = copy_prepared(tiny_data, tmp_path / "shared")
    fresh = copy_prepared(tiny_data, tmp_path / "fresh")
    cfg = dict(epochs=2, batch_size=4, options=FROZEN)
    train(shared, tmp_path / "sf", TrainConfig(model="single_frame", **cfg), quiet=True)
    train(shared, tmp_path / "lstm_a", TrainConfig(model="cnn_lstm", **cfg), quiet=True)
    train(fresh, tmp_path / "lstm_b", TrainConfig(model="cnn_lstm", **cfg), quiet=True)
    a, b = metrics(tmp_path / "lstm_a"), metrics(tmp_path / "lstm_b")
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "val_loss", "val_acc"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), abs=1e-6), key
    folders = sorted((shared / "features").iterdir())
    assert len(folders) == 2, "single_frame and cnn_lstm features are different caches"
    specs = [json.loads((f / "spec.json").read_text()) for f in folders]
    dims = sorted(s["feature_dim"] for s in specs)
    assert dims[1] == 2 * dims[0]
    assert {s["transform"].get("deltas") for s in specs} == {None, True}


def test_point1_heads_share_plain_features_and_a_grid_gets_its_own(tiny_data, tmp_path):
    """tsn after single_frame (same encoder, plain features) reads single_frame's cache and
    trains exactly as on a fresh copy; Lite0 pooled to a grid (same weights, other features)
    never reads the plain cache."""
    shared = copy_prepared(tiny_data, tmp_path / "shared")
    fresh = copy_prepared(tiny_data, tmp_path / "fresh")
    cfg = dict(epochs=2, batch_size=4, options=FROZEN)
    train(shared, tmp_path / "sf", TrainConfig(model="single_frame", **cfg), quiet=True)
    train(shared, tmp_path / "tsn_a", TrainConfig(model="tsn", **cfg), quiet=True)
    train(fresh, tmp_path / "tsn_b", TrainConfig(model="tsn", **cfg), quiet=True)
    assert len(list((shared / "features").iterdir())) == 1, "one encoder, one cache"
    for ra, rb in zip(metrics(tmp_path / "tsn_a"), metrics(tmp_path / "tsn_b"), strict=True):
        assert float(ra["val_loss"]) == pytest.approx(float(rb["val_loss"]), abs=1e-6)

    lite0 = {"backbone": "efficientnet_lite0", "freeze_backbone": True}
    one = dict(epochs=1, batch_size=4, seed=1)
    for grid in (1, 3):
        options = {**lite0, "grid": grid, "motion": True}
        train(shared, tmp_path / f"g{grid}", TrainConfig(model="tsn", options=options, **one),
              quiet=True)  # fmt: skip
    specs = [json.loads((f / "spec.json").read_text()) for f in (shared / "features").iterdir()]
    lite = sorted((s for s in specs if s["backbone"] == "efficientnet_lite0"),
                  key=lambda s: s["feature_dim"])  # fmt: skip
    assert [(s.get("grid"), s["feature_dim"]) for s in lite] == [(None, 1280), (3, 1280 * 9)]
    assert lite[0]["encoder"] == lite[1]["encoder"], "same weights: only the key's grid differs"


def test_point1_a_video_prepare_redid_is_encoded_again(tiny_data, tmp_path):
    src = tmp_path / "videos"
    shutil.copytree(tiny_data.parent / "videos", src)
    data = tmp_path / "d"
    options = dict(frames=8, size=32, test_fraction=1 / 3, val_fraction=1 / 3, quiet=True)
    prepare(src, data, **options)
    cfg = TrainConfig(model="single_frame", epochs=1, batch_size=4, options=FROZEN)
    train(data, tmp_path / "r1", cfg, quiet=True)
    ds = VideoDataset(data, split="train", normalize="clip")
    model, _ = run_format.load_model(tmp_path / "r1")
    folder = feature_folder(model, ds)
    before = feature_path(folder, ds, 0)
    assert before.exists()

    # The source of the first training video changes; `prepare` redoes it.
    row = ds.rows[0]
    rng = np.random.default_rng(0)
    write_video(Path(row["path"]), rng.integers(0, 255, (12, 48, 64, 3), dtype=np.uint8), 8)
    result = prepare(src, data, **options)
    assert result.reused == len(result.rows) - 1

    train(data, tmp_path / "r2", cfg, quiet=True)
    ds2 = VideoDataset(data, split="train", normalize="clip")
    after = feature_path(feature_folder(model, ds2), ds2, 0)
    assert after != before and after.exists()
    with torch.no_grad():
        expect = model.encode_frames(ds2[0]["video"][None], ds2[0]["mask"][None])[0].numpy()
    np.testing.assert_allclose(np.load(after), expect, atol=1e-5)


def test_point1_a_cache_whose_spec_differs_is_recomputed(tiny_data, tmp_path):
    data = copy_prepared(tiny_data, tmp_path / "d")
    cfg = TrainConfig(model="single_frame", epochs=1, batch_size=4, options=FROZEN)
    train(data, tmp_path / "r1", cfg, quiet=True)
    (folder,) = (data / "features").iterdir()
    spec = json.loads((folder / "spec.json").read_text())
    poisoned = next(folder.glob("*.npy"))
    np.save(poisoned, np.full_like(np.load(poisoned), 7.0))
    (folder / "spec.json").write_text(json.dumps({**spec, "frames": 99}))
    train(data, tmp_path / "r2", cfg, quiet=True)
    assert json.loads((folder / "spec.json").read_text()) == spec
    assert not np.all(np.load(poisoned) == 7.0), "the cache was rebuilt, not reused"


def test_point1_flow_cache_is_keyed_by_clip_length_and_window(tiny_data, tmp_path):
    """A 4-frame clip's flow (the centre window) is never served to an 8-frame clip."""
    from vidclass.data.flow import compute_flow

    data = copy_prepared(tiny_data, tmp_path / "d")
    short = VideoDataset(data, split="train", frames=4, normalize="clip", with_flow=True)
    full = VideoDataset(data, split="train", frames=8, normalize="clip", with_flow=True)
    f4 = short[0]["flow"]
    f8 = full[0]["flow"]
    assert f4.shape[1] == 3 and f8.shape[1] == 7
    frames = np.asarray(full.load_frames(0))
    expect = compute_flow(np.ascontiguousarray(frames), method="farneback")
    np.testing.assert_allclose(f8.numpy()[:, : len(frames) - 1], expect, atol=0.02)
    assert len(list(short.flow_dir().glob("*.npy"))) == 1
    assert short.flow_dir() != full.flow_dir()


# --------------------------------------------------------------------------- 2. resumes


def test_point2_resume_with_other_options_is_an_error_naming_them(tiny_data, tmp_path):
    run = tmp_path / "run"
    base = dict(model="late_fusion", batch_size=4, seed=1)
    train(tiny_data, run, TrainConfig(epochs=1, **base), quiet=True)
    with pytest.raises(RunMismatch) as err:
        train(tiny_data, run, TrainConfig(epochs=2, lr=1e-3, **base), resume=True, quiet=True)
    text = str(err.value)
    assert "epochs: saved 1, now 2" in text and "lr: saved 0.002, now 0.001" in text
    with pytest.raises(UserError, match="augment"):
        train(tiny_data, run, TrainConfig(epochs=1, augment=False, **base), resume=True, quiet=True)
    # The same options resume (here: nothing left to do) and change nothing.
    result = train(tiny_data, run, TrainConfig(epochs=1, **base), resume=True, quiet=True)
    assert result.resumed_from_epoch == 1 and len(metrics(run)) == 1


def test_point2_compare_never_reports_runs_of_another_budget(tiny_data, tmp_path):
    out = tmp_path / "cmp"
    lines: list[str] = []

    def late_fusion(epochs: int) -> dict:
        base = TrainConfig(model="", epochs=epochs, batch_size=4)
        return compare(tiny_data, ["late_fusion"], out, base, quiet=True, log=lines.append)

    assert late_fusion(2)["methods"][0]["run"] == "trained"
    assert late_fusion(2)["methods"][0]["run"] == "reused"
    fewer = late_fusion(1)
    m = fewer["methods"][0]
    assert m["run"] == "trained" and any(
        "epochs: saved 2, now 1" in d for d in m["replaced_because"]
    )
    assert len(metrics(out / "runs" / "late_fusion")) == 1
    assert json.loads((out / "runs/late_fusion/config.json").read_text())["train"]["epochs"] == 1
    assert any("retraining" in line for line in lines)
    md = (out / "comparison.md").read_text()
    assert "retrained (the saved run differed): late_fusion" in md


# ------------------------------------------------------------------ 3. splits and selection


def test_point3_prepare_writes_train_val_test_with_no_group_on_two_sides(make_video, tmp_path):
    for c in ("a", "b", "c"):
        for g in range(1, 11):
            make_video(f"src/{c}/v_{c}_g{g:02d}_c01.mp4", n=4, seed=g)
    result = prepare(tmp_path / "src", tmp_path / "p", frames=2, size=16, quiet=True, workers=1)
    for c in ("a", "b", "c"):
        rows = [r for r in result.rows if r["label"] == c]
        counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
        assert counts == {"train": 7, "val": 1, "test": 2}, counts
    sides: dict[str, set] = {}
    for r in result.rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    # The test side is the 80/20 split of the same seed, with or without a val split.
    plain = prepare(
        tmp_path / "src", tmp_path / "q", frames=2, size=16, val_fraction=0.0, quiet=True
    )
    tests_a = {r["video_id"] for r in result.rows if r["split"] == "test"}
    tests_b = {r["video_id"] for r in plain.rows if r["split"] == "test"}
    assert tests_a == tests_b


def test_point3_the_test_split_never_chooses_the_epoch(tiny_data, tmp_path):
    with pytest.raises(UserError, match="test split"):
        train(
            tiny_data,
            tmp_path / "r",
            TrainConfig(model="late_fusion", val_split="test"),
            quiet=True,
        )
    run = tmp_path / "run"
    result = train(
        tiny_data, run, TrainConfig(model="late_fusion", epochs=3, batch_size=4), quiet=True
    )
    config = json.loads((run / "config.json").read_text())
    assert config["selection"]["split"] == "val" and config["selection"]["rule"] == BY_VAL
    assert config["train"]["val_split"] == "val"
    val = VideoDataset(tiny_data, split="val")
    test = VideoDataset(tiny_data, split="test")
    assert not {r["video_id"] for r in val.rows} & {r["video_id"] for r in test.rows}
    # The val figures in metrics.csv are the val split's: recompute the chosen epoch's.
    rows = metrics(run)
    assert float(rows[result.best_epoch - 1]["val_acc"]) == result.best_val_acc


def test_point3_ucf101_val_is_carved_from_the_trainlist_by_group(make_video, tmp_path):
    train_groups, test_groups = range(8, 16), range(1, 3)
    for c in ("A", "B"):
        for g in [*train_groups, *test_groups]:
            for i in (1, 2):
                make_video(f"UCF101/{c}/v_{c}_g{g:02d}_c{i:02d}.mp4", n=4, seed=g * 3 + i)
    splits = tmp_path / "lists"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 A\n2 B\n")
    lines = {"train": [], "test": []}
    for c in ("A", "B"):
        for which, groups in (("train", train_groups), ("test", test_groups)):
            lines[which] += [f"{c}/v_{c}_g{g:02d}_c{i:02d}.avi" for g in groups for i in (1, 2)]
    (splits / "trainlist01.txt").write_text("\n".join(lines["train"]) + "\n")
    (splits / "testlist01.txt").write_text("\n".join(lines["test"]) + "\n")
    result = prepare(
        tmp_path / "UCF101", tmp_path / "o", frames=2, size=16, ucf101_splits=splits, quiet=True
    )
    rows = result.rows
    official_test = {r["video_id"] for r in rows if int(r["group"][1:]) in test_groups}
    assert {r["video_id"] for r in rows if r["split"] == "test"} == official_test
    val = [r for r in rows if r["split"] == "val"]
    assert val and all(int(r["group"][1:]) in train_groups for r in val)
    assert {r["label"] for r in val} == {"A", "B"}
    sides: dict[str, set] = {}
    for r in rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())


def test_point3_a_val_split_missing_a_class_keeps_the_last_epoch(tiny_data, tmp_path):
    data = copy_prepared(tiny_data, tmp_path / "d")
    rows = read_manifest(data)
    dropped = next(r["label"] for r in rows if r["split"] == "val")
    text = (data / "manifest.csv").read_text().splitlines()
    header = text[0].split(",")
    col = header.index("split")
    keep = [text[0]]
    for line, r in zip(text[1:], rows, strict=True):
        if r["split"] == "val" and r["label"] == dropped:
            cells = line.split(",")
            cells[col] = "unused"
            line = ",".join(cells)
        keep.append(line)
    (data / "manifest.csv").write_text("\n".join(keep) + "\n")
    run = tmp_path / "run"
    result = train(data, run, TrainConfig(model="late_fusion", epochs=3, batch_size=4), quiet=True)
    assert result.best_epoch == 3 and result.best_val_acc is None
    assert result.selection["rule"] == LAST_EPOCH and dropped in result.selection["reason"]
    assert json.loads((run / "config.json").read_text())["best"]["epoch"] == 3


# ------------------------------------------------------------------ 4. ties broken by loss


def test_point4_ties_in_val_accuracy_are_broken_by_lower_val_loss(tiny_data, tmp_path):
    rule = {"rule": BY_VAL}
    best = {"epoch": 2, "val_acc": 1.0, "val_loss": 1.10}
    assert is_better({"val_acc": 1.0, "val_loss": 0.20}, best, rule)
    assert not is_better({"val_acc": 1.0, "val_loss": 1.20}, best, rule)
    assert not is_better({"val_acc": 0.9, "val_loss": 0.01}, best, rule)
    assert is_better({"val_acc": 0.9, "val_loss": 5.0}, best, {"rule": LAST_EPOCH})

    run = tmp_path / "run"
    result = train(
        tiny_data, run, TrainConfig(model="late_fusion", epochs=4, batch_size=4), quiet=True
    )
    rows = metrics(run)
    acc = [float(r["val_acc"]) for r in rows]
    loss = [float(r["val_loss"]) for r in rows]
    top = max(acc)
    expected = min((i for i in range(len(rows)) if acc[i] == top), key=lambda i: loss[i]) + 1
    assert result.best_epoch == expected
