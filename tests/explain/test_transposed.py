"""``explain transposed``: the printed spreading and sums are conv_transpose2d's numbers, and
they equal conv2d_backward's input gradient."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import explain
from glassnet import functional as F
from glassnet.cli import main
from tests.explain.conftest import find_line, parse_sum


def test_default_spreads_two_times_the_kernel_and_equals_the_conv_gradient():
    result = explain.transposed()
    text = str(result)
    K = np.array([[1, 0, -1], [2, 1, 0], [0, 1, 2]])
    expected_spread = np.zeros((5, 5))
    expected_spread[0:3, 2:5] = 2 * K  # X[0, 1] = 2, two columns to the right (stride 2)
    np.testing.assert_array_equal(result.spread, expected_spread)
    assert "One value alone: X[0, 1] = 2 puts 2 × K at rows 0..2, columns 2..4:" in text
    assert "H_out = (2-1)×2 - 2×0 + (3-1) + 0 + 1 = 5" in text
    # (2, 2) is where all four copies overlap
    assert result.position == (2, 2) and len(result.terms) == 4
    assert find_line(text, "Y[2, 2] =") == "Y[2, 2] = 1×2 + 2×0 + 3×(-1) + 4×1 = 3"
    np.testing.assert_array_equal(result.y, result.conv_dx)
    assert "the same numbers as Y (exactly)." in text
    assert "dL/dI[i*2 + m, j*2 + n] += dL/dO[i, j] × K[m, n]" in text


@pytest.mark.parametrize("seed", range(10))
def test_printed_sum_is_the_output_and_the_conv_input_gradient(seed):
    rng = np.random.default_rng(seed)
    H, W, KH, KW = (int(v) for v in rng.integers(1, 4, size=4))
    S = int(rng.integers(1, 4))
    P = int(rng.integers(0, 2))
    OP = int(rng.integers(0, S))
    image = rng.integers(-5, 6, size=(H, W)).astype(float)
    kernel = rng.integers(-3, 4, size=(KH, KW)).astype(float)
    H_out, W_out = ((n - 1) * S - 2 * P + k + OP for n, k in ((H, KH), (W, KW)))
    if min(H_out, W_out) < 1:
        with pytest.raises(ValueError, match="leaves no output"):
            explain.transposed(image, kernel, S, P, OP, (0, 0))
        return
    at = (int(rng.integers(H_out)), int(rng.integers(W_out)))
    result = explain.transposed(image, kernel, S, P, OP, (0, 0), at)
    expected = F.conv_transpose2d_forward(
        image[None, :, :, None], kernel[None, None], None, S, P, OP
    )
    np.testing.assert_array_equal(result.y, expected[0][0, :, :, 0])
    np.testing.assert_array_equal(result.conv_dx, result.y)
    text = str(result)
    if result.terms:
        pairs, _, total = parse_sum(find_line(text, f"Y[{at[0]}, {at[1]}] ="))
        assert sum(a * b for a, b in pairs) == total == result.y[at]
        assert [(image[i], kernel[m]) for i, m in result.terms] == pairs
    else:
        assert result.y[at] == 0 and "No copy reaches" in text
    # the single value's copy is the whole output of an input holding that value alone
    alone = np.zeros_like(image)
    alone[0, 0] = image[0, 0]
    single = F.conv_transpose2d_forward(alone[None, :, :, None], kernel[None, None], None, S, P, OP)
    np.testing.assert_array_equal(result.spread, single[0][0, :, :, 0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": (2, 0)}, r"position \(2, 0\) is outside the 2x2 input"),
        ({"at": (0, 5)}, r"position \(0, 5\) is outside the 5x5 output"),
        ({"stride": 2, "output_padding": 2}, "output_padding must be smaller than max"),
        ({"kernel": "wobbly"}, "unknown kernel 'wobbly'"),
        ({"image": "1,2;3"}, "rows have different lengths"),
    ],
)
def test_errors_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        explain.transposed(**kwargs)


def test_cli_prints_it_and_reports_errors_in_one_line(capsys):
    code = main(["explain", "transposed", "--image", "1,2;3,4", "--kernel", "1,1;1,1",
                 "--stride", "1", "--spread", "1,1"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert find_line(out, "Y[1, 1] =") == "Y[1, 1] = 1×1 + 2×1 + 3×1 + 4×1 = 10"
    assert "One value alone: X[1, 1] = 4 puts 4 × K at rows 1..2, columns 1..2:" in out
    code = main(["explain", "transposed", "--padding", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and err == "glassnet: error: padding must be >= 0, got -1\n"
