"""PNG figures for runs and reports: training curves, confusion matrices, the method comparison
and prediction timelines.

Every function draws with the Agg backend (no display, safe in worker processes and CI), writes
its PNG to a temporary name beside the target and renames it (a killed run never leaves a half
image that the HTML report would embed), closes its figure and returns the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter  # noqa: E402

from vidclass.atomic import replacing  # noqa: E402

__all__ = ["plot_comparison", "plot_confusion", "plot_curves", "plot_timeline"]

DPI = 110
TOP1_COLOR = "#3b6ea8"
PAIR_COLOR = "#e08a2c"


def _save(fig: Figure, out_png: str | os.PathLike) -> Path:
    """Write ``fig`` to ``out_png`` atomically (temp name + rename) and close it."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with replacing(out) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)
    return out


def _num(x: object) -> float:
    """A metric value as float, NaN when missing/None (matplotlib leaves gaps at NaN)."""
    if x is None or x == "":
        return math.nan
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def plot_curves(rows: list[dict], out_png: str | os.PathLike, title: str = "") -> Path:
    """Loss and accuracy per epoch, train vs validation, side by side.

    ``rows``: one dict per epoch with ``epoch, train_loss, val_loss, train_acc, val_acc``;
    missing or ``None`` values (e.g. no validation split) are simply not drawn. Values may be
    strings, as read back from ``metrics.csv``.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [_num(r.get("epoch", i + 1)) for i, r in enumerate(rows)]
    panels = (
        (ax_loss, "loss", ("train_loss", "val_loss"), False),
        (ax_acc, "accuracy", ("train_acc", "val_acc"), True),
    )
    for ax, name, keys, is_acc in panels:
        drawn = False
        for key, style in zip(keys, ("-o", "--s"), strict=True):
            ys = [_num(r.get(key)) for r in rows]
            if all(math.isnan(y) for y in ys):
                continue
            label = ("train" if key.startswith("train") else "validation") + f" {name}"
            ax.plot(epochs, ys, style, label=label, markersize=4, linewidth=1.8)
            drawn = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if is_acc:
            ax.set_ylim(-0.02, 1.02)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if drawn:
            ax.legend(loc="best", fontsize=9)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_confusion(
    confusion: list[list[int]],
    classes: list[str],
    out_png: str | os.PathLike,
    title: str = "",
    normalize: bool = True,
) -> Path:
    """Confusion matrix heat map, rows = true class, columns = predicted.

    ``normalize`` shows each row as fractions of that class's clips (so rare classes are as
    visible as common ones); cells hold values when K ≤ 20. Size grows with K so 12+ class names
    stay readable.
    """
    cm = np.asarray(confusion, dtype=np.float64).reshape(len(classes), len(classes))
    k = len(classes)
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows != 0)
        vmax = 1.0
    else:
        shown = cm
        vmax = max(1.0, float(cm.max()) if cm.size else 1.0)
    side = min(18.0, max(4.5, 0.55 * k + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if normalize:
        cbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        cbar.set_label("fraction of the true class")
    else:
        cbar.set_label("clips")
    ticks = np.arange(k)
    fontsize = 10 if k <= 12 else 8 if k <= 30 else 7 if k <= 60 else 5
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(classes, rotation=45, ha="right", rotation_mode="anchor", fontsize=fontsize)
    ax.set_yticklabels(classes, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        cell_font = 9 if k <= 10 else 7
        for i in range(k):
            for j in range(k):
                v = shown[i, j]
                if normalize:
                    text = "0" if v == 0 else f"{100 * v:.0f}"
                else:
                    text = f"{int(cm[i, j])}"
                color = "white" if v > 0.55 * vmax else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=cell_font)
    n = int(cm.sum())
    suffix = f"{n} clips" + (", cells in % of each row" if normalize and k <= 20 else "")
    ax.set_title(f"{title}\n{suffix}" if title else suffix)
    fig.tight_layout()
    return _save(fig, out_png)


def _is_ok(m: dict) -> bool:
    return not m.get("error") and not math.isnan(_num(m.get("top1")))


def plot_comparison(methods: list[dict], out_png: str | os.PathLike) -> Path:
    """Horizontal grouped bars per method: top-1 and pair accuracy, best top-1 at the top.

    A dashed line marks chance (50%) for pair accuracy: a bar near it means the method ignores
    frame order. Methods that failed (``error`` set) or have no ``top1`` are left out; a
    ``pair_accuracy`` of ``None`` draws no bar.
    """
    ok = sorted((m for m in methods if _is_ok(m)), key=lambda m: -_num(m.get("top1")))
    n = len(ok)
    fig, ax = plt.subplots(figsize=(8.5, max(2.6, 0.62 * n + 1.6)))
    if n == 0:
        ax.text(0.5, 0.5, "no method finished", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, out_png)
    y = np.arange(n)[::-1].astype(float)  # first (best) at the top
    h = 0.38
    top1 = [_num(m.get("top1")) for m in ok]
    pair = [_num(m.get("pair_accuracy")) for m in ok]
    b1 = ax.barh(y + h / 2, top1, height=h, color=TOP1_COLOR, label="top-1 accuracy")
    pair_y = [yy - h / 2 for yy, p in zip(y, pair, strict=True) if not math.isnan(p)]
    pair_v = [p for p in pair if not math.isnan(p)]
    bars = [(b1, top1)]
    if pair_v:
        b2 = ax.barh(pair_y, pair_v, height=h, color=PAIR_COLOR, label="pair accuracy")
        bars.append((b2, pair_v))
        ax.axvline(0.5, color="#444", linestyle="--", linewidth=1.2, label="chance (pairs)")
    for container, values in bars:
        for rect, v in zip(container, values, strict=True):
            ax.text(
                rect.get_width() + 0.01,
                rect.get_y() + rect.get_height() / 2,
                f"{100 * v:.1f}%",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none"},
            )
    ax.set_yticks(y)
    ax.set_yticklabels([str(m.get("name", "?")) for m in ok])
    ax.set_xlim(0, 1.12)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("test accuracy")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=9)
    ax.set_title("methods sorted by top-1 accuracy", pad=26)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_timeline(
    times: Sequence[float],
    probs: np.ndarray,
    classes: list[str],
    out_png: str | os.PathLike,
    smoothed: np.ndarray | None = None,
    top: int = 3,
) -> Path:
    """Probability of the ``top`` classes over a video: raw per-window scores thin, smoothed
    thick in the same colour, so flicker and what smoothing removes are both visible.

    The classes shown are the ones with the highest peak (smoothed if given, else raw).
    """
    probs = np.asarray(probs, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != t.shape[0]:
        raise ValueError(f"probs must be (len(times), K), got {probs.shape} for {t.shape[0]} times")
    sm = None if smoothed is None else np.asarray(smoothed, dtype=np.float64)
    if sm is not None and sm.shape != probs.shape:
        raise ValueError(f"smoothed has shape {sm.shape}, probs {probs.shape}")
    ranking = sm if sm is not None else probs
    peak = ranking.max(axis=0) if ranking.size else np.zeros(probs.shape[1])
    chosen = list(np.argsort(-peak, kind="stable")[: max(1, min(top, probs.shape[1]))])
    fig, ax = plt.subplots(figsize=(10, 3.6))
    colors = plt.get_cmap("tab10").colors
    for n, c in enumerate(chosen):
        color = colors[n % len(colors)]
        name = classes[c] if c < len(classes) else str(c)
        if sm is not None:
            ax.plot(t, probs[:, c], color=color, linewidth=0.9, alpha=0.55)
            ax.plot(t, sm[:, c], color=color, linewidth=2.6, label=name)
        else:
            ax.plot(t, probs[:, c], color=color, linewidth=1.8, label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)
    if sm is not None:
        ax.plot([], [], color="#666", linewidth=0.9, alpha=0.55, label="raw (thin)")
        ax.plot([], [], color="#666", linewidth=2.6, label="smoothed (thick)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    ax.set_title(f"top {len(chosen)} classes over time")
    fig.tight_layout()
    return _save(fig, out_png)


def plot_segments(
    segments: list[dict],
    duration: float,
    out_png: str | os.PathLike,
    truth: list[dict] | None = None,
    curve: tuple[Sequence[float], Sequence[float]] | None = None,
    title: str = "",
    min_score: float = 0.3,
) -> Path:
    """Temporal localization on one timeline: ground truth above the predicted segments (one
    colour per class, the score written on each), and the actionness curve below them, so a
    missed or misplaced action is seen at a glance. Predictions under `min_score` (kept in
    the JSON for mAP) and those overlapping a better one are left off the picture."""
    shown: list[dict] = []
    for seg in sorted(segments, key=lambda s: -s.get("score", 1.0)):
        clear = all(
            seg["t_end"] <= o["t_start"] + 0.3 or seg["t_start"] >= o["t_end"] - 0.3 for o in shown
        )
        if seg.get("score", 1.0) >= min_score and clear:
            shown.append(seg)
    segments = shown
    labels = sorted({s["label"] for s in segments} | {s["label"] for s in truth or []})
    colors = plt.get_cmap("tab20").colors
    color = {name: colors[i % len(colors)] for i, name in enumerate(labels)}
    rows = [(f"predicted\n(score ≥ {min_score:g})", segments)] + (
        [("ground truth", truth)] if truth is not None else []
    )
    has_curve = curve is not None and len(curve[0]) > 0
    fig, axes = plt.subplots(
        2 if has_curve else 1,
        1,
        figsize=(11, 1.0 + 0.7 * len(rows) + (1.4 if has_curve else 0)),
        sharex=True,
        gridspec_kw={"height_ratios": [len(rows), 1.6] if has_curve else [1]},
        squeeze=False,
    )
    ax = axes[0, 0]
    for y, (_, segs) in enumerate(rows):
        for s in segs:
            width = s["t_end"] - s["t_start"]
            ax.broken_barh([(s["t_start"], width)], (y - 0.38, 0.76), color=color[s["label"]])
            text = s["label"] if "score" not in s else f"{s['label']} {s['score']:.2f}"
            ax.text(
                s["t_start"] + width / 2,
                y,
                text,
                ha="center",
                va="center",
                fontsize=7,
                clip_on=True,
            )
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(0, max(duration, 1e-3))
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    if has_curve:
        cax = axes[1, 0]
        cax.plot(curve[0], curve[1], color="#444", linewidth=1.2)
        cax.fill_between(curve[0], curve[1], color="#888", alpha=0.25)
        cax.set_ylim(0, 1.02)
        cax.set_ylabel("actionness", fontsize=8)
        cax.yaxis.set_major_formatter(PercentFormatter(1.0))
        cax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return _save(fig, out_png)
