"""Evaluation: the numbers that score predictions against ground truth, in plain numpy.

`ap` holds the one average precision, box IoU and temporal IoU; `classification`
(top-k, confusion, pair accuracy), `localization` (temporal mAP) and `detection` (frame-mAP,
CLEAR-MOT, IDF1) build on it. May import numpy, scipy, `vidclass.errors` and the label names
of `vidclass.synth.labels`, nothing else of the package, and never torch: every stage may use
it. Evaluating a trained run (which loads a model) is `vidclass.train.evaluate`.
"""
