"""Augmentations against hand-computed small cases, seeded reproducibility, and the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glassnet.data import (
    Augment,
    channel_stats,
    cutout,
    load_cifar10,
    normalize,
    random_crop,
    random_horizontal_flip,
    random_translate,
)


class Draws:
    """Stands in for a Generator: returns preset draws and records the bounds it was asked for."""

    def __init__(self, integers: list | None = None, uniform: list | None = None) -> None:
        self._integers, self._uniform, self.asked = integers, uniform, []

    def integers(self, low: int, high: list[int], size: tuple[int, int]) -> np.ndarray:
        self.asked.append((low, list(high), size))
        return np.array(self._integers)

    def random(self, size: int) -> np.ndarray:
        self.asked.append(size)
        return np.array(self._uniform)


def grid(h: int, w: int) -> np.ndarray:
    """One (1, h, w, 1) image holding 0, 1, 2, ... row by row."""
    return np.arange(h * w, dtype=np.float64).reshape(1, h, w, 1)


# random_crop / random_translate


def test_crop_zero_padding_at_offset() -> None:
    draws = Draws(integers=[[0, 2]])
    out = random_crop(grid(4, 4), draws, padding=1)
    assert draws.asked == [(0, [3, 3], (1, 2))]  # offsets 0..H + 2p - h = 0..2
    # the 6x6 zero-padded grid cut at row 0, column 2: content moves down 1 and left 1
    np.testing.assert_array_equal(
        out[0, :, :, 0], [[0, 0, 0, 0], [1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0]]
    )


def test_crop_reflect_padding_at_offset() -> None:
    out = random_crop(grid(4, 4), Draws(integers=[[0, 2]]), padding=1, mode="reflect")
    # row -1 mirrors row 1 and column 4 mirrors column 2 (the edge is not repeated)
    np.testing.assert_array_equal(
        out[0, :, :, 0], [[5, 6, 7, 6], [1, 2, 3, 2], [5, 6, 7, 6], [9, 10, 11, 10]]
    )


def test_crop_smaller_window_without_padding() -> None:
    draws = Draws(integers=[[1, 1]])
    out = random_crop(grid(4, 4), draws, size=(2, 3))
    assert draws.asked == [(0, [3, 2], (1, 2))]
    np.testing.assert_array_equal(out[0, :, :, 0], [[5, 6, 7], [9, 10, 11]])


@pytest.mark.parametrize("mode", ["zero", "reflect"])
def test_crop_matches_per_image_loop(mode: str) -> None:
    x = np.random.default_rng(1).random((16, 7, 9, 3)).astype(np.float32)
    out = random_crop(x, np.random.default_rng(7), size=(6, 8), padding=2, mode=mode)
    offsets = np.random.default_rng(7).integers(
        0, [6, 6], size=(16, 2)
    )  # 7 + 4 - 6 + 1, 9 + 4 - 8 + 1
    pad_mode = {"zero": "constant", "reflect": "reflect"}[mode]
    for n, (dy, dx) in enumerate(offsets):
        padded = np.pad(x[n], ((2, 2), (2, 2), (0, 0)), mode=pad_mode)
        np.testing.assert_array_equal(out[n], padded[dy : dy + 6, dx : dx + 8])
    assert out.dtype == np.float32 and out.shape == (16, 6, 8, 3)


def test_translate_shifts_and_fills() -> None:
    # offset (2, 0) from the 1-padded image: sy = 1 - 2 = -1 (up), sx = 1 - 0 = 1 (right)
    out = random_translate(grid(3, 3), Draws(integers=[[2, 0]]), max_shift=1)
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 3, 4], [0, 6, 7], [0, 0, 0]])


def test_translate_is_crop_with_padding() -> None:
    x = np.random.default_rng(2).random((8, 5, 5, 2))
    np.testing.assert_array_equal(
        random_translate(x, np.random.default_rng(3), 2, mode="reflect"),
        random_crop(x, np.random.default_rng(3), padding=2, mode="reflect"),
    )
    shifts = 2 - np.random.default_rng(3).integers(0, [5, 5], size=(8, 2))
    assert shifts.min() >= -2 and shifts.max() <= 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "wrap"}, ValueError, r"mode must be one of \['zero', 'reflect'\], got 'wrap'"),
        ({"size": 7}, ValueError, r"size \(7, 7\) is larger than the padded image \(6, 6\)"),
        ({"padding": 4, "mode": "reflect"}, ValueError, r"reflect padding must be < H and W"),
        ({"padding": -1}, ValueError, "padding must be >= 0, got -1"),
        ({"padding": 1.5}, TypeError, "padding must be an int, got 1.5"),
        ({"size": True}, TypeError, "size must be an int, got True"),
        ({"size": (2, 0)}, ValueError, "size must be >= 1, got 0"),
    ],
)
def test_crop_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        random_crop(grid(4, 4), np.random.default_rng(0), **{"padding": 1, **kwargs})


def test_images_must_be_rank_4() -> None:
    with pytest.raises(
        ValueError, match=r"cutout: images must be \(N, H, W, C\), got shape \(4, 4\)"
    ):
        cutout(np.zeros((4, 4)), np.random.default_rng(0), 2)
    with pytest.raises(TypeError, match="random_translate: images must be a numpy array, got list"):
        random_translate([[1.0]], np.random.default_rng(0), 1)


# random_horizontal_flip


def test_flip_where_draw_below_p() -> None:
    x = np.random.default_rng(4).random((3, 2, 4, 3))
    before = x.copy()
    out = random_horizontal_flip(x, Draws(uniform=[0.3, 0.7, 0.5]), p=0.5)
    np.testing.assert_array_equal(out[0], x[0, :, ::-1])  # 0.3 < 0.5: flipped
    np.testing.assert_array_equal(out[1:], x[1:])  # 0.7 and 0.5 are not < 0.5
    np.testing.assert_array_equal(out[0, 1, 0], x[0, 1, 3])  # column j <- column W - 1 - j
    np.testing.assert_array_equal(x, before)


def test_flip_probability() -> None:
    x = np.broadcast_to(np.arange(2.0).reshape(1, 1, 2, 1), (4000, 1, 2, 1))
    flipped = random_horizontal_flip(x, np.random.default_rng(5), p=0.25)[:, 0, 0, 0] == 1
    assert abs(flipped.mean() - 0.25) < 0.03
    assert not random_horizontal_flip(x, np.random.default_rng(5), p=0.0)[:, 0, 0, 0].any()
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        random_horizontal_flip(x, np.random.default_rng(5), p=1.5)


# cutout


def test_cutout_square() -> None:
    out = cutout(np.ones((1, 6, 6, 2)), Draws(integers=[[2, 3]]), size=2)
    expected = np.ones((6, 6))
    expected[1:3, 2:4] = 0  # top = 2 - 1, left = 3 - 1
    np.testing.assert_array_equal(out[0, :, :, 0], expected)
    np.testing.assert_array_equal(out[0, :, :, 1], expected)


def test_cutout_odd_size_and_clipped_at_corner() -> None:
    draws = Draws(integers=[[2, 3], [0, 0]])
    out = cutout(np.ones((2, 5, 6, 1), np.float32), draws, size=3)
    assert draws.asked == [(0, [5, 6], (2, 2))]
    expected = np.ones((2, 5, 6), np.float32)
    expected[0, 1:4, 2:5] = 0  # centred on (2, 3)
    expected[1, 0:2, 0:2] = 0  # centre (0, 0): rows and columns -1..1, clipped to 0..1
    np.testing.assert_array_equal(out[..., 0], expected)
    assert out.dtype == np.float32


def test_cutout_errors() -> None:
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        cutout(np.ones((1, 4, 4, 1)), np.random.default_rng(0), 0)


# channel_stats / normalize


def test_channel_stats_hand_values() -> None:
    x = np.zeros((2, 1, 2, 2))
    x[..., 0] = [[[1.0, 3.0]], [[5.0, 7.0]]]  # mean 4, variance (9 + 1 + 1 + 9) / 4 = 5
    x[..., 1] = 2.0  # mean 2, std 0
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, [4.0, 2.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(std, [np.sqrt(5.0), 0.0], rtol=1e-15, atol=0)


def test_channel_stats_uint8_in_blocks() -> None:
    x = np.random.default_rng(6).integers(0, 256, size=(2500, 3, 2, 3), dtype=np.uint8)
    mean, std = channel_stats(x)  # 2500 images: three blocks of at most 1024
    as_float = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean, as_float.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, as_float.std(axis=(0, 1, 2)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"channel_stats: images is empty \(N = 0\)"):
        channel_stats(x[:0])


def test_normalize_values() -> None:
    x = np.array([0.0, 0.5, 1.0, 0.25, 0.25, 0.25], np.float32).reshape(1, 1, 2, 3)
    out = normalize(x, mean=[0.5, 0.25, 0.5], std=[0.5, 0.25, 0.25])
    np.testing.assert_array_equal(out[0, 0], [[-1.0, 1.0, 2.0], [-0.5, 0.0, -1.0]])
    assert out.dtype == np.float32
    # normalizing with a set's own statistics gives mean 0 and std 1 per channel
    y = np.random.default_rng(7).normal(3.0, 2.0, size=(50, 4, 4, 3))
    z = normalize(y, *channel_stats(y))
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1.0, rtol=1e-12)


def test_normalize_errors() -> None:
    x = np.zeros((1, 2, 2, 3), np.float32)
    with pytest.raises(TypeError, match="normalize expects a float array .*, got uint8"):
        normalize(x.astype(np.uint8), [0.5] * 3, [1.0] * 3)
    with pytest.raises(
        ValueError, match=r"must hold C = 3 values .*, got shapes \(2,\) and \(3,\)"
    ):
        normalize(x, [0.5, 0.5], [1.0] * 3)
    with pytest.raises(ValueError, match=r"std must be > 0, got \[1.0, 0.0, 1.0\]"):
        normalize(x, [0.5] * 3, [1.0, 0.0, 1.0])


@pytest.mark.slow
def test_cifar10_train_statistics(shared_cifar10: Path) -> None:
    mean, std = channel_stats(load_cifar10(shared_cifar10, "train").images)
    # the values widely published for CIFAR-10's training set (population std over pixels)
    np.testing.assert_allclose(mean, [0.4914, 0.4822, 0.4465], atol=1e-4)
    np.testing.assert_allclose(std, [0.2470, 0.2435, 0.2616], atol=1e-4)


# Augment and reproducibility


STEPS = [
    ("random_crop", {"padding": 4, "mode": "reflect"}),
    ("random_horizontal_flip", {"p": 0.5}),
    ("normalize", {"mean": np.array([0.49, 0.48, 0.45]), "std": (0.25, 0.24, 0.26)}),
    ("cutout", {"size": 8}),
]


def test_pipeline_is_the_functions_in_order() -> None:
    x = np.random.default_rng(8).random((16, 32, 32, 3)).astype(np.float32)
    out = Augment(STEPS)(x, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    y = random_crop(x, rng, padding=4, mode="reflect")
    y = random_horizontal_flip(y, rng, p=0.5)
    y = normalize(y, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])
    np.testing.assert_array_equal(out, cutout(y, rng, size=8))
    assert out.dtype == np.float32


def test_same_seed_same_batches_and_resume() -> None:
    x = np.random.default_rng(10).random((8, 32, 32, 3))
    aug = Augment(STEPS)
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    first = [aug(x, rng_a), aug(x, rng_a)]
    np.testing.assert_array_equal(first[0], aug(x, rng_b))
    state = json.loads(json.dumps(rng_b.bit_generator.state))  # as a checkpoint stores it
    resumed = np.random.default_rng()
    resumed.bit_generator.state = state
    np.testing.assert_array_equal(first[1], aug(x, resumed))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], aug(x, np.random.default_rng(12)))


def test_config_round_trip_through_json() -> None:
    aug = Augment(STEPS)
    config = json.loads(json.dumps(aug.get_config()))
    assert config["steps"][2] == [
        "normalize",
        {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]},
    ]
    assert config == aug.get_config()
    x = np.random.default_rng(13).random((4, 32, 32, 3))
    np.testing.assert_array_equal(
        Augment.from_config(config)(x, np.random.default_rng(14)), aug(x, np.random.default_rng(14))
    )
    assert repr(Augment(STEPS[1:2])) == "Augment([random_horizontal_flip({'p': 0.5})])"


def test_augment_errors() -> None:
    with pytest.raises(ValueError, match="Augment: unknown step 'rotate'; valid steps: random_crop, "
                       "random_translate, random_horizontal_flip, cutout, normalize"):  # fmt: skip
        Augment([("rotate", {})])
    with pytest.raises(ValueError, match="Augment step 'cutout': .*'radius'"):
        Augment([("cutout", {"size": 2, "radius": 3})])
    with pytest.raises(ValueError, match="Augment step 'random_translate': missing a required"):
        Augment([("random_translate", {})])
