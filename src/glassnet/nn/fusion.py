"""Fusion: a convolution's stores take the layers after it that act on each number alone.

Where a ``Conv2d``'s output goes only to a ``BatchNorm2d`` in evaluation mode, an ``Add`` of
two tensors or a ``ReLU`` (in that order, each optional, each the only reader of the output
before it), ``Model`` and ``Sequential`` run the chain as one ``Conv2d.forward_chwn`` call
with a ``Finish`` (``glassnet/functional/finish.py``): each layer acts on each sum as the
convolution stores it, and the activation is written once instead of once per layer.

In training the BatchNorm stays apart: its backward needs the convolution's own output, and
its batch statistics the whole of it. The Add's and the ReLU's backward need only the count of
terms and the output, which the fused forward keeps (``_keep_fused``), and the convolution's
own backward needs only its input; so ``relu(conv(x) + shortcut)`` fuses in training too. In
inference (``no_grad()``) the evaluation BatchNorm joins. The numbers are those of the layers
run one by one (tests/nn/test_fusion.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from glassnet.functional.finish import Finish
from glassnet.nn.layers import Conv2d, ReLU
from glassnet.nn.merge import Add
from glassnet.nn.module import Module
from glassnet.nn.normalization import BatchNorm2d

#: One layer call, as a container runs it: (layer, the tensors it reads, the tensor it writes).
Step = tuple[Module, Sequence[int], int]

M = TypeVar("M", bound=Module)


@dataclass(frozen=True)
class Chain:
    """A convolution and the layers that run in its stores, the steps they are (the
    container's call order), and the tensors the chain reads."""

    conv: Conv2d
    folded: tuple[Module, ...]  # in order: a BatchNorm2d, an Add, a ReLU (each optional)
    steps: tuple[int, ...]  # the convolution's, then the folded layers'
    reads: int  # the convolution's input
    residual: int | None  # the Add's other input

    def run(self, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """The chain's output, from its convolution's input ``x`` and the Add's other input
        ``residual`` (both in the compute layout); each layer keeps what its backward needs
        (nothing inside ``no_grad()``)."""
        norm = self._folded(BatchNorm2d)
        affine = None if norm is None else norm.eval_affine()
        scale, shift = affine if affine is not None else (None, None)
        relu = self._folded(ReLU) is not None
        out = self.conv.forward_chwn(x, Finish(None, scale, shift, residual, relu))
        for layer in self.folded:
            layer._keep_fused(out)  # type: ignore[attr-defined]
        return out

    def _folded(self, kind: type[M]) -> M | None:
        return next((layer for layer in self.folded if isinstance(layer, kind)), None)


def chains(
    steps: Sequence[Step], returned: Collection[int], backward_follows: bool
) -> dict[int, Chain]:
    """The chains to fuse, keyed by their last step (where the container runs them: every
    tensor they read is computed by then).

    After a ``Conv2d``, in order and each optional: a ``BatchNorm2d`` in evaluation (with
    running statistics; not where a backward follows), an ``Add`` of two tensors, a ``ReLU``;
    each joins when it is the only reader of the output before it, which the container does
    not return (``returned``). An ``Add`` joins one chain at most; its other input is the
    chain's residual.
    """
    readers = Counter(t for _, reads, _ in steps for t in reads)
    reader = {t: k for k, (_, reads, _) in enumerate(steps) for t in reads
              if readers[t] == 1 and t not in returned}  # fmt: skip

    def after(k: int, kind: type[Module]) -> int | None:
        """The step that alone reads step k's output, if it is a ``kind`` layer."""
        j = reader.get(steps[k][2])
        return j if j is not None and type(steps[j][0]) is kind else None

    found: dict[int, Chain] = {}
    claimed: set[int] = set()  # Add steps already in a chain
    for k, (conv, reads, _) in enumerate(steps):
        if type(conv) is not Conv2d:
            continue
        folded: list[int] = []
        last = k  # the chain's last step so far
        norm = after(last, BatchNorm2d)
        if norm is not None and not backward_follows:
            layer = steps[norm][0]
            if isinstance(layer, BatchNorm2d) and not layer.uses_batch_stats:
                folded.append(last := norm)
        add = after(last, Add)
        residual = None
        if add is not None and len(steps[add][1]) == 2 and add not in claimed:
            residual = next(t for t in steps[add][1] if t != steps[last][2])
            folded.append(last := add)
            claimed.add(add)
        relu = after(last, ReLU)
        if relu is not None:
            folded.append(relu)
        if folded:
            layers = tuple(steps[j][0] for j in folded)
            found[folded[-1]] = Chain(conv, layers, (k, *folded), reads[0], residual)
    return found
