"""PyTorch as the oracle: run an op in NCHW on the CPU and return NHWC NumPy results.

Imported only by tests that are marked ``torch`` and have already done
``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import numpy as np
import torch

torch.set_num_threads(1)


def tensor(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


def nhwc_to_nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def nchw_to_nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def run_nhwc(fn, x: np.ndarray, dout: np.ndarray, *params: np.ndarray):
    """Apply ``fn(x_nchw, *params)`` in torch; return (out, dx, dparams) in glassnet's layouts."""
    xt = tensor(nhwc_to_nchw(x), grad=True)
    pts = [tensor(p, grad=True) for p in params]
    out = fn(xt, *pts)
    out.backward(tensor(nhwc_to_nchw(dout) if dout.ndim == 4 else dout))
    out_np = nchw_to_nhwc(out) if out.dim() == 4 else out.detach().numpy()
    return out_np, nchw_to_nhwc(xt.grad), [p.grad.numpy() for p in pts]
