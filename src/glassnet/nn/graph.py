"""Symbolic tensors: how calling layers on ``gn.Input`` records a graph for ``gn.Model``.

``Input(shape)`` stands for a batch of samples of one shape. Calling a layer on it (or on
what such a call returned) runs nothing on data: it records a ``Node`` (the layer and the
tensors it was called on) and returns a new ``SymbolicTensor`` whose ``node`` is that call.
Every tensor points back to the call that made it, so the graph is built from its inputs
forward and can only be acyclic. ``Model(inputs, outputs)`` then walks back from the outputs.

The output's shape is found by running the layer once on a zero sample in eval mode, which
also checks at once that the layer fits its inputs (channels, sizes), with the layer's own
message.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from glassnet.nn.module import Module

#: Layer names: words joined by dots (``"conv1"``, ``"layer1.0.conv1"``), as PyTorch's
#: attribute paths, so that a model's parameter names can be those of a PyTorch module.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
#: The most numbers one sample of an ``Input`` may have (a zero sample is built from it).
MAX_SAMPLE_SIZE = 2**24

_creation = itertools.count()  # orders the calls: a node is always created after its inputs


class SymbolicTensor:
    """A placeholder for a batch in a graph under construction; holds no data.

    Attributes:
        shape: one sample's shape (the batch axis left out), e.g. ``(32, 32, 16)``.
        dtype: the dtype of the layers' trial run (float32 unless a layer holds float64).
        node: the layer call that computes it, or ``None`` for a model input.
    """

    __slots__ = ("dtype", "node", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, node: Node | None) -> None:
        self.shape, self.dtype, self.node = shape, dtype, node

    def __repr__(self) -> str:
        made_by = "Input" if self.node is None else type(self.node.layer).__name__
        return f"SymbolicTensor(shape={self.shape}, from {made_by})"


class Node:
    """One call of a layer in a graph: the layer, the tensors it read, the tensor it made.

    Attributes:
        layer: the layer object (a layer called twice appears in two nodes, with one set of
            weights).
        inputs: the tensors it was called on, in order.
        output: the tensor the call returned.
        name: the name given with ``layer(x, name=...)``, or ``None``.
        order: a creation counter; sorting nodes by it is a topological order.
    """

    __slots__ = ("inputs", "layer", "name", "order", "output")

    def __init__(
        self,
        layer: Module,
        inputs: list[SymbolicTensor],
        output: SymbolicTensor,
        name: str | None,
    ) -> None:
        self.layer, self.inputs, self.output, self.name = layer, inputs, output, name
        self.order = next(_creation)


def Input(shape: Sequence[int]) -> SymbolicTensor:  # noqa: N802  (a constructor, as Keras's)
    """A model input: one sample's shape, ``(H, W, C)`` for images or ``(F,)`` for vectors.

    Args:
        shape: 1 to 3 positive ints, at most ``MAX_SAMPLE_SIZE`` numbers in all.

    Example:
        >>> import glassnet as gn
        >>> x = gn.Input((8, 8, 1))
        >>> gn.Conv2d(1, 4, 3, rng=0)(x).shape
        (6, 6, 4)
    """
    if not isinstance(shape, list | tuple) or not (
        1 <= len(shape) <= 3
        and all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in shape
        )
    ):
        raise ValueError(
            f"Input shape must be one sample's shape, 1 to 3 positive ints such as (H, W, C) "
            f"or (F,), got {shape!r}"
        )
    shape = tuple(int(d) for d in shape)
    if np.prod(shape, dtype=np.int64) > MAX_SAMPLE_SIZE:
        raise ValueError(f"Input shape {shape} has more than {MAX_SAMPLE_SIZE} numbers per sample")
    return SymbolicTensor(shape, np.dtype("float32"), None)


def is_symbolic(x: object) -> bool:
    """Whether ``x`` is a symbolic tensor or a list holding one (a graph call, not a forward)."""
    if isinstance(x, list | tuple):
        return any(isinstance(t, SymbolicTensor) for t in x)
    return isinstance(x, SymbolicTensor)


def check_name(name: object, where: str) -> str:
    """A valid layer name (see ``NAME_PATTERN``), or a ValueError naming ``where``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{where} must be letters, digits and underscores, in parts joined by dots "
            f"(e.g. 'conv1' or 'layer1.0.conv1'), got {name!r}"
        )
    return name


def call_symbolic(layer: Module, x: Any, name: str | None) -> SymbolicTensor:
    """Record ``layer`` called on the symbolic tensor(s) ``x``; return its output tensor."""
    cls = type(layer).__name__
    many = isinstance(x, list | tuple)
    if many != layer.multi_input:
        wanted = "a list of tensors" if layer.multi_input else "one tensor, not a list"
        raise TypeError(f"{cls} takes {wanted}")
    inputs = list(x) if many else [x]
    for i, t in enumerate(inputs):
        if not isinstance(t, SymbolicTensor):
            raise TypeError(
                f"{cls} input {i} is a {type(t).__name__}: a graph call takes symbolic tensors "
                "only (from gn.Input or a layer called on one)"
            )
    if name is not None:
        check_name(name, f"{cls} name")
    # one dtype for the whole trial run, so that the shapes alone decide (a model may be
    # converted with astype after it is built): the layer's own, else the inputs' widest
    dtype = next((p.dtype for p in layer.parameters()), np.result_type(*(t.dtype for t in inputs)))
    zeros = [np.zeros((1, *t.shape), dtype) for t in inputs]
    state, training = layer._call_state(), layer.training
    layer.eval()  # Dropout draws nothing, normalization reads its running statistics
    try:
        out = layer.forward(zeros if many else zeros[0])
    except (ValueError, TypeError) as error:
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise type(error)(f"{cls} cannot take inputs of shape {shapes}: {error}") from error
    finally:
        layer._set_call_state(state)
        layer.train(training)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{cls} returns {type(out).__name__}: a graph layer returns one array")
    output = SymbolicTensor(out.shape[1:], out.dtype, None)
    output.node = Node(layer, inputs, output, name)
    return output
