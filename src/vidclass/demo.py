"""`make demo`: the main job end to end on the embedded default dataset.

Render the synthetic dataset → prepare it → train and evaluate the eight classic methods under
one quick budget → write the comparison report → predict a long synthetic video with the best method
(smoothed timeline, annotated copy) → localize every action in it in time (segments, mAP).
Training resumes if the demo is run again.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from vidclass.data.prepare import prepare
from vidclass.models import MODELS
from vidclass.report.tables import print_prepare_summary
from vidclass.synth.clips import PER_CLASS, generate
from vidclass.train.compare import compare
from vidclass.train.loop import TrainConfig

# The quick budget: every method in a few minutes on 2 cores. The documented comparison
# (docs/benchmarks.md) trains longer.
DEMO_EPOCHS = 5
# The eight classic methods. tsn and temporal_conv are heads for frozen ImageNet features
# (real footage); from scratch on the synthetic set they would add about 4 minutes to a
# demo that must stay within 12 (`vidclass demo --models all` runs them too). pose reads
# people's keypoints: the rendered shapes have none.
DEMO_MODELS = [m for m in MODELS if m not in ("tsn", "temporal_conv", "pose")]


def run_demo(
    out: Path,
    per_class: int = PER_CLASS,
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
    console.rule(f"3. train and evaluate the methods ({epochs} epochs each)")
    comparison = compare(
        prepared,
        models or DEMO_MODELS,
        report,
        TrainConfig(model="", epochs=epochs, seed=seed, augment=False),  # the quick budget
        quiet=quiet,
        log=console.print,
    )
    from vidclass.report.tables import print_comparison

    print_comparison(comparison, console)
    finished = [m for m in comparison["methods"] if not m.get("error")]
    if finished:
        best = max(finished, key=lambda m: m["top1"])
        console.rule(f"4. predict a long video with the best method ({best['name']})")
        predict_long(Path(best["run_dir"]), out / "long", report, seed, quiet, console)
        console.rule(f"5. localize every action in the long video ({best['name']})")
        localize_long(Path(best["run_dir"]), out / "long-localize", report, seed, quiet, console)
    console.rule("done")
    console.print(f"report:     {report / 'report.html'}")
    console.print(f"comparison: {report / 'comparison.md'}")
    failed = bool(result.failed) or any(m.get("error") for m in comparison["methods"])
    return 2 if failed else 0


def predict_long(
    run: Path, long_dir: Path, report: Path, seed: int, quiet: bool, console: Console
) -> dict:
    """A 60 s video of several actions: smoothed timeline, annotated copy, flicker figures."""
    import json

    from vidclass.predict.classifier import Classifier
    from vidclass.predict.smoothing import timeline_accuracy
    from vidclass.synth.long import generate_long

    # Long actions (1-3 renditions back to back), what smoothing is for: a rolling average
    # over several windows would blur actions as short as one window.
    generate_long(long_dir, count=1, seed=seed + 1000, seconds=60, quiet=quiet, repeats=(1, 3))
    truth = json.loads((long_dir / "long_000.json").read_text())
    result = Classifier.load(run).predict(
        long_dir / "long_000.mp4",
        smooth=5,
        annotate=report / "long_annotated.mp4",
        plot=report / "long_timeline.png",
    )
    result["accuracy"] = {
        "raw": timeline_accuracy(result["timeline"], truth["segments"]),
        "smoothed": timeline_accuracy(result["timeline"], truth["segments"], "smoothed_label"),
    }
    (report / "long_prediction.json").write_text(json.dumps(result, indent=1))
    fr, acc = result["flicker_rate"], result["accuracy"]
    console.print(
        f"flicker: {fr['raw']:.1f} -> {fr['smoothed']:.1f} label changes per minute with "
        f"smoothing; accuracy inside actions {acc['raw']:.1%} -> {acc['smoothed']:.1%}"
    )
    console.print(f"annotated video: {report / 'long_annotated.mp4'}")
    console.print(f"timeline:        {report / 'long_timeline.png'}")
    return result


def localize_long(
    run: Path, long_dir: Path, report: Path, seed: int, quiet: bool, console: Console
) -> dict:
    """Segments of every action in a long video of single actions, scored against its truth."""
    import json

    from vidclass.evaluation.localization import localization_map
    from vidclass.localize.localize import read_truth
    from vidclass.predict.classifier import Classifier
    from vidclass.synth.long import generate_long

    generate_long(long_dir, count=1, seed=seed + 2000, seconds=60, quiet=quiet)
    video = long_dir / "long_000.mp4"
    truth = read_truth(video) or []
    result = Classifier.load(run).localize(video, plot=report / "long_segments.png", truth=truth)
    (report / "long_segments.json").write_text(json.dumps(result, indent=1))
    scores = localization_map({"long_000": result["segments"]}, {"long_000": truth})
    maps = ", ".join(f"mAP@{t} {v:.2f}" for t, v in scores["mAP"].items())
    strong = [s for s in result["segments"] if s["score"] >= 0.3]
    console.print(
        f"{len(strong)} segments scored 30 % or more for {len(truth)} actions; {maps} "
        "(one video; docs/benchmarks.md has the held-out benchmark)"
    )
    console.print(f"segments:        {report / 'long_segments.png'}")
    return result
