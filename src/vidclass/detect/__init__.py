"""Spatio-temporal detection: every person found, tracked, and what each is doing when.

`detectors` (the person detectors: motion, CenterNet, and box NMS), `centernet` (the
trainable CenterNet person detector: `model`, and `train` on rendered scenes), `config` (the
defaults of that training, light enough for the CLI to read), `tracking` (the IoU tracker)
and `detect` (one decoding pass: detect, track, classify the tracks' tubes in batches).

The top of the inference stages: may import `vidclass.localize` (segments from the window
probabilities), `vidclass.predict` and what they may import (`models`, `video`, `data`,
`evaluation`, `synth`); never training.
"""
