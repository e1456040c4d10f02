"""Classification inference: a trained run classifies a clip, a video or a live stream.

`classifier` (`Classifier`: load a run folder, turn frames into class probabilities; the one
object users hold), `stream` (windows over a video or live source as it decodes),
`summary` (a whole video's result: smoothed timeline, label, top k, flicker), `features`
(frames encoded once for overlapping windows), `smoothing` (the rolling average over time and
the flicker rate), `annotate` (the label drawn on the frames, the annotated copy),
`onnx` (export a run to ONNX and run it with onnxruntime) with `onnx_parts` (the
export-friendly model parts it swaps in), `inputs` (the files a command reads and the names
it writes), `threads` (decoder threads per core) and `options` (the typed knobs of predict,
localize and detect, kept away from torch).

May import `vidclass.models` (the run-folder format and the methods), `vidclass.video`,
`vidclass.data` (clip sampling and normalization), `vidclass.evaluation` and the shared
utilities; never training. `Classifier.localize` and `Classifier.detect` import the stages
above (`vidclass.localize`, `vidclass.detect`) lazily, inside the method: the two documented
exceptions in tests/test_layout.py.
"""
