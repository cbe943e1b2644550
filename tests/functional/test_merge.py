"""Add and Concatenate: forward and backward against finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet.functional._windows import to_chwn, to_nhwc
from glassnet.testing import numerical_gradient, relative_error

SHAPES = [(2, 3), (2, 4, 5, 3), (1, 3, 2, 1)]


def merge_inputs(rng, shape, count, concat):
    """``count`` arrays of ``shape``, with different channel counts when concatenating."""
    return [rng.normal(size=(*shape[:-1], shape[-1] + (i if concat else 0))) for i in range(count)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("layer_cls", [gn.Add, gn.Concatenate])
def test_merge_gradients_match_finite_differences(layer_cls, count, shape):
    rng = np.random.default_rng(count)
    xs = merge_inputs(rng, shape, count, layer_cls is gn.Concatenate)
    layer = layer_cls()
    dout = rng.normal(size=layer.forward(xs).shape)
    dxs = layer.backward(dout)
    assert len(dxs) == count
    for x, dx in zip(xs, dxs, strict=True):
        numeric = numerical_gradient(lambda: float(np.sum(layer.forward(xs) * dout)), x)
        assert relative_error(dx, numeric) < TOL_GRADCHECK


@pytest.mark.parametrize("layer_cls", [gn.Add, gn.Concatenate, gn.Identity])
def test_compute_layout_gives_the_public_layout_numbers(layer_cls):
    rng = np.random.default_rng(0)
    xs = merge_inputs(rng, (2, 4, 5, 3), 2, layer_cls is gn.Concatenate)
    layer = layer_cls()
    arg = xs if layer.multi_input else xs[0]
    out = layer.forward(arg)
    dout = rng.normal(size=out.shape)
    dxs = layer.backward(dout)
    chwn_arg = [to_chwn(x) for x in xs] if layer.multi_input else to_chwn(xs[0])
    assert np.array_equal(to_nhwc(layer.forward_chwn(chwn_arg)), out)
    chwn_dxs = layer.backward_chwn(to_chwn(dout))
    if not layer.multi_input:
        dxs, chwn_dxs = [dxs], [chwn_dxs]
    for dx, chwn_dx in zip(dxs, chwn_dxs, strict=True):
        assert np.array_equal(to_nhwc(chwn_dx), dx)
    if layer.multi_input:  # a merge layer skips its input gradients when asked to
        assert layer.backward_chwn(to_chwn(dout), input_grad=False) is None


def test_merge_errors_are_clear():
    with pytest.raises(ValueError, match=r"Add input 1 has shape \(2, 4\), input 0 has \(2, 3\)"):
        gn.Add().forward([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"Concatenate input 1 has shape \(2, 3, 3, 1\), input 0"):
        gn.Concatenate().forward([np.zeros((2, 2, 2, 1)), np.zeros((2, 3, 3, 1))])
    with pytest.raises(ValueError, match="input 1 is 2-D float32, input 0 is 2-D float64"):
        gn.Add().forward([np.zeros((2, 3)), np.zeros((2, 3), np.float32)])
    with pytest.raises(TypeError, match="expects a non-empty list of arrays, got ndarray"):
        gn.Concatenate().forward(np.zeros((2, 3)))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(5))
def test_merge_matches_pytorch(dtype, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, size=4))
    count = int(rng.integers(1, 4))
    for layer_cls in (gn.Add, gn.Concatenate):
        concat = layer_cls is gn.Concatenate
        xs = [x.astype(dtype) for x in merge_inputs(rng, shape, count, concat)]
        layer = layer_cls()
        out = layer.forward(xs)
        dout = rng.normal(size=out.shape).astype(dtype)
        dxs = layer.backward(dout)
        ts = [torch.tensor(x, requires_grad=True) for x in xs]
        t_out = torch.cat(ts, dim=-1) if concat else sum(ts[1:], ts[0])
        t_out.backward(torch.tensor(dout))
        errors = [rel_error(out, t_out.detach().numpy())]
        errors += [rel_error(dx, t.grad.numpy()) for dx, t in zip(dxs, ts, strict=True)]
        record_torch_error(layer_cls.__name__, dtype, max(errors))
        assert max(errors) <= TOL_VS_TORCH[dtype]
