"""Mirrored views (vidclass.data.views): flips that frozen features can use, test-time flip in
evaluate and predict, and the guard that keeps flips off where direction is the label."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import moving_square_frames
from vidclass.cli import app
from vidclass.data import views as views_module
from vidclass.data.dataset import VideoDataset
from vidclass.data.flow import compute_flow
from vidclass.data.views import HFLIP, ORIG, check_flip, flip_item, mirror_pairs, resolve_tta
from vidclass.models import run as run_format
from vidclass.synth.labels import CLASSES as SYNTH_CLASSES
from vidclass.train import loop
from vidclass.train.config import TrainConfig
from vidclass.train.evaluate import dataset_for_run, evaluate
from vidclass.train.features import FeatureDataset, feature_folder, feature_path
from vidclass.train.loop import train

runner = CliRunner()
FROZEN = {"backbone": "small", "freeze_backbone": True}
WEIZMANN = ["bend", "jack", "jump", "pjump", "run", "side", "skip", "walk", "wave1", "wave2"]


def copy_data(data: Path, to: Path) -> Path:
    return Path(shutil.copytree(data, to, ignore=shutil.ignore_patterns("features", "flow")))


def test_a_flipped_clip_has_mirrored_frames_and_the_flow_of_mirrored_frames():
    frames = moving_square_frames(6)
    flow = compute_flow(frames)
    mirrored_flow = compute_flow(np.ascontiguousarray(frames[:, :, ::-1]))
    video = torch.from_numpy(frames.astype(np.float32)).permute(3, 0, 1, 2)
    item = flip_item({"video": video, "flow": torch.from_numpy(flow), "label": 3})
    assert item["label"] == 3
    assert torch.equal(item["video"], video.flip(-1))
    np.testing.assert_allclose(item["flow"].numpy(), mirrored_flow, atol=1e-4, rtol=0)
    # The check has teeth: reversing W without negating x is far from it.
    assert np.abs(flow[:, :, :, ::-1] - mirrored_flow).max() > 10 * 1e-4
    batch = flip_item({"video": video[None].numpy(), "flow": flow[None]})  # numpy, batched
    np.testing.assert_allclose(batch["flow"][0], mirrored_flow, atol=1e-4, rtol=0)


def test_mirror_pairs_are_found_and_flips_refused_for_them(tiny_data, tmp_path):
    pairs = mirror_pairs(SYNTH_CLASSES)
    assert pairs == [("move_left", "move_right"), ("rotate_cw", "rotate_ccw")]
    assert mirror_pairs(WEIZMANN) == [] and check_flip(WEIZMANN, "--hflip") == []
    assert mirror_pairs(["from left to right", "From right to left"]) != []
    assert check_flip(["turn_left", "sit"], "--hflip")[0].startswith(
        "--hflip: the classes turn_left"
    )

    # The synthetic set's classes: training with flips is refused, and says why.
    args = ["train", str(tiny_data), "--model", "single_frame", "--epochs", "1", "-q"]
    result = runner.invoke(app, [*args, "--hflip", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "move_left/move_right" in str(result.exception)
    assert not (tmp_path / "r").exists()
    # A run of them is never flipped at test time by default, and refuses an explicit flip.
    cfg = TrainConfig(model="single_frame", epochs=1, batch_size=4, options=FROZEN)
    train(copy_data(tiny_data, tmp_path / "d"), tmp_path / "run", cfg, quiet=True)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["tta"] == "none" and not resolve_tta(config)
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "run"), str(tiny_data), "--tta", "flip"]
    )
    assert result.exit_code == 1 and "mirror images" in str(result.exception)


def test_frozen_flips_encode_each_view_once_into_a_cache_that_names_it(plain_data, tmp_path):
    data = copy_data(plain_data, tmp_path / "d")
    plain = TrainConfig(model="single_frame", epochs=1, batch_size=4, options=FROZEN)
    train(data, tmp_path / "r1", plain, quiet=True)
    (orig_folder,) = (data / "features").iterdir()
    before = {p.name: p.stat().st_mtime_ns for p in orig_folder.iterdir()}

    flipped = replace(plain, hflip=True)
    train(data, tmp_path / "r2", flipped, quiet=True)
    folders = {json.loads((f / "spec.json").read_text())["view"]["name"]: f
               for f in (data / "features").iterdir()}  # fmt: skip
    assert set(folders) == {ORIG, HFLIP} and folders[ORIG] == orig_folder
    after = {p.name: p.stat().st_mtime_ns for p in orig_folder.iterdir()}
    assert after == before, "adding the mirrored view left the cached originals alone"
    assert len(list(folders[HFLIP].glob("*.npy"))) == 9  # train + val clips

    # The mirrored view's features are the encoder's on the mirrored clip.
    model, _ = run_format.load_model(tmp_path / "r2")
    ds = VideoDataset(data, split="train", normalize="clip")
    item = ds[0]
    with torch.no_grad():
        expect = model.encode_frames(item["video"].flip(-1)[None], item["mask"][None])[0]
    got = np.load(feature_path(feature_folder(model, ds, HFLIP), ds, 0))
    np.testing.assert_allclose(got, expect.numpy(), atol=1e-5)
    assert not np.allclose(got, np.load(feature_path(orig_folder, ds, 0)), atol=1e-3)


def test_a_view_that_changes_meaning_is_encoded_again(plain_data, tmp_path, monkeypatch):
    data = copy_data(plain_data, tmp_path / "d")
    cfg = TrainConfig(model="single_frame", epochs=1, batch_size=4, options=FROZEN, hflip=True)
    train(data, tmp_path / "r1", cfg, quiet=True)
    model, _ = run_format.load_model(tmp_path / "r1")
    ds = VideoDataset(data, split="train", normalize="clip")
    old = feature_folder(model, ds, HFLIP)
    poisoned = feature_path(old, ds, 0)
    np.save(poisoned, np.full_like(np.load(poisoned), 7.0))
    # A later version that means something else by "hflip" (here: a changed description).
    monkeypatch.setitem(views_module.VIEWS, HFLIP, "mirrored, some other way")
    train(data, tmp_path / "r2", cfg, quiet=True)
    new = feature_folder(model, ds, HFLIP)
    assert new != old
    assert not np.allclose(np.load(feature_path(new, ds, 0)), 7.0)


def test_each_epoch_draws_one_view_per_clip_and_resume_draws_the_same(
    plain_data, tmp_path, monkeypatch
):
    data = copy_data(plain_data, tmp_path / "d")
    cfg = TrainConfig(model="cnn_lstm", epochs=3, batch_size=4, options=FROZEN, hflip=True, seed=5)
    straight = train(data, tmp_path / "straight", cfg, quiet=True)

    model, _ = run_format.load_model(tmp_path / "straight")
    base = VideoDataset(data, split="train", normalize="clip", seed=5)
    folders = {v: feature_folder(model, base, v) for v in (ORIG, HFLIP)}
    ds = FeatureDataset(base, folders, model.feature_dim, (ORIG, HFLIP))
    drawn = set()
    for epoch in range(1, 4):
        base.set_epoch(epoch)
        first = [ds[i]["features"] for i in range(len(ds))]
        assert all(torch.equal(a, ds[i]["features"]) for i, a in enumerate(first))  # seeded
        for i, feats in enumerate(first):
            drawn.add(next(v for v in folders if torch.equal(feats, ds.item(i, v)["features"])))
    assert drawn == {ORIG, HFLIP}

    real = loop._train_epoch

    def dies_in_epoch_2(net, loader, optimizer, device, epoch, *args):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(net, loader, optimizer, device, epoch, *args)

    monkeypatch.setattr(loop, "_train_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "killed", cfg, quiet=True)
    monkeypatch.setattr(loop, "_train_epoch", real)
    resumed = train(data, tmp_path / "killed", cfg, resume=True, quiet=True)
    assert resumed.resumed_from_epoch == 1
    for a, b in zip(straight.history, resumed.history, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_two_streams_mirrored_view_mirrors_its_flow_too(plain_data, tmp_path):
    data = copy_data(plain_data, tmp_path / "d")
    cfg = TrainConfig(model="two_stream", epochs=1, batch_size=4, options=FROZEN, hflip=True)
    train(data, tmp_path / "run", cfg, quiet=True)
    model, _ = run_format.load_model(tmp_path / "run")
    base = VideoDataset(data, split="train", normalize="clip", with_flow=True)
    folders = {v: feature_folder(model, base, v) for v in (ORIG, HFLIP)}
    ds = FeatureDataset(base, folders, model.feature_dim, (ORIG, HFLIP))
    orig, mirrored = ds.item(0, ORIG), ds.mirrored(0)
    assert torch.equal(mirrored["flow"], flip_item(orig)["flow"])
    assert orig["flow"][0].abs().max() > 0  # the square moves: x displacement to negate


def test_val_and_evaluate_average_each_clip_with_its_mirror(plain_data, tmp_path):
    data = copy_data(plain_data, tmp_path / "d")
    cfg = TrainConfig(model="single_frame", epochs=2, batch_size=4, options=FROZEN, hflip=True)
    result = train(data, tmp_path / "run", cfg, quiet=True)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["tta"] == "flip" and config["train"]["hflip"] is True

    # The epoch was chosen on val scored as evaluate scores it: with the mirror.
    on_val = evaluate(tmp_path / "run", data, split="val", quiet=True)
    assert on_val["tta"] == "flip" and on_val["top1"] == pytest.approx(result.best_val_acc)

    # evaluate's probabilities are the mean of the clip's and its mirror's.
    model, config = run_format.load_model(tmp_path / "run")
    for split in ("test", "val"):
        ds, _ = dataset_for_run(config, data, split)
        flipped = evaluate(tmp_path / "run", data, split=split, quiet=True)
        plain = evaluate(tmp_path / "run", data, split=split, quiet=True, tta="none")
        assert plain["tta"] == "none" and flipped["tta"] == "flip"
        with torch.no_grad():
            probs = []
            for i in range(len(ds)):
                item = {k: v[None] for k, v in ds[i].items() if torch.is_tensor(v)}
                p = model(item).softmax(1) + model(flip_item(item)).softmax(1)
                probs.append(int(p.argmax()))
        labels = [r["label_index"] for r in ds.rows]
        confusion = np.zeros((3, 3), int)
        for t, p in zip(labels, probs, strict=True):
            confusion[t, p] += 1
        assert flipped["confusion"] == confusion.tolist()


def test_features_cli_fills_both_views(plain_data, tmp_path):
    data = copy_data(plain_data, tmp_path / "d")
    args = ["features", str(data), "--model", "single_frame", "--backbone", "small"]
    result = runner.invoke(app, [*args, "--freeze-backbone", "--hflip", "-q"])
    assert result.exit_code == 0, result.output
    assert "18 encoded, 0 already there" in result.output  # 9 train + val clips, 2 views
    again = runner.invoke(app, [*args, "--freeze-backbone", "--hflip", "-q"])
    assert "0 encoded, 18 already there" in again.output


@pytest.mark.parametrize(
    ("name", "backbone"),
    [
        ("single_frame", "efficientnet_lite0"),
        ("cnn_lstm", "small"),
        ("two_stream", "small"),
        ("slow_fusion", "small"),
    ],
)
def test_predict_averages_each_window_with_its_mirror(name, backbone, make_video):
    from test_predict_features import FRAMES, SIZE, calibrated, timeline, whole_windows
    from test_predict_features import config as run_config
    from vidclass import Classifier

    model, cfg = calibrated(name, backbone), {**run_config(name), "tta": "flip"}
    flip, none = Classifier(model, cfg), Classifier(model, cfg, tta="none")
    assert flip.flip and not none.flip and not Classifier(model, run_config(name)).flip
    samples = list(moving_square_frames(FRAMES, SIZE, SIZE, seed=4))
    mirrored = [s[:, ::-1] for s in samples]
    expect = (none.window_probs(samples) + none.window_probs(mirrored)) / 2
    # two_stream: the mirrored window's flow is the original's mirrored (x negated), which
    # Farneback on the mirrored frames matches to ~1e-5.
    atol = 1e-4 if name == "two_stream" else 1e-5
    np.testing.assert_allclose(whole_windows(model, cfg).window_probs(samples), expect, atol=atol)
    assert np.abs(none.window_probs(samples) - expect).max() > 1e-4  # the flip changes them
    if name == "single_frame":
        expect = (none.frame_probs(samples) + none.frame_probs(mirrored)) / 2
        np.testing.assert_allclose(flip.frame_probs(samples), expect, atol=1e-5)
    # Shared frame features (a mirrored ring beside the ring) give the whole-window timeline.
    video = make_video("v.mp4", n=30, fps=10)
    times, probs = timeline(flip, video)
    ref_times, ref_probs = timeline(whole_windows(model, cfg), video)
    assert times == ref_times
    np.testing.assert_allclose(probs, ref_probs, atol=1e-5, rtol=0)
