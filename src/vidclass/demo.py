"""`make demo`: the main job end to end on the embedded default dataset.

Render the synthetic dataset → prepare it → train and evaluate every method under one quick
budget → write the comparison report. Each stage resumes if the demo is run again.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from vidclass.data.prepare import prepare
from vidclass.data.synthetic import generate
from vidclass.models import MODELS
from vidclass.report.tables import print_prepare_summary
from vidclass.train.compare import compare
from vidclass.train.loop import TrainConfig

# The quick budget: every method in a few minutes on 2 cores. The documented comparison
# (docs/benchmarks.md) trains longer.
DEMO_EPOCHS = 6


def run_demo(
    out: Path,
    per_class: int = 25,
    seed: int = 0,
    epochs: int = DEMO_EPOCHS,
    models: list[str] | None = None,
    quiet: bool = False,
    console: Console | None = None,
) -> int:
    """Run every stage into `out`; return the exit code (0 ok, 2 if anything failed)."""
    console = console or Console()
    out = Path(out)
    videos, prepared, report = out / "videos", out / "prepared", out / "compare"
    console.rule("1. render the synthetic dataset")
    summary = generate(videos, per_class=per_class, seed=seed, quiet=quiet)
    console.print(
        f"{summary['num_videos']} videos of {len(summary['classes'])} classes in "
        f"{videos} ({summary['seconds']:.1f} s)"
    )
    console.rule("2. prepare: probe, sample, resize, cache, split")
    result = prepare(videos, prepared, frames=16, size=112, seed=seed, quiet=quiet)
    print_prepare_summary(result, console)
    console.rule(f"3. train and evaluate every method ({epochs} epochs each)")
    comparison = compare(
        prepared,
        models or list(MODELS),
        report,
        TrainConfig(model="", epochs=epochs, seed=seed),
        quiet=quiet,
        log=console.print,
    )
    console.rule("done")
    from vidclass.report.tables import print_comparison

    print_comparison(comparison, console)
    console.print(f"report:     {report / 'report.html'}")
    console.print(f"comparison: {report / 'comparison.md'}")
    failed = bool(result.failed) or any(m.get("error") for m in comparison["methods"])
    return 2 if failed else 0
