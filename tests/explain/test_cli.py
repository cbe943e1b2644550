"""``glassnet explain`` in-process: the printed numbers, model layers, pictures and errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet.cli import main
from tests.explain.conftest import find_line, parse_sum


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["explain", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explain_conv_default_prints_minus_six(capsys):
    code, out, _ = run(capsys, "conv")
    assert code == 0
    assert find_line(out, "O[0, 0] =").endswith("9×(-1) = -6")


def test_explain_conv_options(capsys):
    code, out, _ = run(capsys, "conv", "--image", "1,2,3;4,5,6;7,8,9", "--kernel", "horizontal",
                       "--padding", "1", "--stride", "2", "--at", "1,1")  # fmt: skip
    assert code == 0
    pairs, _, total = parse_sum(find_line(out, "O[1, 1] ="))
    # window rows 1..3, columns 1..3 of the image padded with zeros: [[5, 6, 0], [8, 9, 0], [0, 0, 0]]
    assert [a for a, _ in pairs] == [5, 6, 0, 8, 9, 0, 0, 0, 0]
    assert sum(a * b for a, b in pairs) == total == 5 + 6
    assert "H_out = floor((3 + 2×1 - 1×(3-1) - 1)/2) + 1 = floor(2/2) + 1 = 2" in out


def test_explain_backward_relu_pool_dense(capsys):
    _, out, _ = run(capsys, "backward", "--lr", "0.1")
    assert "dL/dK[0, 0] = 1×1 + 1×2" in out and "K[0, 0] <- 1 - 0.1×45 = -3.5" in out
    _, out, _ = run(capsys, "relu", "--values=-1,2")
    assert "x[0, 0] = -1: y = max(-1, 0) = 0, dy/dx = 0" in out
    _, out, _ = run(capsys, "pool")
    assert "max(9, 8, 3, 4) = 9, at (2, 2)" in out
    _, out, _ = run(capsys, "dense", "--input", "1,2", "--weight", "3,4;5,6", "--bias", "1,-1")
    assert "y[0] = 1×3 + 2×4 + 1 = 12" in out and "y[1] = 1×5 + 2×6 + (-1) = 16" in out


def test_explain_conv_on_an_image_file(tmp_path, capsys):
    path = tmp_path / "grey.png"
    Image.fromarray(np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5)).save(path)
    code, out, _ = run(capsys, "conv", "--image", str(path), "--at", "1,1")
    assert code == 0
    # columns differ by 10 per pixel: (left - right) = -20 per row, three rows
    assert find_line(out, "O[1, 1] =").endswith("= -60")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model = gn.Sequential(
        [
            gn.Conv2d(1, 4, 3, rng=0),
            gn.ReLU(),
            gn.MaxPool2d(2),
            gn.Flatten(),
            gn.Linear(144, 3, rng=0),
        ],
        input_shape=(14, 14, 1),
    )
    gn.save(model, folder / "m.safetensors")
    pixels = (np.random.default_rng(0).random((20, 20)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(folder / "x.png")
    return model, folder


def test_explain_a_model_layer_on_an_image(saved, capsys):
    model, folder = saved
    args = ["--model", str(folder / "m.safetensors"), "--image", str(folder / "x.png")]
    code, out, err = run(capsys, "conv", *args, "--at", "2,3", "--channel", "3")
    assert code == 0, err
    pairs, bias, total = parse_sum(find_line(out, "O[2, 3, 3] ="))
    assert len(pairs) == 9
    # The same image through the model in the test, as the CLI converts it.
    from glassnet.cli._common import load_images

    x = load_images([str(folder / "x.png")], (14, 14, 1)).astype(np.float32) / 255
    expected = model.layers[0].forward(x)[0, 2, 3, 3]
    assert np.isclose(total, expected, rtol=1e-3)
    assert np.isclose(sum(a * b for a, b in pairs) + bias, expected, rtol=1e-2, atol=1e-3)
    code, out, _ = run(capsys, "dense", *args, "--channel", "1")
    assert code == 0 and "144 inputs -> 3 outputs" in out and " + ... + " in out
    code, out, _ = run(capsys, "pool", *args, "--at", "1,1", "--channel", "2")
    assert code == 0 and "window (1, 1), rows 2..3, columns 2..3" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conv", "--image", "1,2;3"], "rows have different lengths"),
        (["conv", "--at", "9,0"], r"position \(9, 0\) is outside the 3x3 feature map"),
        (["conv", "--at", "1"], "expected a position like 1,2"),
        (["conv", "--kernel", "wobbly"], "unknown kernel 'wobbly'"),
        (["conv", "--image", "missing.png"], "image not found: missing.png"),
        (["conv", "--model", "M"], "--model needs --image"),
        (["conv", "--layer", "9"], r"layer 9 is out of range: this model has 5 layers"),
        (
            ["conv", "--layer", "1"],
            "layer 1 is ReLU\\(\\), not a Conv2d; Conv2d layers in this model: 0",
        ),
        (["filters", "nothing.safetensors"], "model file not found: nothing.safetensors"),
    ],
)
def test_errors_are_one_clear_line(saved, capsys, argv, message):
    _, folder = saved
    if "--layer" in argv:
        argv = [*argv, "--model", str(folder / "m.safetensors"), "--image", str(folder / "x.png")]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("glassnet: error: ")
    assert __import__("re").search(message, err), err


def test_explain_pictures_from_the_cli(saved, tmp_path, capsys):
    _, folder = saved
    code, out, _ = run(capsys, "edges", "--out", str(tmp_path))
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'edges.png'}"
    assert png_size(tmp_path / "edges.png") == (1600, 460)
    code, out, _ = run(capsys, "filters", str(folder / "m.safetensors"), "--out", str(tmp_path))
    assert code == 0 and png_size(tmp_path / "filters.png")[0] == 800
    code, out, _ = run(capsys, "features", str(folder / "m.safetensors"), "--image",
                       str(folder / "x.png"), "--out", str(tmp_path))  # fmt: skip
    assert code == 0 and png_size(tmp_path / "features.png")[0] == 800
