"""Every method on real people: the Weizmann actions, 3 folds by actor.

Each fold holds 3 of the 9 actors out for testing (never seen in training); of the other six,
one is the val actor that chooses the epoch and five train. Every method runs in three
variants: (a) from scratch (``backbone small``), (b) ImageNet EfficientNet-Lite0 with the
pretrained 2D parts frozen, (c) the same fine-tuned (ImageNet layers at ``lr × 0.1``). Printed:
top-1 on the held-out actors, mean and spread (population sd) over the folds, training time
and evaluation clips/s (`vidclass evaluate` on the test clips: model load, data and model;
`bench_models.py --pretrained` times the models alone) per method and variant. × is a
pretrained variant's mean top-1 over its from-scratch version's on the same folds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_real.py            # all: hours on 2 cores
    .venv/bin/python benchmarks/bench_real.py --folds 0 --methods slow_fusion --variants frozen
    .venv/bin/python benchmarks/bench_real.py --folds loao --methods tsn --variants frozen  # 9 folds
    .venv/bin/python benchmarks/bench_real.py --variants frozen --size 224 --methods tsn \
        --epochs 60 --refit --label-smoothing 0.1 --option dropout=0.5   # training levers
    .venv/bin/python benchmarks/bench_real.py --recipe real --methods tsn,temporal_conv \
        --cached-eval   # the default path, then each lever changed on its own (--levers)

``--recipe real`` trains what `vidclass prepare SRC --out D` and `vidclass train D --model M`
give (the recipe's `config_for`, the code the CLI runs), then the same with one change per
``--levers`` entry: ``crop=center`` re-prepares, ``hflip=false`` is the flag a user would
type; the table gives mean ± sd over the folds and the change against the recipe. With
``--inner N`` the levers run on inner folds (the training actors only), which is where a
lever may be chosen; the outer folds and LOAO then only report it.

A lever away from its default names the run folder (``tsn-frozen-e60-refit-ls0.1-dropout0.5``),
so runs of other settings are never read back for one another. With ``--refit`` the first
pass (``RUN/select``, the epoch chosen on val, no refit) is evaluated too: one run gives both.

Runs are kept under --out (resumable: a finished run is read back, not retrained). Needs
../shared/realdata/weizmann (see its README).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import statistics
import time
from dataclasses import asdict, fields
from pathlib import Path

from vidclass.data.prepare import prepare
from vidclass.errors import UserError
from vidclass.models import MODELS, SKELETON_MODELS
from vidclass.train.config import TrainConfig, test_time_flip
from vidclass.train.evaluate import evaluate
from vidclass.train.loop import train

WEIZMANN = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "weizmann"
ACTORS = ("daria", "denis", "eli", "ido", "ira", "lena", "lyova", "moshe", "shahar")
DEFAULT_EPOCHS = 15
VARIANTS = {
    "scratch": {"backbone": "small"},
    "frozen": {"backbone": "efficientnet_lite0", "pretrained": True, "freeze_backbone": True},
    "finetune": {"backbone": "efficientnet_lite0", "pretrained": True},
}


def fold_split(fold: int, loao: bool = False) -> dict[str, str]:
    """Actor → split: actors 3k..3k+2 test, the next one val, the other five train (``loao``:
    actor k test, the next one val, seven train: the published leave-one-actor-out)."""
    test = {ACTORS[fold]} if loao else set(ACTORS[3 * fold : 3 * fold + 3])
    val = ACTORS[(fold + 1 if loao else 3 * fold + 3) % len(ACTORS)]
    return {a: "test" if a in test else "val" if a == val else "train" for a in ACTORS}


def write_fold_csv(root: Path, fold: int, out: Path) -> Path:
    """``path,label,split,group`` for every clip, the split given by the actor."""
    split = fold_split(fold)
    rows = []
    for video in sorted(root.glob("*/*.avi")):
        actor = video.stem.split("_")[0]
        rows.append([str(video), video.parent.name, split[actor], actor])
    if len(rows) != 90:
        raise SystemExit(f"{root}: expected the 90 Weizmann clips, found {len(rows)}")
    path = out / f"fold{fold}.csv"
    out.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split", "group"])
        w.writerows(rows)
    return path


def train_config(method: str, variant: str, args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of one method × variant from the lever flags (not --recipe)."""
    return TrainConfig(
        model=method,
        options={**VARIANTS[variant], **args.options},
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        hflip=args.hflip,
        lr=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        refit=args.refit,
        refit_epochs=args.refit_epochs,
    )


def caches_features(cfg: TrainConfig) -> bool:
    """Whether `cfg` trains a head on cached frozen-encoder features (only those runs can be
    scored from the cache; a frozen 3D method still encodes its clips)."""
    from vidclass.models import build
    from vidclass.train.features import uses_feature_cache

    options = dict(cfg.options)
    if "pretrained" in options:  # the architecture alone: no weights to load for the question
        options["pretrained"] = False
    return uses_feature_cache(build(cfg.model, 2, **options))


def run_one(data: Path, out: Path, cfg: TrainConfig, args: argparse.Namespace) -> dict:
    """Train (unless finished) and evaluate one configuration on one fold."""
    result_file = out / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    frozen = args.cached_eval and caches_features(cfg)
    t0 = time.perf_counter()
    result = train(data, out, cfg, resume=(out / "state.safetensors").exists(), quiet=True)
    train_s = time.perf_counter() - t0
    # The other test-time choice too (with and without averaging each clip with its mirror),
    # first, so that eval-test.json is left with the run's own.
    own = "flip" if test_time_flip(cfg) else "none"
    other = "none" if own == "flip" else "flip"
    if frozen:
        second = cached_evaluate(out, data, tta=other)
    else:
        second = evaluate(out, data, split="test", quiet=True, tta=other)
    t1 = time.perf_counter()
    if frozen:
        metrics = cached_evaluate(out, data)
    else:
        metrics = evaluate(out, data, split="test", quiet=True)
    eval_s = time.perf_counter() - t1
    record = {
        "method": cfg.model,
        "variant": out.name.split("-", 1)[1] if "-" in out.name else out.name,
        "hflip": cfg.hflip,
        "tta": metrics["tta"],
        "top1": metrics["top1"],
        f"top1_tta_{metrics['tta']}": metrics["top1"],
        f"top1_tta_{other}": second["top1"],
        "test_clips": metrics["num_videos"] if "num_videos" in metrics else None,
        "best_epoch": result.best_epoch,
        "best_val_acc": result.best_val_acc,
        "train_s": train_s,
        "eval_s": eval_s,
    }
    n = record["test_clips"] or 30
    record["infer_clips_per_s"] = n / eval_s
    if frozen:  # the last epoch: what val's choice changed
        first = out / "select" if result.first_pass is not None else out
        record["top1_last"] = cached_evaluate(first, data, last=True)["top1"]
    if args.refit and result.first_pass is not None:  # the same recipe without the refit
        score = cached_evaluate if frozen else evaluate
        record["top1_select"] = score(out / "select", data, split="test", quiet=True)["top1"]
        record["select_epoch"] = result.first_pass.best_epoch
    result_file.write_text(json.dumps(record, indent=2))
    return record


def cached_evaluate(
    run: Path,
    data: Path,
    split: str = "test",
    quiet: bool = True,
    last: bool = False,
    tta: str | None = None,
) -> dict:
    """Top-1 of a frozen-backbone run from the feature cache, the test clips encoded once per
    fold rather than once per run (a lever sweep evaluates many heads on the same features);
    `evaluate` computes the same figure from the videos, up to float rounding. `last`: the
    run's last epoch (from its state file) instead of the epoch it kept; `tta`: flip | none
    instead of the run's own test-time choice."""
    import torch
    from torch.utils.data import DataLoader

    from vidclass.data.views import HFLIP, ORIG, resolve_tta
    from vidclass.models.run import load_model
    from vidclass.train.epoch import predict_loader
    from vidclass.train.evaluate import dataset_for_run
    from vidclass.train.features import FeatureDataset, FeatureHead, cache_features, feature_folder

    model, config = load_model(run)
    if last:
        from vidclass.train.checkpoint import load_state

        tensors, _ = load_state(run / "state.safetensors")
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ds, _ = dataset_for_run(config, data, split)
    flip = resolve_tta(config) if tta is None else tta == "flip"
    views = (ORIG, HFLIP) if flip else (ORIG,)  # as evaluate averages them
    total = labels = None
    for view in views:
        folder = feature_folder(model, ds, view)
        cache_features(model, [ds], folder, quiet=quiet, view=view)
        loader = DataLoader(FeatureDataset(ds, folder, model.feature_dim), batch_size=16)
        probs, labels, _, _ = predict_loader(FeatureHead(model), loader, torch.device("cpu"))
        total = probs if total is None else total + probs
    top1 = float((total.argmax(1) == labels).mean())
    return {"top1": top1, "num_videos": len(labels), "tta": "flip" if len(views) > 1 else "none"}


# --recipe: the user's default path (`vidclass prepare SRC --out D`, then `vidclass train D
# --model M` with no other flag) and that path with one lever changed, on the same folds.
PREPARE_LEVERS = ("crop", "size", "frames", "fps", "person_boxes")  # fixed when prepared
DEFAULT_LEVERS = (
    "recipe,crop=center,crop=full,size=112,frames=8,hflip=false,tta=flip,refit=false,epochs=15"
)


def parse_lever(text: str) -> tuple[dict, dict]:
    """``crop=center+hflip=false+option.grid=3`` → (prepare arguments, train flags given);
    ``recipe`` → neither: the defaults as they are."""
    prep: dict = {}
    flags: dict = {}
    if text == "recipe":
        return prep, flags
    names = {f.name for f in fields(TrainConfig)}
    for item in text.split("+"):
        key, _, raw = item.partition("=")
        value = parse_options([f"v={raw}"])["v"]
        if key in PREPARE_LEVERS:
            prep[key] = value
        elif key.startswith("option."):
            flags.setdefault("options", {})[key[len("option.") :]] = value
        elif key in names and key not in ("model", "options"):
            flags[key] = value
        else:
            raise SystemExit(
                f"--levers {text!r}: {key!r} is none of {', '.join(PREPARE_LEVERS)}, "
                "option.KEY or a TrainConfig field"
            )
    return prep, flags


def recipe_runs(args: argparse.Namespace, outer: int, loao: bool, methods, records) -> None:
    """Every lever × method of --recipe on one outer fold; records appended with ``lever``."""
    from vidclass.train.recipe import BEST_CROP, BEST_FPS, BEST_FRAMES, BEST_SIZE, config_for

    for lever in args.levers.split(","):
        prep, flags = parse_lever(lever)
        defaults = {"frames": BEST_FRAMES, "fps": BEST_FPS, "size": BEST_SIZE, "crop": BEST_CROP}
        ns = argparse.Namespace(**{**vars(args), **defaults, **prep})
        pairs = [(f"loao{outer}", loao_fold(ns, outer))] if loao else fold_data(ns, outer)
        for fold, data in pairs:
            for method in methods:
                cfg, _ = config_for(data, args.recipe, model=method, seed=args.seed, **flags)
                # Named by the whole config, so a changed recipe never reads back old runs.
                key = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
                out = data.parent / "runs" / f"{method}-{args.recipe}-{key.hexdigest()[:10]}"
                if args.summary_only and not (out / "result.json").exists():
                    continue
                try:
                    r = {**run_one(data, out, cfg, args), "fold": fold, "lever": lever}
                except (TypeError, ValueError, UserError) as exc:  # an option M does not take
                    print(f"fold {fold} {method:12s} {lever:16s} skipped: {exc}", flush=True)
                    continue
                records.append(r)
                if not args.summary_only:
                    print(
                        f"fold {fold} {method:12s} {lever:16s} top-1 {100 * r['top1']:5.1f} % "
                        f"(tta {r['tta']})  train {r['train_s']:5.0f} s",
                        flush=True,
                    )


def summarize_levers(records: list[dict], methods: list[str], levers: list[str]) -> None:
    """Mean ± sd over folds per lever and method; Δ against the recipe on the same folds."""
    print("\n| lever | " + " | ".join(methods) + " |")
    print("|---|" + "---:|" * len(methods))
    base = {(r["method"], r["fold"]): r["top1"] for r in records if r["lever"] == "recipe"}
    for lever in levers:
        cells = []
        for m in methods:
            rs = [r for r in records if r["method"] == m and r["lever"] == lever]
            if not rs:
                cells.append("–")
                continue
            acc = [r["top1"] for r in rs]
            sd = statistics.pstdev(acc) if len(acc) > 1 else 0.0
            cell = f"{100 * statistics.mean(acc):.1f} ± {100 * sd:.1f} (n={len(acc)})"
            both = [r for r in rs if (m, r["fold"]) in base]
            if lever != "recipe" and both:
                delta = statistics.mean(r["top1"] - base[(m, r["fold"])] for r in both)
                cell += f" {100 * delta:+.1f}"
            cells.append(cell)
        print(f"| {lever} | " + " | ".join(cells) + " |")


SHORT = {"scratch": "s", "frozen": "fr", "finetune": "ft"}


def lever_suffix(args: argparse.Namespace) -> str:
    """The training levers away from their defaults, as a run-folder suffix."""
    parts = [f"e{args.epochs}"] if args.epochs != DEFAULT_EPOCHS else []
    parts += ["refit" + ("all" if args.refit_epochs == "all" else "")] if args.refit else []
    parts += ["hflip"] if args.hflip else []
    parts += [f"ls{args.label_smoothing:g}"] if args.label_smoothing else []
    parts += [f"wd{args.weight_decay:g}"] if args.weight_decay != TrainConfig.weight_decay else []
    parts += [f"lr{args.lr:g}"] if args.lr != TrainConfig.lr else []
    parts += [f"{k}{v}" for k, v in sorted(args.options.items())]
    return "".join(f"-{p}" for p in parts)


def parse_options(items: list[str]) -> dict:
    """Repeated ``--option key=value`` (JSON values) → model options."""
    options = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def summarize(
    records: list[dict], methods: list[str], variants: list[str], key: str = "top1"
) -> None:
    """Mean ± spread over folds; × = mean over the folds both ran of variant / scratch."""
    print("\n| method | " + " | ".join(variants) + " | train s (per fold) | evaluate clips/s |")
    print("|---|" + "---:|" * (len(variants) + 2))
    for m in methods:
        cells, times, speeds = [], [], []
        scratch = {
            r["fold"]: r[key] for r in records if r["method"] == m and r["variant"] == "scratch"
        }
        for v in variants:
            rs = [r for r in records if r["method"] == m and r["variant"] == v and key in r]
            if not rs:
                cells.append("–")
                continue
            acc = [r[key] for r in rs]
            sd = statistics.pstdev(acc) if len(acc) > 1 else 0.0
            cell = f"{100 * statistics.mean(acc):.1f} ± {100 * sd:.1f} (n={len(acc)})"
            both = [r["fold"] for r in rs if r["fold"] in scratch]
            base = statistics.mean(scratch[f] for f in both) if both else 0.0
            if v != "scratch" and base > 0:
                mine = statistics.mean(r[key] for r in rs if r["fold"] in scratch)
                cell += f" ×{mine / base:.2f}"
            cells.append(cell)
            short = SHORT.get(v, v)
            times.append(f"{short} {statistics.mean(r['train_s'] for r in rs):.0f}")
            speeds.append(f"{short} {statistics.mean(r['infer_clips_per_s'] for r in rs):.1f}")
        print(f"| {m} | " + " | ".join(cells) + f" | {', '.join(times)} | {', '.join(speeds)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=WEIZMANN)
    ap.add_argument("--out", type=Path, default=Path("bench-out/real"))
    ap.add_argument(
        "--folds",
        default="0,1,2",
        help="Comma-separated 3-fold indices, or 'loao': 9 folds, one actor held out each.",
    )
    ap.add_argument("--methods", default=",".join(MODELS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument(
        "--fps", type=float, default=0.0, help="prepare --fps (0: frames spread over the clip)."
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crop", default="center", help="prepare --crop: center, full or person.")
    ap.add_argument(
        "--person-boxes", default="motion", help="prepare --person-boxes: motion or pose."
    )
    ap.add_argument(
        "--hflip", action="store_true", help="Train with mirrored clips (runs named *-hflip)."
    )
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--refit", action="store_true", help="Epochs chosen on val, then train+val.")
    ap.add_argument("--refit-epochs", default="chosen", help="With --refit: chosen | all.")
    ap.add_argument("--option", action="append", default=[], help="Model option key=value.")
    ap.add_argument(
        "--cached-eval",
        action="store_true",
        help="Frozen variants: test top-1 from cached test features (no clips/s figure).",
    )
    ap.add_argument(
        "--inner",
        type=int,
        default=0,
        help="N inner folds per fold, without its test actors: choose a recipe on these.",
    )
    ap.add_argument("--summary-only", action="store_true", help="Print the table of what ran.")
    ap.add_argument(
        "--recipe",
        default="",
        help="real | quick: the default path of `vidclass prepare` and `vidclass train` (the "
        "lever flags above are ignored), with each of --levers changed on its own.",
    )
    ap.add_argument(
        "--levers",
        default=DEFAULT_LEVERS,
        help="With --recipe: comma-separated levers, each 'recipe' or KEY=VALUE joined by '+' "
        "(crop, size, frames, option.KEY or a TrainConfig field).",
    )
    args = ap.parse_args()
    args.options = parse_options(args.option)
    args.pose = any(m in SKELETON_MODELS for m in args.methods.split(","))  # prepare --pose
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: not found (the Weizmann set in ../shared/realdata)")
    loao = args.folds == "loao"
    folds = list(range(len(ACTORS))) if loao else [int(f) for f in args.folds.split(",")]
    methods = args.methods.split(",")
    variants = args.variants.split(",")
    records: list[dict] = []
    if args.recipe:
        for outer in folds:
            recipe_runs(args, outer, loao, methods, records)
        summarize_levers(records, methods, args.levers.split(","))
        return
    for outer in folds:
        pairs = [(f"loao{outer}", loao_fold(args, outer))] if loao else fold_data(args, outer)
        for fold, data in pairs:
            run_fold(args, fold, data, methods, variants, records)
    summarize(records, methods, variants)
    if any("top1_select" in r for r in records):
        print("\nThe same runs' first pass (epoch chosen on val, no refit):")
        summarize(records, methods, variants, key="top1_select")


def fold_data(args: argparse.Namespace, fold: int) -> list[tuple[str, Path]]:
    """(fold name, prepared folder): the fold, or with --inner N its N inner folds."""
    rate = f"@{args.fps:g}fps" if args.fps else ""  # none: spread over the whole clip
    tag = f"{args.frames}{rate}x{args.size}" + ("" if args.crop == "center" else f"-{args.crop}")
    if args.crop == "person" and args.person_boxes != "motion":
        tag += f"-{args.person_boxes}"
    data = args.out / tag / f"fold{fold}" / "prepared"
    base = args.out / tag / "fold0" / "prepared"
    if not args.summary_only and not (base / "manifest.csv").exists():
        labels = write_fold_csv(args.data, 0, args.out / tag / "labels")
        prepare(
            labels,
            base,
            frames=args.frames,
            sample_fps=args.fps or None,
            size=args.size,
            seed=args.seed,
            crop=args.crop,
            person_boxes=args.person_boxes,
            pose=args.pose,
            quiet=True,
        )
    if fold != 0 and not args.summary_only:
        # The clips and their features do not depend on the split: one decode and one
        # feature cache for every fold.
        resplit(base, data, fold_split(fold))
    if not args.inner:
        return [(str(fold), data)]
    return [(f"{fold}.{j}", inner_fold(data, fold, j)) for j in range(args.inner)]


def loao_fold(args: argparse.Namespace, k: int) -> Path:
    """Leave-one-actor-out fold k: fold 0's prepared clips (prepared once; the split does not
    change a clip or its features) with the manifest's splits rewritten."""
    ((_, base),) = fold_data(
        argparse.Namespace(**{**vars(args), "inner": 0, "summary_only": False}), 0
    )
    return resplit(base, base.parent.with_name(f"loao{k}") / "prepared", fold_split(k, loao=True))


def inner_fold(data: Path, fold: int, j: int) -> Path:
    """Fold `fold` without its test actors, for choosing a recipe: of the six other actors
    the j-th is the test set, the next one val and four train; the held-out actors' clips
    are marked `outer-test` and never read."""
    rest = [a for a, s in fold_split(fold).items() if s != "test"]
    test, val = rest[j % len(rest)], rest[(j + 1) % len(rest)]
    split = {a: "test" if a == test else "val" if a == val else "train" for a in rest}
    return resplit(data, data.parent.with_name(f"fold{fold}.{j}") / "prepared", split)


def resplit(base: Path, out: Path, split: dict[str, str]) -> Path:
    """`base` with each clip's split given by its actor (``outer-test`` for actors not in
    `split`): a new manifest, every other entry a symlink, so the folds share one decode and
    one feature cache (the split does not change a clip or its features)."""
    if (out / "manifest.csv").exists():
        return out
    tmp = out.with_name("prepared.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for entry in base.iterdir():
        if entry.name != "manifest.csv":
            (tmp / entry.name).symlink_to(entry.resolve())
    with (base / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["split"] = split.get(r["group"], "outer-test")
    with (tmp / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.rename(out)
    return out


def run_fold(args, fold: str, data: Path, methods, variants, records: list[dict]) -> None:
    """Every method × variant on one (outer or inner) fold; its records appended."""
    for method in methods:
        for variant in variants:
            name = f"{method}-{variant}{lever_suffix(args)}"
            out = data.parent / "runs" / name
            if args.summary_only:
                if (out / "result.json").exists():
                    records.append({**json.loads((out / "result.json").read_text()), "fold": fold})
                continue
            r = run_one(data, out, train_config(method, variant, args), args)
            records.append({**r, "fold": fold})
            print(
                f"fold {fold} {method:12s} {variant:8s} top-1 {100 * r['top1']:5.1f} %  "
                f"(tta none {100 * r.get('top1_tta_none', float('nan')):5.1f}, flip "
                f"{100 * r.get('top1_tta_flip', float('nan')):5.1f})  "
                f"epoch {r['best_epoch']:2d}  train {r['train_s']:6.0f} s  "
                f"infer {r['infer_clips_per_s']:5.1f} clips/s"
                + (
                    f"  (pass 1: top-1 {100 * r['top1_select']:5.1f} %)"
                    if "top1_select" in r
                    else ""
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
