"""The comparison report: one self-contained HTML file (and a markdown table) for a reader who
never ran the tool.

The HTML embeds its PNGs as base64 data URIs and uses plain CSS only, so it can be mailed or
opened offline and shows the same thing everywhere. Every piece of text from the comparison
dict is HTML-escaped: method names, errors and paths come from users and files.

``comparison`` is the dict ``vidclass compare`` writes as ``comparison.json``; any field may be
missing (shown as "–") and a method with ``error`` set is shown as a failed row, not a crash.
"""

from __future__ import annotations

import base64
import math
import os
from html import escape
from pathlib import Path

from vidclass.atomic import write_text

__all__ = ["write_comparison_markdown", "write_comparison_report"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DASH = "–"
ORDER_BLIND = 0.6  # pair accuracy at or below this: the method does not use frame order

# (key, header, higher is better)
COLUMNS: list[tuple[str, str, bool]] = [
    ("params", "params", False),
    ("gflops", "GFLOPs", False),
    ("train_time_s", "train time", False),
    ("clips_per_s", "clips/s", True),
    ("top1", "top-1", True),
    ("top5", "top-5", True),
    ("pair_accuracy", "pair accuracy", True),
]

PAIR_EXPLANATION = (
    "Pair accuracy: the classes come in time-reversed pairs (the same frames played forwards or "
    "backwards, like opening vs closing a door). It is how often a model scores a test clip's "
    "true class above its time-reversed twin. 50% is chance, i.e. the model ignores frame "
    "order; near 100% means it sees the direction of motion."
)

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2630;
  background: #f6f7f9; margin: 0; line-height: 1.5; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #dde2e8; padding-bottom: 4px;
  margin-top: 36px; } h3 { margin-bottom: 4px; }
.meta { color: #5a6673; font-size: 0.9em; margin-top: 0; }
code { background: #eef1f4; padding: 1px 4px; border-radius: 3px; font-size: 0.9em;
  word-break: break-all; }
table { border-collapse: collapse; margin: 12px 0; font-size: 0.93em; }
th, td { border: 1px solid #d5dbe2; padding: 5px 10px; text-align: right; vertical-align: top; }
th { background: #eef1f4; } td.name, th.name { text-align: left; }
td.best { background: #d9f2dd; font-weight: 600; }
td.error, p.error { color: #a61b1b; text-align: left; white-space: pre-wrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.facts dt { color: #5a6673; } dl.facts dd { margin: 0; }
figure { margin: 12px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
figcaption { color: #5a6673; font-size: 0.9em; }
figure.confusion img { width: 100%; max-width: 760px; }
.note { background: #f3f6fa; border-left: 4px solid #3b6ea8; padding: 8px 14px; }
nav ul { columns: 2; }
"""


# --- values ---------------------------------------------------------------------------------


def _num(x: object) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN values."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _failed(m: dict) -> bool:
    return bool(m.get("error"))


def _fmt(key: str, x: object) -> str:
    """Human units: 1.2 M params, 3 min 05 s, 97.5%."""
    v = _num(x)
    if v is None:
        return DASH
    if key == "params":
        if v >= 1e6:
            return f"{v / 1e6:.2f} M"
        if v >= 1e3:
            return f"{v / 1e3:.1f} k"
        return f"{v:.0f}"
    if key == "gflops":
        return f"{v:.3g}"
    if key == "train_time_s":
        if v < 60:
            return f"{v:.1f} s"
        if v < 3600:
            return f"{int(v // 60)} min {int(v % 60):02d} s"
        return f"{int(v // 3600)} h {int(v % 3600 // 60):02d} min"
    if key == "clips_per_s":
        return f"{v:.0f}" if v >= 100 else f"{v:.1f}"
    return f"{100 * v:.1f}%"


def _best(methods: list[dict]) -> dict[str, float]:
    """Best value per column over methods that finished (only when two or more compete)."""
    best: dict[str, float] = {}
    for key, _, higher in COLUMNS:
        vals = [v for m in methods if not _failed(m) and (v := _num(m.get(key))) is not None]
        if len(vals) >= 2:
            best[key] = max(vals) if higher else min(vals)
    return best


def _data_uri(out_dir: Path, rel: object) -> str | None:
    """``data:image/png;base64,...`` for a PNG under ``out_dir``; None if absent or not a PNG."""
    if not rel or not isinstance(rel, str | os.PathLike):
        return None
    path = Path(out_dir) / rel
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _chart_uri(out_dir: Path, comparison: dict, methods: list[dict]) -> str | None:
    """The comparison chart; drawn here (``out_dir/comparison.png``) when the dict has none."""
    uri = _data_uri(out_dir, comparison.get("chart_png"))
    if uri is None and any(not _failed(m) and _num(m.get("top1")) is not None for m in methods):
        from vidclass.report.plots import plot_comparison

        uri = _data_uri(out_dir, plot_comparison(methods, Path(out_dir) / "comparison.png").name)
    return uri


def _summary_lines(methods: list[dict]) -> list[str]:
    """Plain-text headline findings (unescaped): best top-1, fastest, order-blind methods."""
    done = [m for m in methods if not _failed(m) and _num(m.get("top1")) is not None]
    lines: list[str] = []
    if done:
        top = max(done, key=lambda m: _num(m.get("top1")) or 0.0)
        lines.append(f"Best top-1: {top.get('name', '?')} ({_fmt('top1', top.get('top1'))}).")
    fast = [m for m in done if _num(m.get("clips_per_s")) is not None]
    if len(fast) >= 2:
        f = max(fast, key=lambda m: _num(m.get("clips_per_s")) or 0.0)
        lines.append(
            f"Fastest at inference: {f.get('name', '?')} ({_fmt('clips_per_s', f.get('clips_per_s'))} clips/s)."
        )
    blind = [
        str(m.get("name", "?"))
        for m in done
        if (p := _num(m.get("pair_accuracy"))) is not None and p <= ORDER_BLIND
    ]
    if blind:
        lines.append(
            f"Near chance on time-reversed pairs (≤ {ORDER_BLIND:.0%}), so blind to frame "
            f"order: {', '.join(blind)}."
        )
    failed = [str(m.get("name", "?")) for m in methods if _failed(m)]
    if failed:
        lines.append(f"Failed to train: {', '.join(failed)} (error below).")
    return lines


# --- HTML -----------------------------------------------------------------------------------


def _e(x: object) -> str:
    return escape("" if x is None else str(x), quote=True)


def _figure(uri: str | None, label: str, caption: str, alt: str, cls: str = "") -> str:
    """A figure with an inlined PNG, or a one-line note when the image is missing."""
    klass = f' class="{cls}"' if cls else ""
    if uri is None:
        return f"<figure{klass}><figcaption>{_e(label)}: not available.</figcaption></figure>"
    return (
        f'<figure{klass}><img src="{uri}" alt="{_e(alt)}">'
        f"<figcaption><b>{_e(label)}.</b> {_e(caption)}</figcaption></figure>"
    )


def _intro(comparison: dict, methods: list[dict]) -> str:
    ds = comparison.get("dataset") or {}
    budget = comparison.get("budget") or {}
    classes = ds.get("classes") or []
    k = len(classes)
    how = []
    if budget.get("recipe"):
        how.append(f"vidclass's {budget['recipe']} recipe")
    if budget.get("weights"):
        how.append(str(budget["weights"]))
    epochs = {m["epochs"] for m in methods if m.get("epochs")}
    if budget.get("epochs") == "per method" and epochs:
        how.append(f"{min(epochs)}–{max(epochs)} epochs by method")
    elif budget.get("epochs") is not None:
        how.append(f"{budget['epochs']} epochs")
    if budget.get("batch_size") is not None:
        how.append(f"batch size {budget['batch_size']}")
    if budget.get("seed") is not None:
        how.append(f"seed {budget['seed']}")
    test = ds.get("test_videos")
    chance = f" (chance: 1/{k} = {100 / k:.1f}%)" if k else ""
    parts = [
        f"<p>{len(methods)} video-classification methods were trained on the same dataset under "
        f"{'one recipe' if budget.get('recipe') else 'the same budget'}"
        f"{' (' + _e(', '.join(how)) + ')' if how else ''} and "
        "evaluated on "
        f"{_e(test) + ' ' if test is not None else 'the '}held-out test videos. Each method "
        "sees the same clips; they differ in how they combine frames over time.</p>",
        "<ul>",
        f"<li><b>Top-1</b>: share of test videos whose highest-scoring class is the true class"
        f"{_e(chance)}. <b>Top-5</b>: the true class is among the five highest scores.</li>",
        f"<li><b>Pair accuracy</b>: {_e(PAIR_EXPLANATION.removeprefix('Pair accuracy: '))}</li>",
        "<li><b>Params</b>: number of weights. <b>GFLOPs</b>: compute for one clip. "
        "<b>Train time</b>: wall-clock on the machine that ran the comparison. <b>Clips/s</b>: "
        "inference throughput there.</li>",
        "<li>Green cells are the best in their column (fewest parameters, GFLOPs and seconds; "
        "highest throughput and accuracies).</li>",
        "</ul>",
    ]
    summary = _summary_lines(methods)
    if summary:
        parts.append('<div class="note"><b>In short.</b> ' + " ".join(_e(s) for s in summary))
        parts.append("</div>")
    return "\n".join(parts)


def _dataset(comparison: dict) -> str:
    ds = comparison.get("dataset") or {}
    budget = comparison.get("budget") or {}
    classes = [str(c) for c in ds.get("classes") or []]
    pairs = [" / ".join(str(c) for c in p) for p in ds.get("pairs") or []]
    paired = {str(c) for p in ds.get("pairs") or [] for c in p}
    unpaired = [c for c in classes if c not in paired]
    facts: list[tuple[str, str]] = [
        ("data", _e(ds.get("root", DASH))),
        ("classes", f"{len(classes)}: {_e(', '.join(classes))}" if classes else DASH),
        ("time-reversed pairs", _e("; ".join(pairs)) if pairs else "none"),
    ]
    if pairs and unpaired:
        facts.append(("not paired", _e(", ".join(unpaired))))
    facts += [
        (
            "train / val / test videos",
            f"{_e(ds.get('train_videos', DASH))} / {_e(ds.get('val_videos', DASH))} / "
            f"{_e(ds.get('test_videos', DASH))}",
        ),
        (
            "clip",
            f"{_e(ds.get('frames', DASH))} frames of {_e(ds.get('size', DASH))}×{_e(ds.get('size', DASH))} px",
        ),
    ]
    if budget:
        facts.append(("budget", _e(", ".join(f"{k}={v}" for k, v in budget.items()))))
    runs = runs_summary(comparison.get("methods") or [])
    if runs:
        facts.append(("runs", _e(runs)))
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return f'<h2>Dataset and budget</h2>\n<dl class="facts">{rows}</dl>'


def runs_summary(methods: list[dict]) -> str:
    """Which runs this comparison trained, resumed, reused or retrained, so a reader knows
    that every row was trained under the budget shown."""
    groups: dict[str, list[str]] = {}
    for m in methods:
        if isinstance(m, dict) and m.get("run"):
            key = "retrained (the saved run differed)" if m.get("replaced_because") else m["run"]
            groups.setdefault(key, []).append(str(m.get("name", "?")))
    order = ["trained", "resumed", "reused", "retrained (the saved run differed)"]
    return "; ".join(f"{k}: {', '.join(groups[k])}" for k in order if k in groups)


def _results_table(methods: list[dict]) -> str:
    best = _best(methods)
    head = '<th class="name">method</th>' + "".join(f"<th>{_e(h)}</th>" for _, h, _ in COLUMNS)
    body = []
    for i, m in enumerate(methods):
        name = f'<td class="name"><a href="#method-{i}">{_e(m.get("name", "?"))}</a></td>'
        if _failed(m):
            err = f"failed: {m.get('error')}"
            body.append(f'<tr>{name}<td class="error" colspan="{len(COLUMNS)}">{_e(err)}</td></tr>')
            continue
        cells = []
        for key, _, _ in COLUMNS:
            v = _num(m.get(key))
            cls = ' class="best"' if v is not None and key in best and v == best[key] else ""
            cells.append(f"<td{cls}>{_e(_fmt(key, m.get(key)))}</td>")
        body.append(f"<tr>{name}{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _method_section(i: int, m: dict, out_dir: Path) -> str:
    name = str(m.get("name", "?"))
    parts = [f'<section id="method-{i}"><h2>{_e(name)}</h2>']
    if m.get("description"):
        parts.append(f"<p>{_e(m['description'])}</p>")
    if _failed(m):
        parts.append(f'<p class="error">This method failed to train: {_e(m.get("error"))}</p>')
    else:
        facts = " · ".join(f"{_e(h)} {_e(_fmt(k, m.get(k)))}" for k, h, _ in COLUMNS)
        parts.append(f'<p class="meta">{facts}</p>')
        parts.append(
            _figure(
                _data_uri(out_dir, m.get("curves_png")),
                "Training curves",
                "Loss and accuracy per epoch, train vs validation. A widening gap between the "
                "two means overfitting.",
                f"training curves of {name}",
            )
        )
        parts.append(
            _figure(
                _data_uri(out_dir, m.get("confusion_png")),
                "Confusion matrix",
                "Test split; rows are the true class, columns the prediction, cells the share "
                "of each row. Mass off the diagonal between the two members of a pair means "
                "the direction of motion was missed.",
                f"confusion matrix of {name}",
                cls="confusion",
            )
        )
    if m.get("run_dir"):
        parts.append(f'<p class="meta">run directory: <code>{_e(m["run_dir"])}</code></p>')
    parts.append("</section>")
    return "\n".join(parts)


def write_comparison_report(out_dir: Path, comparison: dict) -> Path:
    """Write ``out_dir/report.html`` (self-contained, images inlined) and return its path.

    If the dict names no readable ``chart_png``, the bar chart is drawn into
    ``out_dir/comparison.png`` first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = [m for m in comparison.get("methods") or [] if isinstance(m, dict)]
    title = str(comparison.get("title") or "Comparison of video-classification methods")
    meta = []
    if comparison.get("created"):
        meta.append(f"created {_e(comparison['created'])}")
    if comparison.get("command"):
        meta.append(f"command <code>{_e(comparison['command'])}</code>")
    nav = "".join(
        f'<li><a href="#method-{i}">{_e(m.get("name", "?"))}</a></li>'
        for i, m in enumerate(methods)
    )
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{" · ".join(meta)}</p>' if meta else "",
        "<h2>What was compared and how to read it</h2>",
        _intro(comparison, methods),
        _dataset(comparison),
        "<h2>Results</h2>",
        _results_table(methods) if methods else "<p>No methods were run.</p>",
        _figure(
            _chart_uri(out_dir, comparison, methods),
            "Comparison",
            "Top-1 and pair accuracy per method, best top-1 first. The dashed line is chance "
            "for pairs (50%): a bar there means the method ignores frame order.",
            "bar chart of top-1 and pair accuracy per method",
        )
        if methods
        else "",
        f"<nav><h3>Methods</h3><ul>{nav}</ul></nav>" if methods else "",
        *(_method_section(i, m, out_dir) for i, m in enumerate(methods)),
    ]
    html = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(p for p in body if p)
        + "\n</main>\n</body>\n</html>\n"
    )
    path = out_dir / "report.html"
    write_text(path, html)
    return path


# --- markdown -------------------------------------------------------------------------------


def _md(x: object) -> str:
    """Table-cell-safe markdown text: no line breaks, pipes and HTML brackets escaped."""
    s = " ".join(str("" if x is None else x).split())
    for ch in ("\\", "|", "<", ">", "`"):
        s = s.replace(ch, "\\" + ch)
    return s


def write_comparison_markdown(out_dir: Path, comparison: dict) -> Path:
    """Write ``out_dir/comparison.md``: the results table (one row per method) and how to read it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = [m for m in comparison.get("methods") or [] if isinstance(m, dict)]
    ds = comparison.get("dataset") or {}
    budget = comparison.get("budget") or {}
    title = comparison.get("title") or "Comparison of video-classification methods"
    lines = [f"# {_md(title)}", ""]
    if comparison.get("created"):
        lines.append(f"Created {_md(comparison['created'])}.")
    if comparison.get("command"):
        command = " ".join(str(comparison["command"]).split()).replace("`", "'")
        lines.append(f"Command: `{command}`")
    classes = ds.get("classes") or []
    lines += [
        "",
        f"Dataset: {_md(ds.get('root', DASH))}, {len(classes)} classes, "
        f"{_md(ds.get('train_videos', DASH))} train / {_md(ds.get('val_videos', DASH))} val / "
        f"{_md(ds.get('test_videos', DASH))} test "
        f"videos, {_md(ds.get('frames', DASH))} frames of {_md(ds.get('size', DASH))} px."
        + (f" Budget: {_md(', '.join(f'{k}={v}' for k, v in budget.items()))}." if budget else ""),
        "",
    ]
    runs = runs_summary(methods)
    if runs:
        lines += [f"Runs: {_md(runs)}.", ""]
    header = ["method"] + [h for _, h, _ in COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---" + "|---:" * len(COLUMNS) + "|")
    best = _best(methods)
    for m in methods:
        if _failed(m):
            cells = [f"failed: {_md(m.get('error'))}"] + [DASH] * (len(COLUMNS) - 1)
        else:
            cells = []
            for key, _, _ in COLUMNS:
                text = _md(_fmt(key, m.get(key)))
                v = _num(m.get(key))
                cells.append(f"**{text}**" if v is not None and best.get(key) == v else text)
        lines.append(f"| {_md(m.get('name', '?'))} | " + " | ".join(cells) + " |")
    lines += ["", "Bold: best in its column. " + PAIR_EXPLANATION]
    summary = _summary_lines(methods)
    if summary:
        lines += [""] + [f"- {_md(s)}" for s in summary]
    path = out_dir / "comparison.md"
    write_text(path, "\n".join(lines) + "\n")
    return path
