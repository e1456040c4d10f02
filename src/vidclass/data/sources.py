"""Which videos a `prepare` source holds: class folders, the UCF101 layout (with its official
split files) or a CSV of path,label[,split][,group]; each video gets its label, its group
(the source clip it was cut from, so the split never puts two cuts of one clip on two sides)
and a stable, file-system-safe id.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vidclass.data.labels_csv import SPLITS, read_labels_csv  # noqa: F401 - SPLITS re-exported
from vidclass.data.splits import UCF101_GROUP_REGEX, group_of, read_ucf101_splits
from vidclass.errors import UserError
from vidclass.video.probe import VIDEO_EXTENSIONS, is_video_name, scan_folder, skipped_summary


@dataclass
class SourceVideo:
    """One input video before processing."""

    path: Path
    label: str
    split: str | None = None  # given by the CSV or the UCF101 split files
    group: str | None = None
    video_id: str = ""


def discover(
    src: Path, ucf101_splits: Path | None = None, fold: int = 1, group_regex: str | None = None
) -> tuple[list[str], list[SourceVideo], str, list[Path]]:
    """Find the videos, their labels, and any given split; return (classes, videos, split
    mode, skipped files: not videos by their name, or videos outside a class folder)."""
    if not src.exists():
        raise UserError(f"{src}: not found; give a folder of <class>/<video> files or a CSV")
    if group_regex is not None:
        try:
            re.compile(group_regex)
        except re.error as exc:
            raise UserError(f"--group-regex {group_regex!r} is not a valid regex: {exc}") from None
    skipped: list[Path] = []
    if src.is_file():
        classes, videos, mode = _discover_csv(src)
    else:
        if ucf101_splits is None:
            for candidate in (src / "ucfTrainTestlist", src):
                if (candidate / "classInd.txt").is_file():
                    ucf101_splits = candidate
                    break
        classes, videos, mode, skipped = _discover_folder(src, ucf101_splits, fold)
    if not videos:
        found = f" ({skipped_summary(skipped)})" if skipped else ""
        raise UserError(
            f"{src}: no videos found{found}; expected {src}/<class>/<video>"
            f"{{{','.join(VIDEO_EXTENSIONS)}}} or a CSV path,label[,split][,group]"
        )
    regex = group_regex or UCF101_GROUP_REGEX
    for v in videos:
        if v.group is None:
            v.group = group_of(v.path, regex)
    _assign_ids(videos)
    for v in videos:
        if v.group is None:
            v.group = v.video_id  # no group known: each video is its own source
    return classes, videos, mode, skipped


def _discover_folder(
    src: Path, ucf101_splits: Path | None, fold: int
) -> tuple[list[str], list[SourceVideo], str, list[Path]]:
    """Videos in class folders (one scan definition: `scan_folder`), and what was skipped:
    the class folders' other files and videos lying outside any class folder (the other
    files at the top, such as metadata.csv or classes.json, are the dataset's own)."""
    splits_dir = ucf101_splits.resolve() if ucf101_splits is not None else None
    class_dirs = sorted(
        d
        for d in src.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.resolve() != splits_dir
    )
    videos: list[SourceVideo] = []
    skipped = sorted(f for f in src.iterdir() if f.is_file() and is_video_name(f))
    for d in class_dirs:
        found, others = scan_folder(d)
        videos.extend(SourceVideo(path=f, label=d.name) for f in found)
        skipped.extend(others)
    present = sorted({v.label for v in videos})
    if ucf101_splits is None:
        return present, videos, "stratified-group", skipped
    classes, official = read_ucf101_splits(ucf101_splits, fold)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise UserError(
            f"{src}: class folders {unknown[:5]} are not in {ucf101_splits}/classInd.txt; "
            "point --ucf101-splits at the split files of this dataset"
        )
    for v in videos:
        key = f"{v.label}/{v.path.stem}"
        v.split = official.get(key, "unused")
    return classes, videos, f"ucf101-fold{fold}", skipped


def _discover_csv(src: Path) -> tuple[list[str], list[SourceVideo], str]:
    """The videos of a labels CSV (the one parser: `labels_csv`); its split is used only when
    every row gives one."""
    videos = [
        SourceVideo(path=r.file, label=r.label, split=r.split or None, group=r.group or None)
        for r in read_labels_csv(src).rows
    ]
    given = [v.split for v in videos]
    if any(given) and not all(given):
        raise UserError(f"{src}: the split column must be filled on every row or on none")
    return sorted({v.label for v in videos}), videos, "csv" if all(given) else "stratified-group"


def _assign_ids(videos: list[SourceVideo]) -> None:
    """Stable, file-system-safe ids: the file stem, made unique when stems repeat."""

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "video"

    stems = Counter(clean(v.path.stem) for v in videos)
    for v in videos:
        vid = clean(v.path.stem)
        if stems[vid] > 1:
            digest = hashlib.sha1(str(v.path).encode()).hexdigest()[:8]
            vid = f"{clean(v.label)}__{vid}__{digest}"
        v.video_id = vid
