"""`Classifier`: a trained run applied to videos of any length and to live streams.

The one object a user holds: it loads a run (`Classifier.load`) and turns frames into class
probabilities (`windows_probs`, `frame_probs`, `shared_window_probs`). Each task that uses
those lives in its stage: `stream` and `predict` in `vidclass.predict.stream` and
`vidclass.predict.summary`, `localize` in `vidclass.localize`, `detect` in `vidclass.detect`.
Frame-based models encode each sampled frame once and run only their head per window
(`vidclass.predict.features`), with the same predictions as encoding every window whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from vidclass.data.crop import run_crop
from vidclass.data.dataset import normalize_clip
from vidclass.data.sampling import pad_clip
from vidclass.data.views import flip_item, resolve_tta
from vidclass.errors import UserError
from vidclass.predict import features as frame_features
from vidclass.predict import stream as streaming
from vidclass.predict.options import DetectOptions, PredictOptions
from vidclass.predict.summary import predict_video

BACKENDS = ("torch", "onnx", "onnx-int8")  # onnx-int8: onnx with the int8 frame encoder


class Classifier:
    """A trained model with its preprocessing. `Classifier.load(run)` is the way in."""

    def __init__(
        self,
        model,
        config: dict,
        backend: str = "torch",
        head=None,
        encoder: frame_features.Encoder | None = None,
        tta: str = "auto",
    ) -> None:
        """`head`: the torch model whose `forward_features` scores cached frame features
        (default: `model` itself with the torch backend); `encoder`: what encodes the frames
        (default: the head's encoder in channels_last; `load` passes onnxruntime's); `tta`:
        `flip` averages each window with its mirror image, `none` not, `auto` as trained."""
        self.model, self.config, self.backend = model, config, backend
        self.flip = resolve_tta(config, tta)
        self.classes: list[str] = list(config["classes"])
        self.frames = int(config["frames"])
        self.size = int(config["size"])
        self.crop = run_crop(config)  # how prepare cropped the training clips
        self.sample_fps = float(config.get("sample_fps") or 8.0)
        self.needs_flow = bool(config.get("needs_flow"))
        self.needs_keypoints = bool(config.get("needs_keypoints"))  # the pose method
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
    def load(cls, run: str | os.PathLike, backend: str = "torch", tta: str = "auto") -> Classifier:
        """Load a run folder (`tta`: see `__init__`); `backend="onnx"` exports `RUN/model.onnx`
        once (again when the weights or config change) and uses it; `"onnx-int8"` also runs a
        frame model's encoder in int8 (`vidclass.predict.quantize`)."""
        from vidclass.models.run import load_model, read_config

        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend in ("onnx", "onnx-int8"):
            from vidclass.predict.onnx import OnnxModel, export_onnx, reuse_or_export, run_digest

            config = read_config(run)
            # Exports are reused only while made from these weights and config (their digest
            # is in the file), never by modification time, which `cp -p` and `rsync -a` keep.
            digest = run_digest(run)
            path = reuse_or_export(
                Path(run) / "model.onnx",
                digest,
                lambda out: export_onnx(run, out, dynamic_batch=True),
            )
            head, encoder = frame_features.onnx_frame_encoder(
                run, config, digest, int8=backend == "onnx-int8"
            )
            return cls(OnnxModel(path), config, backend, head=head, encoder=encoder, tta=tta)
        model, config = load_model(run)
        return cls(model, config, backend, tta=tta)

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
        if self.needs_keypoints:  # as `prepare --pose` computed them for the training clips
            from vidclass.data.keypoints import clip_keypoints
            from vidclass.data.pose import NUM_KEYPOINTS

            kp = np.zeros((self.frames, NUM_KEYPOINTS, 3), np.float32)
            kp[: len(clip)] = clip_keypoints(clip[: self.frames])
            batch["keypoints"] = kp[None]
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
        if self.flip:  # the mean of the windows' and their mirror images' probabilities
            return (self._batch_probs(batch) + self._batch_probs(flip_item(batch))) / 2
        return self._batch_probs(batch)

    def _batch_probs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """`(B, K)` probabilities of a batch built by `_batch`."""
        if self.backend != "torch":  # onnxruntime
            logits = np.asarray(self.model(batch))
            e = np.exp(logits - logits.max(1, keepdims=True))
            return (e / e.sum(1, keepdims=True)).astype(np.float32)
        with torch.inference_mode(), frame_features.flush_denormal():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            return torch.softmax(self.model(tensors), dim=1).float().numpy()

    def frame_probs(self, samples: list[np.ndarray]) -> np.ndarray:
        """Per-frame probabilities `(n, K)` of a single-frame model (with test-time flip, the
        mean of each frame's and its mirror image's).

        With shared features (the default) the encoder and the classifier run on the frames
        directly. Otherwise with ONNX, where the graph only gives clip logits, each frame is a
        clip of one real frame: its clip output is then that frame's own prediction.
        """
        if not self.reuse_features and self.backend != "torch":
            return self.windows_probs([[s] for s in samples])  # flipped there
        probs = self._frame_probs(samples)
        if self.flip:
            probs = (probs + self._frame_probs([s[:, ::-1] for s in samples])) / 2
        return probs

    def _frame_probs(self, samples: list[np.ndarray]) -> np.ndarray:
        if self.reuse_features:
            with torch.inference_mode(), frame_features.flush_denormal():
                features = frame_features.encode_frames(self.encoder, self.config, samples)
                logits = self.head.frame_logits_from_features(features[None])[0]
                return torch.softmax(logits, dim=-1).float().numpy()
        batch = self._batch(samples)
        with torch.inference_mode(), frame_features.flush_denormal():
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
        kept in `ring` (and `flows`) for the frames it shares with the windows before it;
        with test-time flip, averaged with the mirrored window's (`ring.mirror`)."""
        flow = None
        if flows is not None:
            flow = flows.window(indices, samples, self.frames)
        with torch.inference_mode(), frame_features.flush_denormal():
            return frame_features.window_probs(self.head, ring, indices, samples, self.frames, flow)

    # ------------------------------------------------------------------ tasks

    def stream(
        self,
        source: str | os.PathLike,
        window: int | None = PredictOptions.window,
        stride: int | None = PredictOptions.stride,
        smooth: int = PredictOptions.smooth,
    ) -> Iterator[dict]:
        """Timed predictions as they come: one dict per window (per frame for single_frame);
        see `vidclass.predict.stream`."""
        return streaming.stream(self, source, window, stride, smooth)

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
        end of the last window over the duration), e.g. for a server's job status. See
        `vidclass.predict.summary`.
        """
        if top_k < 1 or smooth < 1:
            raise UserError(f"--top-k {top_k}, --smooth {smooth}: both must be at least 1")
        window, stride = streaming.window_stride(self.frames, window, stride)
        options = PredictOptions(window=window, stride=stride, smooth=smooth, top_k=top_k)
        return predict_video(self, video, options, annotate, plot, progress)

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
