"""Layers that join graph branches (``Add``, ``Concatenate``) and ``Identity``.

``Add`` and ``Concatenate`` take a list of tensors: in a graph model they are called as
``gn.Add()([x, y])``; on arrays, ``forward([a, b])`` returns one array and ``backward(dout)``
returns one gradient per input, in the inputs' order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glassnet import functional as F
from glassnet.nn.module import Module, kept
from glassnet.nn.validation import check_array


def _check_inputs(xs: object, where: str) -> list[np.ndarray]:
    """A non-empty list of float arrays of one dtype and rank, or a clear error."""
    if not isinstance(xs, list | tuple) or not xs:
        raise TypeError(f"{where} expects a non-empty list of arrays, got {type(xs).__name__}")
    arrays = [check_array(x, f"{where} input {i}") for i, x in enumerate(xs)]
    for i, x in enumerate(arrays[1:], 1):
        if x.dtype != arrays[0].dtype or x.ndim != arrays[0].ndim:
            raise ValueError(
                f"{where} input {i} is {x.ndim}-D {x.dtype}, input 0 is "
                f"{arrays[0].ndim}-D {arrays[0].dtype}: all inputs must match"
            )
    return arrays


class Add(Module):
    """The element-wise sum of its inputs (a residual connection); wraps ``add_forward``.

    Math:
        y = x_1 + ... + x_k;  dL/dx_i = dL/dy for each input.

    Shape:
        Inputs: k >= 1 arrays of one shape (no broadcasting). Output: that shape.

    Example:
        >>> Add().forward([np.ones((1, 2)), np.ones((1, 2))])
        array([[2., 2.]])
    """

    multi_input = True
    compute_layout = True  # element-wise: any layout is its own

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        arrays = _check_inputs(xs, "Add")
        for i, x in enumerate(arrays[1:], 1):
            if x.shape != arrays[0].shape:
                raise ValueError(
                    f"Add input {i} has shape {x.shape}, input 0 has {arrays[0].shape}: "
                    "Add needs equal shapes"
                )
        out, cache = F.add_forward(arrays)
        self._cache = kept(cache)
        return out

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return F.add_backward(dout, self._take_cache())

    def forward_chwn(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        return self.forward(xs)

    def _keep_fused(self, out: np.ndarray) -> None:
        """Keep for backward what a forward of two inputs keeps (their count), where a
        convolution's stores computed the sum (``glassnet/nn/fusion.py``)."""
        self._cache = kept(2)

    def backward_chwn(  # type: ignore[override]
        self, dout: np.ndarray, input_grad: bool = True
    ) -> list[np.ndarray] | None:
        return self.backward(dout) if input_grad else None


class Concatenate(Module):
    """Join its inputs along the channel axis (a U-Net skip); wraps ``concatenate_forward``.

    Math:
        y[..., :] = [x_1 | ... | x_k] (channels of x_1 first);  dL/dx_i = its slice of dL/dy.

    Shape:
        Inputs: (N, H, W, C_i) images, or (N, F_i) vectors, equal but for the last axis.
        Output: (N, H, W, sum C_i) or (N, sum F_i). In the compute layout (C, H, W, N) the
        channel axis is the first, where each input is one contiguous block.

    Example:
        >>> Concatenate().forward([np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4, 5))]).shape
        (2, 4, 4, 8)
    """

    multi_input = True
    compute_layout = True

    def forward(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        return self._forward(xs, -1)

    def backward(self, dout: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return F.concatenate_backward(dout, self._take_cache(), -1)

    def forward_chwn(self, xs: Sequence[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        return self._forward(xs, 0)

    def backward_chwn(  # type: ignore[override]
        self, dout: np.ndarray, input_grad: bool = True
    ) -> list[np.ndarray] | None:
        return F.concatenate_backward(dout, self._take_cache(), 0) if input_grad else None

    def _forward(self, xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
        arrays = _check_inputs(xs, "Concatenate")
        first = arrays[0].shape
        for i, x in enumerate(arrays[1:], 1):
            if np.delete(x.shape, axis).tolist() != np.delete(first, axis).tolist():
                shapes = [a.shape if axis == -1 else (a.shape[3], *a.shape[1:3], a.shape[0])
                          for a in (arrays[0], x)]  # fmt: skip
                raise ValueError(
                    f"Concatenate input {i} has shape {shapes[1]}, input 0 has {shapes[0]}: "
                    "all axes but the channels (last) must match"
                )
        out, cache = F.concatenate_forward(arrays, axis)
        self._cache = kept(cache)
        return out


class Identity(Module):
    """y = x; dL/dx = dL/dy. A placeholder (e.g. a shortcut with nothing to do). Shape: any.

    Example:
        >>> Identity().forward(np.ones(2))
        array([1., 1.])
    """

    compute_layout = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return check_array(x, "Identity")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return dout
