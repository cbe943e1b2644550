"""Where a glassnet step spends its time: each layer's forward and backward, timed in place.

The layers of a built ``Sequential`` get timing wrappers as instance attributes for a few
steps (glassnet's source is untouched), then lose them again. Dividing a convolution's FLOPs
by its own time gives the rate its matrix products (and im2col copies) actually achieve.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

#: A conv backward computes two products of the forward's size: input and weight gradients.
BACKWARD_FLOP_FACTOR = 2


def _timed(method: Callable, durations: list[float]) -> Callable:
    def wrapper(arg):
        t0 = time.perf_counter()
        out = method(arg)
        durations.append(time.perf_counter() - t0)
        return out

    return wrapper


def layer_times(
    layers: list, step: Callable[[], object], calls: int
) -> tuple[float, list[tuple[float, float]]]:
    """Median seconds of the step and of each layer's forward and backward, over ``calls`` steps.

    Returns:
        the step's median seconds, and one ``(forward_s, backward_s)`` per layer; 0.0 where
        the step never called it (backward in inference).
    """
    durations = [([], []) for _ in layers]
    for layer, (fwd, bwd) in zip(layers, durations, strict=True):
        layer.forward, layer.backward = _timed(layer.forward, fwd), _timed(layer.backward, bwd)
    steps: list[float] = []
    try:
        for _ in range(calls):
            _timed(lambda _: step(), steps)(None)
    finally:
        for layer in layers:
            del layer.forward, layer.backward  # the class's methods show through again
    medians = [tuple(statistics.median(d) if d else 0.0 for d in pair) for pair in durations]
    return statistics.median(steps), medians


def report(layers: list, flops: list[int], batch: int, step_s: float, times: list) -> str:
    """A table: per layer, forward and backward milliseconds and, for convs, GFLOP/s.

    Args:
        layers: the model's layers.
        flops: forward FLOPs per image of each layer (``models.layer_flops``).
        batch: images per step.
        step_s: median seconds of a whole step (``layer_times``'s first result).
        times: median ``(forward_s, backward_s)`` per layer (``layer_times``'s second result).

    The "rest" line is the step's median minus the layers' medians: the loss, the optimizer,
    input checks and Python overhead (medians do not add up exactly: it can be slightly off).
    """
    rows = [f"  {'layer':<12} {'fwd ms':>8} {'bwd ms':>8} {'fwd GFLOP/s':>12} {'bwd GFLOP/s':>12}"]
    for i, (layer, f, (fwd, bwd)) in enumerate(zip(layers, flops, times, strict=True)):
        rates = ["", ""]
        if f:
            rates[0] = f"{f * batch / fwd / 1e9:.1f}"
            if bwd:
                rates[1] = f"{BACKWARD_FLOP_FACTOR * f * batch / bwd / 1e9:.1f}"
        name, ms = f"{i} {type(layer).__name__}", f"{fwd * 1e3:>8.2f} {bwd * 1e3:>8.2f}"
        rows.append(f"  {name:<12} {ms} {rates[0]:>12} {rates[1]:>12}")
    rest = step_s - sum(fwd + bwd for fwd, bwd in times)
    rows.append(f"  {'rest':<12} {rest * 1e3:>8.2f}   (loss, optimizer, input checks, Python)")
    return "\n".join(rows)
