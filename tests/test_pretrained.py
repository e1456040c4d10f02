"""ImageNet initialisation of every method: each promise of the initialisation is checked.

At initialisation each network must compute something the pretrained 2D network computes
(identical frames give the 2D features; zero laterals leave the slow pathway alone; zero flow
gives zero), frozen variants must train only their temporal parts and head, and fine-tuning
puts the ImageNet layers in the lower-learning-rate group.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.models import RGB_MODELS, build
from vidclass.models.backbones import EfficientNetLite0, adapt_stem
from vidclass.models.lite0_video import Lite0Video, TemporalConv, pool_time
from vidclass.train.loop import param_groups

LITE0 = {"backbone": "efficientnet_lite0", "pretrained": True}
SIZE = 64


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return EfficientNetLite0(pretrained=True).eval()


def lite0_map(net: EfficientNetLite0, frames: torch.Tensor) -> torch.Tensor:
    """The pretrained 2D network's last feature map ``(N, 1280, h, w)``."""
    x = frames * net.in_scale + net.in_shift
    x = net.act(net._bn0(net._conv_stem(x)))
    for block in net._blocks:
        x = block(x)
    return net.act(net._bn1(net._conv_head(x)))


def still_clip(frame: torch.Tensor, t: int) -> torch.Tensor:
    """``(1, 3, H, W)`` → a clip of ``t`` identical frames ``(1, 3, t, H, W)``."""
    return frame[:, :, None].expand(-1, -1, t, -1, -1).contiguous()


def randomize_temporal(model: nn.Module) -> None:
    """Non-zero temporal taps, as after some training."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TemporalConv):
                m.conv.weight.normal_(0.0, 0.3)


def test_every_method_builds_with_the_imagenet_backbone():
    for name in RGB_MODELS:  # a skeleton method has no ImageNet variant
        model = build(name, 5, **LITE0)
        assert model.config["backbone"] == "efficientnet_lite0" and model.config["pretrained"]
        assert model.pretrained_parameters(), name
        rebuilt = build(name, 5, **model.config)  # config round-trips
        assert type(rebuilt) is type(model)


def test_small_backbone_cannot_be_pretrained_or_frozen():
    for name in ("early_fusion", "slow_fusion", "slowfast", "multires"):
        with pytest.raises(UserError, match="no pretrained weights"):
            build(name, 5, backbone="small", pretrained=True)
        with pytest.raises(UserError, match="unknown backbone"):
            build(name, 5, backbone="resnet50")


def test_inflated_slow_fusion_on_identical_frames_gives_the_2d_features(lite0):
    g = torch.Generator().manual_seed(0)
    frame = torch.randn(1, 3, SIZE, SIZE, generator=g)
    model = build("slow_fusion", 5, **LITE0).eval()
    with torch.no_grad():
        maps, mask = model.trunk(still_clip(frame, 8), torch.ones(1, 8, dtype=torch.bool))
        expected = lite0_map(lite0, frame)
    assert maps.shape[2] == 1 and mask.all()  # 8 frames halved three times
    assert torch.allclose(maps[:, :, 0], expected, atol=1e-4)
    # Not vacuous: trained taps make the trunk see time (a moving clip differs from its reverse).
    randomize_temporal(model)
    clip = torch.randn(1, 3, 8, SIZE, SIZE, generator=g)
    mask = torch.ones(1, 8, dtype=torch.bool)
    with torch.no_grad():
        forward = model.trunk(clip, mask)[0]
        backward = model.trunk(clip.flip(2), mask)[0]
    assert (forward - backward).abs().max() > 1e-3


def test_temporal_taps_start_as_the_identity_and_ignore_padding():
    x = torch.randn(2 * 6, 4, 3, 3)
    mask = torch.ones(2, 6, dtype=torch.bool)
    tap = TemporalConv(4)
    assert torch.equal(tap(x, mask), x)
    with torch.no_grad():
        tap.conv.weight.normal_()
    mask[1, 4:] = False
    noisy = x.clone().view(2, 6, 4, 3, 3)
    noisy[1, 4:] = 100.0  # padding frames
    a, b = tap(x, mask).view(2, 6, 4, 3, 3), tap(noisy.view_as(x), mask).view(2, 6, 4, 3, 3)
    assert torch.allclose(a[:, :4], b[:, :4])
    pooled, pooled_mask = pool_time(noisy.view_as(x), mask)
    assert pooled_mask.tolist() == [[True] * 3, [True, True, False]]
    assert torch.allclose(
        pooled.view(2, 3, 4, 3, 3)[1, :2], x.view(2, 6, 4, 3, 3)[1, :4].view(2, 2, 4, 3, 3).mean(1)
    )


def test_slowfast_with_zero_laterals_is_its_pretrained_slow_pathway(lite0):
    torch.manual_seed(0)
    model = build("slowfast", 5, **LITE0).eval()
    clip = torch.randn(2, 3, 8, SIZE, SIZE)
    mask = torch.ones(2, 8, dtype=torch.bool)
    captured = {}
    model.slow.register_forward_hook(lambda m, i, out: captured.update(slow=out[0]))
    with torch.no_grad():
        model({"video": clip, "mask": mask})
        slow_frames = clip[:, :, :: model.alpha]
        b, c, t, h, w = slow_frames.shape
        per_frame = lite0_map(lite0, slow_frames.transpose(1, 2).reshape(b * t, c, h, w))
    expected = per_frame.view(b, t, *per_frame.shape[1:]).transpose(1, 2)
    assert captured["slow"].shape == expected.shape
    assert torch.allclose(captured["slow"], expected, atol=1e-4)
    # The laterals are real connections: non-zero, the fast pathway changes the slow one.
    with torch.no_grad():
        for lateral in model.laterals:
            lateral.conv.weight.normal_(0.0, 0.1)
        model({"video": clip, "mask": mask})
    assert (captured["slow"] - expected).abs().max() > 1e-3


def test_early_fusion_folded_stem_on_identical_frames_gives_the_2d_features(lite0):
    frame = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    model = build("early_fusion", 5, window=4, **LITE0).eval()
    folded = frame.repeat(1, 4, 1, 1)  # 4 identical frames on the channels, frame-major
    with torch.no_grad():
        got = model.encoder(folded)
        expected = lite0(frame)
    assert torch.allclose(got, expected, atol=1e-4)
    stem = model.encoder.net._conv_stem.weight
    assert stem.shape[1] == 12 and torch.allclose(stem[:, 3:6] * 4, lite0._conv_stem.weight)


def test_cross_modality_flow_stem_is_the_mean_rgb_kernel_and_zero_flow_gives_zero(lite0):
    model = build("two_stream", 5, flow_frames=5, **LITE0).eval()
    net = model.temporal.net
    stem = net._conv_stem.weight
    mean_rgb = lite0._conv_stem.weight.mean(dim=1)
    assert stem.shape[1] == 10
    assert all(torch.allclose(stem[:, c], mean_rgb) for c in range(10))
    zero = torch.zeros(1, 10, SIZE, SIZE)
    with torch.no_grad():
        assert net._conv_stem(zero * net.in_scale + net.in_shift).abs().max() == 0
    assert torch.equal(adapt_stem(lite0._conv_stem.weight, 3, "rgb"), lite0._conv_stem.weight)


def test_multires_streams_start_as_the_pretrained_net_on_their_views(lite0):
    frame = torch.randn(1, 3, 2 * SIZE, 2 * SIZE, generator=torch.Generator().manual_seed(2))
    model = build("multires", 5, **LITE0).eval()
    assert model.context is not model.fovea
    captured = []
    for stream in (model.context, model.fovea):
        stream.register_forward_hook(lambda m, i, out: captured.append(out[0]))
    with torch.no_grad():
        model({"video": still_clip(frame, 8), "mask": torch.ones(1, 8, dtype=torch.bool)})
        half = nn.functional.avg_pool2d(frame, 2)
        centre = frame[..., SIZE // 2 : SIZE // 2 + SIZE, SIZE // 2 : SIZE // 2 + SIZE]
        for got, view in zip(captured, (half, centre), strict=True):
            assert torch.allclose(got[:, :, 0], lite0_map(lite0, view), atol=1e-4)


@pytest.mark.parametrize("name", ["early_fusion", "slow_fusion", "slowfast", "multires"])
def test_frozen_variant_trains_only_temporal_parts_and_head(name):
    torch.manual_seed(0)
    model = build(name, 3, **LITE0, freeze_backbone=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("classifier") for n in trainable)
    pretrained = {id(p) for p in model.pretrained_parameters()}
    assert not any(id(p) in pretrained for p in model.parameters() if p.requires_grad)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model.train()
    batch = {"video": torch.randn(2, 3, 8, SIZE, SIZE), "mask": torch.ones(2, 8, dtype=torch.bool)}
    model(batch).logsumexp(1).sum().backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # Weights and BatchNorm statistics of the frozen 2D network stay as ImageNet left them.
    frozen_2d = {k for k in before if ".net." in k and k not in trainable}
    assert len(frozen_2d) > 100 and "num_batches" not in " ".join(changed & frozen_2d)
    assert changed, name
    assert not (changed & frozen_2d), sorted(changed & frozen_2d)[:5]


def test_fine_tuning_puts_imagenet_layers_in_the_lower_rate_group():
    model = build("slow_fusion", 3, **LITE0)
    groups = param_groups(model, model, 0.1)
    assert [g["lr_scale"] for g in groups] == [1.0, 0.1]
    new = {id(p) for p in groups[0]["params"]}
    assert {id(p) for p in model.classifier.parameters()} <= new
    assert {id(p) for p in model.trunk.temporal.parameters()} <= new
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.pretrained_parameters()}
    with pytest.raises(UserError, match="pretrained_lr_scale"):
        param_groups(model, model, 0.0)
    scratch = build("slow_fusion", 3)
    assert [g["lr_scale"] for g in param_groups(scratch, scratch, 0.1)] == [1.0]


def test_lite0_video_mask_is_pooled_with_time():
    trunk = Lite0Video(pretrained=False, pool_after=(2, 4))
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, :5] = True
    with torch.no_grad():
        maps, pooled = trunk.eval()(torch.randn(1, 3, 8, 32, 32), mask)
    assert maps.shape[:3] == (1, 1280, 2) and pooled.tolist() == [[True, True]]


@pytest.mark.parametrize("name", list(RGB_MODELS))
def test_every_pretrained_method_exports_to_onnx(name, tmp_path):
    """Parity <= 1e-4 with the ImageNet architecture, temporal taps and laterals non-zero."""
    import numpy as np

    from vidclass.predict.onnx import OnnxModel, export_model

    torch.manual_seed(0)
    # ImageNet weights at 64 px: a random Lite0, or 32 px noise, gives every clip the same
    # logits (the last activations are all zero), which would make parity vacuous.
    model = build(name, 5, **LITE0).eval()
    randomize_temporal(model)
    with torch.no_grad():
        for lateral in getattr(model, "laterals", []):
            lateral.conv.weight.normal_(0.0, 0.1)
    size = 2 * SIZE if name == "multires" else SIZE  # its streams see half the side
    path = export_model(model, tmp_path / f"{name}.onnx", 8, size, dynamic_batch=True, name=name)
    g = torch.Generator().manual_seed(1)
    batch = {
        "video": torch.randn(3, 3, 8, size, size, generator=g),
        "mask": torch.ones(3, 8, dtype=torch.bool),
    }
    batch["mask"][1, 5:] = False
    if model.needs_flow:
        batch["flow"] = torch.randn(3, 2, 7, size, size, generator=g) * 0.3
    with torch.no_grad():
        expected = model(dict(batch)).numpy()
    assert np.ptp(expected, axis=0).max() > 1e-3  # clips get different logits
    got = OnnxModel(path)({k: v.numpy() for k, v in batch.items()})
    assert np.abs(got - expected).max() <= 1e-4


def test_every_training_option_but_workers_is_part_of_a_runs_identity():
    """A new option (pretrained_lr_scale here) left out of RESUME_KEYS would let --resume and
    compare mix two recipes in one model without a word."""
    from dataclasses import fields

    from vidclass.train.config import RESUME_KEYS, TrainConfig

    # The recipe's name and the fields it chose are records: what it chose is in those fields.
    records = {"workers", "recipe", "recipe_chose"}
    assert set(RESUME_KEYS) == {f.name for f in fields(TrainConfig)} - records
    assert "pretrained_lr_scale" in RESUME_KEYS


def test_a_pretrained_run_on_small_frames_is_told_what_224_px_would_give():
    from vidclass.train.run_config import PRETRAINED_MIN_SIZE, resolution_hint

    lite0 = {"backbone": "efficientnet_lite0", "pretrained": True}
    hint = resolution_hint({"options": lite0, "size": 112})
    assert hint and "112 px" in hint and "--size 224" in hint
    assert resolution_hint({"options": lite0, "size": PRETRAINED_MIN_SIZE}) is None
    assert resolution_hint({"options": {**lite0, "pretrained": False}, "size": 112}) is None
    assert resolution_hint({"options": {"backbone": "small"}, "size": 64}) is None


def _clip_batch(b: int = 2, t: int = 8) -> dict:
    torch.manual_seed(0)
    return {"video": torch.randn(b, 3, t, SIZE, SIZE), "mask": torch.ones(b, t, dtype=torch.bool)}


@pytest.mark.parametrize("mode", ["frozen", "train"])
def test_fine_tuning_keeps_the_imagenet_batchnorm_statistics_unless_asked(mode):
    from vidclass.train.batchnorm import hold_statistics, pretrained_batchnorms

    model = build("slowfast", 3, **LITE0)
    held = pretrained_batchnorms(model)
    new_bn = [
        m
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and n not in held
    ]
    assert held and new_bn  # the slow pathway's are ImageNet's, the fast pathway's are new
    assert hold_statistics(model, held, mode) == (len(held) if mode == "frozen" else 0)
    first = model.get_submodule(held[0])
    before = (first.running_mean.clone(), first.weight.detach().clone())
    new_before = new_bn[0].running_mean.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    model(_clip_batch()).sum().backward()
    opt.step()
    assert not torch.equal(first.weight.detach(), before[1])  # its scale still trains
    assert torch.equal(first.running_mean, before[0]) == (mode == "frozen")
    assert not torch.equal(new_bn[0].running_mean, new_before)  # new layers: batch statistics


def test_two_stream_flow_stem_batchnorm_learns_flow_statistics_under_partial_bn():
    """TSN's partial BN leaves the first BN free: after the cross-modality conv it sees 2L
    flow channels summed, which ImageNet's RGB statistics do not describe."""
    from vidclass.train.batchnorm import hold_statistics, pretrained_batchnorms

    torch.manual_seed(0)
    model = build("two_stream", 3, flow_frames=3, **LITE0)
    flow_bn, rgb_bn = model.temporal.net._bn0, model.encoder.net._bn0
    held = pretrained_batchnorms(model)
    assert "temporal.net._bn0" not in held and "encoder.net._bn0" in held
    assert "temporal.net._blocks.1._bn0" in held  # the flow stream's body stays ImageNet's
    hold_statistics(model, held, "frozen")
    before = flow_bn.running_mean.clone(), rgb_bn.running_mean.clone()
    batch = {**_clip_batch(t=4), "flow": torch.randn(2, 2, 3, SIZE, SIZE) * 0.3}
    model.train()
    model(batch).sum().backward()
    assert not torch.equal(flow_bn.running_mean, before[0])  # learns the flow statistics
    assert torch.equal(rgb_bn.running_mean, before[1])  # the RGB stem keeps ImageNet's
    # It trains at the full rate with the stem convolution it normalises.
    new = {id(p) for p in param_groups(model, model, 0.1)[0]["params"]}
    assert {id(p) for p in [*flow_bn.parameters(), model.temporal.net._conv_stem.weight]} <= new
    # Its statistics reach the flow's within a short run (70 steps on Weizmann), so evaluation
    # normalizes as training did; at Lite0's momentum (0.01) they moved about half way.
    net = model.temporal.net
    with torch.no_grad():
        stack = model.flow_stack(batch["flow"], batch["mask"])
        responses = net._conv_stem(stack * net.in_scale + net.in_shift)
        for _ in range(30):
            model.temporal(stack)
    assert torch.allclose(flow_bn.running_var, responses.var(dim=(0, 2, 3)), rtol=0.1, atol=0.05)


def test_a_fine_tuned_run_saves_the_imagenet_statistics(tiny_data, tmp_path):
    """Through the whole loop (model.train() every epoch, resume identity, saving)."""
    from safetensors.torch import load_file

    from vidclass.train.batchnorm import check_mode, pretrained_batchnorms
    from vidclass.train.loop import TrainConfig, train

    cfg = TrainConfig(model="early_fusion", options=dict(LITE0), epochs=1, batch_size=4)
    train(tiny_data, tmp_path / "run", cfg, quiet=True)
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    fresh = build("early_fusion", 12, **LITE0)
    names = pretrained_batchnorms(fresh)
    assert names
    for name in names:
        key = f"{name}.running_mean"
        assert torch.equal(saved[key], fresh.state_dict()[key]), key
    with pytest.raises(UserError, match="--pretrained-bn 'none'"):
        check_mode("none")
