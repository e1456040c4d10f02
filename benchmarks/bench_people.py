"""People in real footage: the person detectors of `vidclass detect`, side by side (issue 23).

For each detector (`person`, `hog`, `motion`) and each video: the decoding pass that `detect`
makes (every frame through the detector and the tracker, frames decoded by the same reader),
without the action model. Per video it prints

* tracks: the tracks `detect` would keep (confirmed, at least `DetectOptions.min_track_s` long
  once the coasting tail is dropped);
* frames with a person: frames where the detector gave at least one box;
* on motion: frames whose motion box (the `prepare --crop person` motion box of the clip, a
  reference for one person in front of a still camera) is at least half covered by one of the
  detector's boxes, out of the frames where something moved;
* ms per frame of the detector alone, and speed: seconds of video per wall second of the whole
  pass (decoding + detector + tracker), and as a ratio to decoding the same frames alone.

    .venv/bin/python benchmarks/bench_people.py ../shared/realclips/two_people_hugging_1080p.mp4
    .venv/bin/python benchmarks/bench_people.py --weizmann ../shared/realdata/weizmann

`--every K` runs the detector on every K-th frame only (the tracker coasts in between), the
way to buy speed on large frames.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path, help="video files")
    parser.add_argument("--weizmann", type=Path, default=None, help="add every clip of this folder")
    parser.add_argument("--limit", type=int, default=0, help="at most this many Weizmann clips")
    parser.add_argument("--detectors", default="person,hog,motion")
    parser.add_argument("--every", type=int, default=1, help="detector on every K-th frame")
    return parser.parse_args()


def decode_seconds(video: Path) -> float:
    from vidclass.video.reader import iter_frames

    start = time.perf_counter()
    _, frames = iter_frames(video, 8, 1.0, keep_frames=True, sample=False)
    for _ in frames:
        pass
    return time.perf_counter() - start


def run(video: Path, name: str, every: int) -> dict:
    """One detector's pass over one video, as `detect` makes it."""
    from vidclass.detect.detect import _prime_motion, load_detector
    from vidclass.detect.detectors import MotionDetector
    from vidclass.detect.tracking import Tracker
    from vidclass.predict.options import DetectOptions
    from vidclass.video.reader import iter_frames

    det = load_detector(name)
    start = time.perf_counter()
    if isinstance(det, MotionDetector):
        _prime_motion(det, video)
    tracker = Tracker()
    rows: dict[int, list[tuple[float, bool]]] = {}
    boxes_per_frame, det_s, images = [], 0.0, []
    info, frames = iter_frames(video, 8, 1.0, keep_frames=True, sample=False)
    last = None
    for f in frames:
        if f.index % every == 0 or last is None:
            t0 = time.perf_counter()
            last = det(f.image)
            det_s += time.perf_counter() - t0
            found = last
        else:
            found = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        boxes_per_frame.append(found[0])
        for tb in tracker.update(*found):
            rows.setdefault(tb.track_id, []).append((f.t, tb.detected))
        if len(images) < 400:
            images.append(f.image[::2, ::2] if f.image.shape[0] > 400 else f.image)
    wall = time.perf_counter() - start
    n = len(boxes_per_frame)
    fps = info.fps or 25.0
    tracks = 0
    for r in rows.values():
        while r and not r[-1][1]:
            r.pop()
        if r and r[-1][0] - r[0][0] >= DetectOptions.min_track_s:
            tracks += 1
    return {
        "frames": n,
        "with_person": sum(len(b) > 0 for b in boxes_per_frame),
        "boxes": boxes_per_frame,
        "tracks": tracks,
        "det_ms": 1e3 * det_s / max(1, sum(1 for i in range(n) if i % every == 0)),
        "wall": wall,
        "duration": n / fps,
        "small": images,
    }


def on_motion(result: dict, scale: float) -> tuple[int, int]:
    """(frames whose motion box is half covered by a detected box, frames with motion)."""
    from vidclass.data.crop import motion_person_boxes
    from vidclass.detect.detectors import box_containment

    ref = motion_person_boxes(np.stack(result["small"])) / np.float32(scale)
    hit = moved = 0
    for box, found in zip(ref, result["boxes"], strict=False):
        if np.isnan(box[0]):
            continue
        moved += 1
        if len(found) and box_containment(found, box[None]).max() >= 0.5:
            hit += 1
    return hit, moved


def main() -> None:
    args = parse_args()
    videos = list(args.videos)
    if args.weizmann:
        found = sorted(args.weizmann.glob("*/*.avi"))
        videos += found[: args.limit] if args.limit else found
    names = args.detectors.split(",")
    totals = {
        n: {"wall": 0.0, "dur": 0.0, "det": [], "one": 0, "hit": 0, "moved": 0} for n in names
    }
    print("| video | detector | tracks | frames with a person | on motion | ms/frame (detector) "
          "| × real time | × decoding |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for video in videos:
        decode = decode_seconds(video)
        for name in names:
            r = run(video, name, args.every)
            halved = bool(r["small"]) and r["small"][0].shape[0] * 2 > 400
            hit, moved = on_motion(r, 0.5 if halved else 1.0)
            t = totals[name]
            t["wall"] += r["wall"]
            t["dur"] += r["duration"]
            t["det"].append(r["det_ms"])
            t["one"] += r["tracks"] == 1
            t["hit"] += hit
            t["moved"] += moved
            print(
                f"| {video.name} | {name} | {r['tracks']} | {r['with_person']}/{r['frames']} | "
                f"{hit}/{moved} | {r['det_ms']:.1f} | {r['duration'] / r['wall']:.2f} | "
                f"{decode / r['wall']:.2f} |",
                flush=True,
            )
    if len(videos) > 1:
        print()
        for name, t in totals.items():
            print(
                f"{name}: {t['one']}/{len(videos)} videos with exactly 1 track; on motion "
                f"{t['hit']}/{t['moved']} ({100 * t['hit'] / max(1, t['moved']):.1f} %); "
                f"median {np.median(t['det']):.1f} ms/frame; {t['dur'] / t['wall']:.2f}x real time"
            )


if __name__ == "__main__":
    main()
