"""``glassnet train``'s recipe flags: recorded in run.json and used by the run."""

from __future__ import annotations

import json

import pytest

from glassnet.cli import main
from glassnet.cli.train import RECIPES

RECIPE_FLAGS = [
    "--optimizer", "sgd", "--lr", "0.1", "--nesterov", "--weight-decay", "1e-3",
    "--no-decay-norm-bias", "--schedule", "triangular", "--label-smoothing", "0.1",
    "--augment", "flip-translate", "--tta", "flip-translate", "--ema", "0.9",
]  # fmt: skip


def train(out, *flags):
    argv = ["train", "--out", str(out), "--no-progress", "--no-plots", *flags]
    return main(argv)


def test_recipe_flags_are_recorded_used_and_kept_on_resume(tmp_path, capsys):
    straight = tmp_path / "straight"
    assert train(straight, "--epochs", "3", *RECIPE_FLAGS) == 0
    settings = json.loads((straight / "run.json").read_text())
    assert {k: settings[k] for k in ("optimizer", "nesterov", "decay_norm_bias", "schedule",
                                     "label_smoothing", "augment", "tta", "ema")} == {
        "optimizer": "sgd", "nesterov": True, "decay_norm_bias": False,
        "schedule": "triangular", "label_smoothing": 0.1, "augment": "flip-translate",
        "tta": "flip-translate", "ema": 0.9,
    }  # fmt: skip
    history = json.loads((straight / "history.json").read_text())
    # one triangle over the 3 epochs of 41 steps (1,294 images, batch 32): up for 24.6
    # steps, then down; epoch 1 ends at step 40, 15.4 of the 98.4 steps down
    assert history["lr"][0] == pytest.approx(0.1 * (1 - 15.4 / 98.4))
    assert history["lr"][-1] == pytest.approx(0.1 * (1 - 97.4 / 98.4))
    assert json.loads((straight / "metrics.json").read_text())["test_accuracy"] > 0.3


def test_a_run_file_from_before_the_recipe_flags_resumes_with_their_defaults(tmp_path):
    from glassnet.cli.train import LATER, SETTINGS, _read_run_file

    old = {key: None for key in SETTINGS if key not in LATER}
    (tmp_path / "run.json").write_text(json.dumps(old))
    assert _read_run_file(tmp_path / "run.json") == {**old, **LATER}


def test_bad_recipe_values_are_refused_while_parsing(tmp_path, capsys):
    for flags, message in (
        (["--label-smoothing", "1"], "must be in [0, 1), got 1"),
        (["--ema", "-0.1"], "must be in [0, 1), got -0.1"),
        (["--augment", "rotate"], "invalid choice: 'rotate'"),
        (["--tta", "mirror"], "invalid choice: 'mirror'"),
    ):
        with pytest.raises(SystemExit):
            train(tmp_path / "x", *flags)
        assert message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_tta_alone_means_flips_and_sync_batchnorm_is_recorded_for_resume(tmp_path):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1", "--tta", "--sync-batchnorm") == 0
    settings = json.loads((out / "run.json").read_text())
    assert (settings["tta"], settings["sync_batchnorm"]) == ("flip", True)
    assert train(tmp_path / "plain", "--epochs", "1") == 0
    plain = json.loads((tmp_path / "plain" / "run.json").read_text())
    assert (plain["tta"], plain["sync_batchnorm"]) == (False, False)


def test_flip_translate_on_masks_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "seg"
    flags = ["--dataset", "digit-segmentation", "--train-size", "8", "--test-size", "4"]
    assert train(out, *flags, "--tta", "flip-translate") == 2
    assert "segmentation outputs move with; use tta='flip'" in capsys.readouterr().err
    assert not out.exists()  # the unstarted run's folder is removed


def test_the_cifar10_and_fashion_recipes_name_their_nets():
    assert RECIPES["cifar10"]["model"] == "cifar-whiten"
    assert RECIPES["fashion-mnist"]["model"] == "fashion-fast"
    assert RECIPES["cifar10"]["val_fraction"] == RECIPES["fashion-mnist"]["val_fraction"] == 0


def test_accumulate_is_recorded_and_a_cut_too_fine_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--epochs", "1", "--accumulate", "4") == 0
    assert json.loads((out / "run.json").read_text())["accumulate"] == 4
    assert train(tmp_path / "x", "--epochs", "1", "--accumulate", "64") == 2
    assert "accumulate=64 cannot cut a batch of" in capsys.readouterr().err
