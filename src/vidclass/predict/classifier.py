"""`Classifier`: a trained run applied to videos of any length and to live streams.

Frames are sampled at the rate the model was trained at (so a window spans the same time as
a training clip), windows of T frames slide by a stride, and each window's probabilities
feed the timeline and the rolling average. Per frame nothing but the current window is kept,
so memory does not grow with the video. `single_frame` is scored per frame, as it is trained.
Frame-based models encode each sampled frame once and run only their head per window
(`vidclass.predict.features`), with the same predictions as encoding every window whole.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidclass.data.crop import FIT, crop_window, per_window, run_crop
from vidclass.data.dataset import normalize_clip
from vidclass.data.sampling import pad_clip
from vidclass.errors import UserError
from vidclass.predict import features as frame_features
from vidclass.predict.options import DetectOptions, PredictOptions
from vidclass.predict.smoothing import RollingAverage, flicker_rate, rolling_average
from vidclass.predict.threads import decoder_core
from vidclass.video.reader import iter_frames

BACKENDS = ("torch", "onnx")


def _flushes_denormals() -> bool:
    """Whether this thread treats denormal floats as zero (torch only reports support)."""
    return float((torch.tensor([1e-40]) * 1.0).item()) == 0.0


def _require_windows(video, timeline: list[dict]) -> None:
    """A summary needs at least one scored window; say so rather than crash on an empty mean."""
    if not timeline:
        raise UserError(
            f"{video}: no window could be scored (no frame was sampled); "
            "check that the video plays and is not empty"
        )


@contextlib.contextmanager
def _flush_denormal() -> Iterator[None]:
    """Denormals as zero during a model call, then the caller's setting back.

    Tiny activations (e.g. BatchNorm of near-constant inputs) turn into denormal floats, which
    are many times slower on x86; treating them as zero changes no prediction. The setting is
    process state, so it must not outlive the call (other code may need the denormals).
    """
    was_on = _flushes_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


@dataclass
class _State:
    """What is shown at the current moment of the stream."""

    label: str | None = None
    score: float = 0.0
    top: list[tuple[str, float]] = field(default_factory=list)


class Classifier:
    """A trained model with its preprocessing. `Classifier.load(run)` is the way in."""

    def __init__(
        self,
        model,
        config: dict,
        backend: str = "torch",
        head=None,
        encoder: frame_features.Encoder | None = None,
    ) -> None:
        """`head`: the torch model whose `forward_features` scores cached frame features
        (default: `model` itself with the torch backend); `encoder`: what encodes the frames
        (default: the head's encoder in channels_last; `load` passes onnxruntime's)."""
        self.model, self.config, self.backend = model, config, backend
        self.classes: list[str] = list(config["classes"])
        self.frames = int(config["frames"])
        self.size = int(config["size"])
        self.crop = run_crop(config)  # how prepare cropped the training clips
        self.sample_fps = float(config.get("sample_fps") or 8.0)
        self.needs_flow = bool(config.get("needs_flow"))
        self.flow_method = str(config.get("flow_method", "farneback"))
        # single_frame is scored per frame whatever the backend (ONNX: one frame per clip)
        self.per_frame = config["model"] == "single_frame"
        head = model if head is None and backend == "torch" else head
        # Windows share frame features when the model allows it (see `reuse_reason`);
        # False scores every window whole, as before (tests compare the two).
        self.reuse_features = head is not None and frame_features.reuse_reason(head, config) is None
        self.head = head if self.reuse_features else None
        self.encoder = encoder
        if self.reuse_features and encoder is None:
            self.encoder = frame_features.torch_encoder(head)

    @classmethod
    def load(cls, run: str | os.PathLike, backend: str = "torch") -> Classifier:
        """Load a run folder; `backend="onnx"` exports `RUN/model.onnx` once and uses it."""
        from vidclass.models.run import load_model, read_config

        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "onnx":
            from vidclass.predict.onnx import OnnxModel, export_onnx

            config = read_config(run)
            path = Path(run) / "model.onnx"
            weights = Path(run) / "model.safetensors"
            if frame_features.stale(path, weights):
                export_onnx(run, path, dynamic_batch=True)
            head, encoder = frame_features.onnx_frame_encoder(run, config)
            return cls(OnnxModel(path), config, backend, head=head, encoder=encoder)
        model, config = load_model(run)
        return cls(model, config, backend)

    # ------------------------------------------------------------------ model calls

    def _batch(
        self, samples: list[np.ndarray], flow: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """One window as a batch of one; `flow` `(2, n-1, H, W)` if already computed."""
        clip = np.stack(samples)
        x = normalize_clip(clip, self.config["normalize"], self.config["mean"], self.config["std"])
        x, mask = pad_clip(x, self.frames, self.config.get("pad", "zeros"))
        batch = {"video": x.transpose(3, 0, 1, 2)[None].copy(), "mask": mask[None]}
        if self.needs_flow:
            from vidclass.data.flow import compute_flow

            padded = np.zeros((2, self.frames - 1, self.size, self.size), np.float32)
            if flow is None and len(clip) > 1:
                flow = compute_flow(clip[: self.frames], method=self.flow_method)
            if flow is not None:
                padded[:, : flow.shape[1]] = flow[:, : self.frames - 1]
            batch["flow"] = padded[None]
        return batch

    def window_probs(self, samples: list[np.ndarray]) -> np.ndarray:
        """Class probabilities `(K,)` of one window of uint8 frames `(H, W, 3)`."""
        return self.windows_probs([samples])[0]

    def windows_probs(
        self, windows: list[list[np.ndarray]], flows: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """Class probabilities `(B, K)` of B windows, run as one batch (`flows`: each
        window's optical flow when the caller computed it, for two_stream)."""
        flows = flows if flows is not None else [None] * len(windows)
        parts = [self._batch(w, f) for w, f in zip(windows, flows, strict=True)]
        batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if self.backend == "onnx":
            logits = np.asarray(self.model(batch))
            e = np.exp(logits - logits.max(1, keepdims=True))
            return (e / e.sum(1, keepdims=True)).astype(np.float32)
        with torch.inference_mode(), _flush_denormal():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            return torch.softmax(self.model(tensors), dim=1).float().numpy()

    def frame_probs(self, samples: list[np.ndarray]) -> np.ndarray:
        """Per-frame probabilities `(n, K)` of a single-frame model.

        With shared features (the default) the encoder and the classifier run on the frames
        directly. Otherwise with ONNX, where the graph only gives clip logits, each frame is a
        clip of one real frame: its clip output is then that frame's own prediction.
        """
        if self.reuse_features:
            with torch.inference_mode(), _flush_denormal():
                features = frame_features.encode_frames(self.encoder, self.config, samples)
                logits = self.head.frame_logits_from_features(features[None])[0]
                return torch.softmax(logits, dim=-1).float().numpy()
        if self.backend == "onnx":
            return self.windows_probs([[s] for s in samples])
        batch = self._batch(samples)
        with torch.inference_mode(), _flush_denormal():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            logits = self.model.frame_logits(tensors)[0, : len(samples)]
            return torch.softmax(logits, dim=-1).float().numpy()

    def shared_window_probs(
        self,
        ring: frame_features.FeatureRing,
        flows: frame_features.FlowCache | None,
        indices: list[int],
        samples: list[np.ndarray],
    ) -> np.ndarray:
        """`window_probs` of the window of sample `indices`, from features (and optical flow)
        kept in `ring` (and `flows`) for the frames it shares with the windows before it."""
        flow = None
        if flows is not None:
            flow = flows.window(indices, samples, self.frames)
        with torch.inference_mode(), _flush_denormal():
            logits = frame_features.window_logits(
                self.head, ring, indices, samples, self.frames, flow
            )
            return torch.softmax(logits, dim=1)[0].float().numpy()

    # ------------------------------------------------------------------ streaming

    def _events(
        self, source, window: int | None, stride: int | None, smooth: int, keep_frames: bool
    ) -> Iterator[tuple[str, object, object]]:
        """("frame", StreamFrame, _State) for every decoded frame and ("unit", entry, None)
        for every scored window (or frame, for single_frame), in stream order."""
        window, stride = self._window_stride(window, stride)
        if smooth < 1:
            raise UserError(f"--smooth must be at least 1 (windows averaged), got {smooth}")
        avg = RollingAverage(smooth)
        state = _State()
        info, frames = iter_frames(
            source, self.size, self.sample_fps, keep_frames=keep_frames, fit=FIT[self.crop]
        )
        with decoder_core():
            yield from self._windows(info, frames, avg, state, window, stride)

    def _window_stride(self, window: int | None, stride: int | None) -> tuple[int, int]:
        """(window, stride) with their defaults; 0 or less is refused, not read as unset."""
        window = self.frames if window is None else window
        if not 1 <= window <= self.frames:
            raise UserError(
                f"--window {window}: must be between 1 and the model's {self.frames} frames"
            )
        if stride is None:
            stride = max(1, window // 2)
        if stride < 1:
            raise UserError(f"--stride {stride}: must be at least 1 (frames between windows)")
        return window, stride

    def _windows(self, info, frames, avg, state, window: int, stride: int):
        """The body of `_events`: windows over the sampled frames as they arrive."""
        yield "info", info, None
        buf: deque[tuple[int, float, np.ndarray]] = deque(maxlen=window)  # (index, t, frame)
        since, emitted, count = 0, False, 0
        ring = flows = None
        if self.reuse_features and not self.per_frame:
            ring = frame_features.FeatureRing(self.encoder, self.config, keep=window)
            if self.needs_flow:
                flows = frame_features.FlowCache(self.flow_method, not per_window(self.crop))

        def score(items: list[tuple[int, float, np.ndarray]]):
            samples = crop_window([s for *_, s in items], self.config)
            if self.per_frame:
                probs = self.frame_probs(samples)
                dt = 1.0 / self.sample_fps
                return [(t, t + dt, p) for (_, t, _), p in zip(items, probs, strict=True)]
            if ring is not None:
                indices = [i for i, *_ in items]
                probs = self.shared_window_probs(ring, flows, indices, samples)
            else:
                probs = self.window_probs(samples)
            return [(items[0][1], items[-1][1] + 1.0 / self.sample_fps, probs)]

        def units(items):
            for t0, t1, p in score(items):
                sp = avg.update(p)
                k = int(np.argmax(sp))
                order = np.argsort(-sp)[:3]
                state.label, state.score = self.classes[k], float(sp[k])
                state.top = [(self.classes[j], float(sp[j])) for j in order]
                yield (
                    "unit",
                    {
                        "t_start": round(t0, 4),
                        "t_end": round(t1, 4),
                        "probs": [round(float(v), 6) for v in p],
                        "label": self.classes[int(np.argmax(p))],
                        "score": float(np.max(p)),
                        "smoothed_label": self.classes[k],
                        "smoothed_score": float(sp[k]),
                    },
                    None,
                )

        chunk = window if self.per_frame else None
        for f in frames:
            if f.sample is not None:
                buf.append((count, f.t, f.sample))
                since, count = since + 1, count + 1
                full = len(buf) == window
                if full and (since >= (chunk or stride) or not emitted):
                    yield from units(list(buf) if not chunk else list(buf)[-since:])
                    since, emitted = 0, True
            yield "frame", f, state
        if buf and (since > 0 or not emitted):
            yield from units(list(buf)[-since:] if chunk and emitted else list(buf))

    def stream(
        self,
        source: str | os.PathLike,
        window: int | None = PredictOptions.window,
        stride: int | None = PredictOptions.stride,
        smooth: int = PredictOptions.smooth,
    ) -> Iterator[dict]:
        """Timed predictions as they come: one dict per window (per frame for single_frame)."""
        for kind, item, _ in self._events(source, window, stride, smooth, keep_frames=False):
            if kind == "unit":
                yield item  # type: ignore[misc]

    def predict(
        self,
        video: str | os.PathLike,
        window: int | None = PredictOptions.window,
        stride: int | None = PredictOptions.stride,
        smooth: int = PredictOptions.smooth,
        top_k: int = PredictOptions.top_k,
        annotate: str | os.PathLike | None = None,
        plot: str | os.PathLike | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> dict:
        """Whole-video label, top-k, timeline (raw and smoothed) and flicker rates.

        A file is known whole, so the timeline is smoothed with the rolling average centred
        on each window (no lag); `stream` shows the causal average of the last N instead.
        The annotated copy is drawn in a second decoding pass from the smoothed timeline.
        `progress`, if given, is called with the fraction of the video scored so far (the
        end of the last window over the duration), e.g. for a server's job status.
        """
        if top_k < 1 or smooth < 1:
            raise UserError(f"--top-k {top_k}, --smooth {smooth}: both must be at least 1")
        timeline: list[dict] = []
        info, last_t = None, 0.0
        for kind, item, _ in self._events(video, window, stride, 1, keep_frames=False):
            if kind == "info":
                info = item
            elif kind == "unit":
                timeline.append(item)  # type: ignore[arg-type]
                if progress is not None and info is not None and info.duration_s:
                    progress(min(1.0, item["t_end"] / info.duration_s))  # type: ignore[index]
            else:
                last_t = item.t  # type: ignore[union-attr]
        _require_windows(video, timeline)
        probs = np.array([u["probs"] for u in timeline], np.float32)
        smoothed = rolling_average(probs, smooth, centred=True)
        for unit, sp in zip(timeline, smoothed, strict=True):
            k = int(np.argmax(sp))
            unit["smoothed_label"], unit["smoothed_score"] = self.classes[k], float(sp[k])
        if annotate is not None:
            self._annotate(video, timeline, smoothed, annotate)
        return self._summary(
            video, info, timeline, last_t, window, stride, smooth, top_k, annotate, plot, smoothed
        )

    def localize(
        self,
        video: str | os.PathLike,
        spans: tuple[float, ...] | list[float] | None = None,
        stride: int | None = None,
        min_score: float | None = None,
        nms_iou: float | None = None,
        plot: str | os.PathLike | None = None,
        truth: list[dict] | None = None,
        progress=None,
        ensemble: list[Classifier] | None = None,
        nms: str | None = None,
    ) -> dict:
        """Every action in a long video as segments `{label, t_start, t_end, score}`; see
        `vidclass.localize.localize` for the method. Unset knobs keep `LocalizeOptions`'
        defaults; `nms` is `soft` (the default) or `hard`, `nms_iou` the IoU above which it
        acts (hard: drops [0.4]; soft: decays [every overlap]); `truth` segments only
        appear on the `plot`; `ensemble` averages more models' curves with this one's."""
        from vidclass.localize.localize import localize
        from vidclass.predict.options import localize_options

        options = localize_options(spans, stride, min_score, nms_iou, nms)
        return localize(
            self, video, options, plot=plot, truth=truth, progress=progress, ensemble=ensemble or ()
        )

    def _annotate(self, video, timeline: list[dict], smoothed: np.ndarray, out) -> None:
        """Second pass: every frame of the video with the smoothed label of its moment."""
        from vidclass.predict.annotate import draw_label
        from vidclass.video.writer import VideoWriter

        centres = np.array([(u["t_start"] + u["t_end"]) / 2 for u in timeline])
        info, frames = iter_frames(
            video, self.size, self.sample_fps, keep_frames=True, sample=False
        )
        writer = VideoWriter(out, info.fps, info.width, info.height)
        try:
            for f in frames:
                i = int(np.argmin(np.abs(centres - f.t))) if len(centres) else -1
                # Before the first window ends nothing is known yet: no label on those frames.
                if i < 0 or f.t < timeline[0]["t_start"]:
                    draw_label(f.image, None, 0.0, [])
                else:
                    sp = smoothed[i]
                    top = [(self.classes[j], float(sp[j])) for j in np.argsort(-sp)[:3]]
                    draw_label(f.image, top[0][0], top[0][1], top)
                writer.write(f.image)
        except BaseException:
            writer.abort()
            raise
        writer.close()

    def _summary(
        self,
        video,
        info,
        timeline,
        last_t,
        window,
        stride,
        smooth,
        top_k,
        annotate,
        plot,
        smoothed,
    ) -> dict:
        _require_windows(video, timeline)
        window, stride = self._window_stride(window, stride)
        probs = np.array([u["probs"] for u in timeline], np.float32)
        mean = probs.mean(0)
        order = np.argsort(-mean)[: max(1, top_k)]
        fps = info.fps if info is not None and info.fps > 0 else self.sample_fps
        decoded = info.decoded_duration_s if info is not None else None
        decoded = decoded or last_t + 1.0 / fps
        duration = info.duration_s if info is not None and info.duration_s else decoded
        result = {
            "video": str(video),
            "model": self.config["model"],
            "backend": self.backend,
            "classes": self.classes,
            "label": self.classes[int(order[0])],
            "score": float(mean[order[0]]),
            "top_k": [{"label": self.classes[int(i)], "score": float(mean[i])} for i in order],
            "duration_s": round(float(duration), 3),
            "decoded_duration_s": round(float(decoded), 3),
            "truncated": bool(info is not None and info.truncated),
            "truncated_reason": info.truncated_reason if info is not None else None,
            "sample_fps": self.sample_fps,
            "window": window,
            "stride": window if self.per_frame else stride,
            "smooth": smooth,
            "smoothing": "centred rolling average over `smooth` units",
            "unit": "frame" if self.per_frame else "window",
            "flicker_rate": {  # per minute of what was scored
                "raw": flicker_rate([u["label"] for u in timeline], decoded),
                "smoothed": flicker_rate([u["smoothed_label"] for u in timeline], decoded),
            },
            "timeline": timeline,
            "annotated": str(annotate) if annotate else None,
            "plot": str(plot) if plot else None,
        }
        if self.per_frame:
            votes = Counter(u["label"] for u in timeline)
            result["majority_label"] = max(votes, key=lambda c: (votes[c], -self.classes.index(c)))
        if plot:
            from vidclass.report.plots import plot_timeline

            times = [(u["t_start"] + u["t_end"]) / 2 for u in timeline]
            plot_timeline(times, probs, self.classes, plot, smoothed=smoothed)
        return result

    # ------------------------------------------------------------------ detection

    def detect(
        self,
        video: str | os.PathLike,
        detector: str = DetectOptions.detector,
        stride: int | None = DetectOptions.stride,
        smooth: int = DetectOptions.smooth,
        min_track_s: float = DetectOptions.min_track_s,
        annotate: str | os.PathLike | None = None,
    ) -> dict:
        """Every person of `video` detected, tracked and labelled over time: see
        `vidclass.detect.detect.detect` for the options (more there) and the result."""
        from vidclass.detect.detect import detect

        return detect(
            self,
            video,
            detector=detector,
            stride=stride,
            smooth=smooth,
            min_track_s=min_track_s,
            annotate=annotate,
        )
