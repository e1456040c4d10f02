"""What `--backend onnx-int8` costs in accuracy and buys in speed, per trained run.

For each run folder (a frame-based method trained on prepared clips, e.g. the three folds of
`bench_real.py --recipe real`): the frame encoder exported (fp32) and quantised to int8 the
way `Classifier.load(run, backend="onnx-int8")` does it (`vidclass.predict.quantize`,
calibrated on the run's training clips), into a temporary folder (the run is only read);
then the run's test clips (its prepared cache, `split == test`) are scored from the features
of each encoder, with the run's test-time flip, and the encoder alone is timed (one thread,
batch 1, ms per frame, the two encoders alternating).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_int8.py RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ms_per_frame(sessions: dict, size: int, repeats: int = 3, calls: int = 20) -> dict:
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    best = {name: float("inf") for name in sessions}
    for _ in range(repeats):
        for name, s in sessions.items():
            s.run(None, {"frames": x})
            start = time.perf_counter()
            for _ in range(calls):
                s.run(None, {"frames": x})
            best[name] = min(best[name], (time.perf_counter() - start) / calls * 1000)
    return best


def bench(run: Path, tmp: Path) -> dict:
    from vidclass.data.prepare import read_manifest
    from vidclass.data.views import resolve_tta
    from vidclass.models.run import load_model
    from vidclass.predict.features import normalized_frames
    from vidclass.predict.onnx import export_encoder
    from vidclass.predict.quantize import calibration_frames, quantize_encoder

    model, config = load_model(run)
    model.eval()
    size = int(config["size"])
    fp32, int8 = tmp / "encoder.onnx", tmp / "encoder.int8.onnx"
    export_encoder(model, fp32, size)
    quantize_encoder(fp32, int8, calibration_frames(config), "bench")
    sessions = {"fp32": session(fp32), "int8": session(int8)}
    views = 2 if resolve_tta(config) else 1
    right = dict.fromkeys(sessions, 0)
    n, gap = 0, []
    data = Path(config["data"])
    for row in read_manifest(data):
        if row.get("split") != "test" or row.get("status") != "ok":
            continue
        clip = np.load(data / "cache" / f"{row['video_id']}.npy")
        probs = {}
        for name, s in sessions.items():
            p = 0.0
            for view in range(views):
                frames = [f[:, ::-1] if view else f for f in clip]
                x = normalized_frames(config, frames)
                feats = np.concatenate(
                    [s.run(None, {"frames": x[i : i + 1]})[0] for i in range(len(x))]
                )
                mask = torch.ones(1, len(x), dtype=torch.bool)
                with torch.inference_mode():
                    logits = model.forward_features(torch.from_numpy(feats)[None], mask)
                p = p + torch.softmax(logits, dim=1)[0].numpy() / views
            probs[name] = p
            right[name] += int(np.argmax(p) == int(row["label_index"]))
        gap.append(float(np.abs(probs["fp32"] - probs["int8"]).max()))
        n += 1
    speed = ms_per_frame(sessions, size)
    return {
        "clips": n,
        **{f"top1_{k}": 100 * v / max(1, n) for k, v in right.items()},
        "max_prob_gap": max(gap) if gap else 0.0,
        **{f"ms_{k}": v for k, v in speed.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench(run, Path(tmp))
        rows.append(r)
        print(
            f"{run}: {r['clips']} test clips, top-1 fp32 {r['top1_fp32']:.1f} int8 "
            f"{r['top1_int8']:.1f} (largest probability gap {r['max_prob_gap']:.2f}); encoder "
            f"{r['ms_fp32']:.1f} vs {r['ms_int8']:.1f} ms/frame",
            flush=True,
        )
    if len(rows) > 1:
        for key in ("top1_fp32", "top1_int8"):
            values = np.array([r[key] for r in rows])
            print(f"mean {key}: {values.mean():.1f} ± {values.std():.1f} (sd over the runs)")


if __name__ == "__main__":
    main()
