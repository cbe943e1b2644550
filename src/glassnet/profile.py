"""Where a model spends its time: each layer's forward and backward pass, timed in place.

``profile_model`` runs a model (a ``Sequential`` or a ``Model``) on a random batch for a few
steps (training: forward, loss, backward; or inference: forward) and reports the median
milliseconds of each layer and its share of the step. For convolutions and dense layers it
also gives the rate of their arithmetic in GFLOP/s, to compare with the machine's
matrix-product rate. ``time_layers`` times any step function of your own (with an optimizer,
say) the same way.

The layers get timing wrappers as instance attributes while the steps run, and lose them
afterwards; the model's code and numbers are untouched.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from glassnet.nn.layers import Conv2d, Linear
from glassnet.nn.loss import CrossEntropyLoss
from glassnet.nn.model import Model
from glassnet.nn.module import Module
from glassnet.nn.upsampling import ConvTranspose2d
from glassnet.train.checkpoint import layer_generators

#: The methods wrapped, by the pass they belong to: containers run image layers through
#: their compute-layout methods, and may ask a model's first layer for no input gradient.
_TIMED = {
    "forward": "forward",
    # a Conv2d's time includes the layers the containers fold into its stores
    # (glassnet/nn/fusion.py); theirs is then 0
    "forward_chwn": "forward",
    "backward": "backward",
    "backward_chwn": "backward",
}


@dataclass
class LayerTime:
    """One layer's median times over the profiled steps (all its calls in a step added up, for
    a layer a ``Model`` calls more than once).

    Attributes:
        name: ``"<index> <class>"`` in a ``Sequential`` (``"0 Conv2d"``), ``"<name> <class>"``
            in a ``Model`` (``"conv1 Conv2d"``).
        forward_s, backward_s: median seconds (0.0 where it never ran, e.g. backward in
            inference).
        flops: forward floating-point operations per step (0 for layers without products).
        input_grad: whether backward computed the input gradient or only the parameter
            gradients (a model's first layer in training): 2 or 1 products of the forward's
            size.
    """

    name: str
    forward_s: float
    backward_s: float
    flops: int
    input_grad: bool

    @property
    def backward_flops(self) -> int:
        """dX and dW each cost a product of the forward's size; dW alone one."""
        return self.flops * (2 if self.input_grad else 1) if self.backward_s else 0


@dataclass
class Profile:
    """Per-layer times of a model and the median time of a whole step.

    Attributes:
        layers: one ``LayerTime`` per layer, in model order.
        step_s: median seconds of a whole step (loss, optimizer and Python included).
        batch_size: images per step.
    """

    layers: list[LayerTime]
    step_s: float
    batch_size: int

    def table(self) -> str:
        """The profile as a text table; "rest" is the step minus its layers (loss, Python...).

        Medians do not add up exactly, so "rest" can be slightly off (or negative) under load.
        A layer that runs inside the convolution before it (``glassnet/nn/fusion.py``: a ReLU,
        a residual Add, in inference an evaluation BatchNorm) shows no forward time: it is in
        the convolution's.
        """
        w = max([16, *(len(t.name) + 1 for t in self.layers)])
        rows = [
            f"{'layer':<{w}} {'fwd ms':>8} {'bwd ms':>8} {'share':>6} "
            f"{'fwd GFLOP/s':>12} {'bwd GFLOP/s':>12}"
        ]
        for t in self.layers:
            rates = [_rate(t.flops, t.forward_s), _rate(t.backward_flops, t.backward_s)]
            share = (t.forward_s + t.backward_s) / self.step_s
            rows.append(
                f"{t.name:<{w}} {t.forward_s * 1e3:>8.2f} {t.backward_s * 1e3:>8.2f} "
                f"{share:>6.1%} {rates[0]:>12} {rates[1]:>12}".rstrip()
            )
        rest = self.step_s - sum(t.forward_s + t.backward_s for t in self.layers)
        rows.append(f"{'rest':<{w}} {rest * 1e3:>8.2f} {'':>8} {rest / self.step_s:>6.1%}")
        rows.append(
            f"{'step':<{w}} {self.step_s * 1e3:>8.2f} ms, "
            f"{self.batch_size / self.step_s:,.0f} images/s at batch {self.batch_size}"
        )
        return "\n".join(rows)


def _rate(flops: int, seconds: float) -> str:
    return f"{flops / seconds / 1e9:.1f}" if flops and seconds else ""


def layer_flops(layer: Module, out_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of one call of a convolution or dense layer (0 for any other layer).

    Two FLOPs per multiply-add (a multiply and an add per weight and position), the products
    only: bias additions and the other layers' elementwise work are not counted.

    Math:
        Conv2d with G groups: 2 * N * H_out * W_out * C_out * (C_in / G) * KH * KW (each output
        reads the C_in / G channels of its group).
        ConvTranspose2d with G groups: 2 * N * H * W * C_in * (C_out / G) * KH * KW (each input
        value is spread by the C_out / G kernels of its group), where H, W are the input's
        size: H = (H_out - 1 + 2P - D(KH - 1) - output_padding) / S + 1, likewise W.
        Linear: 2 * N * F_out * F_in.

    Args:
        out_shape: the call's output shape, (N, H_out, W_out, C_out) or (N, F_out).

    Example:
        >>> layer_flops(Conv2d(1, 6, 5, padding=2), (1, 28, 28, 6))
        235200
        >>> layer_flops(ConvTranspose2d(4, 2, 2, stride=2), (1, 8, 8, 2))  # 4x4x4 input
        1024
    """
    if isinstance(layer, Conv2d):
        per_output = layer.in_channels // layer.groups * int(np.prod(layer.kernel_size))
        return 2 * int(np.prod(out_shape)) * per_output
    if isinstance(layer, ConvTranspose2d):
        N, H_out, W_out, _ = out_shape
        H, W = (
            (size - 1 + 2 * p - d * (k - 1) - op) // s + 1
            for size, k, s, p, d, op in zip(
                (H_out, W_out), layer.kernel_size, layer.stride, layer.padding,
                layer.dilation, layer.output_padding, strict=True,
            )
        )  # fmt: skip
        per_input = layer.out_channels // layer.groups * int(np.prod(layer.kernel_size))
        return 2 * N * H * W * layer.in_channels * per_input
    if isinstance(layer, Linear):
        return 2 * int(np.prod(out_shape)) * layer.in_features
    return 0


class _Timer:
    """Wraps one layer's methods; adds up its outermost calls within a step (a method calling
    another wrapped method of the same layer, as ``forward_chwn`` calling ``forward``, counts
    once) and keeps each step's totals."""

    def __init__(self, layer: Module) -> None:
        self.layer = layer
        self.seconds: dict[str, list[float]] = {"forward": [], "backward": []}
        self.flops = 0  # of the last step's forward calls
        self.input_grad = False
        self._step: dict[str, float] = {}
        self._step_flops = 0
        self._busy = False

    def wrap(self, method: Callable, name: str) -> Callable:
        kind = _TIMED[name]

        def wrapper(*args: Any) -> Any:
            if self._busy:
                return method(*args)
            self._busy = True
            t0 = time.perf_counter()
            try:
                out = method(*args)
            finally:
                self._busy = False
            self._step[kind] = self._step.get(kind, 0.0) + time.perf_counter() - t0
            if kind == "forward":
                shape = out.shape
                if name.endswith("_chwn") and len(shape) == 4:  # (C, H, W, N) -> (N, H, W, C)
                    shape = (shape[3], shape[1], shape[2], shape[0])
                self._step_flops += layer_flops(self.layer, shape)
            else:
                self.input_grad = out is not None
            return out

        return wrapper

    def end_step(self) -> None:
        for kind, seconds in self._step.items():
            self.seconds[kind].append(seconds)
        if "forward" in self._step:
            self.flops = self._step_flops
        self._step, self._step_flops = {}, 0


def _model_labels(model: Module) -> list[str] | None:
    """``"<name> <class>"`` for a ``Model``'s layers; None (``time_layers``' default) otherwise."""
    if not isinstance(model, Model):
        return None
    return [
        f"{name} {type(layer).__name__}"
        for name, layer in zip(model.layer_names, model.layers, strict=True)
    ]


def time_layers(
    layers: Sequence[Module],
    step: Callable[[], object],
    steps: int,
    batch_size: int,
    names: Sequence[str] | None = None,
) -> Profile:
    """Run ``step`` ``steps`` times with every layer's passes timed; their medians.

    Args:
        layers: the model's layers (``model.layers``).
        step: one step of the model (forward, or forward + loss + backward + update).
        steps: how many steps to time; the medians are taken over them.
        batch_size: images per step (for the images/s line).
        names: one label per layer (default ``"<index> <class>"``).

    Example:
        >>> from glassnet.nn.container import Sequential
        >>> model = Sequential([Linear(4, 2, rng=0)])
        >>> x = np.zeros((8, 4), np.float32)
        >>> time_layers(model.layers, lambda: model.forward(x), 3, 8).layers[0].flops
        128
    """
    timers = [_Timer(layer) for layer in layers]
    for layer, timer in zip(layers, timers, strict=True):
        for name in _TIMED:
            setattr(layer, name, timer.wrap(getattr(layer, name), name))
    step_seconds = []
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            step_seconds.append(time.perf_counter() - t0)
            for timer in timers:
                timer.end_step()
    finally:
        for layer in layers:
            for name in _TIMED:
                delattr(layer, name)  # the class's methods show through again
    labels = names or [f"{i} {type(layer).__name__}" for i, layer in enumerate(layers)]
    times = []
    for label, timer in zip(labels, timers, strict=True):
        median = {k: statistics.median(v) if v else 0.0 for k, v in timer.seconds.items()}
        times.append(
            LayerTime(
                name=label,
                forward_s=median["forward"],
                backward_s=median["backward"],
                flops=timer.flops,
                input_grad=timer.input_grad,
            )
        )
    return Profile(times, statistics.median(step_seconds), batch_size)


def profile_model(
    model: Module,
    input_shape: Sequence[int],
    batch_size: int = 32,
    train: bool = True,
    steps: int = 20,
    rng: np.random.Generator | int | None = 0,
) -> Profile:
    """Time each layer of ``model`` on a random batch, training or inference.

    A training step is forward, cross-entropy against random labels, and backward without
    the input images' gradient (as training needs); no optimizer step, so the weights stay
    as they are. Class scores per pixel (an output (N, H, W, K), as a U-Net's) get one random
    label per pixel. Inference is forward in eval mode. One untimed step warms up first.
    Afterwards the model's mode, gradients, BatchNorm running statistics and Dropout
    generators are as they were, so profiling in the middle of a training run changes
    nothing in it.

    Args:
        model: a ``Sequential`` or a one-input, one-output ``Model`` ending in class scores.
        input_shape: one sample's shape ``(H, W, C)``.
        batch_size: images per step.
        train: training (forward + loss + backward) or inference (forward).
        steps: timed steps; each figure is the median over them.
        rng: seed or generator for the random batch.

    Returns:
        a ``Profile``; ``print(profile.table())`` shows it.

    Raises:
        ValueError: ``batch_size`` or ``steps`` below 1, or a model with several inputs or
            outputs.

    Example:
        >>> from glassnet.models import lenet5
        >>> p = profile_model(lenet5(rng=0), (28, 28, 1), batch_size=4, steps=2)
        >>> [t.name for t in p.layers][:3]
        ['0 Conv2d', '1 ReLU', '2 MaxPool2d']
    """
    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be >= 1, got {batch_size} and {steps}")
    if isinstance(model, Model) and (len(model.inputs), len(model.outputs)) != (1, 1):
        raise ValueError(
            f"profile_model takes a model with one input and one output, got "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    gen = np.random.default_rng(rng)
    dtype = next((p.dtype for p in model.parameters()), np.dtype("float32"))
    x = gen.standard_normal((batch_size, *input_shape)).astype(dtype)
    was_training = model.training
    grads = [p.grad.copy() for p in model.parameters()]
    buffers = [b.copy() for _, b in model.named_buffers()]
    generators = list(layer_generators(model).values())
    generator_states = [g.bit_generator.state for g in generators]
    model.train(train)
    try:
        if train:
            logits = model.forward(x)
            classes = logits.shape[-1]
            labels = gen.integers(0, classes, size=logits.size // classes)
            loss_fn = CrossEntropyLoss()

            def step() -> None:
                scores = model.forward(x)
                loss_fn.forward(scores.reshape(-1, classes), labels)
                model.backward(loss_fn.backward().reshape(scores.shape), input_grad=False)

        else:

            def step() -> None:
                model.forward(x)

        step()  # warm-up: first-call costs (allocation, BLAS start-up) stay out of the medians
        result = time_layers(model.layers, step, steps, batch_size, _model_labels(model))
    finally:
        model.train(was_training)
        for p, grad in zip(model.parameters(), grads, strict=True):
            p.grad[...] = grad
        for (_, b), saved in zip(model.named_buffers(), buffers, strict=True):
            b[...] = saved
        for g, state in zip(generators, generator_states, strict=True):
            g.bit_generator.state = state
    return result
