"""Every command on a graph Model: named models, Model files, layers by name, pictures, train."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import explain
from glassnet.cli import main
from glassnet.models import build_model

CLASSES = ("cat", "dog", "owl")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A tiny image-folder dataset of 32x32 RGB noise: train and test, 4 images per class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for k in range(4):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{k}.png")
    return root


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory) -> Path:
    """``glassnet train --model resnet-cifar`` for one epoch on the folder, with pictures."""
    out = tmp_path_factory.mktemp("run") / "resnet"
    argv = [
        "train", "--dataset", "folder", "--data-dir", str(folder), "--model", "resnet-cifar",
        "--image-size", "32,32", "--channels", "3", "--epochs", "1", "--batch-size", "4",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    return out


def _image(folder: Path) -> str:
    return str(folder / "test" / "cat" / "0.png")


def _table_columns(text: str) -> list[list[str]]:
    """Rows of a summary table split on runs of 3+ spaces."""
    return [re.split(r" {3,}", line.strip()) for line in text.strip().splitlines()]


def test_train_saves_a_resnet_with_its_pictures(run, capsys):
    for name in ("model.safetensors", "curves.png", "filters.png", "confusion.png"):
        assert (run / name).stat().st_size > 0, name
    model = gn.load(run / "model.safetensors")
    assert isinstance(model, gn.Model) and model.get_layer("fc").out_features == 3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classes"] == list(CLASSES)


def test_summary_of_a_named_model_lists_every_node_aligned(capsys):
    assert main(["summary", "resnet-cifar"]) == 0
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    header = lines[0]
    assert header.split() == ["node", "class", "inputs", "output", "shape", "params", "FLOPs"]
    # the right-aligned numbers end under their headers, the left-aligned cells start there
    params_end, flops_end = header.index("params") + 6, len(header)
    for line in lines[1:]:
        assert line[params_end - 1].isdigit() and line[flops_end - 1].isdigit(), line
        assert len(line) == flops_end
    rows = {row[0]: row for row in _table_columns(text)}
    # conv1: 3x3x3 kernels, 16 of them, no bias; 2 FLOPs per multiply-add at 32x32
    assert rows["conv1"] == ["conv1", "Conv2d", "input_0", "(32, 32, 16)", "432", "884736"]
    assert rows["add_1"][2] == "layer2.0.bn2, layer2.0.downsample.1"
    assert rows["total"] == ["total", str(build_model("resnet-cifar")[0].num_parameters()),
                             rows["total"][-1]]  # fmt: skip
    assert main(["summary", "unet-small"]) == 0
    rows = {row[0]: row for row in _table_columns(capsys.readouterr().out)}
    # 64 -> 32 channels spread by 2x2 kernels from 8x8: 2 * 8*8*64 * 32 * 4
    assert rows["up2"][-2:] == [str(64 * 32 * 4 + 32), "1048576"]
    assert rows["concatenate_0"][2:4] == ["up2, enc2.3", "(16, 16, 64)"]


def test_summary_and_profile_of_a_model_file(run, capsys):
    path = str(run / "model.safetensors")
    assert main(["summary", path]) == 0
    assert "\nfc                      Linear " in capsys.readouterr().out
    assert main(["profile", path, "--infer", "--batch-size", "2", "--steps", "1"]) == 0
    assert "\nlayer1.0.conv1 Conv2d " in capsys.readouterr().out
    assert main(["summary", path, "--input-shape", "28,28,1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"glassnet: error: {path} is a Model built for (32, 32, 3) inputs (its gn.Input), so "
        "--input-shape cannot make it (28, 28, 1)"
    )


def test_predict_and_evaluate_a_model_file(run, folder, capsys):
    from glassnet.cli._common import load_images

    path = str(run / "model.safetensors")
    assert main(["predict", path, _image(folder), "--top", "3"]) == 0
    line = capsys.readouterr().out.strip()
    model = gn.load(path)
    probs = gn.train.predict(model, load_images([_image(folder)], (32, 32, 3)))[0]
    ranked = np.argsort(probs)[::-1]
    assert line == f"{_image(folder)}: " + ", ".join(
        f"{CLASSES[k]} ({probs[k]:.4f})" for k in ranked
    )
    argv = ["evaluate", path, "--dataset", "folder", "--data-dir", str(folder)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"accuracy: {metrics['test_accuracy']:.4f}" in out


def test_export_a_model_file(run, tmp_path, capsys):
    pytest.importorskip("onnx")
    out = tmp_path / "resnet.onnx"
    assert main(["export", str(run / "model.safetensors"), str(out)]) == 0
    assert out.stat().st_size > 0 and "input float32 (N, 32, 32, 3)" in capsys.readouterr().out


def _small_graph(tmp_path: Path) -> Path:
    """A Model with a depthwise (grouped) conv and a transposed conv, saved."""
    x = gn.Input((8, 8, 3))
    h = gn.ReLU()(gn.Conv2d(3, 6, 3, padding=1, groups=3, rng=0)(x, name="dw"))
    y = gn.ConvTranspose2d(6, 4, 2, stride=2, groups=2, rng=1)(h, name="up")
    path = tmp_path / "graph.safetensors"
    gn.save(gn.Model(x, gn.Concatenate()([y, gn.Upsample(scale_factor=2)(h)])), path)
    return path


def _png(path: Path, shape: tuple[int, int, int]) -> Path:
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_explain_conv_by_layer_name_reads_the_groups_inputs(tmp_path, capsys):
    from glassnet.cli._common import load_images
    from glassnet.data import to_float32

    path, image = _small_graph(tmp_path), _png(tmp_path / "i.png", (8, 8, 3))
    argv = ["explain", "conv", "--model", str(path), "--image", str(image), "--layer", "dw"]
    assert main([*argv, "--at", "2,5", "--channel", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Layer dw, Conv2d(")
    # output channel 5 of 6 in 3 groups: group 2, reading input channel 2 alone
    assert "output channel 5 is in group 2, which reads input channels 2..2 only" in out
    assert "Kernel W[5, 0] of output channel 5 (3x3):" in out
    model = gn.load(path)
    x = to_float32(load_images([str(image)], (8, 8, 3)))[0]
    dw = explain.layer_calls(model, x)[0].output  # (1, 8, 8, 6)
    total = float(out.split("O[2, 5] = ")[1].split("\n")[0].rsplit(" = ", 1)[1])
    assert total == pytest.approx(float(dw[0, 2, 5, 5]), rel=1e-3)
    # the same layer by index; the transposed conv is refused with the topic that explains it
    assert main([*argv[:-1], "0", "--at", "2,5", "--channel", "5"]) == 0
    assert capsys.readouterr().out == out
    assert main([*argv[:-1], "up"]) == 2
    assert capsys.readouterr().err.strip() == (
        "glassnet: error: layer up is ConvTranspose2d(in_channels=6, out_channels=4, "
        "kernel_size=[2, 2], stride=[2, 2], groups=2), not a Conv2d; Conv2d layers in this "
        "model: dw"
    )
    assert main([*argv[:-1], "nope"]) == 2
    assert "this model has no layer named 'nope'; its layers: dw (0 Conv2d), relu_0 (1 ReLU)" in (
        capsys.readouterr().err
    )


def test_explain_layer_names_the_topic_for_layers_it_does_not_cover(run, folder):
    model = gn.load(run / "model.safetensors")
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="for BatchNorm2d see 'glassnet explain batchnorm'"):
        explain.layer(model, image, "bn1")
    with pytest.raises(ValueError, match="for Add see 'glassnet explain residual'"):
        explain.layer(model, image, "add_0")
    relu = explain.layer(model, image, "relu_0", at=(3, 4), channel=2)
    bn1 = explain.layer_calls(model, image)[1].output
    assert relu.x[3, 4] == bn1[0, 3, 4, 2]


def test_pictures_of_a_model_file(run, folder, tmp_path, capsys):
    path = str(_small_graph(tmp_path))
    image = str(_png(tmp_path / "i.png", (8, 8, 3)))
    assert main(["explain", "filters", path, "--out", str(tmp_path)]) == 0
    assert main(["explain", "features", path, "--image", image, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"wrote {tmp_path / 'filters.png'}" in out and f"wrote {tmp_path / 'features.png'}" in out
    )
    resnet = str(run / "model.safetensors")
    argv = ["explain", "features", resnet, "--image", _image(folder), "--out", str(tmp_path)]
    assert main(argv) == 0
    assert main([*argv, "--input-size", "16,16"]) == 2
    assert "is a Model built for (32, 32, 3) inputs; --input-size cannot change it" in (
        capsys.readouterr().err
    )


def test_commands_refuse_models_that_do_not_fit_clearly(folder, tmp_path, capsys):
    unet = tmp_path / "unet.safetensors"
    gn.save(build_model("unet-small", num_classes=2, rng=0)[0], unet)
    # per-pixel scores: predict takes it for a segmentation model and draws its mask
    assert main(["predict", str(unet), _image(folder), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "0-mask.png").is_file()
    capsys.readouterr()
    assert main(["summary", str(unet)]) == 0  # summary and profile take any one-input model
    capsys.readouterr()
    a, b = gn.Input((4,)), gn.Input((4,))
    two = tmp_path / "two.safetensors"
    gn.save(gn.Model([a, b], gn.Add()([a, b])), two)
    assert main(["summary", str(two)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"glassnet: error: {two} is a Model of 2 inputs; the command line runs models of one input"
    )
    train = ["train", "--dataset", "folder", "--data-dir", str(folder), "--epochs", "1"]
    out = tmp_path / "never"
    assert main([*train, "--model", "unet-small", "--image-size", "32,32", "--channels", "3",
                 "--out", str(out)]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "glassnet: error: model unet-small outputs (32, 32, 3) per image; this command takes a "
        "classifier, whose output is one score per class, (K,)"
    )
    assert main([*train, "--model", "resnet-cifar", "--image-size", "28,28", "--channels", "1",
                 "--out", str(out)]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "glassnet: error: model resnet-cifar expects (32, 32, 3) images, dataset folder has "
        "(28, 28, 1)"
    )
    assert not out.exists()
