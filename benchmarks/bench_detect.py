"""Spatio-temporal detection on held-out synthetic multi-actor scenes.

Renders `--count` scenes (`synth --kind multi`, a seed used by no training set), runs
`detect` with each detector asked for, and prints frame-mAP@0.5 (AVA-style), tracking
quality (MOTA, IDF1, ID switches) and speed against real time (seconds of video per wall
second, the whole pipeline: decoding, detection, tracking, tube classification).
`truth` runs the same pipeline on the ground-truth boxes: the ceiling that a perfect
detector would reach with this action model, separating detection from classification errors.

    .venv/bin/python benchmarks/bench_detect.py RUN --detectors truth,DETECTOR_DIR,motion

Acceptance: frame-mAP@0.5 >= 0.70 on >= 20 held-out scenes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


class TruthBoxes:
    """A 'detector' that returns the ground-truth boxes of the frame it is given (in order)."""

    def __init__(self, truth: dict) -> None:
        self.frames, self.i = truth["frames"], 0

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        objs = self.frames[min(self.i, len(self.frames) - 1)]["objects"]
        self.i += 1
        boxes = np.array([o["box"] for o in objs], np.float32).reshape(-1, 4)
        return boxes, np.ones(len(boxes), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="action model run folder (vidclass train)")
    parser.add_argument("--detectors", default="motion", help="comma list: motion, hog, truth, DIR")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7, help="scene seed (held out)")
    parser.add_argument("--scenes", type=Path, default=None, help="reuse/keep scenes here")
    parser.add_argument("--out", type=Path, default=None, help="keep predictions here")
    args = parser.parse_args()

    from vidclass import Classifier
    from vidclass.evaluation.detection import evaluate_detection
    from vidclass.synth.multi import generate_multi

    tmp = Path(tempfile.mkdtemp(prefix="bench_detect_"))
    scenes = args.scenes or tmp / "scenes"
    videos = sorted(scenes.glob("multi_*.mp4"))[: args.count]
    if len(videos) < args.count:
        start = time.perf_counter()
        generate_multi(scenes, args.count, args.seed, seconds=args.seconds, quiet=True)
        videos = sorted(scenes.glob("multi_*.mp4"))[: args.count]
        print(
            f"rendered {len(videos)} scenes (seed {args.seed}) in {time.perf_counter() - start:.0f} s"
        )
    clf = Classifier.load(args.run)
    rows = []
    for name in args.detectors.split(","):
        out = (args.out or tmp / "preds") / Path(name).name
        out.mkdir(parents=True, exist_ok=True)
        wall = video_s = 0.0
        for v in videos:
            truth = json.loads(v.with_suffix(".json").read_text())
            detector = TruthBoxes(truth) if name == "truth" else name
            start = time.perf_counter()
            result = clf.detect(v, detector=detector)
            wall += time.perf_counter() - start
            video_s += result["duration_s"]
            (out / f"{v.stem}.json").write_text(json.dumps(result))
        scores = evaluate_detection(out, scenes)
        t = scores["tracking"]
        rows.append((name, scores, video_s / wall))
        print(
            f"{name}: frame-mAP@0.5 {scores['frame_mAP']:.3f}, MOTA {t['mota']:.3f}, "
            f"IDF1 {t['idf1']:.3f}, ID switches {t['id_switches']}, recall {t['recall']:.3f}, "
            f"precision {t['precision']:.3f}; {video_s / wall:.2f}x real time",
            flush=True,
        )
        print("  AP: " + ", ".join(f"{k} {v:.2f}" for k, v in scores["ap"].items()), flush=True)

    print(f"\n{len(videos)} held-out scenes x {args.seconds:g} s, model {clf.config['model']}\n")
    print("| boxes from | frame-mAP@0.5 | MOTA | IDF1 | ID switches | x real time |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s, speed in rows:
        t = s["tracking"]
        print(
            f"| {Path(name).name} | {s['frame_mAP']:.3f} | {t['mota']:.3f} | {t['idf1']:.3f} "
            f"| {t['id_switches']} | {speed:.2f} |"
        )


if __name__ == "__main__":
    main()
