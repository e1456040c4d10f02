"""Temporal activity localization: every action in a long video, with its start and end.

The method of the field's sliding-window detectors (S-CNN) with TAG-style grouping:

1. *Dense multi-scale windows.* The video is sampled once at a fine rate; windows of the
   model's T frames slide over it at several time spans (`spans`, relative to the span of a
   training clip), so short and long actions are both seen whole by some window. Each window
   is classified by the trained clip model, `background` ("no action") included. A window's
   frames are whole fine samples apart, and the fine rate cannot exceed the video's frame
   rate: spans that cannot run as asked are refused, never quietly rounded (see
   `plan_sampling`); the result's `options` say what ran.
2. *Curves.* Each scale's window probabilities, placed at the window centres, are
   interpolated onto the fine time grid, averaged over scales and smoothed: one probability
   curve per class.
3. *Proposals.* For each action class, the runs of time where its curve stays above a
   threshold are proposals (gaps shorter than `max_gap` bridged), for several thresholds at
   once: a low threshold gives wide proposals, a high one tight ones (the watershed idea of
   TAG, without having to pick one threshold).
4. *Re-scoring.* A proposal's score is its mean probability inside minus the mean in margins
   just outside it (SSN's completeness idea): a proposal that cuts an action short has the
   action in its margins, one that spills over has background inside; the one whose edges
   sit on the action's edges scores best.
5. *Soft temporal NMS* per class: overlapping proposals of the same class keep their place
   in the ranking only as far as they do not repeat a better one (`temporal_nms`: soft by
   default, hard on request; `nms_iou` is the overlap above which either acts).

Decoding streams (bounded memory): only the frames of the longest window are kept; the
per-window probabilities (a few floats per window) are all that grows with the video.

Steps 1 and 2 are `vidclass.localize.windows`, steps 3 to 5 `vidclass.localize.proposals`;
`localize` runs them for one model or an ensemble and reports what ran.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np

from vidclass.errors import UserError
from vidclass.localize.proposals import segments_from_probs
from vidclass.localize.windows import Sampling, fuse_curves, plan_sampling, score_windows
from vidclass.predict.options import LocalizeOptions
from vidclass.synth.labels import BACKGROUND
from vidclass.video.reader import open_source


def localize(
    clf,
    video: str | os.PathLike,
    options: LocalizeOptions | None = None,
    plot: str | os.PathLike | None = None,
    truth: list[dict] | None = None,
    progress: Callable[[float], None] | None = None,
    ensemble: Sequence = (),
) -> dict:
    """Segments of every action in `video`, with the curve they came from.

    `ensemble`: more classifiers (same classes) whose curves are averaged with `clf`'s, each
    decoding the video at its own rate: e.g. a model trained on trimmed clips (sure of the
    class) with one trained on windows cut from long videos (`synth --kind windows`: sure
    of the edges). Returns {"video", "model", "models", "duration_s", "classes",
    "background", "segments", "actionness": {"t", "p"}, "options", "truncated",
    "decoded_duration_s", "truncated_reason"}: `duration_s` is the time that decoded (less
    than the video's when `truncated`), `options` what ran (`_options_report`). `plot`
    draws ground truth (`truth`, if given) against the predicted segments on a timeline.
    """
    options = options or LocalizeOptions()
    models = [clf, *ensemble]
    for other in ensemble:
        if list(other.classes) != list(clf.classes):
            raise UserError(
                "the ensemble's models must have the same classes in the same order; "
                "train them on data with the same classes.json"
            )
    container, header = open_source(video)  # the frame rate bounds the sampling rate
    container.close()
    plans = [plan_sampling(m, options, header.fps, video) for m in models]
    info, grid, curves = _ensemble_curves(models, plans, video, options, progress)
    # What decoded, not what the header claims: a cut-off video ends where its frames end.
    duration = float(
        info.decoded_duration_s or (grid[-1] + 1.0 / plans[0].rate if len(grid) else 0.0)
    )
    background = BACKGROUND if BACKGROUND in clf.classes else None
    segments = segments_from_probs(grid, curves, clf.classes, background, options, end=duration)
    for s in segments:
        s["t_end"] = min(s["t_end"], round(duration, 3))
    if background is not None:
        actionness = 1.0 - curves[:, clf.classes.index(background)]
    else:
        actionness = curves.max(1)
    result = {
        "video": str(video),
        "model": clf.config["model"],
        "models": [m.config["model"] for m in models],
        "duration_s": round(duration, 3),
        "classes": [c for c in clf.classes if c != background],
        "background": background,
        "segments": segments,
        "actionness": {
            "t": [round(float(t), 3) for t in grid],
            "p": [round(float(v), 4) for v in actionness],
        },
        "options": _options_report(options, plans, models),
        **info.result_fields(),
    }
    if plot:
        from vidclass.report.plots import plot_segments

        plot_segments(
            segments,
            duration,
            plot,
            truth=truth,
            curve=(grid, actionness),
            title=os.path.basename(str(video)),
        )
    return result


def _ensemble_curves(
    models: list,
    plans: list[Sampling],
    video: str | os.PathLike,
    options: LocalizeOptions,
    progress: Callable[[float], None] | None,
) -> tuple[object, np.ndarray, np.ndarray]:
    """(the first model's source info, its time grid (N,), the models' class curves (N, K)
    averaged on that grid): each model decodes the video at its own rate."""
    grid, info, fused = np.zeros(0), None, []
    for n, (model, plan) in enumerate(zip(models, plans, strict=True)):
        step = None if progress is None else (lambda f, n=n: progress((n + f) / len(models)))
        m_info, m_grid, scales = score_windows(model, video, options, plan, step)
        curves = fuse_curves(m_grid, scales, round(options.smooth_s * plan.rate))
        if n == 0:
            grid, info = m_grid, m_info
            fused.append(curves)
        else:  # onto the first model's time grid
            fused.append(np.stack([np.interp(grid, m_grid, c) for c in curves.T], 1))
    return info, grid, np.mean(fused, axis=0)


def _options_report(options: LocalizeOptions, plans: list[Sampling], models: list) -> dict:
    """The options as they ran: real spans (factors, seconds, samples between a window's
    frames) and sampling rate of the first model, the NMS mode and the IoU it used."""
    report = asdict(options) | plans[0].as_dict()
    report |= {
        "spans_requested": None if options.spans is None else list(options.spans),
        "nms": options.nms,
        "nms_iou": options.iou_threshold,
    }
    if len(models) > 1:
        report["ensemble"] = [
            {"model": m.config["model"], **p.as_dict()}
            for m, p in zip(models[1:], plans[1:], strict=True)
        ]
    return report


def read_truth(video: str | os.PathLike) -> list[dict] | None:
    """Ground-truth segments stored beside a video (`long_000.json` next to `long_000.mp4`,
    as `vidclass synth --kind long` writes them), or None."""
    import json
    from pathlib import Path

    path = Path(video).with_suffix(".json")
    try:
        segments = json.loads(path.read_text()).get("segments")
    except (OSError, ValueError, AttributeError):
        return None
    return segments if isinstance(segments, list) else None
