"""vidclass: video classification and human action recognition on a CPU laptop.

from vidclass import Classifier
clf = Classifier.load("runs/slow_fusion")
result = clf.predict("video.mp4")      # label, top_k, timeline, flicker_rate
for unit in clf.stream("/dev/video0"):  # timed predictions as they come
    print(unit["t_end"], unit["smoothed_label"])
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Classifier", "__version__"]


def __getattr__(name: str):
    # Lazy: `import vidclass` stays light (no torch) for the CLI's help and the data workers.
    if name == "Classifier":
        from vidclass.predict.classifier import Classifier

        return Classifier
    raise AttributeError(f"module 'vidclass' has no attribute {name!r}")
