"""Digit scenes: determinism, masks and boxes that agree with the drawn pixels, split sources."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.data import scenes as scenes_module
from glassnet.data.dataset import Dataset
from glassnet.data.scenes import (
    BOX_CLASSES,
    INK_THRESHOLD,
    SCENE_CLASSES,
    load_digit_scenes,
    make_scenes,
)


def _fields(scenes) -> tuple[bytes, bytes, bytes]:
    return scenes.images.tobytes(), scenes.masks.tobytes(), scenes.boxes.tobytes()


def _squares(labels: list[int], side: int = 8) -> Dataset:
    """Digits that are solid squares of ink, one per label: their masks are their boxes."""
    images = np.full((len(labels), side, side, 1), 255, dtype=np.uint8)
    return Dataset(images, np.array(labels, dtype=np.int64), BOX_CLASSES[:], "squares")


def test_record_shapes_dtypes_and_names() -> None:
    scenes = load_digit_scenes("train", size=12, canvas_size=48, seed=3)
    assert scenes.images.shape == (12, 48, 48, 1) and scenes.images.dtype == np.uint8
    assert scenes.masks.shape == (12, 48, 48) and scenes.masks.dtype == np.int64
    assert scenes.boxes.shape == (12, 4, 5) and scenes.boxes.dtype == np.float32
    assert scenes.classes == ["background", *"0123456789"] == SCENE_CLASSES
    assert scenes.box_classes == list("0123456789")
    assert scenes.name == "digit-scenes-digits-train" and len(scenes) == 12
    assert 0 <= scenes.masks.min() and scenes.masks.max() <= 10


def test_default_sizes_and_colour() -> None:
    test = load_digit_scenes("test", channels=3, seed=0)
    assert test.images.shape == (500, 64, 64, 3)
    # colour means colour: the channels differ on the digits and in the noise
    assert (test.images[..., 0] != test.images[..., 1]).mean() > 0.5


def test_same_seed_same_bytes_other_seed_or_split_differs() -> None:
    first = load_digit_scenes("train", size=20, seed=7)
    again = load_digit_scenes("train", size=20, seed=7)
    other = load_digit_scenes("train", size=20, seed=8)
    test = load_digit_scenes("test", size=20, seed=7)
    assert _fields(first) == _fields(again)
    for a, b in zip(_fields(first), _fields(other), strict=True):
        assert a != b
    assert _fields(first)[0] != _fields(test)[0]


def test_digit_counts_and_padding_rows() -> None:
    scenes = load_digit_scenes("train", size=300, seed=0)
    drawn = scenes.boxes[..., 4] >= 0  # (N, M)
    counts = drawn.sum(axis=1)
    assert set(counts.tolist()) == {0, 1, 2, 3, 4}
    # the digits fill the first rows; padding rows are all -1
    assert np.all(np.diff(drawn.astype(int), axis=1) <= 0)
    assert np.all(scenes.boxes[~drawn] == -1)
    # an empty scene is background only
    assert np.all(scenes.masks[counts == 0] == 0)


@pytest.mark.parametrize("channels", [1, 3])
def test_mask_is_exactly_the_ink(channels: int) -> None:
    scenes = load_digit_scenes("test", size=50, channels=channels, seed=2)
    ink = scenes.images.max(axis=-1) >= INK_THRESHOLD  # (N, H, W)
    np.testing.assert_array_equal(ink, scenes.masks > 0)
    assert ink.any()


def test_single_digit_box_is_the_tight_box_of_its_mask() -> None:
    scenes = load_digit_scenes("train", size=40, seed=5, min_digits=1, max_digits=1)
    for mask, (box,) in zip(scenes.masks, scenes.boxes, strict=True):
        rows, cols = np.nonzero(mask)
        x0, y0, x1, y1, label = box
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert set(np.unique(mask[rows, cols]).tolist()) == {int(label) + 1}


def test_separate_digits_boxes_and_masks_agree() -> None:
    scenes = load_digit_scenes("test", size=60, seed=4, max_overlap=0.0)
    for mask, boxes in zip(scenes.masks, scenes.boxes, strict=True):
        covered = np.zeros(mask.shape, dtype=bool)
        for x0, y0, x1, y1, label in boxes[boxes[:, 4] >= 0].astype(int):
            inside = mask[y0:y1, x0:x1]
            assert set(np.unique(inside).tolist()) <= {0, label + 1}
            rows, cols = np.nonzero(inside)
            assert (rows.min(), cols.min()) == (0, 0)
            assert (rows.max() + 1, cols.max() + 1) == inside.shape
            covered[y0:y1, x0:x1] = True
        assert not mask[~covered].any()


def test_later_digit_is_drawn_over_earlier_and_mask_takes_it() -> None:
    digits = _squares([3, 7])
    scenes = make_scenes(
        digits,
        30,
        np.random.default_rng(0),
        canvas_size=16,
        min_digits=2,
        max_digits=2,
        digit_size=(8, 8),
        max_overlap=1.0,
    )
    overlaps = 0
    for mask, boxes in zip(scenes.masks, scenes.boxes, strict=True):
        expected = np.zeros_like(mask)
        for x0, y0, x1, y1, label in boxes.astype(int):  # drawing order
            assert (x1 - x0, y1 - y0) == (8, 8)
            expected[y0:y1, x0:x1] = label + 1
        np.testing.assert_array_equal(mask, expected)
        (a, b) = boxes[:, :4]
        overlaps += max(a[0], b[0]) < min(a[2], b[2]) and max(a[1], b[1]) < min(a[3], b[3])
    assert overlaps > 5  # the case was exercised


def test_max_overlap_limits_shared_area() -> None:
    scenes = make_scenes(
        _squares([1, 2, 4]), 40, np.random.default_rng(1), canvas_size=24, min_digits=3,
        max_digits=3, digit_size=(8, 8), max_overlap=0.25,
    )  # fmt: skip
    for boxes in scenes.boxes:
        drawn = boxes[boxes[:, 4] >= 0]
        for i in range(len(drawn)):
            for j in range(i):
                a, b = drawn[i], drawn[j]
                width = min(a[2], b[2]) - max(a[0], b[0])
                height = min(a[3], b[3]) - max(a[1], b[1])
                assert max(width, 0) * max(height, 0) <= 0.25 * 64


def test_mnist_scenes_use_only_their_split(tmp_path, write_idx_pair) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(128, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx_pair(tmp_path, images, np.full(5, 3, np.uint8), stem="train")
    write_idx_pair(tmp_path, images, np.full(5, 8, np.uint8), stem="t10k")
    train = load_digit_scenes("train", tmp_path, size=30, seed=0)
    test = load_digit_scenes("test", tmp_path, size=30, seed=0)
    assert train.name == "digit-scenes-mnist-train" and test.name == "digit-scenes-mnist-test"
    assert set(np.unique(train.boxes[..., 4]).tolist()) == {-1, 3}
    assert set(np.unique(test.boxes[..., 4]).tolist()) == {-1, 8}
    assert set(np.unique(train.masks).tolist()) == {0, 4}
    assert set(np.unique(test.masks).tolist()) == {0, 9}


@pytest.mark.parametrize("split", ["train", "test"])
def test_bundled_digits_come_from_the_same_split(monkeypatch, split: str) -> None:
    asked = []

    def fake_load_digits(wanted: str) -> Dataset:
        asked.append(wanted)
        return _squares([6])

    monkeypatch.setattr(scenes_module, "load_digits", fake_load_digits)
    scenes = load_digit_scenes(split, size=10, min_digits=1)
    assert asked == [split]
    assert set(np.unique(scenes.boxes[..., 4]).tolist()) <= {-1, 6}


def test_real_mnist_scenes(shared_data) -> None:
    scenes = load_digit_scenes("test", shared_data / "mnist", size=50, seed=0)
    assert scenes.name == "digit-scenes-mnist-test"
    np.testing.assert_array_equal(scenes.images[..., 0] >= INK_THRESHOLD, scenes.masks > 0)
    assert len(np.unique(scenes.masks)) == 11


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"channels": 2}, ValueError, r"channels must be 1 \(grey\) or 3 \(colour\), got 2"),
        ({"noise": 128}, ValueError, r"noise must lie in \[0, 128\), got 128"),
        ({"min_digits": 5}, ValueError, r"min_digits \(5\) must not exceed max_digits \(4\)"),
        ({"max_digits": 0}, ValueError, "max_digits must be >= 1, got 0"),
        ({"digit_size": (10, 70)}, ValueError, r"canvas_size \(64\), got \(10, 70\)"),
        ({"max_overlap": 1.5}, ValueError, r"max_overlap must lie in \[0, 1\], got 1.5"),
        ({"size": 0}, ValueError, "count must be >= 1, got 0"),
        ({"size": 2.5}, TypeError, "count must be an int, got float 2.5"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        ({"canvas_size": 4}, ValueError, "canvas_size must be >= 8, got 4"),
    ],
)
def test_bad_options(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_digit_scenes("train", **options)


def test_bad_split_and_digits() -> None:
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'val'"):
        load_digit_scenes("val")
    wide = Dataset(np.zeros((2, 8, 6, 1), np.uint8), np.array([0, 1]), BOX_CLASSES[:], "wide")
    with pytest.raises(ValueError, match=r"square grey images \(S, S, 1\), got .* \(8, 6, 1\)"):
        make_scenes(wide, 1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="digits must be a Dataset of single digits, got tuple"):
        make_scenes((1, 2), 1, np.random.default_rng(0))  # type: ignore[arg-type]
