"""The command line for segmentation end to end: train on digit scenes, predict a mask picture,
explain IoU and one pixel's class."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.cli import main
from glassnet.data import load_digit_scenes


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seg")
    code = main([
        "train", "--dataset", "digit-segmentation", "--train-size", "40", "--test-size", "10",
        "--image-size", "32,32", "--epochs", "2", "--batch-size", "8", "--out", str(out),
        "--no-progress",
    ])  # fmt: skip
    assert code == 0
    return out


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_train_writes_the_run_and_ends_with_the_test_miou(trained, capsys):
    for name in ("model.safetensors", "checkpoint.safetensors", "history.json", "run.json"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert set(metrics) == {
        "test_mIoU", "test_pixel_accuracy", "test_loss", "classes", "iou", "confusion_matrix",
    }  # fmt: skip
    assert metrics["classes"] == ["background", *"0123456789"]
    assert np.array(metrics["confusion_matrix"]).sum() == 10 * 32 * 32
    history = json.loads((trained / "history.json").read_text())
    assert {"pixel_accuracy", "val_loss", "val_pixel_accuracy", "val_mIoU"} <= set(history)
    model = gn.load(trained / "model.safetensors")
    assert model.input_shape == (32, 32, 1)
    metadata = gn.read_metadata(trained / "model.safetensors")
    assert metadata["task"] == "segmentation" and metadata["dataset"] == "digit-segmentation"
    assert _png(trained / "examples.png").shape == (520, 150 * 8 + 120, 3)
    assert _png(trained / "curves.png").shape[0] == 400


def test_evaluate_makes_the_run_s_test_scenes_again(trained, tmp_path, capsys):
    """The run's sizes, seed and loss come from its run.json, the canvas from the model: the
    figures are the ones the run ended with."""
    picture = tmp_path / "confusion.png"
    argv = ["evaluate", str(trained / "model.safetensors"), "--confusion", str(picture)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    metrics = json.loads((trained / "metrics.json").read_text())
    assert out.startswith("dataset: digit-segmentation (test split; from ")
    assert f"mean IoU: {metrics['test_mIoU']:.4f}" in out
    assert f"pixel accuracy: {metrics['test_pixel_accuracy']:.4f}" in out
    assert f"loss: {metrics['test_loss']:.4f}" in out
    assert _png(picture).ndim == 3


def test_train_prints_the_test_miou_last(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "train", "--dataset", "digit-segmentation", "--train-size", "16", "--test-size", "4",
        "--image-size", "16,16", "--epochs", "1", "--batch-size", "8", "--val-fraction", "0.25",
        "--out", str(out), "--no-progress", "--no-plots",
    ])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "on digit-segmentation: 12 train, 4 validation, 4 test images" in lines[0]
    assert re.fullmatch(r"test mIoU: \d\.\d{4}", lines[-1])
    value = float(lines[-1].split(": ")[1])
    assert value == pytest.approx(
        json.loads((out / "metrics.json").read_text())["test_mIoU"], abs=1e-4
    )


def test_train_refuses_a_canvas_that_is_not_square(tmp_path, capsys):
    code = main(["train", "--dataset", "digit-segmentation", "--image-size", "32,48",
                 "--out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2
    assert "--image-size for digit-segmentation is the square canvas S,S, got '32,48'" in (
        capsys.readouterr().err
    )


def test_predict_writes_the_mask_picture(trained, tmp_path, capsys):
    scenes = load_digit_scenes("test", size=2, canvas_size=32, seed=3)
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"scene{i}.png")
        Image.fromarray(scenes.images[i, :, :, 0]).save(paths[-1])
    out = tmp_path / "masks"
    code = main(
        ["predict", str(trained / "model.safetensors"), *map(str, paths), "--out", str(out)]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for path, line in zip(paths, lines, strict=True):
        picture = out / f"{path.stem}-mask.png"
        assert line.startswith(f"{path}: ") and line.endswith(f"; wrote {picture}")
        assert _png(picture).shape == (520, 1000, 3)


def test_explain_iou_default_and_given(capsys):
    assert main(["explain", "iou"]) == 0
    assert "mean IoU = (0.7857 + 0.625 + 0.6667) / 3 = 0.6925" in capsys.readouterr().out
    assert main(["explain", "iou", "--truth", "0,1;1,1", "--predicted", "0,1;0,1"]) == 0
    out = capsys.readouterr().out
    assert "class 1: 3 pixels in truth, 2 predicted; intersection 2, union 3 + 2 - 2 = 3" in out
    assert main(["explain", "iou", "--truth", "0,1", "--predicted", "0"]) == 2
    assert "truth and predicted must have one shape" in capsys.readouterr().err


def test_explain_mask_at_a_pixel(trained, tmp_path, capsys):
    scenes = load_digit_scenes("test", size=1, canvas_size=32, seed=3)
    path = tmp_path / "scene.png"
    Image.fromarray(scenes.images[0, :, :, 0]).save(path)
    model = str(trained / "model.safetensors")
    assert main(["explain", "mask", "--model", model, "--image", str(path), "--at", "5,7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pixel (5, 7): the model's 11 scores (logits) z_k, and their softmax")
    probabilities = [float(p) for p in re.findall(r"p = (\d\.\d{4})", out)]
    assert len(probabilities) == 11 and sum(probabilities) == pytest.approx(1, abs=1e-3)
    assert main(["explain", "mask", "--model", model, "--image", str(path), "--at", "32,0"]) == 2
    assert "position (32, 0) is outside the 32x32 output" in capsys.readouterr().err


def test_the_loss_and_sizes_of_the_recipe_are_recorded(trained):
    from glassnet.cli._segmentation import RECIPE

    settings = json.loads((trained / "run.json").read_text())
    assert settings["background_weight"] == RECIPE["background_weight"] == 0.1
    assert settings["dice_weight"] == RECIPE["dice_weight"] == 1.0
    assert (settings["train_size"], settings["test_size"]) == (40, 10)  # the flags win


def test_the_loss_flags_build_the_loss():
    from glassnet.cli._segmentation import loss

    plain = loss({"background_weight": 1.0, "dice_weight": 0.0}, 3)
    assert repr(plain) == "CrossEntropyLoss(label_smoothing=0.0)"
    weighted = loss({"background_weight": 0.25, "dice_weight": 0.0}, 3)
    assert repr(weighted) == "CrossEntropyLoss(label_smoothing=0.0, weight=[0.25, 1.0, 1.0])"
    both = loss({"background_weight": 0.1, "dice_weight": 2.0}, 3)
    assert repr(both) == "DiceCELoss(weight=[0.1, 1.0, 1.0], dice_weight=2.0, smooth=1.0)"


def test_the_loss_flags_are_for_segmentation_only(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--dice-weight", "1", "--out", str(out)])
    assert code == 2  # a usage error, like the other refused combinations
    assert capsys.readouterr().err.strip() == (
        "glassnet: error: --background-weight and --dice-weight are for --dataset "
        "digit-segmentation, not digits"
    )
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "digit-segmentation", "--background-weight", "-1"])
    assert "must be a finite number >= 0, got -1" in capsys.readouterr().err
