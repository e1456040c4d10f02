"""`predict` speed and memory, against references measured in the same run.

1. Memory: peak resident memory of `predict` on a 10-minute video over that on a 1-minute
   video (target: within 15 %, i.e. ratio <= 1.15): streaming keeps nothing per frame. The
   same for `localize` (multi-scale windows; it keeps a few floats per window).
2. Speed on a 640x480 30 fps video: the real-time factor (seconds of video per wall second)
   of `predict` with the small `single_frame` model, and the ratio of `predict`'s wall time to
   decoding the same video with PyAV alone (target for the small model: <= 1.5, i.e.
   decode-bound).
3. Pretrained speed: the real-time factor of every method that takes the EfficientNet-Lite0
   backbone (224 px, 16 frames, stride 8), with `--backend torch` and `--backend onnx`, and the
   seconds spent in the frame encoder. Goal: pretrained single_frame and cnn_lstm >= 10x real
   time with 2 cores. Weights are random (`pretrained=False` costs what the ImageNet weights
   cost). two_stream also computes optical flow (OpenCV Farneback) per frame pair, so it is
   slower. Methods that do not take the backbone yet are listed as skipped, with the reason.
   `--whole-windows` adds the path before frame features were shared (every window encoded
   whole), for comparison.

4. `--run RUN` (repeatable): the same for trained run folders instead of the random-weight
   runs, each as `vidclass predict` runs it: its crop (a person crop decided per frame, so
   windows share frames), its sampling rate and its test-time flip (`--tta flip,none` times
   both views; `--backends onnx` one backend).

    .venv/bin/python benchmarks/bench_predict.py [--long-minutes 10] [--short-minutes 1]
        [--skip-memory] [--whole-windows] [--run RUN ...] [--tta auto] [--backends torch,onnx]

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


PRETRAINED_METHODS = (
    "single_frame",
    "late_fusion",
    "cnn_lstm",
    "two_stream",
    "early_fusion",
    "slow_fusion",
    "slowfast",
    "multires",
)
GOAL_METHODS, GOAL = ("single_frame", "cnn_lstm"), 10.0


def make_run(path: Path, backbone: str, size: int, method: str = "single_frame") -> None:
    """A run folder with an untrained model (speed does not depend on training); the
    EfficientNet-Lite0 ones with random weights, which cost what the ImageNet weights cost.
    Raises UserError for a method that does not take `backbone`."""
    from vidclass.models import build
    from vidclass.models.run import save_model

    options = {"backbone": backbone, "pretrained": False}
    model = build(method, 12, **options)
    save_model(
        path,
        model,
        {
            "model": method,
            "options": model.config,
            "classes": [f"c{i}" for i in range(12)],
            "frames": 16,
            "size": size,
            "normalize": "imagenet" if backbone != "small" else "clip",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "pad": "zeros",
            "needs_flow": bool(model.needs_flow),
            "sample_fps": 8.0,
        },
    )


def timed(encode, spent: list[float]):
    """`encode` that adds the seconds it takes to `spent[0]`."""

    def run(frames):
        start = time.perf_counter()
        try:
            return encode(frames)
        finally:
            spent[0] += time.perf_counter() - start

    return run


def child(
    mode: str,
    run: str,
    video: str,
    backend: str = "torch",
    path: str = "shared",
    tta: str = "auto",
) -> None:
    """Runs in its own process: time one job, print wall time and own peak RSS as JSON."""
    encoder_s = [0.0]
    if mode != "decode":
        from vidclass import Classifier

        clf = Classifier.load(run, backend=backend, tta=tta)  # loading (and export): not timed
        if path == "whole":
            clf.reuse_features = False
        elif clf.reuse_features:
            clf.encoder = timed(clf.encoder, encoder_s)
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
        extra["encoder_s"] = encoder_s[0] if clf.reuse_features else None
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "peak_mb": peak_rss_mb(), **extra}))


def peak_rss_mb() -> float:
    """This process's own peak RSS. Linux keeps `ru_maxrss` across fork and exec, so a child
    started by this (large) benchmark process would report the parent's peak; `VmHWM` belongs
    to the process's own memory map and starts afresh at exec."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, run: Path | str, video: Path, *options: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(run), str(video), *options],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=10)
    parser.add_argument("--short-minutes", type=float, default=1)
    parser.add_argument("--skip-memory", action="store_true", help="speed figures only")
    parser.add_argument(
        "--whole-windows", action="store_true", help="also time every window encoded whole"
    )
    parser.add_argument(
        "--pretrained-size", type=int, default=224, help="input side of the pretrained runs"
    )
    parser.add_argument(
        "--methods", help="comma-separated pretrained methods to time [default: all of them]"
    )
    parser.add_argument(
        "--run",
        action="append",
        type=Path,
        default=[],
        help="a trained run folder to time (repeatable) instead of the random-weight runs",
    )
    parser.add_argument(
        "--tta",
        default="auto",
        help="with --run: comma-separated test-time views to time, e.g. flip,none [auto: as trained]",
    )
    parser.add_argument(
        "--backends", default="torch,onnx", help="comma-separated backends [torch,onnx]"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        short, long = tmp / "short.mp4", tmp / "long.mp4"
        make_video(short, args.short_minutes * 60)
        make_run(tmp / "small", "small", 112)
        if not args.skip_memory:
            make_video(long, args.long_minutes * 60)
            memory(args, tmp, short, long)
        seconds = args.short_minutes * 60
        decode = measure("decode", "-", short)
        p = measure("predict", tmp / "small", short)
        print(
            f"{'single_frame small':32s}: real-time factor {seconds / p['wall']:5.1f}x, "
            f"predict/decode {p['wall'] / decode['wall']:.2f} ({p['wall']:.1f} s vs decode-only "
            f"{decode['wall']:.1f} s, 640x480 30 fps)"
        )
        if args.run:
            trained(args.run, short, seconds, args.tta.split(","), args.backends.split(","))
        else:
            pretrained(args, tmp, short, seconds)


def trained(
    runs: list[Path], video: Path, seconds: float, ttas: list[str], backends: list[str]
) -> None:
    """Real-time factor of trained runs, each backend and test-time view, as `vidclass predict`
    runs them."""
    from vidclass.data.views import resolve_tta
    from vidclass.models.run import read_config

    for run in runs:
        config = read_config(run)
        what = (
            f"{config['model']} {config['size']} px, crop {config.get('crop', 'center')}, "
            f"{config.get('sample_fps') or 8:.1f} fps sampled"
        )
        for tta in ttas:
            views = "flip" if resolve_tta(config, tta) else "none"
            for backend in backends:
                p = measure("predict", run, video, backend, "shared", tta)
                enc = p.get("encoder_s")
                where = f", encoder {enc:.1f} s" if enc is not None else ""
                print(
                    f"{run.name} ({what}), tta {views:4s}, {backend:5s}: real-time factor "
                    f"{seconds / p['wall']:5.1f}x ({p['wall']:.1f} s{where})",
                    flush=True,
                )


def pretrained(args: argparse.Namespace, tmp: Path, video: Path, seconds: float) -> None:
    """Real-time factor of every method on the EfficientNet-Lite0 backbone, both backends."""
    from vidclass.errors import UserError

    best: dict[str, float] = {}
    paths = ("shared", "whole") if args.whole_windows else ("shared",)
    size = args.pretrained_size
    methods = args.methods.split(",") if args.methods else PRETRAINED_METHODS
    for method in methods:
        run = tmp / f"lite0_{method}"
        try:
            make_run(run, "efficientnet_lite0", size, method)
        except UserError as exc:
            print(f"{method:12s} EfficientNet-Lite0: skipped ({exc})")
            continue
        for backend in ("torch", "onnx"):
            for path in paths:
                try:
                    p = measure("predict", run, video, backend, path)
                except subprocess.CalledProcessError as exc:
                    reason = (exc.stderr or "").strip().splitlines()[-1:]
                    print(f"{method:12s} {backend}: failed ({' '.join(reason)})")
                    continue
                factor = seconds / p["wall"]
                if path == "shared":
                    best[method] = max(best.get(method, 0.0), factor)
                enc = p.get("encoder_s")
                where = f", encoder {enc:.1f} s" if enc is not None else ""
                label = "whole windows" if path == "whole" else "frames shared"
                print(
                    f"{method:12s} EfficientNet-Lite0 {size} px, {backend:5s} ({label}): "
                    f"real-time factor {factor:5.1f}x ({p['wall']:.1f} s{where})",
                    flush=True,
                )
    for method in GOAL_METHODS:
        got = best.get(method, 0.0)
        verdict = "met" if got >= GOAL else "NOT met"
        print(f"goal {method} pretrained >= {GOAL:g}x real time: {got:.1f}x, {verdict}")


def memory(args: argparse.Namespace, tmp: Path, short: Path, long: Path) -> None:
    """Peak RSS of `predict` and `localize` on the long video over that on the short one."""
    for command in ("predict", "localize"):
        small, big = (measure(command, tmp / "small", v)["peak_mb"] for v in (short, long))
        print(
            f"peak memory of {command}, single_frame small: {args.short_minutes:g}-min video "
            f"{small:.0f} MB, {args.long_minutes:g}-min video {big:.0f} MB; "
            f"ratio {big / small:.3f} (target <= 1.15)"
        )


if __name__ == "__main__":
    main()
