"""Shared fixtures: small synthetic videos made in the test, and the real clips if present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
REALCLIPS = Path(os.environ.get("VIDCLASS_REALCLIPS", REPO.parent / "shared" / "realclips"))


def cli_killed_mid_write(npy_writes: int) -> str:
    """A `python -c` script: the vidclass CLI (arguments after the script) that SIGKILLs
    itself half-way through writing its `npy_writes`-th cached .npy: a real kill mid-file,
    placed by counting writes rather than by a timer that a fast machine outruns."""
    return f"""
import os, signal, sys
import vidclass.data.extract as extract
from vidclass.cli import main

real, writes = extract.write_bytes, 0
def write_bytes(path, write):
    global writes
    if path.suffix == ".npy":
        writes += 1
        if writes == {npy_writes}:
            def half(fh):
                fh.write(b"\\x93NUMPY half a file")
                fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, half)
    return real(path, write)
extract.write_bytes = write_bytes
sys.argv = ["vidclass", *sys.argv[1:]]
main()
"""


def moving_square_frames(n: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 (n, H, W, 3): a coloured square sliding right over a random background colour."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 255, size=3, dtype=np.uint8)
    fg = 255 - bg
    frames = np.empty((n, height, width, 3), np.uint8)
    frames[:] = bg
    for t in range(n):
        x = int((width - 12) * t / max(1, n - 1))
        frames[t, height // 2 - 6 : height // 2 + 6, x : x + 12] = fg
    return frames


@pytest.fixture
def make_video(tmp_path):
    """make_video(relpath, n_frames, fps=10, width=64, height=48, seed=0) → Path of an MP4."""
    from vidclass.video.writer import write_video

    def make(
        rel: str, n: int = 20, fps: int = 10, width: int = 64, height: int = 48, seed: int = 0
    ):
        path = tmp_path / rel
        write_video(path, moving_square_frames(n, width, height, seed), fps)
        return path

    return make


@pytest.fixture
def make_gif(tmp_path):
    """make_gif(relpath, n_frames, fps=10, width=64, height=48) → Path of an animated GIF."""
    from PIL import Image

    def make(rel: str, n: int = 20, fps: int = 10, width: int = 64, height: int = 48):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        images = [Image.fromarray(f) for f in moving_square_frames(n, width, height)]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
        return path

    return make


@pytest.fixture
def realclips() -> Path:
    if not REALCLIPS.is_dir():
        pytest.skip(f"real clips folder {REALCLIPS} is absent (set VIDCLASS_REALCLIPS)")
    return REALCLIPS


def write_h264(path: Path, fmt: str = "mp4", n: int = 60, fps: int = 10, seed: int = 0) -> Path:
    """An all-intra H.264 video of noisy frames; an MP4 gets its index first (`faststart`), so a
    cut-off copy still opens. The noise keeps every frame's data large next to the index, so
    cutting the file cuts frames, not the header."""
    import av

    from vidclass.video.writer import X264_OPTIONS

    frames = moving_square_frames(n, 64, 48, seed)
    noise = np.random.default_rng(seed).integers(-40, 40, frames.shape)
    frames = np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)
    options = {"movflags": "faststart"} if fmt == "mp4" else {}
    with av.open(str(path), "w", format=fmt, options=options) as c:
        stream = c.add_stream("libx264", rate=fps, options=dict(X264_OPTIONS))
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = 64, 48, "yuv420p", 1
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    return path


@pytest.fixture
def cut_video(tmp_path):
    """cut_video(fmt, keep) → (whole, cut): a 6 s, 10 fps video of `fmt` and a copy of its
    first `keep` share of bytes (as a partial download leaves it)."""

    def make(fmt: str = "mp4", keep: float = 0.5) -> tuple[Path, Path]:
        whole = write_h264(tmp_path / f"whole.{fmt}", fmt)
        data = whole.read_bytes()
        cut = tmp_path / f"cut.{fmt}"
        cut.write_bytes(data[: int(len(data) * keep)])
        return whole, cut

    return make


@pytest.fixture
def truncated_video(cut_video) -> Path:
    """A 6 s MP4 cut in half: it opens (6 s in its header), about 3 s of frames decode, then
    FFmpeg fails on the cut frame (checked here, so tests see a real decode error)."""
    import av

    _, cut = cut_video("mp4", 0.5)
    decoded = 0
    with av.open(str(cut)) as c, pytest.raises(av.error.FFmpegError):
        for _ in c.decode(video=0):
            decoded += 1
    assert 10 <= decoded <= 50, decoded
    return cut


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """36 synthetic clips (the 12 actions x 3 scenes), 8 frames of 32 px: one scene each for
    train, val and test; 12 training clips, an even number, so two DDP processes need no
    padding clip to match one process. Shared by the tests of a session: copy it before
    writing into it (derived caches)."""
    from vidclass.data.prepare import prepare
    from vidclass.synth.clips import generate

    root = tmp_path_factory.mktemp("tiny")
    generate(
        root / "videos",
        per_class=3,
        size=(64, 48),
        fps=8,
        seed=1,
        workers=2,
        quiet=True,
        background=False,
    )
    prepare(
        root / "videos",
        root / "prepared",
        frames=8,
        size=32,
        test_fraction=1 / 3,
        val_fraction=1 / 3,
        quiet=True,
        workers=2,
    )
    return root / "prepared"


@pytest.fixture(scope="session")
def plain_data(tmp_path_factory) -> Path:
    """12 clips of 3 classes whose names say no direction (so flips are allowed): 6 train,
    3 val, 3 test. Shared by the tests of a session: copy it before writing into it."""
    from vidclass.data.prepare import prepare
    from vidclass.video.writer import write_video

    root = tmp_path_factory.mktemp("plain")
    for c, name in enumerate(("bend", "jack", "wave")):
        for g in range(4):
            frames = moving_square_frames(12, seed=10 * c + g)
            if c == 1:
                frames = frames[::-1]  # the square slides back
            if c == 2:
                frames = np.ascontiguousarray(frames.transpose(0, 2, 1, 3))[:, :48, :64]
            write_video(root / "src" / name / f"v_{name}_g{g:02d}_c01.mp4", frames, 8)
    prepare(
        root / "src",
        root / "prepared",
        frames=8,
        size=32,
        test_fraction=1 / 4,
        val_fraction=1 / 4,
        quiet=True,
        workers=1,
    )
    return root / "prepared"
