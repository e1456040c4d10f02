"""Load test of `vidclass serve`: concurrent uploads of short videos to a local server.

Starts `vidclass serve` (a small early_fusion model trained here for one epoch unless --run
is given) on a free local port, then sends `--requests` (default 50) POST /v1/predict
requests of short videos at once, in two rounds:

1. clients give up on 503: how many the bounded pool takes and how fast it refuses the rest;
2. clients honour Retry-After (at most `--retries` times): every request should succeed;
   repeated `--repeat` times (default 3) to tell memory growth from a leak.

A request is "lost" when it ends in anything but 200 or a clean 503 with Retry-After (an
error, a timeout, a dropped connection); the script exits 1 if any is. It prints the success
rate, p50/p95 latency and the server's resident memory before and after (growth).
Bounded: `--requests` requests per round, `--deadline` seconds per round.

    .venv/bin/python benchmarks/bench_serve.py [--requests 50] [--workers 1] [--max-queue 4]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np


def make_run(root: Path) -> Path:
    """A tiny early_fusion run (one epoch on a small synthetic set): the server's load is
    decoding and the pool, not a big model."""
    from vidclass.data.prepare import prepare
    from vidclass.synth.clips import generate
    from vidclass.train.loop import TrainConfig, train

    generate(root / "videos", per_class=2, size=(64, 48), fps=8, seed=0, quiet=True)
    prepare(root / "videos", root / "prepared", frames=8, size=32, quiet=True)
    train(root / "prepared", root / "run", TrainConfig(model="early_fusion", epochs=1), quiet=True)
    return root / "run"


def make_videos(root: Path, count: int, seconds: float) -> list[Path]:
    """`count` different short H.264 clips: a square crossing a plain background."""
    from vidclass.video.writer import write_video

    paths = []
    fps, w, h = 15, 160, 120
    for i in range(count):
        rng = np.random.default_rng(i)
        n = int(seconds * fps)
        frames = np.empty((n, h, w, 3), np.uint8)
        frames[:] = rng.integers(0, 255, 3, dtype=np.uint8)
        for t in range(n):
            x = int((w - 20) * t / max(1, n - 1))
            frames[t, 50:70, x : x + 20] = 255 - frames[t, 0, 0]
        paths.append(root / f"clip{i}.mp4")
        write_video(paths[-1], frames, fps)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_request(url: str, video: Path, retries: int, deadline: float) -> dict:
    """POST one video; with retries, wait Retry-After on 503 and try again."""
    start = time.monotonic()
    attempts = 0
    data = video.read_bytes()
    with httpx.Client(timeout=max(1.0, deadline - time.monotonic())) as client:
        while True:
            attempts += 1
            try:
                res = client.post(url, files={"video": (video.name, data, "video/mp4")})
            except httpx.HTTPError as exc:
                return {"outcome": f"lost ({type(exc).__name__})", "s": time.monotonic() - start}
            if res.status_code == 200 and res.json().get("label"):
                return {"outcome": "ok", "s": time.monotonic() - start, "attempts": attempts}
            if res.status_code == 503 and res.headers.get("retry-after"):
                wait = float(res.headers["retry-after"])
                if attempts <= retries and time.monotonic() + wait < deadline:
                    time.sleep(wait)
                    continue
                return {"outcome": "503", "s": time.monotonic() - start, "attempts": attempts}
            return {"outcome": f"lost (HTTP {res.status_code})", "s": time.monotonic() - start}


def load_round(url: str, videos: list[Path], n: int, retries: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [
            pool.submit(one_request, url, videos[i % len(videos)], retries, deadline)
            for i in range(n)
        ]
        results = [f.result() for f in futures]
    wall = time.monotonic() - start
    ok = [r["s"] for r in results if r["outcome"] == "ok"]
    refused = [r["s"] for r in results if r["outcome"] == "503"]
    lost = [r["outcome"] for r in results if r["outcome"] not in ("ok", "503")]
    return {
        "ok": len(ok),
        "refused": len(refused),
        "lost": lost,
        "wall": wall,
        "p50": float(np.percentile(ok, 50)) if ok else float("nan"),
        "p95": float(np.percentile(ok, 95)) if ok else float("nan"),
        "refuse_p95": float(np.percentile(refused, 95)) if refused else float("nan"),
        "attempts": sum(r.get("attempts", 1) for r in results),
    }


def report(name: str, n: int, r: dict) -> None:
    print(
        f"{name}: {r['ok']}/{n} succeeded ({r['ok'] / n:.0%}), {r['refused']} refused with 503, "
        f"{len(r['lost'])} lost; {r['attempts']} HTTP requests in {r['wall']:.1f} s"
    )
    print(f"  latency of successes: p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s", end="")
    print(f"; 503 answered within {r['refuse_p95']:.2f} s (p95)" if r["refused"] else "")
    if r["lost"]:
        print(f"  LOST: {r['lost']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="A run folder [default: train a tiny one].")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of each video.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-queue", type=int, default=4)
    parser.add_argument("--retries", type=int, default=30, help="Per request, in round 2.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds with retries.")
    parser.add_argument("--deadline", type=float, default=180.0, help="Seconds per round.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = Path(tmp)
        run = args.run or make_run(root)
        videos = make_videos(root, 10, args.seconds)
        port = free_port()
        cmd = [sys.executable, "-m", "vidclass", "serve", str(run), "--port", str(port)]
        cmd += ["--workers", str(args.workers), "--max-queue", str(args.max_queue)]
        server = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise SystemExit("the server did not start within 30 s")
            # warm-up: first inference allocates torch's buffers
            for v in videos[:3]:
                one_request(base + "/v1/predict", v, 0, time.monotonic() + 60)
            before = rss_mb(server.pid)
            size_kb = np.mean([v.stat().st_size for v in videos]) / 1e3
            print(
                f"server: workers={args.workers}, max_queue={args.max_queue}; {args.requests} "
                f"concurrent uploads of {args.seconds:.0f} s 160x120 clips ({size_kb:.0f} kB)"
            )
            first = load_round(base + "/v1/predict", videos, args.requests, 0, args.deadline)
            report("round 1 (no retry)", args.requests, first)
            rss = [before, rss_mb(server.pid)]
            rounds = [first]
            for i in range(args.repeat):
                rounds.append(
                    load_round(
                        base + "/v1/predict", videos, args.requests, args.retries, args.deadline
                    )
                )
                report(f"round {i + 2} (honour Retry-After)", args.requests, rounds[-1])
                rss.append(rss_mb(server.pid))
            health = httpx.get(base + "/healthz").json()
            print(
                "server RSS after warm-up and after each round: "
                + ", ".join(f"{m:.0f}" for m in rss)
                + f" MB (growth {rss[-1] - rss[0]:+.0f} MB, last round {rss[-1] - rss[-2]:+.0f} MB)"
                f"; idle now: running={health['running']} queued={health['queued']}"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    if any(r["lost"] for r in rounds):
        sys.exit(1)


if __name__ == "__main__":
    main()
