"""An exponential moving average of a model's weights, the copy that is evaluated.

After every step, for every weight and running statistic A of the model:

    A_avg <- decay * A_avg + (1 - decay) * A        (A_avg starts as the initial A)

The average forgets at rate ``1 - decay`` per step: about the last ``1 / (1 - decay)`` steps
count (1000 for 0.999). It smooths the noise of the last steps of SGD out of the weights, so it
often scores better than the weights themselves, at no cost to training (which keeps updating
the raw weights). ``fit(ema=decay)`` keeps one, evaluates it, checkpoints it, and leaves the
model holding it at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from glassnet.nn.module import Module
from glassnet.nn.validation import check_float


class WeightAverage:
    """The moving average of ``model``'s ``state_dict`` (weights and BatchNorm statistics).

    Args:
        model: the network whose weights are averaged.
        decay: the weight of the old average at each update, in ``[0, 1)``.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Linear(1, 1, bias=False, rng=0)])
        >>> weight = model.layers[0].params["weight"].value
        >>> weight[:] = 2.0; average = WeightAverage(model, decay=0.5)  # the average starts at 2
        >>> weight[:] = 0.0; average.update()                           # 0.5 * 2 + 0.5 * 0 = 1
        >>> weight[:] = 4.0; average.update()                           # 0.5 * 1 + 0.5 * 4
        >>> with average.applied():
        ...     float(weight[0, 0])
        2.5
        >>> float(weight[0, 0])  # the model's own weights again
        4.0
    """

    def __init__(self, model: Module, decay: float) -> None:
        self.model = model
        self.decay = check_float("ema decay", decay, 0.0, 1.0, high_open=True)
        self.averages = model.state_dict()

    def update(self) -> None:
        """Move the averages one step toward the model's current weights."""
        keep = self.decay
        for name, value in self._current():
            average = self.averages[name]
            if np.issubdtype(average.dtype, np.floating):
                average *= keep
                average += (1.0 - keep) * value
            else:  # a count (BatchNorm's num_batches_tracked) is not averaged
                average[...] = value

    def _current(self) -> Iterator[tuple[str, np.ndarray]]:
        """The model's weights and buffers in place, named as in its ``state_dict`` (which
        copies them: too much to do at every step)."""
        for name, parameter in self.model.named_parameters():
            yield name, parameter.value
        yield from self.model.named_buffers()

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own ones after it."""
        own = self.model.state_dict()
        self.model.load_state_dict(self.averages)
        try:
            yield
        finally:
            self.model.load_state_dict(own)

    def load(self, averages: dict[str, np.ndarray]) -> None:
        """Restore the averages from a checkpoint (their names and shapes must match)."""
        for name, average in self.averages.items():
            if name not in averages or np.shape(averages[name]) != average.shape:
                raise ValueError(f"the checkpoint's weight average lacks or misshapes {name!r}")
            average[...] = averages[name]
