"""Video I/O, the bottom of the pipeline: probe a file, decode chosen frames, stream a video or
live source on a decoder thread (`reader`), and write H.264 (`writer`, the one encoder).

May import PyAV, OpenCV, numpy and `vidclass.errors`, nothing else of the package, and not
torch, so the decode workers of `prepare` and `synth` start light.
"""
