"""What the labelling page does, without the web: the clips, their order, the model's scores
and the actions (label, skip, undo, re-score), for `vidclass label` (routes in `label_app`).

Two modes:
- label: the clips of a folder, in name order, or with a model least confident first (the
  lowest top-1 probability: the clips that teach the next model most);
- review: an already-labelled set; the queue holds the clips where the model disagrees with
  the label, most confident disagreement first (the likely label errors); each decision
  goes into the CSV and the change log.

Clips are known by ids the server makes (a digest of the path); no request ever names a path.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidclass.data.labels_csv import SPLITS
from vidclass.errors import UserError
from vidclass.serve.errors import RequestError
from vidclass.serve.label_store import ChangeLog, LabelStore, Row, clip_key, read_rows
from vidclass.video.probe import scan_folder

log = logging.getLogger("vidclass.label")

# 1-9, then letters; s (skip), u (undo) and k (keep, in review) are the page's own keys.
KEYS = list("123456789") + [c for c in string.ascii_lowercase if c not in "suk"]
TOP = 3  # scores shown with a suggestion


SessionError = RequestError  # the one refusal of the web apps, as the session raises it


@dataclass(frozen=True)
class Clip:
    id: str
    key: str  # resolved absolute path
    name: str  # as shown: relative to the labelled folder


@dataclass
class Score:
    label: str | None
    score: float
    top: list[dict] = field(default_factory=list)
    error: str | None = None


def make_clip(path: str | os.PathLike, root: Path | None) -> Clip:
    key = clip_key(path)
    name = key
    if root is not None:
        try:
            name = Path(key).relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return Clip(hashlib.sha1(key.encode()).hexdigest()[:12], key, name)


def folder_clips(folder: str | os.PathLike) -> list[Clip]:
    """Every video under `folder` (the scan `prepare` and `predict` use), in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; give the folder of clips to label")
    videos, _ = scan_folder(folder)
    if not videos:
        raise UserError(f"{folder}: no videos found (.mp4, .avi, .mkv, ...)")
    return sorted((make_clip(v, folder) for v in videos), key=lambda c: c.name)


def review_rows(src: str | os.PathLike) -> tuple[list[Row], Path]:
    """The labelled clips of `src` and the folder their names are shown relative to: a CSV
    `path,label[,split][,group]`, a prepared folder (its manifest.csv; failed rows left out)
    or a folder of `<class>/<video>`."""
    src = Path(src)
    if src.is_file():
        return read_rows(src), src.parent
    if (src / "manifest.csv").is_file():
        rows = [
            r
            for r, ok in _manifest_rows(src / "manifest.csv")
            if ok  # a video prepare could not read cannot be reviewed either
        ]
        return rows, Path(os.path.commonpath([r.key for r in rows])) if rows else src
    if src.is_dir():
        rows = []
        for d in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
            videos, _ = scan_folder(d)
            keys = [clip_key(v) for v in videos]
            rows += [Row(path=k, file=Path(k), label=d.name) for k in keys]
        return rows, src
    raise UserError(f"{src}: not found; give a labels CSV, a prepared folder or class folders")


def _manifest_rows(path: Path) -> list[tuple[Row, bool]]:
    """A manifest's rows; a split a labels CSV cannot hold (UCF101's `unused`) is left empty,
    so the CSV a review writes can be read back."""
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            split = r["split"] if r["split"] in SPLITS else ""
            row = Row(r["path"], Path(r["path"]), r["label"], split, r["group"])
            rows.append((row, r["status"] == "ok"))
    return rows


class LabelSession:
    """The state behind the page; every method is safe to call from several threads.

    `model` is a loaded `Classifier`; `reload` (optional) loads it again for `rescore` (a run
    retrained since). In review mode `changes` logs every decision.
    """

    def __init__(
        self,
        clips: list[Clip],
        classes: list[str],
        store: LabelStore,
        model: Any = None,
        reload: Callable[[], Any] | None = None,
        changes: ChangeLog | None = None,
    ) -> None:
        if not classes:
            raise UserError("no classes: give --classes a,b,c (or --model RUN to take its classes)")
        if len(set(classes)) != len(classes):
            raise UserError(f"--classes names a class twice: {','.join(classes)}")
        self.clips = clips
        self.by_id = {c.id: c for c in clips}
        self.classes = classes
        self.keys = {c: (KEYS[i] if i < len(KEYS) else None) for i, c in enumerate(classes)}
        self.store, self.model, self.reload, self.changes = store, model, reload, changes
        self.review = changes is not None
        self.scores: dict[str, Score] = {}
        self.skipped: set[str] = set()
        self._lock = threading.RLock()
        self._generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.review and model is None:
            raise UserError(
                "review mode needs --model RUN: the model points at likely label errors"
            )
        if model is not None:
            self._start_scoring()

    # ------------------------------------------------------------------ scoring

    def _start_scoring(self) -> None:
        self._generation += 1
        generation = self._generation
        # the clips still to label first: their order is what the page needs soonest
        todo = sorted(self.clips, key=lambda c: self._done(c))
        self._thread = threading.Thread(
            target=self._score_all,
            args=(todo, generation),
            name="vidclass-label-score",
            daemon=True,
        )
        self._thread.start()

    def _score_all(self, clips: list[Clip], generation: int) -> None:
        k = min(TOP, len(self.model.classes))
        for clip in clips:
            if self._stop.is_set() or generation != self._generation:
                return
            try:
                result = self.model.predict(clip.key, top_k=k)
                score = Score(result["label"], float(result["score"]), result["top_k"])
            except Exception as exc:  # noqa: BLE001 - one bad clip must not stop the rest
                log.warning("cannot score %s: %s", clip.name, exc)
                score = Score(None, 0.0, error=str(exc).replace(clip.key, clip.name))
            with self._lock:
                if generation == self._generation:
                    self.scores[clip.id] = score

    def rescore(self) -> dict:
        """Score every clip again (with the model reloaded from its run, if it can be)."""
        if self.model is None:
            raise SessionError(
                409, "no model to score with: start `vidclass label` with --model RUN"
            )
        with self._lock:
            if self.reload is not None:
                self.model = self.reload()
            self.scores = {}
            self._start_scoring()
            return self.state()

    def wait_scored(self, timeout: float = 60.0) -> None:
        """Block until the current scoring pass is over (for tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop scoring and release the CSV's lock (another session may open it then)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.store.close()

    # ------------------------------------------------------------------ the queue

    def _label(self, clip: Clip) -> str | None:
        return self.store.label_of(clip.key)

    def _done(self, clip: Clip) -> bool:
        if self.review:
            return clip.key in self.changes.reviewed
        return self._label(clip) is not None

    def order(self) -> list[Clip]:
        """The queue. Label mode: by name, or least confident first once scored (clips not
        scored yet follow). Review mode: the scored clips where the model disagrees with the
        label (or that were reviewed), most confident disagreement first."""
        with self._lock:
            if self.review:
                shown = [
                    c
                    for c in self.clips
                    if (s := self.scores.get(c.id)) is not None
                    and s.label is not None
                    and (s.label != self._label(c) or c.key in self.changes.reviewed)
                ]
                return sorted(shown, key=lambda c: -self.scores[c.id].score)
            if self.model is None:
                return list(self.clips)
            scored = [c for c in self.clips if c.id in self.scores]
            rest = [c for c in self.clips if c.id not in self.scores]
            return sorted(scored, key=lambda c: self.scores[c.id].score) + rest

    def next_id(self, order: list[Clip] | None = None) -> str | None:
        """The first clip of the queue not done and not skipped (skips wrap around)."""
        order = self.order() if order is None else order
        todo = [c for c in order if not self._done(c)]
        for c in todo:
            if c.id not in self.skipped:
                return c.id
        return todo[0].id if todo else None

    def state(self) -> dict:
        with self._lock:
            order = self.order()
            scored = len(self.scores)
            return {
                "mode": "review" if self.review else "label",
                "classes": [{"name": c, "key": self.keys[c]} for c in self.classes],
                "total": len(order),
                "done": sum(self._done(c) for c in order),
                "next": self.next_id(order),
                "order": [
                    {"id": c.id, "name": c.name, "label": self._label(c), "done": self._done(c)}
                    for c in order
                ],
                "scoring": {
                    "model": None if self.model is None else self.model.config.get("model"),
                    "scored": scored,
                    "clips": len(self.clips),
                    "running": self._thread is not None and self._thread.is_alive(),
                },
                "can_undo": self.store.can_undo,
                "csv": self.store.csv_path.name,
            }

    # ------------------------------------------------------------------ one clip

    def get(self, clip_id: str) -> Clip:
        clip = self.by_id.get(clip_id) if isinstance(clip_id, str) else None
        if clip is None:
            shown = clip_id if isinstance(clip_id, str) and len(clip_id) <= 40 else "..."
            raise SessionError(
                404,
                f"unknown clip id {shown!r}: ids come from GET /v1/state (the server names "
                "the clips; a request never names a file)",
            )
        return clip

    def clip(self, clip_id: str) -> dict:
        clip = self.get(clip_id)
        with self._lock:
            score = self.scores.get(clip.id)
            order = [c.id for c in self.order()]
            row = self.store.get(clip.key)
            suggestion = None
            if score is not None and score.label is not None:
                suggestion = {"label": score.label, "score": score.score, "top": score.top}
            return {
                "id": clip.id,
                "name": clip.name,
                "label": row.label if row else None,
                "done": self._done(clip),
                "suggestion": suggestion,
                "score_error": score.error if score else None,
                "position": order.index(clip.id) + 1 if clip.id in order else None,
                "video_url": f"/v1/clips/{clip.id}/video",
                "preview_url": f"/v1/clips/{clip.id}/preview",
            }

    def check_label(self, label: Any) -> str:
        if not isinstance(label, str) or label not in self.classes:
            shown = label if isinstance(label, str) and len(label) <= 60 else type(label).__name__
            raise SessionError(
                422, f"unknown class {shown!r}; choose one of: {', '.join(self.classes)}"
            )
        return label

    # ------------------------------------------------------------------ actions

    def label(self, clip_id: str, label: Any) -> dict:
        """Label (review: confirm or correct) one clip; written to the CSV before returning."""
        clip = self.get(clip_id)
        label = self.check_label(label)
        with self._lock:
            old = self._label(clip)
            self.store.set(clip.key, label)
            self.skipped.discard(clip.id)
            if self.changes is not None:
                score = self.scores.get(clip.id)
                self.changes.append(
                    self.store.csv_path_of(clip.key),
                    "confirm" if label == old else "correct",
                    old or "",
                    label,
                    (score.label or "") if score else "",
                    score.score if score else None,
                )
            return self.state()

    def skip(self, clip_id: str) -> dict:
        clip = self.get(clip_id)
        with self._lock:
            self.skipped.add(clip.id)
            return self.state()

    def undo(self) -> dict:
        """Revert the newest label of this session; the state names the clip as `undone`."""
        with self._lock:
            before = self.store.rows.copy()
            undone = self.store.undo()
            if undone is None:
                raise SessionError(409, "nothing to undo in this session")
            key, old = undone
            clip = next((c for c in self.clips if c.key == key), None)
            if self.changes is not None:
                was = before[key].label if key in before else ""
                self.changes.append(
                    self.store.csv_path_of(key), "undo", was, old.label if old else ""
                )
            if clip is not None:
                self.skipped.discard(clip.id)
            return {**self.state(), "undone": clip.id if clip else None}
