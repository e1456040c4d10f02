"""Per-video outputs: what a video's files are called, where they go, and how evaluation finds
them again. One module for the commands that write them (predict, localize, detect) and the
evaluations that match them to ground truth, so the two cannot disagree.

Names. A video found by scanning a folder is named by its path under that folder without the
extension (`ROOT/walk/p1.mp4` -> `walk/p1`), a video given as a file by its stem. Videos of one
run that would share a name keep their extension (`a.mp4` and `a.avi` -> `a.mp4`, `a.avi`);
names still shared (`p1.mp4` at the top of two scanned folders) are refused before any video
runs, when a folder of per-video files is asked for.

Targets. `--json`, `--annotate` and `--plot` mean a folder when the value ends in `/` or is an
existing folder: one file per video, `DIR/<name><suffix>`, sub-folders mirrored, so the
prediction `DIR/walk/p1.json` has the relative path of the ground truth `ROOT/walk/p1.json`
that `vidclass synth` writes beside each video. Any other value is one file: for `--json` the
result of the one video, or a list of every video's result; `--annotate` and `--plot` hold one
video, so several videos and a file name are refused.

An existing JSON file that is not a vidclass result (no `model` key: the ground truth that
`vidclass synth` writes beside its videos, say) is never overwritten: the run is refused
before any video runs.

A video that fails leaves no output: its file from an earlier run is removed, so nothing stale
is shown or scored (evaluation counts that video as missing and names it).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from vidclass.atomic import replacing
from vidclass.errors import UserError


def video_name(video: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """`video`'s path under the scanned folder `root` (its file name without one), without
    the extension, with `/` between folders: `ROOT/walk/p1.mp4` -> `walk/p1`."""
    path = Path(video)
    rel = path.relative_to(root) if root is not None else Path(path.name)
    return rel.with_suffix("").as_posix()


def unique_names(videos: Iterable[tuple[str, str | os.PathLike | None]]) -> dict[str, str]:
    """Each video's output name, from (video, scanned folder or None) pairs: `video_name`,
    with the extension kept for the videos that would otherwise share one."""
    roots = dict(videos)  # a video given twice is one video
    short = {src: video_name(src, root) for src, root in roots.items()}
    shared = Counter(short.values())
    return {
        src: name if shared[name] == 1 else f"{name}{Path(src).suffix}"
        for src, name in short.items()
    }


def is_folder(value: str | os.PathLike) -> bool:
    """An output value that names a folder: it ends in `/` or is an existing folder."""
    text = os.fspath(value)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


class Target:
    """Where one option's files (`--annotate`, `--plot`) go for a run's videos.

    `names`: output name per video (`unique_names`); `many`: the run has several sources,
    so a file name (not a folder) is refused unless one file can hold them all."""

    holds_many = False  # one file can take the results of several videos

    def __init__(
        self, option: str, value: str | None, suffix: str, names: dict[str, str], many: bool
    ) -> None:
        self.option, self.value, self.suffix, self.names = option, value, suffix, names
        self.folder = value is not None and is_folder(value)
        self.single = not many
        if value is None:
            return
        if self.folder:
            self._check_distinct()
        elif many and not self.holds_many:
            raise UserError(
                f"{option} {value}: one file cannot hold the outputs of several videos; give a "
                f"folder, {option} {Path(value).with_suffix('')}/, for one per video"
            )
        inputs = {Path(v).resolve() for v in names}
        for src in names:
            out = self.path(src, create=False)
            if out is not None and out.resolve() in inputs:
                raise UserError(
                    f"{option} {value} would overwrite the video {out} itself; write the "
                    "outputs to another file or folder"
                )

    def path(self, src: str, create: bool = True) -> Path | None:
        """The file `src`'s output goes to (its folder created), or None: no output asked
        for, a live source, or results gathered into one file (`JsonTarget.finish`)."""
        if self.value is None or src not in self.names:
            return None
        if self.folder:
            out = Path(self.value) / f"{self.names[src]}{self.suffix}"
        elif self.single:
            out = Path(self.value)
        else:
            return None
        if create:
            out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def discard(self, src: str) -> None:
        """Remove `src`'s output left by an earlier run: `src` failed this time."""
        out = self.path(src, create=False)
        if out is not None and out.is_file():
            out.unlink()

    def _check_distinct(self) -> None:
        by_name: dict[str, list[str]] = defaultdict(list)
        for src, name in self.names.items():
            by_name[name].append(src)
        for name, srcs in by_name.items():
            if len(srcs) > 1:
                raise UserError(
                    f"{self.option} {self.value}: {srcs[0]} and {srcs[1]} would both write "
                    f"{Path(self.value) / (name + self.suffix)}; run them separately, each with "
                    f"its own {self.option} folder, or rename one"
                )


class JsonTarget(Target):
    """`--json`: a folder of one file per video, written as each video is done; or one file,
    the result of the one video or a list of all (written by `finish`)."""

    holds_many = True

    def __init__(self, value: str | None, names: dict[str, str], many: bool) -> None:
        super().__init__("--json", value, ".json", names, many)
        self.results: list[dict] = []
        outs = {self.path(src, create=False) for src in names}
        if value is not None and not self.folder:
            outs.add(Path(value))
        for out in sorted(p for p in outs if p is not None):
            if out.is_file() and not is_result(out):
                raise UserError(
                    f"--json {value} would overwrite {out}, which is not a vidclass result (the "
                    "ground truth `vidclass synth` writes beside its videos?); write the results "
                    "to another file or folder, e.g. --json preds/"
                )

    def write(self, src: str, result: dict) -> None:
        """Keep `src`'s result, and write it now unless it goes into the list file."""
        self.results.append(result)
        out = self.path(src)
        if out is not None:
            write_json(out, result)

    def finish(self) -> None:
        """Write the list file of a run over several videos (those that failed are absent)."""
        if self.value is not None and not self.folder and not self.single:
            Path(self.value).parent.mkdir(parents=True, exist_ok=True)
            write_json(Path(self.value), self.results)


def is_result(path: Path) -> bool:
    """`path` holds what predict, localize or detect wrote: a result object (or a list of
    them), each naming its `model`; ground truth and other JSON files do not."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    items = data if isinstance(data, list) else [data]
    return all(isinstance(d, dict) and "model" in d for d in items)


def write_json(path: Path, data: object) -> None:
    """`data` as indented JSON, atomically: a reader sees the old file or the new one."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def json_files(folder: str | os.PathLike, exclude: str | os.PathLike | None = None) -> dict:
    """{key: path} of the .json files under `folder`, at any depth: the key is the path
    under `folder` without `.json` (`walk/p1`), as `video_name` names the video it is about.
    Hidden files and folders, and the folder `exclude` (the other side of an evaluation,
    when it lies inside this one), are left out."""
    folder = Path(folder)
    skip = Path(exclude).resolve() if exclude is not None else None
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() != skip
        )
        for name in sorted(files):
            if name.lower().endswith(".json") and not name.startswith("."):
                path = Path(root) / name
                found[path.relative_to(folder).with_suffix("").as_posix()] = path
    return found
