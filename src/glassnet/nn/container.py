"""``Sequential``: a model as a list of layers; backward walks the list in reverse."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from glassnet.nn import fusion, layout
from glassnet.nn.layers import MaxPool2d, ReLU
from glassnet.nn.module import Module, Parameter, keeps_for_backward, layer_from_config
from glassnet.nn.validation import check_array, check_finite, check_shape


class Sequential(Module):
    """Layers applied one after another.

    Math:
        forward:  a_0 = x,  a_l = f_l(a_{l-1}),  output a_L
        backward: g_L = dL/da_L,  g_{l-1} = f_l.backward(g_l)  (the chain rule, last layer first)

    Parameters are named ``"<index>.<name>"`` (``"0.weight"``, ``"0.bias"``, ...), as in
    PyTorch's ``nn.Sequential``.

    How it runs (the numbers are those of calling each layer in turn, checked by the tests):
    image batches pass between convolution, pooling and element-wise layers in the compute
    layout (C, H, W, N), converted once on the way in and once on the way out or at
    ``Flatten``; a ReLU just before a MaxPool2d runs just after it (they commute, and the ReLU
    then sees a quarter of the numbers); and ``backward(dout, input_grad=False)`` skips the
    gradient of the input images.

    Args:
        layers: the layers, applied in order.
        input_shape: optionally one sample's shape ``(H, W, C)`` (positive ints, each at most
            ``glassnet.nn.validation.MAX_WIDTH``); then ``forward`` rejects
            other shapes with a clear message, and it travels with the model's config into model
            files (``summary``, ``predict`` and ONNX export use it). Without it, ``gn.save``
            records the shape of the first batch ``forward`` ran on (``first_input_shape``).

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 4, 3, rng=0), gn.ReLU(), gn.Flatten(),
        ...                        gn.Linear(4 * 6 * 6, 10, rng=0)])
        >>> model.forward(np.zeros((2, 8, 8, 1), np.float32)).shape
        (2, 10)
        >>> model.num_parameters()
        1490
    """

    def __init__(self, layers: Sequence[Module], input_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential layer {i} must be a glassnet layer, got {type(layer).__name__}"
                )
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        first_at: dict[int, int] = {}
        for i, layer in enumerate(layers):
            j = first_at.setdefault(id(layer), i)
            if j != i and (layer.parameters() or layer.buffers):
                # a list of layers has one name per position: shared weights need a graph
                raise ValueError(
                    f"Sequential layers {j} and {i} are the same {type(layer).__name__} object, "
                    "which has weights: share a layer with gn.Model (call it twice), or use "
                    "two layers"
                )
        self.layers = layers
        self.input_shape = (
            None if input_shape is None else check_shape("Sequential input_shape", input_shape)
        )
        self.first_input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run every layer; the input is checked once (array, float, shape, finite) up front."""
        check_array(x, "Sequential input")
        if self.input_shape is None and self.first_input_shape is None:
            self.first_input_shape = x.shape[1:]  # gn.save records it when input_shape is None
        if self.input_shape is not None and x.shape[1:] != self.input_shape:
            raise ValueError(
                f"this model expects inputs of shape (N, {', '.join(map(str, self.input_shape))})"
                f", got {x.shape}"
            )
        check_finite(x, "Sequential input")
        chwn = False  # is x, if an image batch, in the compute layout (C, H, W, N)?
        trace = []  # per step, in the order run: (layer index, ran in the compute layout)
        caches: list[Any] = [None] * len(self.layers)
        order = self._run_order()
        steps = [(self.layers[i], [p], p + 1) for p, i in enumerate(order)]  # tensor p: input p
        fused = fusion.chains(steps, {len(order)}, backward_follows=keeps_for_backward())
        waiting = {p for chain in fused.values() for p in chain.steps[:-1]}
        for p, i in enumerate(order):
            if p in fused:  # a convolution with the layers after it in its stores, run here
                first = order[fused[p].steps[0]]
                conv = self.layers[first]
                x = _with_position(first, conv, fused[p].run, layout.convert(x, chwn, True))
                chwn, ran = True, [order[q] for q in fused[p].steps]
            elif p in waiting:
                continue  # it runs with its chain, x stays the chain's input
            else:
                x, chwn = _with_position(i, self.layers[i], layout.forward, self.layers[i], [x],
                                         [chwn])  # fmt: skip
                ran = [i]
            for j in ran:
                trace.append((j, chwn))
                caches[j] = self.layers[j]._call_state()
        # the layers' caches travel with this call's, so that a Sequential called twice in a
        # graph (or a layer in it called elsewhere too) still runs each backward on its own call
        return self._keep(layout.convert(x, chwn, False), (trace, caches))

    def _run_order(self) -> list[int]:
        """The layer indices in the order forward runs them.

        A ReLU just before a MaxPool2d runs just after it: max(relu(x)) = relu(max(x)) exactly,
        because both are monotone, and so are their gradients (each window's first maximum
        gets dY when it is positive, nothing gets it otherwise), while the ReLU then touches
        one number per window instead of every number (and its gradient too, which a ReLU in
        a convolution's stores, ``nn/fusion.py``, would take at full size).
        """
        order = list(range(len(self.layers)))
        for i in range(len(order) - 1):
            if type(self.layers[order[i]]) is ReLU and type(self.layers[order[i + 1]]) is MaxPool2d:
                order[i], order[i + 1] = order[i + 1], order[i]
        return order

    def backward(  # type: ignore[override]  # None only when asked: input_grad=False
        self, dout: np.ndarray, input_grad: bool = True
    ) -> np.ndarray | None:
        """Propagate ``dL/d(output)`` back through every layer; returns ``dL/d(input)``.

        Each layer runs backward in the layout its forward ran in, with the same conversions
        in reverse order.

        Args:
            dout: the loss gradient with respect to the model's output: a float array of the
                output's shape, all finite (checked once here, not again in each layer).
            input_grad: with ``False`` (what training needs), stop at the first layer that has
                parameters: it accumulates its parameter gradients only, the layers before it
                are skipped, and ``None`` is returned. For LeNet-5 this saves the first
                convolution's input gradient.
        """
        trace, caches = self._take_cache()
        dout = self._check_dout(dout)
        check_finite(dout, "Sequential.backward")
        first = 0 if input_grad else next((i for i, l in enumerate(self.layers) if l.params), 0)
        chwn = False  # dout arrives in the public layout
        for i, ran_chwn in reversed(trace):
            if i < first:
                break  # no parameters before the first layer that has some
            layer = self.layers[i]
            layer._set_call_state(caches[i])
            wants_dx = input_grad or i > first
            dxs = _with_position(i, layer, layout.backward, layer, dout, chwn, ran_chwn, wants_dx)
            if dxs is None:
                return None
            dout, chwn = dxs[0], ran_chwn
        if not input_grad:
            return None
        return layout.convert(dout, chwn, False)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for i, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{i}.")

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for i, layer in enumerate(self.layers):
            yield from layer.named_buffers(f"{prefix}{i}.")

    def children(self) -> list[Module]:
        return list(self.layers)

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def astype(self, dtype: np.dtype | type) -> Sequential:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "layers": [
                {"class": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ]
        }
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        layers = [layer_from_config(spec) for spec in config["layers"]]
        return cls(layers, input_shape=config.get("input_shape"))

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def summary(self, input_shape: Sequence[int] | None = None) -> str:
        """A table of each layer's output shape and parameter count for one input shape.

        Args:
            input_shape: one sample's shape, e.g. ``(28, 28, 1)``; defaults to the model's.

        Example:
            >>> import glassnet as gn
            >>> print(gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)]).summary((2, 2, 1)))
            layer          output shape       params
            0 Flatten      (4,)                    0
            1 Linear       (2,)                   10
            total                                 10
        """
        input_shape = input_shape or self.input_shape
        if input_shape is None:
            raise ValueError("summary needs an input_shape (this model does not record one)")
        dtype = next((p.dtype for p in self.parameters()), np.dtype("float32"))
        x = np.zeros((1, *input_shape), dtype=dtype)
        rows = [("layer", "output shape", "params")]
        was_training = self.training
        self.eval()
        try:
            for i, layer in enumerate(self.layers):
                x = _with_position(i, layer, layer.forward, x)
                name = f"{i} {type(layer).__name__}"
                rows.append((name, str(x.shape[1:]), str(layer.num_parameters())))
        finally:
            self.train(was_training)
        rows.append(("total", "", str(self.num_parameters())))
        # columns as wide as their widest cell: long layer names or shapes shift no column
        widths = [
            max(minimum, *(len(row[k]) for row in rows)) for k, minimum in enumerate((14, 16, 8))
        ]
        return "\n".join(f"{a:<{widths[0]}} {b:<{widths[1]}} {c:>{widths[2]}}" for a, b, c in rows)


def _with_position(i: int, layer: Module, method: Any, *args: Any) -> Any:
    """Call ``method(*args)``, prefixing any input error with the layer's position in the model."""
    try:
        return method(*args)
    except (ValueError, TypeError) as error:
        raise type(error)(f"Sequential layer {i} ({type(layer).__name__}): {error}") from error
