"""Data-dependent and structural initialisers: patch whitening and dirac."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.init import dirac_, patch_whitening_


def correlated_images(n: int = 200, size: int = 9) -> np.ndarray:
    """Colour images whose neighbouring pixels and channels are strongly correlated."""
    rng = np.random.default_rng(0)
    base = rng.random((n, size + 1, size + 1, 1))
    smooth = (base[:, 1:, 1:] + base[:, :-1, :-1] + base[:, 1:, :-1]) / 3
    return smooth * [1.0, 0.8, 0.6] + 0.05 * rng.random((n, size, size, 3))


@pytest.mark.parametrize("eps", [5e-4, 1e-2])
def test_patch_whitening_whitens_the_outputs_of_a_conv2d(eps):
    images = correlated_images()
    conv = gn.Conv2d(3, 24, 2, dtype="float64")
    patch_whitening_(conv.weight.value, images, eps=eps)
    out = conv.forward(images)  # what the whitened layer computes, in its own layout
    assert out.shape == (200, 8, 8, 24)
    positive, negative = out[..., :12].reshape(-1, 12), out[..., 12:].reshape(-1, 12)
    np.testing.assert_array_equal(negative, -positive)  # zero bias: the exact negative
    patches = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2))
    eigenvalues = np.linalg.eigvalsh(np.cov(patches.reshape(-1, 12).T))[::-1]
    expected = np.diag(eigenvalues / (eigenvalues + eps))
    np.testing.assert_allclose(np.cov(positive.T), expected, atol=1e-10)
    assert eigenvalues[-1] < 1e-3 < eigenvalues[0]  # eps matters on this data: a real test


def test_patch_whitening_is_stored_in_the_weight_s_dtype_and_deterministic():
    images = correlated_images(50).astype(np.float32)
    w32 = patch_whitening_(np.zeros((24, 3, 2, 2), np.float32), images)
    w64 = patch_whitening_(np.zeros((24, 3, 2, 2)), images)
    assert w32.dtype == np.float32
    np.testing.assert_allclose(w32, w64, rtol=1e-6)
    first = w64[:12].reshape(12, -1)
    assert (first[np.arange(12), np.abs(first).argmax(axis=1)] > 0).all()  # signs fixed
    grey = patch_whitening_(np.zeros((18, 1, 3, 3)), correlated_images(20)[..., :1])
    assert grey.shape == (18, 1, 3, 3) and np.isfinite(grey).all()


@pytest.mark.parametrize(
    ("weight", "images", "eps", "error", "message"),
    [
        (np.zeros((24, 3, 2, 2)), np.zeros((4, 8, 8, 3), np.uint8), 5e-4, TypeError,
         r"images must be a float NumPy array \(scale uint8 .*\), got uint8"),
        ([[0.0]], np.zeros((4, 8, 8, 3)), 5e-4, TypeError, "weight must be a float NumPy"),
        (np.zeros((24, 3, 2, 2)), np.zeros((8, 8, 3)), 5e-4, ValueError,
         r"images must be \(N, H, W, C\), got shape \(8, 8, 3\)"),
        (np.zeros((24, 1, 2, 2)), np.zeros((4, 8, 8, 3)), 5e-4, ValueError,
         r"weight must be \(2 \* C \* KH \* KW, C, KH, KW\) with C = 3 .*\(24, 1, 2, 2\)"),
        (np.zeros((12, 3, 2, 2)), np.zeros((4, 8, 8, 3)), 5e-4, ValueError,
         r"needs 2 \* C \* KH \* KW = 24 output channels .*got shape \(12, 3, 2, 2\)"),
        (np.zeros((24, 3, 2, 2)), np.zeros((1, 2, 2, 3)), 5e-4, ValueError,
         r"at least 13 patches of 2x2 .* have 1"),
        (np.zeros((24, 3, 2, 2)), np.zeros((4, 8, 8, 3)), 0.0, ValueError,
         "eps must be a finite number > 0, got 0.0"),
    ],
)  # fmt: skip
def test_patch_whitening_errors_are_clear(weight, images, eps, error, message):
    with pytest.raises(error, match=message):
        patch_whitening_(weight, images, eps=eps)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("shape", "groups"),
    [((4, 4, 3, 3), 1), ((6, 2, 3, 3), 1), ((2, 5, 3, 3), 1), ((6, 2, 3, 3), 2),
     ((4, 3, 5), 1), ((4, 2, 3, 3, 3), 2), ((4, 4, 2, 2), 1)],
)  # fmt: skip
def test_dirac_matches_pytorch(shape, groups):
    torch = pytest.importorskip("torch")
    ours = dirac_(np.random.default_rng(0).random(shape), groups=groups)
    reference = torch.nn.init.dirac_(torch.empty(shape, dtype=torch.float64), groups=groups)
    np.testing.assert_array_equal(ours, reference.numpy())


def test_dirac_passes_the_input_through_a_same_padded_conv():
    conv = gn.Conv2d(3, 5, 3, padding=1, dtype="float64")
    drawn = conv.weight.value[3:].copy()
    dirac_(conv.weight.value[:3])  # airbench's use: identity in the first C_in filters only
    x = np.random.default_rng(1).random((2, 6, 6, 3))
    np.testing.assert_array_equal(conv.forward(x)[..., :3], x)
    np.testing.assert_array_equal(conv.weight.value[3:], drawn)


def test_dirac_errors_are_clear():
    with pytest.raises(TypeError, match="dirac_ weight must be a NumPy array, got list"):
        dirac_([[[0.0]]])
    with pytest.raises(ValueError, match=r"1 to 3 kernel axes, got shape \(2, 2\)"):
        dirac_(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="groups must be a positive divisor of C_out = 4, got 3"):
        dirac_(np.zeros((4, 2, 3, 3)), groups=3)
