"""The method zoo: interface, gradients, learning, order sensitivity, masks, configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidclass.data.flow import compute_flow
from vidclass.errors import UserError
from vidclass.models import FRAME_MODELS, MODELS, RGB_MODELS, build, describe

NAMES = list(RGB_MODELS)  # fed pixels; the skeleton method `pose`: tests/test_pose.py
TEMPORAL = [
    "late_fusion",
    "early_fusion",
    "slow_fusion",
    "cnn_lstm",
    "slowfast",
    "two_stream",
    "multires",
    "temporal_conv",
]
# Blind to order by construction: the mean over a set of frames.
ORDER_BLIND = ["single_frame", "tsn"]
B, T, S = 2, 8, 64
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def random_batch(batch: int = B, frames: int = T, size: int = S, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "video": torch.randn(batch, 3, frames, size, size, generator=g),
        "mask": torch.ones(batch, frames, dtype=torch.bool),
        "flow": torch.randn(batch, 2, frames - 1, size, size, generator=g) * 0.3,
    }


def reverse_real(batch: dict) -> dict:
    """Reverse the real frames of each clip in time (padding stays at the end); flow is
    reversed in time and negated."""
    video, mask, flow = batch["video"].clone(), batch["mask"], batch["flow"].clone()
    for i, n in enumerate(mask.sum(1).tolist()):
        video[i, :, :n] = batch["video"][i, :, :n].flip(1)
        flow[i, :, : n - 1] = -batch["flow"][i, :, : n - 1].flip(1)
    return {"video": video, "mask": mask, "flow": flow}


def pad_batch(batch: dict, extra: int) -> dict:
    """Append ``extra`` padding frames (zeros, mask False)."""
    video = torch.nn.functional.pad(batch["video"], (0, 0, 0, 0, 0, extra))
    flow = torch.nn.functional.pad(batch["flow"], (0, 0, 0, 0, 0, extra))
    mask = torch.nn.functional.pad(batch["mask"], (0, extra), value=False)
    return {"video": video, "mask": mask, "flow": flow}


def moving_square_clips(n: int, colour_classes: bool, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """``n`` clips, two classes: a square moving right (0) or the same clip reversed in time (1).

    With ``colour_classes`` the class is (also) the square's colour, for order-blind models.
    Flow is computed with OpenCV, as the data pipeline does.
    """
    rng = np.random.default_rng(seed)
    clips, flows, labels = [], [], []
    for i in range(n):
        label = i % 2
        frames = np.full((T, S, S, 3), rng.integers(60, 120), dtype=np.uint8)
        y0 = int(rng.integers(4, S - 20))
        colour = (230, 40, 40) if (colour_classes and label) else (40, 200, 230)
        for t in range(T):
            x0 = 4 + 5 * t
            frames[t, y0 : y0 + 14, x0 : x0 + 14] = colour
        if label == 1:
            frames = frames[::-1].copy()
        clips.append((frames.astype(np.float32) / 255 - MEAN) / STD)
        flows.append(compute_flow(frames).astype(np.float32))
        labels.append(label)
    video = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).contiguous()
    batch = {
        "video": video,
        "mask": torch.ones(n, T, dtype=torch.bool),
        "flow": torch.from_numpy(np.stack(flows)),
    }
    return batch, torch.tensor(labels)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shapes_and_gradients(name: str) -> None:
    """At the default input size (16×112×112), one clip partly padded."""
    torch.manual_seed(0)
    model = build(name, 5)
    batch = random_batch(frames=16, size=112)
    batch["mask"][1, 11:] = False
    batch["video"][1, :, 11:] = 0
    logits = model(batch)
    assert logits.shape == (B, 5)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert isinstance(model.needs_flow, bool)
    assert model.needs_flow == (name == "two_stream")


@pytest.mark.parametrize("name", NAMES)
def test_overfits_two_classes(name: str) -> None:
    torch.manual_seed(0)
    batch, labels = moving_square_clips(8, colour_classes=name in ORDER_BLIND)
    model = build(name, 2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    accuracy = 0.0
    for step in range(60):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(batch), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 5 == 4:
            model.eval()
            with torch.no_grad():
                accuracy = (model(batch).argmax(1) == labels).float().mean().item()
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"{name}: train accuracy {accuracy} after {step + 1} steps"


@pytest.mark.parametrize("name", ORDER_BLIND)
def test_order_blind_models_ignore_order(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, 5).eval()
    batch = random_batch()
    batch["mask"][1, 6:] = False
    batch["video"][1, :, 6:] = 0
    with torch.no_grad():
        a, b = model(batch), model(reverse_real(batch))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_models_see_order(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, 5).eval()
    batch = random_batch()
    with torch.no_grad():
        a, b = model(batch), model(reverse_real(batch))
    assert (a - b).abs().max() > 1e-4


def test_two_stream_temporal_stream_sees_order() -> None:
    torch.manual_seed(0)
    model = build("two_stream", 5).eval()
    batch = random_batch()
    rev = reverse_real(batch)
    with torch.no_grad():
        feats = model.encode_frames(batch["video"], batch["mask"])
        spatial, temporal = model.stream_logits(feats, batch["mask"], batch["flow"])
        feats_r = model.encode_frames(rev["video"], rev["mask"])
        spatial_r, temporal_r = model.stream_logits(feats_r, rev["mask"], rev["flow"])
    assert (temporal - temporal_r).abs().max() > 1e-4
    # T=8 has an even number of frames, so the centre frame differs after reversal; the
    # spatial stream only ever sees one RGB frame.
    assert spatial.shape == temporal.shape == (B, 5)


@pytest.mark.parametrize("name", ["single_frame", "cnn_lstm", "tsn", "temporal_conv"])
def test_padding_changes_nothing(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, 5).eval()
    batch = random_batch()
    batch["mask"][1, 5:] = False
    batch["video"][1, :, 5:] = 0
    with torch.no_grad():
        a, b = model(batch), model(pad_batch(batch, 4))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["single_frame", "cnn_lstm", "tsn", "temporal_conv"])
def test_heads_on_cached_features_ignore_padding_rows(name: str) -> None:
    """What a clip's head gives from its real frames alone, whatever sits in its padding rows
    (cached features of padding are zeros, but the head must not rely on it)."""
    torch.manual_seed(0)
    model = build(name, 5).eval()
    feats = torch.randn(2, T, model.feature_dim)
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, 3:] = False
    junk = feats.clone()
    junk[1, 3:] = 100.0
    with torch.no_grad():
        a = model.forward_features(feats, mask)
        b = model.forward_features(junk, mask)
        alone = model.forward_features(feats[1:, :3], mask[1:, :3])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a[1:], alone, atol=1e-5, rtol=0)


def test_tsn_consensus_is_the_mean_of_real_frame_logits() -> None:
    """Average consensus before the classifier, as mmaction2's TSNHead: in eval mode the
    clip's logits are the mean of its real frames' logits (single_frame instead averages
    probabilities)."""
    torch.manual_seed(0)
    model = build("tsn", 4).eval()
    feats = torch.randn(2, T, model.feature_dim)
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[0, 5:] = False
    with torch.no_grad():
        logits = model.forward_features(feats, mask)
        per_frame = model.classifier(feats)
    torch.testing.assert_close(logits[0], per_frame[0, :5].mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[1], per_frame[1].mean(0), atol=1e-5, rtol=0)


def test_tsn_motion_adds_the_mean_feature_change_of_real_frames() -> None:
    """motion=True: the consensus is [mean f_t, mean |f_{t+1} - f_t|] over real frames only;
    reversing the real frames changes nothing, shuffling them does (unlike plain TSN)."""
    torch.manual_seed(0)
    model = build("tsn", 4, backbone="small", motion=True).eval()
    d = model.feature_dim
    assert model.classifier[1].in_features == 2 * d
    feats = torch.randn(2, T, d)
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, 5:] = False
    fc = model.classifier[1]
    with torch.no_grad():
        logits = model.forward_features(feats, mask)
        real = feats[1, :5]
        expected = fc(torch.cat([real.mean(0), (real[1:] - real[:-1]).abs().mean(0)]))
        reversed_ = feats.clone()
        reversed_[1, :5] = real.flip(0)
        shuffled = feats.clone()
        shuffled[1, :5] = real[[0, 3, 1, 4, 2]]
        plain = build("tsn", 4).eval()
        plain.classifier[1].weight.copy_(fc.weight[:, :d])
        plain.classifier[1].bias.copy_(fc.bias)
        a = model.forward_features(reversed_, mask)
        b = model.forward_features(shuffled, mask)
        p, q = plain.forward_features(feats, mask), plain.forward_features(shuffled, mask)
    torch.testing.assert_close(logits[1], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(a, logits, atol=1e-5, rtol=0)
    assert (b[1] - logits[1]).abs().max() > 1e-3
    torch.testing.assert_close(p, q, atol=1e-5, rtol=0)  # without motion: a set


def test_temporal_conv_refuses_options_it_cannot_build() -> None:
    with pytest.raises(UserError, match="odd"):
        build("temporal_conv", 3, kernel=4)
    with pytest.raises(UserError, match="pool"):
        build("temporal_conv", 3, pool="median")
    with pytest.raises(UserError, match="layers"):
        build("temporal_conv", 3, layers=0)


def test_bidirectional_lstm_respects_mask() -> None:
    torch.manual_seed(0)
    model = build("cnn_lstm", 3, bidirectional=True, layers=1).eval()
    batch = random_batch()
    batch["mask"][0, 3:] = False
    batch["video"][0, :, 3:] = 0
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(pad_batch(batch, 3)), atol=1e-5, rtol=0)


def test_single_frame_per_frame_predictions() -> None:
    torch.manual_seed(0)
    model = build("single_frame", 4).eval()
    batch = random_batch()
    batch["mask"][1, 6:] = False
    with torch.no_grad():
        frame_logits = model.frame_logits(batch)
        labels = model.frame_predictions(batch)
        majority = model.majority_label(batch)
        probs = model(batch).exp()
    assert frame_logits.shape == (B, T, 4)
    assert (labels[1, 6:] == -1).all() and (labels[0] >= 0).all()
    for i in range(B):
        real = labels[i][labels[i] >= 0]
        counts = torch.bincount(real, minlength=4)
        assert counts[majority[i]] == counts.max()
    torch.testing.assert_close(probs.sum(1), torch.ones(B))


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_feature_path_equals_forward(name: str) -> None:
    """encode_frames + forward_features (what a feature cache does) equals forward."""
    torch.manual_seed(0)
    model = build(name, 3).eval()
    batch = random_batch()
    batch["mask"][0, 4:] = False
    batch["video"][0, :, 4:] = 0
    with torch.no_grad():
        feats = model.encode_frames(batch["video"], batch["mask"])
        assert feats.shape == (B, T, model.feature_dim)
        split = model.forward_features(feats, batch["mask"], batch["flow"])
        torch.testing.assert_close(split, model(batch), atol=1e-5, rtol=1e-5)


def test_efficientnet_backbone_frozen() -> None:
    model = build(
        "single_frame", 3, backbone="efficientnet_lite0", pretrained=True, freeze_backbone=True
    )
    frozen = list(model.encoder.parameters())
    assert frozen and all(not p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in model.classifier.parameters())
    model.train()
    assert not model.encoder.net.training
    batch = random_batch(frames=2)
    model(batch).sum().backward()
    assert all(p.grad is None for p in frozen)
    assert model.feature_dim == 1280


def test_two_stream_computes_missing_flow_and_learned_fusion() -> None:
    model = build("two_stream", 3, fusion="learned", flow_frames=4).eval()
    batch = random_batch(frames=6, size=32)
    del batch["flow"]
    with torch.no_grad():
        assert model(batch).shape == (B, 3)


def test_unknown_name_and_option() -> None:
    with pytest.raises(UserError, match="single_frame"):
        build("resnet_9000", 3)
    with pytest.raises(UserError, match="unknown option"):
        build("slow_fusion", 3, depth=50)
    with pytest.raises(UserError):
        build("single_frame", 3, backbone="vgg")
    with pytest.raises(UserError):
        build("two_stream", 3, fusion="max")


@pytest.mark.parametrize("name", list(MODELS))
def test_config_round_trip(name: str) -> None:
    model = build(name, 7)
    config = json.loads(json.dumps(model.config))
    again = build(name, 7, **config)
    assert again.config == model.config
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}


def test_describe_lists_every_model() -> None:
    rows = describe()
    assert [r["name"] for r in rows] == list(MODELS)
    for row in rows:
        if row["name"] not in NAMES:  # keypoints in: no pixels, no ImageNet variant
            assert row["params"] > 0 and row["input"].startswith("16x33 keypoints")
            continue
        assert row["params"] > 0 and row["gflops"] > 0
        assert set(row) == {
            "name", "params", "gflops", "input", "description",
            "pretrained", "pretrained_params", "pretrained_gflops",
        }  # fmt: skip
        assert row["input"].startswith("16x112x112")
        # The ImageNet variant costs more, and 224 px about 4x what 112 px costs.
        assert row["pretrained_params"] > row["params"]
        ratio = row["pretrained_gflops"][224] / row["pretrained_gflops"][112]
        assert 3.0 < ratio < 4.5, (row["name"], ratio)
