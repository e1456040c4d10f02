"""Backbones: the EfficientNet-Lite0 weight mapping is proven by classifying real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidclass.errors import UserError
from vidclass.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EfficientNetLite0,
    SmallCNN,
    build_backbone,
)

skimage_data = pytest.importorskip("skimage.data")
cv2 = pytest.importorskip("cv2")


def imagenet_input(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """Centre square crop, resize, ImageNet normalization: ``(1, 3, size, size)``."""
    h, w = image.shape[:2]
    s = min(h, w)
    image = image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = (image / 255.0 - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return EfficientNetLite0(pretrained=True).eval()


def test_pretrained_lite0_sees_a_cat(lite0: EfficientNetLite0) -> None:
    with torch.no_grad():
        logits = lite0.classify(imagenet_input(skimage_data.chelsea()))
    assert 281 <= int(logits.argmax()) <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian


def test_pretrained_lite0_sees_coffee(lite0: EfficientNetLite0) -> None:
    with torch.no_grad():
        logits = lite0.classify(imagenet_input(skimage_data.coffee()))
    top5 = logits.topk(5).indices[0].tolist()
    assert 967 in top5 or 968 in top5  # espresso, cup
    assert int(logits.argmax()) == 967


def test_frozen_backbone_stays_frozen_and_in_eval_mode() -> None:
    enc = build_backbone("efficientnet_lite0", pretrained=False, freeze=True)
    enc.train()
    assert not enc.net.training
    assert all(not p.requires_grad for p in enc.parameters())
    assert enc(torch.randn(2, 3, 64, 64)).shape == (2, 1280)


def test_small_cnn_shapes() -> None:
    net = SmallCNN(in_channels=12)
    assert net(torch.randn(3, 12, 112, 112)).shape == (3, net.out_dim)
    assert net(torch.randn(2, 12, 64, 64)).shape == (2, net.out_dim)
    assert 200_000 < sum(p.numel() for p in net.parameters()) < 800_000


def test_bad_backbone_options() -> None:
    with pytest.raises(UserError):
        build_backbone("resnet50")
    with pytest.raises(UserError):
        build_backbone("small", pretrained=True)


def test_lite0_grid_cells_are_its_last_map_pooled_where_things_are() -> None:
    """grid 3 at 224 px: the 7×7 map pooled to 3×3 cells overlapping by one, the numbers of
    AdaptiveAvgPool2d on the map; cells keep where features fired (what the grid is for)."""
    plain = build_backbone("efficientnet_lite0", pretrained=True, freeze=True).eval()
    gridded = build_backbone("efficientnet_lite0", pretrained=True, freeze=True, grid=3).eval()
    assert gridded.out_dim == 1280 * 9
    x = torch.cat([imagenet_input(skimage_data.chelsea()), imagenet_input(skimage_data.coffee())])
    with torch.no_grad():
        cells = gridded(x).view(2, 1280, 3, 3)
        net = plain.net
        m = net.act(net._bn0(net._conv_stem(x * net.in_scale + net.in_shift)))
        for block in net._blocks:
            m = block(m)
        m = net.act(net._bn1(net._conv_head(m)))
    torch.testing.assert_close(cells, torch.nn.functional.adaptive_avg_pool2d(m, 3))
    assert (cells[..., 0] - cells[..., 2]).abs().max() > 0.5  # left and right cells differ
    torch.testing.assert_close(plain(x), m.mean(dim=(2, 3)))  # grid 1: ImageNet's pooling
    with pytest.raises(UserError, match="grid applies to"):
        build_backbone("small", grid=3)
    with pytest.raises(UserError, match="grid >= 1"):
        build_backbone("efficientnet_lite0", grid=0)
