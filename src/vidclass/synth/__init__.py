"""The embedded datasets, rendered procedurally: `labels` (CLASSES, PAIRS, BACKGROUND, defined
once), `scene` (backgrounds, actor looks, the seeded RNG), `actions` (the motions), `clips`
(the default dataset, `vidclass synth`), `long` (several actions per video, with segment
truth) and `multi` (multi-actor scenes with per-frame boxes, and the tube clips cut from them).

May import `vidclass.video` (the writer, the tube crop), `vidclass.data` (the UCF101 file
naming it writes for `prepare`) and the shared utilities (`errors`, `progress`, `parallel`);
never models, training or inference, and not torch. `labels` imports nothing, so any stage may
read the class names.
"""
