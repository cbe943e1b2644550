"""Dataset validation, subset and pixel scaling."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.data import Dataset, to_float32


def make(n: int = 6, classes: int = 3) -> Dataset:
    images = np.arange(n * 2 * 2, dtype=np.uint8).reshape(n, 2, 2, 1)
    return Dataset(
        images, np.arange(n, dtype=np.int64) % classes, [f"c{k}" for k in range(classes)]
    )


def test_basic_properties() -> None:
    ds = make()
    assert len(ds) == 6
    assert ds.image_shape == (2, 2, 1)
    assert ds.num_classes == 3
    assert repr(ds) == "Dataset(name='dataset', images=(6, 2, 2, 1) uint8, classes=3)"


def test_to_float_scales_exactly() -> None:
    pixels = np.array([0, 1, 128, 254, 255], dtype=np.uint8)
    out = to_float32(pixels)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pixels.astype(np.float64).astype(np.float32) / 255)
    assert out[0] == 0.0 and out[-1] == 1.0
    ds = make()
    np.testing.assert_allclose(ds.to_float(), ds.images / 255.0, rtol=1e-7)


def test_to_float32_rejects_floats() -> None:
    with pytest.raises(TypeError, match="expects uint8 pixels 0-255, got dtype float32"):
        to_float32(np.zeros(3, np.float32))


def test_subset_by_positions_and_mask() -> None:
    ds = make()
    sub = ds.subset([4, 1], name="pick")
    np.testing.assert_array_equal(sub.images, ds.images[[4, 1]])
    np.testing.assert_array_equal(sub.labels, [1, 1])
    assert sub.name == "pick" and sub.classes == ds.classes
    masked = ds.subset(ds.labels == 0)
    assert len(masked) == 2 and masked.name == ds.name


def test_subset_errors() -> None:
    ds = make()
    with pytest.raises(ValueError, match="no samples"):
        ds.subset([])
    with pytest.raises(TypeError, match="ints or a bool mask, got float64"):
        ds.subset(np.array([0.0, 1.0]))


@pytest.mark.parametrize(
    ("images", "labels", "classes", "error", "match"),
    [
        (np.zeros((2, 2, 2, 1), np.float32), np.zeros(2, np.int64), ["a"], TypeError,
         "images must be a uint8 numpy array, got float32"),
        (np.zeros((2, 2, 2), np.uint8), np.zeros(2, np.int64), ["a"], ValueError,
         r"images must have shape \(N, H, W, C\), got shape \(2, 2, 2\)"),
        (np.zeros((2, 2, 2, 1), np.uint8), np.zeros(2, np.int32), ["a"], TypeError,
         r"labels must be an int64 numpy array, got int32 \(or float32 boxes\)"),
        (np.zeros((2, 2, 2, 1), np.uint8), [0, 0], ["a"], TypeError,
         "labels must be an int64 numpy array, got list"),
        (np.zeros((2, 2, 2, 1), np.uint8), np.zeros((2, 1), np.int64), ["a"], ValueError,
         r"labels must have shape \(N,\), or \(N, H, W\) = \(2, 2, 2\) for per-pixel classes, "
         r"got shape \(2, 1\)"),
        (np.zeros((3, 2, 2, 1), np.uint8), np.zeros(2, np.int64), ["a"], ValueError,
         "3 images but 2 labels"),
        (np.zeros((0, 2, 2, 1), np.uint8), np.zeros(0, np.int64), ["a"], ValueError,
         "no samples"),
        (np.zeros((2, 2, 2, 1), np.uint8), np.zeros(2, np.int64), [], ValueError,
         "classes is empty"),
        (np.zeros((2, 2, 2, 1), np.uint8), np.zeros(2, np.int64), ("a",), TypeError,
         "classes must be a list of str"),
        (np.zeros((2, 2, 2, 1), np.uint8), np.array([0, 2]), ["a", "b"], ValueError,
         r"labels must lie in \[0, 2\) for 2 classes, got values from 0 to 2"),
        (np.zeros((2, 2, 2, 1), np.uint8), np.array([-1, 0]), ["a", "b"], ValueError,
         "got values from -1 to 0"),
    ],
)  # fmt: skip
def test_validation_errors(images, labels, classes, error, match) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        Dataset(images, labels, classes, "bad")


def test_error_names_the_dataset() -> None:
    with pytest.raises(TypeError, match="Dataset 'mine': images"):
        Dataset(np.zeros((1, 1, 1, 1), np.int64), np.zeros(1, np.int64), ["a"], "mine")


def test_frozen() -> None:
    ds = make()
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]
