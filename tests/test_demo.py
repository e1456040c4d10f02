"""The demo end to end on a tiny budget: every stage runs and leaves its outputs."""

from __future__ import annotations

import json

from rich.console import Console

from vidclass.demo import run_demo


def test_demo_end_to_end_small(tmp_path):
    out = tmp_path / "demo"
    console = Console(record=True, width=120)
    code = run_demo(
        out,
        per_class=2,
        epochs=1,
        models=["single_frame", "early_fusion"],
        quiet=True,
        console=console,
    )
    assert code == 0
    comparison = json.loads((out / "compare" / "comparison.json").read_text())
    assert [m["name"] for m in comparison["methods"]] == ["single_frame", "early_fusion"]
    assert (out / "compare" / "report.html").is_file()
    text = console.export_text()
    assert "report.html" in text and "flicker" in text
    assert (out / "compare" / "long_annotated.mp4").is_file()
    assert (out / "compare" / "long_timeline.png").is_file()
    assert (out / "compare" / "long_segments.png").is_file()
    segments = json.loads((out / "compare" / "long_segments.json").read_text())["segments"]
    assert all(0 <= s["t_start"] < s["t_end"] for s in segments)
