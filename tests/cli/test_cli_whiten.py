"""``glassnet train`` with a whitening-stem net: the stem is set from the training images,
never trained, and stays frozen across a resume that equals the uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.data import get_dataset, to_float32
from glassnet.init import patch_whitening_


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A tiny image-folder dataset of smooth 32x32 RGB images, 6 per class and split."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for k in range(6):
                coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                pixels = np.kron(coarse, np.ones((4, 4, 1), np.uint8))  # correlated neighbours
                Image.fromarray(pixels).save(root / split / name / f"{k}.png")
    return root


def train(folder: Path, out: Path, *flags: str) -> None:
    argv = [
        "train", "--dataset", "folder", "--data-dir", str(folder), "--model", "cifar-whiten",
        "--image-size", "32,32", "--channels", "3", "--batch-size", "4", "--val-fraction", "0",
        "--optimizer", "sgd", "--lr", "0.05", "--nesterov", "--weight-decay", "5e-4",
        "--no-progress", "--no-plots", *flags,
    ]  # fmt: skip
    assert main(argv) == 0


def stem(path: Path) -> tuple[np.ndarray, np.ndarray]:
    conv = gn.load(path)[0]
    return conv.weight.value, conv.params["bias"].value


def test_the_stem_is_whitened_from_the_training_images_frozen_and_resumes_exactly(folder, tmp_path):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    train(folder, straight, "--epochs", "2", "--out", str(straight))
    train(folder, cut, "--epochs", "1", "--out", str(cut))
    train(folder, cut, "--epochs", "2", "--resume", str(cut / "checkpoint.safetensors"))

    images = get_dataset("folder", folder, "train", image_size=(32, 32), channels=3).images
    expected = patch_whitening_(np.zeros((24, 3, 2, 2), np.float32), to_float32(images))
    weight, bias = stem(straight / "model.safetensors")
    np.testing.assert_array_equal(weight, expected)  # two epochs of SGD left it untouched
    assert np.abs(bias).max() > 0  # while its bias trained
    resumed = gn.load(cut / "model.safetensors")
    np.testing.assert_array_equal(resumed[0].weight.value, expected)
    for name, value in gn.load(straight / "model.safetensors").state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
