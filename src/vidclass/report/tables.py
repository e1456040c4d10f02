"""Terminal summaries (rich tables) of what a job did."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def print_prepare_summary(result, console: Console) -> None:
    """Per class: videos in train/val/test, failed; then each failure with its reason."""
    rows = result.rows
    counts = Counter((r["label"], r["split"] or "-", r["status"]) for r in rows)
    present = {r["split"] for r in rows if r["status"] == "ok" and r["split"]}
    splits = sorted(present, key=lambda s: ({"train": 0, "val": 1, "test": 2}.get(s, 3), s))
    table = Table(
        title=f"prepared {result.out} ({result.frames} frames/clip, split: {result.split_mode})"
    )
    table.add_column("class")
    for s in splits:
        table.add_column(s, justify="right")
    table.add_column("failed", justify="right")
    for c in result.classes:
        cells = [str(counts[(c, s, "ok")]) for s in splits]
        failed = sum(n for (label, _, st), n in counts.items() if label == c and st == "failed")
        table.add_row(c, *cells, f"[red]{failed}[/red]" if failed else "0")
    totals = [str(sum(1 for r in rows if r["status"] == "ok" and r["split"] == s)) for s in splits]
    table.add_row("[bold]total", *totals, str(len(result.failed)), end_section=True)
    console.print(table)
    done = (
        f"merged from {result.merged_shards} shards"
        if result.merged_shards
        else f"{result.reused} reused from an earlier run"
    )
    console.print(
        f"{len(result.ok)} ok, {len(result.failed)} failed, {done}, {result.seconds:.1f} s"
    )
    crops = Counter(r.get("crop") for r in result.ok)
    if set(crops) - {"center", None}:
        fallback = crops.pop("full-fallback", 0)
        parts = [f"{n} {c}" for c, n in sorted(crops.items())]
        if fallback:
            parts.append(
                f"[yellow]{fallback} shown whole (full-fallback: no person found)[/yellow]"
            )
        console.print(f"crops: {', '.join(parts)} (the manifest's crop column)")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}", soft_wrap=True)
    if result.skipped:
        from vidclass.video.probe import VIDEO_EXTENSIONS, skipped_summary

        hint = f"prepare takes {', '.join(VIDEO_EXTENSIONS)} files inside class folders"
        console.print(
            f"[yellow]{escape(skipped_summary(result.skipped, hint))}[/yellow]", soft_wrap=True
        )
    if result.failed:
        console.print(
            f"[red]{len(result.failed)} videos failed[/red] (status=failed in "
            f"{result.out / 'manifest.csv'}):"
        )
        for r in result.failed:
            console.print(f"  {escape(r['path'])}: {escape(r['error'])}", soft_wrap=True)


def print_evaluation(metrics: dict, console: Console) -> None:
    """Headline numbers, then precision/recall/F1 per class."""
    pair = metrics.get("pair_accuracy")
    console.print(
        f"[bold]{escape(str(metrics.get('model', '')))}[/bold] on {metrics['split']} "
        f"({metrics['num_videos']} videos, {metrics['views']} view(s)): top-1 "
        f"{metrics['top1']:.1%}, top-5 {metrics['top5']:.1%}, macro F1 {metrics['macro_f1']:.3f}"
        + (f", pair accuracy {pair:.1%}" if pair is not None else ""),
        soft_wrap=True,
    )
    table = Table()
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, m in metrics["per_class"].items():
        table.add_row(
            escape(name),
            f"{m['precision']:.2f}",
            f"{m['recall']:.2f}",
            f"{m['f1']:.2f}",
            str(m["support"]),
        )
    console.print(table)
    console.print(f"confusion matrix: {escape(metrics['run'])}/confusion-{metrics['split']}.png")


def print_comparison(comparison: dict, console: Console) -> None:
    """One row per method: accuracy, pair accuracy, cost."""
    table = Table(title=escape(comparison.get("title", "comparison")))
    for col in ("method", "top-1", "pair acc.", "params", "GFLOPs", "train s", "clips/s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for m in comparison["methods"]:
        if m.get("error"):
            table.add_row(escape(m["name"]), f"[red]failed: {escape(m['error'])}[/red]")
            continue
        pair = m.get("pair_accuracy")
        table.add_row(
            escape(m["name"]),
            f"{m['top1']:.1%}",
            "–" if pair is None else f"{pair:.1%}",
            f"{m['params'] / 1e6:.2f} M",
            f"{m['gflops']:.2f}",
            f"{m['train_time_s']:.0f}",
            f"{m['clips_per_s']:.0f}" if m.get("clips_per_s") else "–",
        )
    console.print(table)
