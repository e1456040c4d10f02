"""The ONNX files of a run folder (`RUN/model.onnx`, `RUN/encoder.onnx`) are reused only while
they were exported from the run's weights and config, whatever their modification times."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidclass import Classifier
from vidclass.cli import app
from vidclass.models import build
from vidclass.models.run import save_model
from vidclass.predict.onnx import OnnxModel, exported_digest, run_digest

FRAMES, SIZE, CLASSES = 8, 32, 4


def seeded(name: str, seed: int) -> torch.nn.Module:
    """An untrained model whose weights depend on `seed` (BatchNorm statistics included, so
    two seeds give clearly different probabilities)."""
    torch.manual_seed(seed)
    model = build(name, CLASSES)
    model.train()
    with torch.no_grad():
        model({"video": torch.randn(4, 3, FRAMES, SIZE, SIZE), "mask": torch.ones(4, FRAMES) > 0})
    return model.eval()


def save_run(run, name: str, seed: int) -> None:
    model = seeded(name, seed)
    config = {
        "model": name,
        "options": model.config,
        "classes": [f"c{i}" for i in range(CLASSES)],
        "frames": FRAMES,
        "size": SIZE,
        "normalize": "imagenet",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "sample_fps": 8.0,
    }
    save_model(run, model, config)


def probs(clf: Classifier, video) -> np.ndarray:
    return np.array([u["probs"] for u in clf.predict(video)["timeline"]])


@pytest.mark.parametrize("name", ["early_fusion", "cnn_lstm"])
def test_point8_a_copied_run_given_new_weights_predicts_with_them_though_its_onnx_is_newer(
    name, make_video, tmp_path, capsys
):
    """`cp -p` / `rsync -a` of a run, then new weights: the ONNX files keep a later mtime than
    the weights, yet `--backend onnx` must follow the new weights (early_fusion: the whole
    graph, model.onnx; cnn_lstm: the frame encoder, encoder.onnx, with the head in torch)."""
    video = make_video("v.mp4", n=24, fps=8)
    first, copy = tmp_path / "first", tmp_path / "copy"
    save_run(first, name, seed=0)
    Classifier.load(first, backend="onnx")  # exports the ONNX files of the first weights
    shutil.copytree(first, copy)  # copy2: modification times kept, as cp -p and rsync -a do
    save_run(copy, name, seed=1)  # retrained
    exports = sorted(copy.glob("*.onnx"))
    assert [p.name for p in exports] == (
        ["encoder.onnx", "model.onnx"] if name == "cnn_lstm" else ["model.onnx"]
    )
    later = (copy / "model.safetensors").stat().st_mtime + 60
    for path in exports:
        os.utime(path, (later, later))
    capsys.readouterr()

    got = probs(Classifier.load(copy, backend="onnx"), video)
    said = capsys.readouterr().err
    want = probs(Classifier.load(copy), video)
    old = probs(Classifier.load(first), video)
    assert np.abs(old - want).max() > 1e-2, "the two weights must disagree for the test to tell"
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    for path in exports:  # each re-export is said once, naming the file and why
        assert said.count(f"{path}: was exported from other weights") == 1, said
        assert exported_digest(path) == run_digest(copy)
    Classifier.load(copy, backend="onnx")
    assert capsys.readouterr().err == ""  # now up to date: reused, silently


def test_point8_vidclass_export_writes_the_digest_the_onnx_backend_checks(tmp_path, capsys):
    run = tmp_path / "run"
    save_run(run, "early_fusion", seed=0)
    target = run / "model.onnx"
    result = CliRunner().invoke(app, ["export", str(run), "--onnx", str(target)])
    assert result.exit_code == 0, result.output
    assert exported_digest(target) == run_digest(run)
    assert OnnxModel(target).metadata["classes"] == [f"c{i}" for i in range(CLASSES)]
    written = target.stat().st_mtime_ns
    capsys.readouterr()
    Classifier.load(run, backend="onnx")  # the exported file is the run's: kept as it is
    assert capsys.readouterr().err == "" and target.stat().st_mtime_ns == written

    # A file without a digest (an older vidclass, another tool) or unreadable: exported again.
    for damage in (b"", b"not onnx"):
        target.write_bytes(damage)
        Classifier.load(run, backend="onnx")
        assert f"{target}:" in capsys.readouterr().err
        assert exported_digest(target) == run_digest(run)


def test_point8_the_digest_covers_the_weights_and_the_graph_config(tmp_path):
    run = tmp_path / "run"
    save_run(run, "early_fusion", seed=0)
    before = run_digest(run)
    assert run_digest(run) == before and len(before) == 64  # sha256, stable
    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config.replace('"size": 32', '"size": 48'))
    assert run_digest(run) != before  # another input size is another graph
    (run / "config.json").write_text(config)
    save_run(run, "early_fusion", seed=1)
    assert run_digest(run) != before
