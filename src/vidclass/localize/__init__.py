"""Temporal localization: every action in a long video, with its start and end.

`windows` slides multi-scale windows of the clip model over the video and fuses their
scores into per-class curves; `proposals` groups the curves into scored segments (temporal
NMS); `localize` runs both, for one model or an ensemble.

May import `vidclass.predict` (the classifier, smoothing, options), and what it may import
(`models`, `video`, `data`, `evaluation`, `synth.labels`, `report` for the plot); never
`vidclass.detect` or training.
"""
