"""Where a model spends its time: each layer's forward and backward pass, timed in place.

``profile_model`` runs a model on a random batch for a few steps (training: forward, loss,
backward; or inference: forward) and reports the median milliseconds of each layer and its
share of the step. For convolutions and dense layers it also gives the rate of their arithmetic
in GFLOP/s, to compare with the machine's matrix-product rate. ``time_layers`` times any step
function of your own (with an optimizer, say) the same way.

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

from glassnet.nn.container import Sequential
from glassnet.nn.layers import Conv2d, Linear
from glassnet.nn.loss import CrossEntropyLoss
from glassnet.nn.module import Module
from glassnet.train.checkpoint import layer_generators

#: The methods wrapped, by the pass they belong to: ``Sequential`` runs image layers through
#: their compute-layout methods, and may ask a model's first layer for no input gradient.
_TIMED = {
    "forward": "forward",
    "forward_chwn": "forward",
    "backward": "backward",
    "backward_chwn": "backward",
}


@dataclass
class LayerTime:
    """One layer's median times over the profiled steps.

    Attributes:
        name: ``"<index> <class>"``, e.g. ``"0 Conv2d"``.
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
        """
        rows = [
            f"{'layer':<16} {'fwd ms':>8} {'bwd ms':>8} {'share':>6} "
            f"{'fwd GFLOP/s':>12} {'bwd GFLOP/s':>12}"
        ]
        for t in self.layers:
            rates = [_rate(t.flops, t.forward_s), _rate(t.backward_flops, t.backward_s)]
            share = (t.forward_s + t.backward_s) / self.step_s
            rows.append(
                f"{t.name:<16} {t.forward_s * 1e3:>8.2f} {t.backward_s * 1e3:>8.2f} "
                f"{share:>6.1%} {rates[0]:>12} {rates[1]:>12}"
            )
        rest = self.step_s - sum(t.forward_s + t.backward_s for t in self.layers)
        rows.append(f"{'rest':<16} {rest * 1e3:>8.2f} {'':>8} {rest / self.step_s:>6.1%}")
        rows.append(
            f"{'step':<16} {self.step_s * 1e3:>8.2f} ms, "
            f"{self.batch_size / self.step_s:,.0f} images/s at batch {self.batch_size}"
        )
        return "\n".join(rows)


def _rate(flops: int, seconds: float) -> str:
    return f"{flops / seconds / 1e9:.1f}" if flops and seconds else ""


def layer_flops(layer: Module, out_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of one call of a convolution or dense layer (0 for any other layer).

    Math:
        Conv2d: 2 * N * H_out * W_out * C_out * C_in * KH * KW (a multiply and an add per
        weight and output position); Linear: 2 * N * F_out * F_in.

    Example:
        >>> layer_flops(Conv2d(1, 6, 5, padding=2), (1, 28, 28, 6))
        235200
    """
    if isinstance(layer, Conv2d):
        return 2 * int(np.prod(out_shape)) * layer.in_channels * int(np.prod(layer.kernel_size))
    if isinstance(layer, Linear):
        return 2 * int(np.prod(out_shape)) * layer.in_features
    return 0


class _Timer:
    """Wraps one layer's methods; records each outermost call (a method calling another
    wrapped method of the same layer, as ``forward_chwn`` calling ``forward``, counts once)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {"forward": [], "backward": []}
        self.out_shape: tuple[int, ...] = (0,)
        self.input_grad = False
        self._busy = False

    def wrap(self, method: Callable, kind: str) -> Callable:
        def wrapper(*args: Any) -> Any:
            if self._busy:
                return method(*args)
            self._busy = True
            t0 = time.perf_counter()
            try:
                out = method(*args)
            finally:
                self._busy = False
            self.seconds[kind].append(time.perf_counter() - t0)
            if kind == "forward":
                self.out_shape = out.shape
            else:
                self.input_grad = out is not None
            return out

        return wrapper


def time_layers(
    layers: Sequence[Module], step: Callable[[], object], steps: int, batch_size: int
) -> Profile:
    """Run ``step`` ``steps`` times with every layer's passes timed; their medians.

    Args:
        layers: the model's layers (``model.layers``).
        step: one step of the model (forward, or forward + loss + backward + update).
        steps: how many steps to time; the medians are taken over them.
        batch_size: images per step (for the images/s line).

    Example:
        >>> model = Sequential([Linear(4, 2, rng=0)])
        >>> x = np.zeros((8, 4), np.float32)
        >>> time_layers(model.layers, lambda: model.forward(x), 3, 8).layers[0].flops
        128
    """
    timers = [_Timer() for _ in layers]
    for layer, timer in zip(layers, timers, strict=True):
        for name, kind in _TIMED.items():
            setattr(layer, name, timer.wrap(getattr(layer, name), kind))
    step_seconds = []
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            step_seconds.append(time.perf_counter() - t0)
    finally:
        for layer in layers:
            for name in _TIMED:
                delattr(layer, name)  # the class's methods show through again
    times = []
    for i, (layer, timer) in enumerate(zip(layers, timers, strict=True)):
        median = {k: statistics.median(v) if v else 0.0 for k, v in timer.seconds.items()}
        times.append(
            LayerTime(
                name=f"{i} {type(layer).__name__}",
                forward_s=median["forward"],
                backward_s=median["backward"],
                flops=layer_flops(layer, timer.out_shape),
                input_grad=timer.input_grad,
            )
        )
    return Profile(times, statistics.median(step_seconds), batch_size)


def profile_model(
    model: Sequential,
    input_shape: Sequence[int],
    batch_size: int = 32,
    train: bool = True,
    steps: int = 20,
    rng: np.random.Generator | int | None = 0,
) -> Profile:
    """Time each layer of ``model`` on a random batch, training or inference.

    A training step is forward, cross-entropy against random labels, and backward without
    the input images' gradient (as training needs); no optimizer step, so the weights stay
    as they are. Inference is forward in eval mode. One untimed step warms up first.
    Afterwards the model's mode, gradients and Dropout generators are as they were, so
    profiling in the middle of a training run changes nothing in it.

    Args:
        model: a ``Sequential`` ending in class scores.
        input_shape: one sample's shape ``(H, W, C)``.
        batch_size: images per step.
        train: training (forward + loss + backward) or inference (forward).
        steps: timed steps; each figure is the median over them.
        rng: seed or generator for the random batch.

    Returns:
        a ``Profile``; ``print(profile.table())`` shows it.

    Example:
        >>> from glassnet.models import lenet5
        >>> p = profile_model(lenet5(rng=0), (28, 28, 1), batch_size=4, steps=2)
        >>> [t.name for t in p.layers][:3]
        ['0 Conv2d', '1 ReLU', '2 MaxPool2d']
    """
    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be >= 1, got {batch_size} and {steps}")
    gen = np.random.default_rng(rng)
    dtype = next((p.dtype for p in model.parameters()), np.dtype("float32"))
    x = gen.standard_normal((batch_size, *input_shape)).astype(dtype)
    was_training = model.training
    grads = [p.grad.copy() for p in model.parameters()]
    generators = list(layer_generators(model).values())
    generator_states = [g.bit_generator.state for g in generators]
    model.train(train)
    try:
        if train:
            logits = model.forward(x)
            labels = gen.integers(0, logits.shape[1], size=batch_size)
            loss_fn = CrossEntropyLoss()

            def step() -> None:
                loss_fn.forward(model.forward(x), labels)
                model.backward(loss_fn.backward(), input_grad=False)

        else:

            def step() -> None:
                model.forward(x)

        step()  # warm-up: first-call costs (allocation, BLAS start-up) stay out of the medians
        result = time_layers(model.layers, step, steps, batch_size)
    finally:
        model.train(was_training)
        for p, grad in zip(model.parameters(), grads, strict=True):
            p.grad[...] = grad
        for g, state in zip(generators, generator_states, strict=True):
            g.bit_generator.state = state
    return result
