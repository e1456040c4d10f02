"""ONNX export: every method matches PyTorch in onnxruntime (padding and other batch sizes
included), run folders export atomically, and bad inputs give one clear UserError."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from vidclass.errors import UserError
from vidclass.models import FRAME_MODELS, MODELS, build, example_keypoints
from vidclass.predict.onnx import (
    TOLERANCE,
    OnnxModel,
    export_model,
    export_onnx,
    exportable_methods,
)

FRAMES, SIZE, K = 8, 32, 12


def random_batch(model: nn.Module, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Random clips; clip i > 0 ends in ``2i`` padding frames (at least one real frame)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, FRAMES, dtype=torch.bool)
    for i in range(1, batch):
        mask[i, max(1, FRAMES - 2 * i) :] = False
    out = {"video": torch.randn(batch, 3, FRAMES, SIZE, SIZE, generator=g), "mask": mask}
    if model.needs_flow:
        out["flow"] = torch.randn(batch, 2, FRAMES - 1, SIZE, SIZE, generator=g) * 0.5
    if getattr(model, "needs_keypoints", False):
        out["keypoints"] = example_keypoints(batch, FRAMES, g)
    return out


def torch_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return model(dict(batch)).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(name) -> (model, OnnxModel)``: each method built and exported once, with a
    dynamic batch axis traced at batch 2."""
    folder = tmp_path_factory.mktemp("onnx")
    cache: dict[str, tuple[nn.Module, OnnxModel]] = {}

    def get(name: str) -> tuple[nn.Module, OnnxModel]:
        if name not in cache:
            torch.manual_seed(0)
            model = build(name, K).eval()
            path = export_model(model, folder / f"{name}.onnx", FRAMES, SIZE, True, name=name)
            cache[name] = (model, OnnxModel(path))
        return cache[name]

    return get


def test_every_method_is_exportable():
    methods = exportable_methods()
    assert set(methods) == set(MODELS)
    assert all(reason is None for reason in methods.values()), methods


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_matches_torch(exported, name):
    model, onnx_model = exported(name)
    expected_inputs = ["video", "mask"] + (["flow"] if model.needs_flow else [])
    if getattr(model, "needs_keypoints", False):  # the skeleton method never reads pixels
        expected_inputs = ["mask", "keypoints"]
    assert onnx_model.input_names == expected_inputs
    assert onnx_model.batch_size is None  # dynamic
    # Batch 3 (the export traced batch 2), two clips with padding of different lengths.
    batch = random_batch(model, 3, seed=1)
    got = onnx_model(batch)
    assert got.shape == (3, K) and got.dtype == np.float32
    assert np.abs(got - torch_logits(model, batch)).max() <= TOLERANCE
    # Batch 1 from numpy arrays, as `vidclass predict` feeds it.
    single = {k: v[1:2].numpy() for k, v in random_batch(model, 2, seed=2).items()}
    expected = torch_logits(model, {k: torch.from_numpy(v) for k, v in single.items()})
    assert np.abs(onnx_model(single) - expected).max() <= TOLERANCE


@pytest.mark.parametrize("name", FRAME_MODELS)
def test_onnx_frame_models_ignore_padding_frames(exported, name):
    """The exported graph keeps the mask semantics: padding frames' pixels do not matter."""
    model, onnx_model = exported(name)
    batch = {k: v.numpy() for k, v in random_batch(model, 3, seed=3).items()}
    noisy = {k: v.copy() for k, v in batch.items()}
    pad = ~batch["mask"]
    noisy["video"].transpose(0, 2, 1, 3, 4)[pad] = 50.0
    assert not np.array_equal(noisy["video"], batch["video"])
    assert np.abs(onnx_model(noisy) - onnx_model(batch)).max() <= 1e-6


def test_static_batch_export_runs_larger_batches_clip_by_clip(tmp_path):
    torch.manual_seed(0)
    model = build("cnn_lstm", K, layers=1).eval()  # one layer: packing would crash the exporter
    path = export_model(model, tmp_path / "static.onnx", FRAMES, SIZE, dynamic_batch=False)
    onnx_model = OnnxModel(path)
    assert onnx_model.batch_size == 1
    batch = random_batch(model, 3, seed=4)
    assert np.abs(onnx_model(batch) - torch_logits(model, batch)).max() <= TOLERANCE


def test_export_onnx_from_run_folder(tmp_path):
    from vidclass.models.run import save_model

    torch.manual_seed(0)
    model = build("two_stream", K).eval()
    classes = [f"class_{i}" for i in range(K)]
    config = {
        "model": "two_stream",
        "options": model.config,
        "classes": classes,
        "frames": FRAMES,
        "size": SIZE,
        "normalize": "clip",
        "needs_flow": model.needs_flow,
        "mean": [0.45, 0.45, 0.45],
        "std": [0.225, 0.225, 0.225],
    }
    run = tmp_path / "run"
    save_model(run, model, config)
    out = export_onnx(run, tmp_path / "out" / "model.onnx", dynamic_batch=True)
    assert out == tmp_path / "out" / "model.onnx" and out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temp files left

    onnx_model = OnnxModel(out)
    assert onnx_model.input_names == ["video", "mask", "flow"]
    assert onnx_model.metadata["classes"] == classes
    assert onnx_model.metadata["frames"] == FRAMES and onnx_model.metadata["size"] == SIZE
    batch = random_batch(model, 2, seed=5)
    assert np.abs(onnx_model(batch) - torch_logits(model, batch)).max() <= TOLERANCE


def test_export_onnx_of_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        export_onnx(tmp_path, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


class _Unexportable(nn.Module):
    """A model with an operator the ONNX exporter does not support."""

    needs_flow = False

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["video"].flatten(2)
        return torch.linalg.eigvalsh(x @ x.transpose(1, 2))


def test_unexportable_model_gives_a_clear_error(tmp_path):
    with pytest.raises(UserError) as info:
        export_model(_Unexportable(), tmp_path / "bad.onnx", 4, 8, name="bad_method")
    message = str(info.value)
    assert "cannot export bad_method" in message and "eigvalsh" in message
    assert "--backend torch" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temp file


def test_onnx_model_rejects_bad_inputs(exported, tmp_path):
    model, onnx_model = exported("slow_fusion")
    batch = {k: v.numpy() for k, v in random_batch(model, 2, seed=6).items()}

    wrong_size = {**batch, "video": np.zeros((2, 3, FRAMES, SIZE * 2, SIZE * 2), np.float32)}
    with pytest.raises(UserError, match=r"input 'video' has shape \(2, 3, 8, 64, 64\)"):
        onnx_model(wrong_size)
    wrong_frames = {**batch, "mask": np.ones((2, FRAMES + 1), bool)}
    with pytest.raises(UserError, match="'mask'"):
        onnx_model(wrong_frames)
    with pytest.raises(UserError, match="lacks input"):
        onnx_model({"video": batch["video"]})
    with pytest.raises(UserError, match="disagree on the batch size"):
        onnx_model({**batch, "mask": batch["mask"][:1]})

    # A 0/1 integer mask is accepted as the bool it means.
    as_int = {**batch, "mask": batch["mask"].astype(np.int64)}
    assert np.array_equal(onnx_model(as_int), onnx_model(batch))


def test_onnx_model_rejects_missing_and_broken_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        OnnxModel(tmp_path / "absent.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(UserError, match="not a loadable ONNX model"):
        OnnxModel(broken)


def test_metadata_is_json(exported):
    _, onnx_model = exported("single_frame")
    assert onnx_model.metadata["model"] == "single_frame"
    assert json.loads(json.dumps(onnx_model.metadata)) == onnx_model.metadata


@pytest.mark.parametrize("name", ["slow_fusion", "slowfast", "single_frame"])
def test_onnx_matches_torch_at_the_default_input(name, tmp_path):
    """16×112×112: spatial maps whose side the pooling grid does not divide (7 → 2, 7 → 3)."""
    model = build(name, K).eval()
    path = export_model(model, tmp_path / f"{name}.onnx", 16, 112, dynamic_batch=True)
    g = torch.Generator().manual_seed(1)
    batch = {
        "video": torch.randn(2, 3, 16, 112, 112, generator=g),
        "mask": torch.ones(2, 16, dtype=torch.bool),
    }
    batch["mask"][1, 11:] = False
    with torch.no_grad():
        expected = model(batch).numpy()
    got = OnnxModel(path)({k: v.numpy() for k, v in batch.items()})
    assert np.abs(got - expected).max() < 1e-4


def test_onnx_matches_torch_for_lite0_grid_and_tsn_motion(tmp_path):
    """Lite0 pooled to 3×3 cells of its 7×7 map (cells overlap: 7 is not a multiple of 3) and
    TSN's motion consensus export with the numbers torch gives, padding frames ignored."""
    torch.manual_seed(0)
    options = {"backbone": "efficientnet_lite0", "freeze_backbone": True, "grid": 3}
    model = build("tsn", K, motion=True, **options).eval()
    path = export_model(model, tmp_path / "tsn.onnx", 6, 224, dynamic_batch=True)
    g = torch.Generator().manual_seed(2)
    batch = {
        "video": torch.randn(2, 3, 6, 224, 224, generator=g),
        "mask": torch.ones(2, 6, dtype=torch.bool),
    }
    batch["mask"][1, 4:] = False
    with torch.no_grad():
        expected = model(batch).numpy()
    got = OnnxModel(path)({k: v.numpy() for k, v in batch.items()})
    assert np.abs(got - expected).max() < 1e-4
