"""Per-video outputs (issue 21, point 6): one name per video, from its path under the scanned
folder, shared by the commands that write outputs and the evaluations that read them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidclass.errors import UserError
from vidclass.outputs import JsonTarget, Target, json_files, unique_names
from vidclass.predict.inputs import scan_inputs


def test_issue21_p6_names_mirror_sub_folders_and_keep_the_extension_only_where_shared(tmp_path):
    root = tmp_path / "videos"
    for rel in ("walk/p1.mp4", "run/p1.mp4", "a.mp4", "a.avi", "b.mkv"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    inputs = scan_inputs([str(root), str(tmp_path / "c.mp4"), "rtsp://camera/stream"])
    names = {Path(src).relative_to(tmp_path).as_posix(): n for src, n in inputs.names.items()}
    assert names == {
        "videos/walk/p1.mp4": "walk/p1",
        "videos/run/p1.mp4": "run/p1",
        "videos/a.mp4": "a.mp4",
        "videos/a.avi": "a.avi",
        "videos/b.mkv": "b",
        "c.mp4": "c",  # a file given as such: its stem
    }  # the live source writes no file, so it has no name
    assert len(inputs.videos) == 7
    # folders: sub-folders mirrored; a name shared by two scanned folders is refused
    target = Target("--plot", f"{tmp_path / 'plots'}/", ".png", inputs.names, many=True)
    assert target.path(str(root / "walk/p1.mp4")) == tmp_path / "plots/walk/p1.png"
    clash = unique_names([("cam1/p1.mp4", "cam1"), ("cam2/p1.mp4", "cam2")])
    with pytest.raises(UserError, match="cam1/p1.mp4 and cam2/p1.mp4 would both write"):
        JsonTarget(f"{tmp_path / 'preds'}/", clash, many=True)
    JsonTarget(str(tmp_path / "all.json"), clash, many=True)  # one list file: no clash


def test_issue21_p6_json_means_a_folder_with_a_slash_or_when_it_exists_else_one_file(tmp_path):
    names = {"v/x.mp4": "x", "v/y.mp4": "y"}
    (tmp_path / "there").mkdir()
    for value, folder in (
        (f"{tmp_path / 'new'}/", True),
        (str(tmp_path / "there"), True),
        (str(tmp_path / "new.json"), False),
        (str(tmp_path / "preds"), False),  # no slash, not there: a file, even without .json
    ):
        target = JsonTarget(value, names, many=True)
        for src in names:
            target.write(src, {"video": src})
        target.finish()
        out = Path(value)
        if folder:
            assert sorted(p.name for p in out.iterdir()) == ["x.json", "y.json"], value
            assert json.loads((out / "x.json").read_text()) == {"video": "v/x.mp4"}
        else:
            assert json.loads(out.read_text()) == [{"video": "v/x.mp4"}, {"video": "v/y.mp4"}]
    one = JsonTarget(str(tmp_path / "one.json"), {"v/x.mp4": "x"}, many=False)
    one.write("v/x.mp4", {"video": "v/x.mp4"})
    assert json.loads((tmp_path / "one.json").read_text()) == {"video": "v/x.mp4"}
    one.discard("v/x.mp4")  # the video failed on a later run: no stale file
    assert not (tmp_path / "one.json").exists()
    with pytest.raises(UserError, match=r"--annotate .*give a folder, --annotate .*out/"):
        Target("--annotate", str(tmp_path / "out"), ".mp4", names, many=True)


def test_issue21_p6_an_output_that_would_overwrite_an_input_video_is_refused(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"the user's video")
    for value in (str(tmp_path), str(video)):
        with pytest.raises(UserError, match="would overwrite the video"):
            Target("--annotate", value, ".mp4", {str(video): "clip"}, many=False)
    assert video.read_bytes() == b"the user's video"


def test_issue21_p6_json_files_are_keyed_by_their_path_without_json(tmp_path):
    for rel in ("a.json", "walk/p1.json", "walk/p1.mp4.json", ".hidden/x.json", "walk/.tmp.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    assert sorted(json_files(tmp_path)) == ["a", "walk/p1", "walk/p1.mp4"]
    assert sorted(json_files(tmp_path, exclude=tmp_path / "walk")) == ["a"]
