"""Plots write real PNGs; the HTML report is self-contained, escaped and survives failed methods."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from vidclass.report.html import write_comparison_markdown, write_comparison_report
from vidclass.report.plots import plot_comparison, plot_confusion, plot_curves, plot_timeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = [
    "open_door",
    "close_door",
    "move_left",
    "move_right",
    "rise",
    "fall",
    "grow",
    "shrink",
    "rotate_cw",
    "rotate_ccw",
    "wave",
    "jump",
]


def assert_png(path: Path, min_w: int = 200, min_h: int = 150) -> None:
    """A real PNG that matplotlib reads back, of non-trivial size and not blank."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_h and img.shape[1] >= min_w
    assert float(img[..., :3].std()) > 0.01  # something was drawn
    assert not list(path.parent.glob(f".{path.name}*"))  # no temp file left behind


def curve_rows(n: int = 5, with_val: bool = True) -> list[dict]:
    return [
        {
            "epoch": e,
            "train_loss": 2.0 / e,
            "val_loss": 2.2 / e if with_val else None,
            "train_acc": 1 - 1 / (e + 1),
            "val_acc": 1 - 1.3 / (e + 1) if with_val else None,
        }
        for e in range(1, n + 1)
    ]


def test_plot_curves(tmp_path):
    out = plot_curves(curve_rows(), tmp_path / "sub" / "curves.png", title="slow_fusion")
    assert out == tmp_path / "sub" / "curves.png"
    assert_png(out)
    # no validation at all, string values as read from a CSV, and no rows
    rows = [{k: str(v) for k, v in r.items() if v is not None} for r in curve_rows(3, False)]
    assert_png(plot_curves(rows, tmp_path / "noval.png"))
    assert_png(plot_curves([], tmp_path / "empty.png"))


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_twelve_classes(tmp_path, normalize):
    rng = np.random.default_rng(0)
    cm = (np.eye(12, dtype=int) * 9 + rng.integers(0, 3, (12, 12))).tolist()
    cm[3] = [0] * 12  # a class with no test clips must not divide by zero
    out = plot_confusion(cm, CLASSES, tmp_path / "cm.png", title="cnn_lstm", normalize=normalize)
    assert_png(out, 500, 500)


def test_plot_confusion_many_classes(tmp_path):
    k = 40  # no cell values drawn above 20 classes, but still readable tick labels
    cm = np.eye(k, dtype=int) * 3
    assert_png(plot_confusion(cm.tolist(), [f"class_{i}" for i in range(k)], tmp_path / "c.png"))


def test_plot_comparison(tmp_path):
    methods = [
        {"name": "single_frame", "top1": 0.55, "pair_accuracy": 0.48},
        {"name": "slow_fusion", "top1": 0.98, "pair_accuracy": 1.0},
        {"name": "two_stream", "top1": 0.9, "pair_accuracy": None},
        {"name": "broken", "top1": None, "pair_accuracy": None, "error": "out of memory"},
    ]
    assert_png(plot_comparison(methods, tmp_path / "comparison.png"))
    assert_png(plot_comparison(methods[-1:], tmp_path / "none.png"))


def test_plot_timeline(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(12) * 0.3, size=30)
    kernel = np.ones(5) / 5
    smoothed = np.stack([np.convolve(probs[:, c], kernel, "same") for c in range(12)], axis=1)
    times = list(np.arange(30) * 0.5)
    assert_png(plot_timeline(times, probs, CLASSES, tmp_path / "t.png", smoothed=smoothed))
    assert_png(plot_timeline(times, probs, CLASSES, tmp_path / "raw.png", top=5))
    with pytest.raises(ValueError):
        plot_timeline(times[:5], probs, CLASSES, tmp_path / "bad.png")


def make_comparison(out_dir: Path) -> dict:
    """A comparison dict like ``vidclass compare`` writes, with real PNGs beside it."""
    plot_curves(curve_rows(), out_dir / "runs" / "slow_fusion" / "curves.png")
    cm = (np.eye(12, dtype=int) * 5).tolist()
    plot_confusion(cm, CLASSES, out_dir / "runs" / "slow_fusion" / "confusion.png")
    methods = [
        {
            "name": "slow_fusion",
            "description": "small 3D CNN, time merged gradually",
            "params": 1_234_567,
            "gflops": 0.512,
            "train_time_s": 125.3,
            "clips_per_s": 88.0,
            "top1": 0.983,
            "top5": 1.0,
            "pair_accuracy": 0.99,
            "curves_png": "runs/slow_fusion/curves.png",
            "confusion_png": "runs/slow_fusion/confusion.png",
            "run_dir": "runs/slow_fusion",
            "error": None,
        },
        {
            "name": "single_frame <script>alert(1)</script>",
            "description": "one frame & a <b>guess</b>",
            "params": 98_000,
            "gflops": 0.05,
            "train_time_s": 30.0,
            "clips_per_s": 400.0,
            "top1": 0.52,
            "top5": 0.97,
            "pair_accuracy": 0.47,
            "curves_png": None,
            "confusion_png": "missing.png",  # referenced but absent: shown as not available
            "run_dir": "runs/single_frame",
            "error": None,
        },
        {
            "name": "two_stream",
            "description": "RGB + optical flow",
            "run_dir": "runs/two_stream",
            "error": "RuntimeError: flow <cache> missing | retry",
        },
    ]
    plot_comparison(methods, out_dir / "comparison.png")
    return {
        "title": "Methods on synth",
        "created": "2025-01-01T12:00:00",
        "command": "vidclass compare data/prepared --models all --epochs 3",
        "dataset": {
            "root": "data/prepared",
            "classes": CLASSES,
            "pairs": [["open_door", "close_door"], ["move_left", "move_right"]],
            "train_videos": 168,
            "val_videos": 24,
            "test_videos": 48,
            "frames": 16,
            "size": 112,
        },
        "budget": {"epochs": 3, "batch_size": 16, "seed": 0, "lr": 0.001},
        "chart_png": "comparison.png",
        "methods": methods,
    }


def test_html_report(tmp_path):
    comparison = make_comparison(tmp_path)
    out = write_comparison_report(tmp_path, comparison)
    assert out == tmp_path / "report.html"
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # every method named; the hostile name escaped, never raw
    assert "slow_fusion" in html and "two_stream" in html
    assert "<script>" not in html and "<b>guess</b>" not in html
    assert "single_frame &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "one frame &amp; a &lt;b&gt;guess&lt;/b&gt;" in html
    # the failed method shows its message, escaped
    assert "RuntimeError: flow &lt;cache&gt; missing | retry" in html
    # images inlined as data URIs that decode to PNGs: chart + curves + confusion
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 3
    assert all(base64.b64decode(u)[:8] == PNG_SIGNATURE for u in uris)
    assert "not available" in html  # the missing confusion matrix
    # self-contained: no external resources or scripts
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html.lower()
    # the reading guide, the dataset and the table
    assert "time-reversed twin" in html and "50% is chance" in html
    assert "168 / 24 / 48" in html
    assert "1.23 M" in html and "98.3%" in html and "2 min 05 s" in html
    # best per column highlighted: slow_fusion's top-1, single_frame's clips/s
    assert '<td class="best">98.3%</td>' in html
    assert '<td class="best">400</td>' in html


def test_html_report_draws_missing_chart(tmp_path):
    comparison = make_comparison(tmp_path)
    (tmp_path / "comparison.png").unlink()
    del comparison["chart_png"]
    html = write_comparison_report(tmp_path, comparison).read_text(encoding="utf-8")
    assert (tmp_path / "comparison.png").exists()
    assert html.count("data:image/png;base64,") == 3


def test_html_report_minimal_dict(tmp_path):
    html = write_comparison_report(tmp_path, {"methods": []}).read_text(encoding="utf-8")
    assert "No methods were run" in html
    only_failed = {"methods": [{"name": "x", "error": "boom"}]}
    html = write_comparison_report(tmp_path, only_failed).read_text(encoding="utf-8")
    assert "boom" in html


def test_markdown(tmp_path):
    comparison = make_comparison(tmp_path)
    out = write_comparison_markdown(tmp_path, comparison)
    assert out == tmp_path / "comparison.md"
    text = out.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(comparison["methods"])  # header, rule, one row per method
    assert all(r.count("|") - r.count("\\|") == rows[0].count("|") for r in rows)
    assert rows[0].startswith("| method | params | GFLOPs | train time | clips/s | top-1")
    assert "pair accuracy" in rows[0]
    assert "**98.3%**" in text
    assert "failed: RuntimeError" in text
    assert "50% is chance" in text
