"""`predict` speed and memory, against references measured in the same run.

1. Memory: peak resident memory of `predict` on a 10-minute video over that on a 1-minute
   video (target: within 15 %, i.e. ratio <= 1.15): streaming keeps nothing per frame. The
   same for `localize` (multi-scale windows; it keeps a few floats per window).
2. Speed on a 640x480 30 fps video: the real-time factor (seconds of video per wall second)
   of `predict` with the small `single_frame` model and with pretrained EfficientNet-Lite0,
   and the ratio of `predict`'s wall time to decoding the same video with PyAV alone
   (target for the small model: <= 1.5, i.e. decode-bound).

    .venv/bin/python benchmarks/bench_predict.py [--long-minutes 10] [--short-minutes 1]

Each measurement runs in a fresh process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REALCLIP = Path(__file__).resolve().parents[2] / "shared" / "realclips" / "k400_segwaying.mp4"


def source_frames(w: int, h: int) -> list[np.ndarray]:
    """Real footage (a Kinetics clip, scaled to w x h) when ../shared/realclips is there, so the
    decode reference costs what real video costs; else a textured synthetic pan."""
    if REALCLIP.is_file():
        with av.open(str(REALCLIP)) as c:
            return [
                f.reformat(width=w, height=h, format="rgb24").to_ndarray()
                for f in c.decode(video=0)
            ]
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    base = np.asarray(
        av.VideoFrame.from_ndarray(texture, format="rgb24")
        .reformat(width=w, height=h, interpolation="BICUBIC")
        .to_ndarray()
    )
    return [np.roll(base, shift=3 * i, axis=1) for i in range(150)]


def make_video(path: Path, seconds: float, fps: int = 30, size=(640, 480)) -> None:
    """`seconds` of 640x480 30 fps H.264 (x264 veryfast, 2 s keyframe interval), looping the
    source footage back and forth."""
    w, h = size
    frames = source_frames(w, h)
    cycle = frames + frames[-2:0:-1]
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "veryfast", "g": str(2 * fps)})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(cycle[i % len(cycle)], format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))


def make_run(path: Path, backbone: str, size: int) -> None:
    """A run folder with an untrained single_frame model (speed does not depend on training)."""
    from vidclass.models import build
    from vidclass.models.run import save_model

    options = {"backbone": backbone, "pretrained": backbone != "small"}
    model = build("single_frame", 12, **options)
    save_model(
        path,
        model,
        {
            "model": "single_frame",
            "options": model.config,
            "classes": [f"c{i}" for i in range(12)],
            "frames": 16,
            "size": size,
            "normalize": "imagenet" if backbone != "small" else "clip",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "pad": "zeros",
            "needs_flow": False,
            "sample_fps": 8.0,
        },
    )


def child(mode: str, run: str, video: str) -> None:
    """Runs in its own process: time one job, print wall time and own peak RSS as JSON."""
    if mode != "decode":
        from vidclass import Classifier

        clf = Classifier.load(run)  # imports and model loading are not part of the timing
    start = time.perf_counter()
    if mode == "decode":
        with av.open(video) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            n = sum(1 for _ in c.decode(s))
        extra = {"frames": n}
    elif mode == "localize":
        result = clf.localize(video, stride=4)
        extra = {"points": len(result["actionness"]["t"]), "duration_s": result["duration_s"]}
    else:
        result = clf.predict(video, smooth=5)
        extra = {"units": len(result["timeline"]), "duration_s": result["duration_s"]}
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "peak_mb": peak_mb, **extra}))


def measure(mode: str, run: Path | str, video: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(run), str(video)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=10)
    parser.add_argument("--short-minutes", type=float, default=1)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        short, long = tmp / "short.mp4", tmp / "long.mp4"
        make_video(short, args.short_minutes * 60)
        make_video(long, args.long_minutes * 60)
        make_run(tmp / "small", "small", 112)
        make_run(tmp / "lite0", "efficientnet_lite0", 224)

        m_short = measure("predict", tmp / "small", short)
        m_long = measure("predict", tmp / "small", long)
        print(
            f"peak memory, single_frame small: {args.short_minutes:g}-min video "
            f"{m_short['peak_mb']:.0f} MB, {args.long_minutes:g}-min video "
            f"{m_long['peak_mb']:.0f} MB; ratio {m_long['peak_mb'] / m_short['peak_mb']:.3f} "
            "(target <= 1.15)"
        )
        l_short = measure("localize", tmp / "small", short)
        l_long = measure("localize", tmp / "small", long)
        print(
            f"peak memory of localize, single_frame small: {args.short_minutes:g}-min video "
            f"{l_short['peak_mb']:.0f} MB, {args.long_minutes:g}-min video "
            f"{l_long['peak_mb']:.0f} MB; ratio {l_long['peak_mb'] / l_short['peak_mb']:.3f} "
            "(target <= 1.15)"
        )

        seconds = args.short_minutes * 60
        decode = measure("decode", "-", short)
        for name in ("small", "lite0"):
            p = measure("predict", tmp / name, short)
            label = "single_frame small" if name == "small" else "single_frame EfficientNet-Lite0"
            print(
                f"{label:32s}: real-time factor {seconds / p['wall']:5.1f}x, predict/decode "
                f"{p['wall'] / decode['wall']:.2f} ({p['wall']:.1f} s vs decode-only "
                f"{decode['wall']:.1f} s, 640x480 30 fps)"
            )


if __name__ == "__main__":
    main()
