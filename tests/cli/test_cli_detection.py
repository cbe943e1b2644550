"""``glassnet train --dataset digit-detection`` and ``glassnet predict`` of a detector, end to
end in-process on a few small scenes."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.cli import main
from glassnet.data.scenes import load_digit_scenes


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("detection")
    argv = ["train", "--dataset", "digit-detection", "--train-size", "40", "--test-size", "8",
            "--epochs", "2", "--out", str(out), "--no-progress"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return out, printed.getvalue()


@pytest.mark.slow
def test_train_ends_with_the_test_map_and_writes_the_run(run):
    out, printed = run
    last = printed.strip().splitlines()[-1]
    assert re.fullmatch(r"test mAP@0\.5: \d\.\d{4}", last), last
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['test_mAP@0.5']:.4f}" == last.split()[-1]
    assert set(metrics) >= {"test_loss", "test_mAP@0.5:0.95", "ap50_per_class", "boxes_per_class"}
    assert sum(metrics["boxes_per_class"]) == int(
        (load_digit_scenes("test", size=8).boxes[..., 4] >= 0).sum()
    )
    history = json.loads((out / "history.json").read_text())
    assert set(history) >= {"loss", "exact", "val_loss", "val_mAP@0.5", "val_mAP@0.5:0.95"}
    assert json.loads((out / "run.json").read_text())["train_size"] == 40
    metadata = gn.read_metadata(out / "model.safetensors")
    assert metadata["task"] == "detection" and json.loads(metadata["classes"])[3] == "3"
    with Image.open(out / "examples.png") as picture:
        assert picture.format == "PNG" and picture.size == (4 * 240, 2 * 260)


def test_evaluate_makes_the_run_s_test_scenes_again(run, tmp_path, capsys):
    out, _ = run
    assert main(["evaluate", str(out / "model.safetensors")]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert printed.startswith("dataset: digit-detection (test split; from ")
    assert f"mAP@0.5: {metrics['test_mAP@0.5']:.4f}" in printed
    assert f"mAP@0.5:0.95: {metrics['test_mAP@0.5:0.95']:.4f}" in printed
    picture = str(tmp_path / "confusion.png")
    assert main(["evaluate", str(out / "model.safetensors"), "--confusion", picture]) == 2
    assert "--confusion is for classifiers and segmentation, not digit-detection" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_predict_prints_and_draws_the_boxes(run, tmp_path, capsys):
    out, _ = run
    scene = load_digit_scenes("test", size=1).images[0, :, :, 0]
    Image.fromarray(scene).save(tmp_path / "scene.png")
    code = main(["predict", str(out / "model.safetensors"), str(tmp_path / "scene.png"),
                 "--threshold", "0", "--out", str(tmp_path / "drawn")])  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert printed[0] == f"{tmp_path / 'scene.png'}: 20 boxes (score >= 0)"  # decoding's most
    box = re.fullmatch(r"  (\d) \((0\.\d{4})\) at x0, y0, x1, y1 = (.*)", printed[1])
    assert box, printed[1]
    corners = np.array([float(v) for v in box.group(3).split(", ")])
    assert (0 <= corners).all() and (corners <= 64).all()
    assert printed[-1] == f"  wrote {tmp_path / 'drawn' / 'scene.boxes.png'}"
    with Image.open(tmp_path / "drawn" / "scene.boxes.png") as picture:
        assert picture.size == (240, 260)


def test_scene_sizes_are_refused_for_other_datasets(tmp_path, capsys):
    code = main(["train", "--dataset", "digits", "--train-size", "5", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "size applies to the generated scenes only, not to 'digits'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
