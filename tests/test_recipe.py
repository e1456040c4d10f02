"""`vidclass train`'s recipe: what fills every flag the user leaves out, and that a flag given
always wins (train/recipe.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidclass.cli import app
from vidclass.errors import UserError
from vidclass.train.config import TrainConfig
from vidclass.train.recipe import (
    FROZEN_LITE0,
    REAL_EPOCHS_3D,
    REAL_EPOCHS_FEATURE_HEAD,
    apply_recipe,
    choose_recipe,
    config_for,
    describe,
)

runner = CliRunner()


def copy_data(data: Path, to: Path) -> Path:
    return Path(shutil.copytree(data, to, ignore=shutil.ignore_patterns("features", "flow")))


def with_classes(data: Path, to: Path, classes: list[str]) -> Path:
    """A copy of `data` whose prepared.json names other classes (what the recipe reads)."""
    out = copy_data(data, to)
    meta = json.loads((out / "prepared.json").read_text())
    meta["classes"] = classes
    (out / "prepared.json").write_text(json.dumps(meta))
    return out


def test_auto_picks_quick_for_the_synthetic_set_and_real_for_other_data(tiny_data, plain_data):
    quick = choose_recipe(tiny_data, "single_frame")
    assert quick.name == "quick" and quick.values == {}
    # The quick recipe is the TrainConfig defaults: nothing changes.
    cfg = apply_recipe(quick, TrainConfig(model="single_frame"), {"model"})
    assert cfg.options == {} and cfg.epochs == TrainConfig.epochs and not cfg.hflip
    assert cfg.recipe == "quick"

    real = choose_recipe(plain_data, "tsn")
    assert real.name == "real"
    cfg = apply_recipe(real, TrainConfig(model="tsn"), {"model"})
    assert cfg.options == {**FROZEN_LITE0, "grid": 3, "motion": True}  # chosen on inner folds
    assert cfg.epochs == REAL_EPOCHS_FEATURE_HEAD
    assert cfg.hflip and cfg.tta == "none" and cfg.refit and cfg.refit_epochs == "all"
    single = apply_recipe(
        choose_recipe(plain_data, "single_frame"), TrainConfig(model="single_frame"), {"model"}
    )
    assert single.options == FROZEN_LITE0  # the tsn options are tsn's only
    assert set(cfg.recipe_chose) >= {"epochs", "hflip", "refit", "options.freeze_backbone"}
    # A 3D method encodes its clips each epoch: the long schedule is not its default.
    assert (
        apply_recipe(
            choose_recipe(plain_data, "slowfast"), TrainConfig(model="slowfast"), {"model"}
        ).epochs
        == REAL_EPOCHS_3D
    )
    # By name, whatever the data.
    assert choose_recipe(tiny_data, "tsn", "real").name == "real"
    assert choose_recipe(plain_data, "tsn", "quick").name == "quick"


def test_every_flag_given_wins_over_the_recipe(plain_data):
    cfg, recipe = config_for(
        plain_data, "real", model="cnn_lstm", epochs=3, hflip=False, refit=None, options={}
    )
    assert recipe.name == "real"
    assert cfg.epochs == 3 and not cfg.hflip and cfg.refit
    assert "epochs" not in cfg.recipe_chose and "hflip" not in cfg.recipe_chose
    # --no-refit: no refit rule filled in beside it (train refuses --refit-epochs without it).
    cfg, _ = config_for(plain_data, "real", model="tsn", refit=False)
    assert not cfg.refit and cfg.refit_epochs == TrainConfig.refit_epochs
    assert "refit_epochs" not in cfg.recipe_chose
    # Another backbone: none of the recipe's model options, and the schedule of the default,
    # since the long one was measured on cached frozen features.
    cfg, _ = config_for(plain_data, "real", model="tsn", options={"backbone": "small"})
    assert cfg.options == {"backbone": "small"} and cfg.epochs == REAL_EPOCHS_3D
    # Fine-tuning the ImageNet weights: the recipe's backbone, not its freezing or schedule.
    cfg, _ = config_for(plain_data, "real", model="tsn", options={"freeze_backbone": False})
    assert cfg.options == {**FROZEN_LITE0, "grid": 3, "motion": True, "freeze_backbone": False}
    assert cfg.epochs == REAL_EPOCHS_3D
    # --no-hflip: a model never shown mirrors is not scored on them either.
    cfg, _ = config_for(plain_data, "real", model="tsn", hflip=False)
    assert not cfg.hflip and cfg.tta == "none"


def test_mirror_pair_classes_get_no_flips_and_the_line_says_why(plain_data, tmp_path):
    data = with_classes(plain_data, tmp_path / "d", ["turn_left", "turn_right", "bend"])
    recipe = choose_recipe(data, "tsn")
    cfg = apply_recipe(recipe, TrainConfig(model="tsn"), {"model"})
    assert recipe.name == "real" and not cfg.hflip
    assert "no mirrored clips (turn_left/turn_right)" in describe(recipe)


def test_the_line_names_the_prepare_flags_that_measured_better(plain_data):
    # plain_data: centre crop at 32 px, both away from what measured best.
    line = describe(choose_recipe(plain_data, "single_frame"))
    assert line.startswith("recipe real: ImageNet EfficientNet-Lite0")
    assert "--crop person (this data: center)" in line and "--size 224 (this data: 32)" in line
    # 8 frames spread over each clip (the API's default), not the measured 32 at 12.5 fps.
    assert "--frames 32 --fps 12.5 (this data: 8 spread over each clip)" in line


def test_unknown_recipe_or_model_is_refused_with_the_choices(plain_data):
    with pytest.raises(UserError, match="auto, real, quick"):
        choose_recipe(plain_data, "tsn", "best")
    with pytest.raises(UserError, match="vidclass models"):
        choose_recipe(plain_data, "resnet", "auto")


def test_train_cli_on_real_data_uses_the_recipe_and_records_it(plain_data, tmp_path):
    data = copy_data(plain_data, tmp_path / "d")
    run = tmp_path / "run"
    args = ["train", str(data), "--model", "tsn", "--epochs", "2", "--out", str(run)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "recipe real: ImageNet EfficientNet-Lite0, 2D weights frozen" in result.output
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["backbone"] == "efficientnet_lite0"
    assert config["options"]["freeze_backbone"] and config["options"]["pretrained"]
    train = config["train"]
    assert train["recipe"] == "real" and train["epochs"] == 2  # the flag given wins
    assert train["hflip"] and train["refit"] and train["refit_epochs"] == "all"
    # Trained with mirrored clips; no test-time flip (half predict's work, +0.5 points measured).
    assert config["tta"] == "none"
    assert config["selection"]["val_held_out"] is False


def test_train_cli_quiet_prints_no_recipe_line_and_quick_keeps_the_old_defaults(
    tiny_data, tmp_path
):
    data = copy_data(tiny_data, tmp_path / "d")
    run = tmp_path / "run"
    args = ["train", str(data), "--model", "single_frame", "--epochs", "1", "--out", str(run)]
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    assert "recipe" not in result.output
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["recipe"] == "quick" and config["options"]["backbone"] == "small"
    assert config["tta"] == "none" and not config["train"]["refit"]
