"""The speed-minded code paths give the same numbers as PyTorch and as the plain paths.

Max pooling finds each window's winner again in backward (first maximum in row-major order),
a one-channel convolution copies its windows kernel-offset-major, and a model can skip the
gradient of its input: each is checked here where it differs from the general case.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, rel_error

from glassnet.functional import max_pool2d_backward, max_pool2d_forward


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool_ties_after_relu_route_like_pytorch(dtype, kernel, stride, padding):
    """After ReLU many windows are all zero: each tie goes to one input, PyTorch's choice."""
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    rng = np.random.default_rng(3)
    x = np.maximum(rng.normal(size=(3, 9, 8, 4)), 0).astype(dtype)
    x[0, :4, :4, :] = 0.0  # whole windows of zeros
    x[1, 2:6, 2:6, 1] = 1.5  # whole windows of one positive value
    out, cache = max_pool2d_forward(x, kernel, stride, padding)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx = max_pool2d_backward(dout, cache)

    def torch_pool(xt):
        return torch.nn.functional.max_pool2d(xt, kernel, stride, padding)

    t_out, t_dx, _ = run_nhwc(torch_pool, x, dout)
    np.testing.assert_array_equal(out, t_out)
    assert rel_error(dx, t_dx) < TOL_VS_TORCH[dtype]
