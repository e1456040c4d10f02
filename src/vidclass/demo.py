"""`make demo`: the main job end to end on the embedded default dataset.

Today: render the synthetic dataset → prepare it → print what is there. Training, the
comparison of methods, and prediction join as they land.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from vidclass.data.prepare import prepare
from vidclass.data.synthetic import generate
from vidclass.report.tables import print_prepare_summary


def run_demo(
    out: Path,
    per_class: int = 25,
    seed: int = 0,
    quiet: bool = False,
    console: Console | None = None,
) -> int:
    """Run every stage into `out`; return the exit code (0 ok, 2 if any video failed)."""
    console = console or Console()
    out = Path(out)
    videos, prepared = out / "videos", out / "prepared"
    console.rule("1. render the synthetic dataset")
    summary = generate(videos, per_class=per_class, seed=seed, quiet=quiet)
    console.print(
        f"{summary['num_videos']} videos of {len(summary['classes'])} classes in "
        f"{videos} ({summary['seconds']:.1f} s)"
    )
    console.rule("2. prepare: probe, sample, resize, cache, split")
    result = prepare(videos, prepared, frames=16, size=112, seed=seed, quiet=quiet)
    print_prepare_summary(result, console)
    console.rule("done")
    console.print(f"manifest: {prepared / 'manifest.csv'}")
    return 2 if result.failed else 0
