"""Spatio-temporal detection on held-out synthetic multi-actor scenes.

Renders `--count` scenes (`synth --kind multi`, a seed used by no training set), runs
`detect` with each detector asked for, and prints frame-mAP@0.5 (AVA-style), tracking
quality (MOTA, IDF1, ID switches) and speed against real time (seconds of video per wall
second, the whole pipeline: decoding, detection, tracking, tube classification).
`truth` runs the same pipeline on the ground-truth boxes: the ceiling that a perfect
detector would reach with this action model, separating detection from classification errors.

    .venv/bin/python benchmarks/bench_detect.py RUN --detectors truth,DETECTOR_DIR,motion

`--batch-sizes 1,16` runs each detector at every batch size (tube clips per model call),
interleaved video by video so a shared machine's load falls on all of them alike, and prints
each one's speed as a ratio to the first (the reference, measured in the same run);
`--repeat N` keeps each video's fastest of N runs. The scores must not depend on the batch.

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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="action model run folder (vidclass train)")
    parser.add_argument("--detectors", default="motion", help="comma list: motion, hog, truth, DIR")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7, help="scene seed (held out)")
    parser.add_argument("--scenes", type=Path, default=None, help="reuse/keep scenes here")
    parser.add_argument("--out", type=Path, default=None, help="keep predictions here")
    parser.add_argument(
        "--batch-sizes", default="16", help="comma list of detect's batch_size; the first is "
        "the reference for the speed ratios (e.g. 1,16)"
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="runs per video, fastest kept")
    return parser.parse_args()


def run_detector(clf, name: str, videos: list[Path], batches: list[int], out: Path, repeat: int):
    """Detect on every video at every batch size (interleaved); per batch size the total
    wall seconds and seconds of video, predictions written to out/NAME/bB."""
    from vidclass.detect.detect import detect

    wall = dict.fromkeys(batches, 0.0)
    video_s = dict.fromkeys(batches, 0.0)
    for v in videos:
        truth = json.loads(v.with_suffix(".json").read_text())
        for b in batches:
            best = float("inf")
            for _ in range(repeat):
                detector = TruthBoxes(truth) if name == "truth" else name
                start = time.perf_counter()
                result = detect(clf, v, detector=detector, batch_size=b)
                best = min(best, time.perf_counter() - start)
            wall[b] += best
            video_s[b] += result["duration_s"]
            folder = out / Path(name).name / f"b{b}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{v.stem}.json").write_text(json.dumps(result))
    return wall, video_s


def main() -> None:
    args = parse_args()
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
    batches = [int(b) for b in args.batch_sizes.split(",")]
    out_root = args.out or tmp / "preds"
    rows = []
    for name in args.detectors.split(","):
        wall, video_s = run_detector(clf, name, videos, batches, out_root, args.repeat)
        for b in batches:
            scores = evaluate_detection(out_root / Path(name).name / f"b{b}", scenes)
            t, speed = scores["tracking"], video_s[b] / wall[b]
            ratio = speed / (video_s[batches[0]] / wall[batches[0]])
            rows.append((name, b, scores, speed, ratio))
            print(
                f"{name} (batch {b}): frame-mAP@0.5 {scores['frame_mAP']:.3f}, MOTA {t['mota']:.3f}, "
                f"IDF1 {t['idf1']:.3f}, ID switches {t['id_switches']}, recall {t['recall']:.3f}, "
                f"precision {t['precision']:.3f}; {speed:.2f}x real time, {wall[b]:.1f} s, "
                f"{ratio:.2f}x batch {batches[0]}",
                flush=True,
            )
            print("  AP: " + ", ".join(f"{k} {v:.2f}" for k, v in scores["ap"].items()), flush=True)

    print(f"\n{len(videos)} held-out scenes x {args.seconds:g} s, model {clf.config['model']}\n")
    print(f"| boxes from | batch | frame-mAP@0.5 | MOTA | IDF1 | ID switches | x real time "
          f"| x batch {batches[0]} |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, b, s, speed, ratio in rows:
        t = s["tracking"]
        print(
            f"| {Path(name).name} | {b} | {s['frame_mAP']:.3f} | {t['mota']:.3f} | {t['idf1']:.3f} "
            f"| {t['id_switches']} | {speed:.2f} | {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
