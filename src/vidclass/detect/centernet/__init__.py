"""The trainable CenterNet person detector: `model` (the net, and `CenterNetDetector`, a
trained folder as a `Detector`) and `train` (`train_detector`, training on rendered scenes).

Part of `vidclass.detect`: may import `detect.detectors` (box NMS), `synth` (the scenes it
trains on) and the shared utilities; never the action models or their training.
"""

from vidclass.detect.centernet.model import CenterNet, CenterNetDetector
from vidclass.detect.centernet.train import render_training_frames, train_detector

__all__ = ["CenterNet", "CenterNetDetector", "render_training_frames", "train_detector"]
