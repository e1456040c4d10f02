"""Which frames to sample, probed fast on Weizmann's inner folds (frozen features, tsn head).

`bench_real.py --recipe` measures the default path end to end, which takes tens of minutes per
lever on 2 cores; choosing how `prepare` samples needs a dozen variants. This probe prepares
each variant once with the project's `prepare` (all 90 clips), encodes every clip and its
mirror image once with ImageNet EfficientNet-Lite0 (grid 3, as the recipe's tsn), then trains
the recipe's head (`build_tsn(grid=3, motion=True)`'s classifier over `forward_features`, AdamW
2e-3, warm-up + cosine, 60 epochs, batch 16, a mirrored view drawn per clip per epoch, each
test clip averaged with its mirror) on:

- **inner folds** (where a choice may be made): for each of the 3 outer folds, each of its six
  non-test actors in turn is the test actor and the other five train: 18 folds of 10 clips;
  the outer test actors are never read;
- **outer folds** (`--outer`, report only): the 3 folds by actor, six actors train.

The head's training loop is a compact copy of the recipe's (no val, no checkpoints), so its
figures are indicative; the chosen sampling is then measured with `bench_real.py --recipe`.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/probe_sampling.py \\
        --variant 16x0 --variant 32x0 --variant 16x8 --variant 32x12.5 --out /work/probe
    # FRAMESxFPS[@SIZE]; FPS 0 = spread over the whole clip (prepare --fps 0)
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidclass.data.dataset import VideoDataset
from vidclass.data.prepare import prepare
from vidclass.data.views import HFLIP, ORIG, apply_view
from vidclass.models.blocks import channels_last_encoder
from vidclass.models.tsn import build_tsn

WEIZMANN = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "weizmann"
ACTORS = ("daria", "denis", "eli", "ido", "ira", "lena", "lyova", "moshe", "shahar")


def labels_csv(out: Path) -> Path:
    path = out / "all.csv"
    out.mkdir(parents=True, exist_ok=True)
    rows = ["path,label,split,group"]
    for video in sorted(WEIZMANN.glob("*/*.avi")):
        rows.append(f"{video},{video.parent.name},train,{video.stem.split('_')[0]}")
    path.write_text("\n".join(rows) + "\n")
    return path


@torch.no_grad()
def encoded(out: Path, frames: int, fps: float, size: int) -> dict:
    """Every clip's frame features (as prepared and mirrored), labels, actors, real frames."""
    data = out / f"{frames}x{fps:g}@{size}"
    cache = data / "probe-features.npz"
    if cache.exists():
        return dict(np.load(cache))
    prepare(labels_csv(out), data, frames=frames, sample_fps=fps or None, size=size,
            crop="person", quiet=True)  # fmt: skip
    ds = VideoDataset(data, split=None, normalize="imagenet")
    model = build_tsn(10, "efficientnet_lite0", pretrained=True, freeze_backbone=True, grid=3)
    model.eval()
    feats: dict[str, list] = {ORIG: [], HFLIP: []}
    with channels_last_encoder(model):
        for i in range(len(ds)):
            item = ds[i]
            for view in feats:
                v = apply_view(dict(item), view)
                feats[view].append(model.encode_frames(v["video"][None], v["mask"][None])[0])
    result = {
        "orig": torch.stack(feats[ORIG]).numpy(),
        "hflip": torch.stack(feats[HFLIP]).numpy(),
        "labels": np.array([r["label_index"] for r in ds.rows]),
        "actors": np.array([r["group"] for r in ds.rows]),
        "real": np.array([min(r["sampled_frames"], frames) for r in ds.rows]),
    }
    np.savez(cache, **result)
    return result


def fit_score(d: dict, train: np.ndarray, test: np.ndarray, tta: bool, seed: int = 0) -> float:
    """Top-1 on `test` of the recipe's tsn head trained on `train` (boolean masks)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    head = build_tsn(10, "efficientnet_lite0", grid=3, motion=True).eval()
    head.encoder = nn.Identity()
    views = [torch.from_numpy(d["orig"]), torch.from_numpy(d["hflip"])]
    t = views[0].shape[1]
    mask = torch.arange(t)[None] < torch.from_numpy(d["real"])[:, None]
    y = torch.from_numpy(d["labels"]).long()
    tr = torch.from_numpy(np.nonzero(train)[0])
    opt = torch.optim.AdamW(head.classifier.parameters(), lr=2e-3, weight_decay=1e-4)
    epochs, batch = 60, 16
    per = math.ceil(len(tr) / batch)
    total, warm, step = epochs * per, per, 0
    for _ in range(epochs):
        order = tr[torch.randperm(len(tr), generator=gen)]
        pick = torch.randint(0, 2, (len(order),), generator=gen)
        head.train()
        for s in range(per):
            idx, v = order[s * batch : (s + 1) * batch], pick[s * batch : (s + 1) * batch]
            x = torch.where(v[:, None, None].bool(), views[1][idx], views[0][idx])
            if step < warm:
                lr = 2e-3 * (0.1 + 0.9 * step / warm)
            else:
                p = (step - warm) / max(1, total - warm)
                lr = 2e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))
            for g in opt.param_groups:
                g["lr"] = lr
            loss = nn.functional.cross_entropy(head.forward_features(x, mask[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    head.eval()
    te = torch.from_numpy(np.nonzero(test)[0])
    with torch.no_grad():
        used = views if tta else views[:1]
        probs = sum(torch.softmax(head.forward_features(v[te], mask[te]), 1) for v in used)
    return float((probs.argmax(1) == y[te]).float().mean())


def folds(outer: bool) -> list[tuple[list[str], list[str]]]:
    out = []
    for k in range(3):
        test = ACTORS[3 * k : 3 * k + 3]
        rest = [a for a in ACTORS if a not in test]
        if outer:
            out.append((rest, list(test)))
        else:
            out += [([b for b in rest if b != a], [a]) for a in rest]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, help="FRAMESxFPS[@SIZE]")
    ap.add_argument("--out", type=Path, default=Path("bench-out/probe"))
    ap.add_argument("--outer", action="store_true", help="The 3 outer folds (report only).")
    ap.add_argument("--tta", choices=("flip", "none"), default="flip")
    args = ap.parse_args()
    if not WEIZMANN.is_dir():
        raise SystemExit(f"{WEIZMANN}: not found (the Weizmann set in ../shared/realdata)")
    print("| sampling | size | folds | top-1 mean ± sd |\n|---|---:|---|---:|")
    for variant in args.variant:
        spec, _, size = variant.partition("@")
        frames, _, fps = spec.partition("x")
        d = encoded(args.out, int(frames), float(fps or 0), int(size or 224))
        accs = [
            fit_score(d, np.isin(d["actors"], tr), np.isin(d["actors"], te), args.tta == "flip")
            for tr, te in folds(args.outer)
        ]
        rate = f"{frames} at {float(fps):g} fps" if float(fps or 0) else f"{frames} spread"
        print(
            f"| {rate} | {size or 224} | {'outer 3' if args.outer else 'inner 18'} | "
            f"{100 * statistics.mean(accs):.1f} ± {100 * statistics.pstdev(accs):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
