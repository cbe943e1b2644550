"""``pad_chwn`` (border filled, interior copied once) equals NumPy's ``np.pad``."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.functional._windows import pad_chwn, unpad_chwn


@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((0, 2), (3, 0)), ((2, 0), (0, 1))])
@pytest.mark.parametrize("value", [0.0, -np.inf])
def test_pad_equals_np_pad(padding, value):
    x = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype(np.float32)
    got = pad_chwn(x, padding, value)
    want = np.pad(x, ((0, 0), *padding, (0, 0)), constant_values=value)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(unpad_chwn(got, padding), x)


def test_no_padding_returns_the_input():
    x = np.zeros((1, 2, 2, 1))
    assert pad_chwn(x, ((0, 0), (0, 0))) is x


@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((0, 2), (3, 0)), ((0, 0), (0, 0))])
def test_rows_first_pads_into_a_new_row_major_array(padding):
    """``rows_first``: the same values, in memory as (H_p, C, W_p, N), always a new array."""
    x = np.random.default_rng(1).normal(size=(3, 4, 5, 2))
    got = pad_chwn(x, padding, rows_first=True)
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), *padding, (0, 0))))
    assert got.transpose(1, 0, 2, 3).flags.c_contiguous
    assert not np.shares_memory(got, x)
