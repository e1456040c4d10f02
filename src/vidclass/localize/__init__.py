"""Temporal localization: every action in a long video, with its start and end.

`localize` slides multi-scale windows of the clip model over the video, turns their scores
into per-class curves, and groups them into scored, non-overlapping segments.

May import `vidclass.predict` (the classifier, smoothing, options), and what it may import
(`models`, `video`, `data`, `evaluation`, `synth.labels`, `report` for the plot); never
`vidclass.detect` or training.
"""
