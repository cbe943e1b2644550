"""The one rule for image layouts inside a model, shared by ``Sequential`` and ``Model``.

Models take and return images as (N, H, W, C). Layers with ``compute_layout = True`` also run
on (C, H, W, N) (see ``glassnet.functional._windows``), so a container hands images from one
such layer to the next in that layout and converts only where a layer needs the public one
(or at the model's edges). A flag travels with each array: ``chwn`` says that the array, if
it is a 4-D image batch, is in the compute layout (other arrays, such as (N, F) features, have
a single layout).

A layer runs in the compute layout when it offers one and all its inputs are image batches;
backward then runs in the layout its forward ran in, with the conversions in reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glassnet.functional._windows import to_chwn, to_nhwc
from glassnet.nn.module import Module


def convert(x: np.ndarray, chwn: bool, want_chwn: bool) -> np.ndarray:
    """``x`` in the wanted layout (a copy when it changes; only 4-D image batches change)."""
    if x.ndim != 4 or chwn == want_chwn:
        return x
    return to_chwn(x) if want_chwn else to_nhwc(x)


def runs_chwn(layer: Module, xs: Sequence[np.ndarray]) -> bool:
    """Whether ``layer`` runs on ``xs`` in the compute layout: it offers it, and all are images."""
    return layer.compute_layout and all(x.ndim == 4 for x in xs)


def forward(
    layer: Module, xs: Sequence[np.ndarray], chwn: Sequence[bool]
) -> tuple[np.ndarray, bool]:
    """Run ``layer`` on its inputs in the layout it computes in.

    Args:
        layer: the layer; a ``multi_input`` layer gets the list ``xs``, any other ``xs[0]``.
        xs: its input arrays; ``chwn``: for each, whether it is in the compute layout.

    Returns:
        ``(out, ran_chwn)``: the output, in the compute layout when ``ran_chwn`` (and 4-D).
    """
    use_chwn = runs_chwn(layer, xs)
    xs = [convert(x, c, use_chwn) for x, c in zip(xs, chwn, strict=True)]
    arg = xs if layer.multi_input else xs[0]
    return (layer.forward_chwn(arg) if use_chwn else layer.forward(arg)), use_chwn


def backward(
    layer: Module,
    dout: np.ndarray,
    dout_chwn: bool,
    ran_chwn: bool,
    input_grad: bool = True,
) -> list[np.ndarray] | None:
    """The input gradients of ``layer``'s last ``forward``, in the layout ``ran_chwn`` says.

    Args:
        dout: ``dL/d(output)``; ``dout_chwn``: whether it is in the compute layout.
        ran_chwn: what ``forward`` returned: the layout the layer ran in, and so the layout
            of the gradients returned.
        input_grad: ``False`` lets a compute-layout layer skip its input gradients (it still
            accumulates its parameter gradients); the result is then ``None``.

    Returns:
        One gradient per input (a list even for a single-input layer), or ``None``.
    """
    dout = convert(dout, dout_chwn, ran_chwn)
    if ran_chwn:
        dx = layer.backward_chwn(dout, input_grad)
    else:
        dx = layer.backward(dout)
    if dx is None:
        return None
    return list(dx) if layer.multi_input else [dx]
