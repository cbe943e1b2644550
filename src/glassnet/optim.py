"""Optimizers: one class per update rule, matching PyTorch's formulas step for step.

Each keeps per-parameter state (momentum, moment estimates) in named arrays, so that a
checkpoint can save and restore it exactly with ``state_dict()`` / ``load_state_dict()``.

Every hyper-parameter is checked whenever it is set (by the constructor, a learning-rate
schedule or a restored checkpoint): a finite number in its range, or a bool for ``nesterov``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from glassnet.nn.module import Module, Parameter
from glassnet.nn.validation import check_bool, check_float, check_int


class _Hyper:
    """A hyper-parameter attribute whose every assignment goes through ``check(name, value)``."""

    def __init__(self, check: Callable[[str, Any], Any]) -> None:
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def checked(self, optimizer: Optimizer, value: Any) -> Any:
        return self.check(f"{type(optimizer).__name__} {self.name}", value)

    def __get__(self, optimizer: Optimizer | None, owner: type) -> Any:
        if optimizer is None:
            return self
        return optimizer.__dict__[self.name]

    def __set__(self, optimizer: Optimizer, value: Any) -> None:
        optimizer.__dict__[self.name] = self.checked(optimizer, value)


_non_negative = functools.partial(check_float, low=0.0)
_below_one = functools.partial(check_float, low=0.0, high=1.0, high_open=True)


class Optimizer:
    """Base class: holds the parameters, the learning rate and the per-parameter state.

    ``lr`` may be changed between steps (learning-rate schedules do); it must stay a finite
    number >= 0 (0 pauses the updates; the constructor wants > 0). ``no_decay`` names
    parameters (some of ``params``) that get no weight decay, e.g. ``norm_and_bias(model)``.
    A parameter whose ``requires_grad`` is False when ``step`` runs is skipped entirely: its
    value, and its state (momentum, moment estimates), stay as they are.

    Raises:
        TypeError: ``params`` is not an iterable of glassnet Parameters holding floats
            (pass ``model.parameters()``), or a hyper-parameter is not a number.
        ValueError: no parameters, one parameter twice, or a hyper-parameter out of range.
    """

    hyper_keys: tuple[str, ...] = ()
    lr = _Hyper(_non_negative)

    def __init__(
        self, params: Iterable[Parameter], lr: float, no_decay: Iterable[Parameter] = ()
    ) -> None:
        self.params = _check_params(type(self).__name__, params)
        self.lr = check_float(f"{type(self).__name__} lr", lr, 0.0, low_open=True)
        #: ``decayed[i]``: whether parameter i gets weight decay (see ``no_decay``).
        self.decayed = _decayed(type(self).__name__, self.params, no_decay)
        self.steps = 0
        #: ``state[i]`` holds the named buffers of parameter i.
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zero (layers accumulate into them)."""
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter that requires a gradient, from its ``.grad``."""
        self.steps += 1
        decay = getattr(self, "weight_decay", 0.0)  # a rule may have no weight decay at all
        for p, state, decayed in zip(self.params, self.state, self.decayed, strict=True):
            if p.requires_grad:
                self._update(p.value, p.grad, state, decay if decayed else 0.0)

    def _update(
        self, value: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], decay: float
    ) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, **{k: getattr(self, k) for k in self.hyper_keys}}

    def state_dict(self) -> dict[str, Any]:
        """``{"class", "hyper", "steps", "buffers": {"<param index>.<name>": array}}``."""
        buffers = {f"{i}.{k}": v.copy() for i, s in enumerate(self.state) for k, v in s.items()}
        return {
            "class": type(self).__name__,
            "hyper": self.hyperparameters(),
            "steps": self.steps,
            "buffers": buffers,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned; the class and buffer shapes must match.

        Only the hyper-parameters ``state_dict`` writes (``lr`` and ``hyper_keys``) are set:
        a checkpoint cannot set any other attribute of the optimizer. Everything is checked
        before anything changes.

        Raises:
            ValueError: another optimizer class, an unknown hyper-parameter, or a buffer
                that does not match the parameters.
        """
        if state.get("class") != type(self).__name__:
            raise ValueError(
                f"optimizer state is for {state.get('class')!r}, not {type(self).__name__!r}"
            )
        allowed = ("lr", *self.hyper_keys)
        unknown = sorted(set(state["hyper"]) - set(allowed))
        if unknown:
            raise ValueError(
                f"optimizer state has unknown hyper-parameters {unknown}; "
                f"{type(self).__name__} has {list(allowed)}"
            )
        hyper = {k: getattr(type(self), k).checked(self, v) for k, v in state["hyper"].items()}
        steps = check_int("optimizer state steps", state["steps"], minimum=0, maximum=2**62)
        buffers: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        for key, value in state["buffers"].items():
            index, _, name = str(key).partition(".")
            i = int(index) if index.isdecimal() else -1
            if not (0 <= i < len(self.params) and name and np.shape(value) == self.params[i].shape):
                raise ValueError(f"optimizer buffer {key!r} does not match the parameters")
            buffers[i][name] = np.array(value, dtype=self.params[i].dtype)
        for key, value in hyper.items():
            setattr(self, key, value)
        self.steps = steps
        self.state = buffers

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov and weight decay.

    Math (as PyTorch, dampening 0):
        g = dL/dK + weight_decay * K
        v = momentum * v + g                     (v starts at g on the first step)
        g = g + momentum * v  if nesterov, else  g = v   (when momentum > 0)
        K <- K - lr * g
        With momentum 0 this is the seeds' plain update K <- K - eta * dL/dK.

    Example:
        >>> p = Parameter(np.array([1.0])); p.grad[:] = 2.0
        >>> SGD([p], lr=0.1).step(); p.value
        array([0.8])
    """

    hyper_keys = ("momentum", "nesterov", "weight_decay")
    momentum = _Hyper(_below_one)
    nesterov = _Hyper(check_bool)
    weight_decay = _Hyper(_non_negative)

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        no_decay: Iterable[Parameter] = (),
    ) -> None:
        super().__init__(params, lr, no_decay)
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD nesterov=True needs a momentum > 0")

    def _update(
        self, value: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], decay: float
    ) -> None:
        g = grad + decay * value if decay else grad
        if self.momentum:
            v = state.get("momentum")
            if v is None:
                v = state["momentum"] = np.array(g, dtype=value.dtype)
            else:
                v *= self.momentum
                v += g
            g = g + self.momentum * v if self.nesterov else v
        value -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with optional L2 weight decay added to the gradient.

    Math (t = step count, as PyTorch):
        g = dL/dK + weight_decay * K
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g^2
        K <- K - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

    Example:
        >>> p = Parameter(np.array([1.0])); p.grad[:] = 2.0
        >>> Adam([p], lr=0.1).step(); p.value.round(6)  # the first step moves by lr
        array([0.9])
    """

    hyper_keys = ("beta1", "beta2", "eps", "weight_decay")
    beta1 = _Hyper(_below_one)
    beta2 = _Hyper(_below_one)
    eps = _Hyper(functools.partial(check_float, low=0.0, low_open=True))
    weight_decay = _Hyper(_non_negative)

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        no_decay: Iterable[Parameter] = (),
    ) -> None:
        super().__init__(params, lr, no_decay)
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise TypeError(
                f"{type(self).__name__} betas must be a pair (beta1, beta2), got {betas!r}"
            )
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay

    def _decay(self, value: np.ndarray, grad: np.ndarray, decay: float) -> np.ndarray:
        """Adam couples weight decay to the gradient (L2 regularisation)."""
        return grad + decay * value if decay else grad

    def _update(
        self, value: np.ndarray, grad: np.ndarray, state: dict[str, np.ndarray], decay: float
    ) -> None:
        g = self._decay(value, grad, decay)
        m = state.setdefault("exp_avg", np.zeros_like(value))
        v = state.setdefault("exp_avg_sq", np.zeros_like(value))
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * g * g
        t = self.steps
        step_size = self.lr / (1 - self.beta1**t)
        denom = np.sqrt(v) / np.sqrt(1 - self.beta2**t) + self.eps
        value -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    Math:
        K <- K * (1 - lr * weight_decay), then the Adam step with g = dL/dK.

    ``lr * weight_decay`` must stay below 1, when built and at every step (a schedule may
    change ``lr``): at 1 the decay would zero the weights, above it flip their sign.

    Raises:
        ValueError: ``lr * weight_decay >= 1``, besides the errors of ``Adam``.

    Example:
        >>> p = Parameter(np.array([1.0])); p.grad[:] = 0.0
        >>> AdamW([p], lr=0.1, weight_decay=0.5).step(); p.value
        array([0.95])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        no_decay: Iterable[Parameter] = (),
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, no_decay)
        self._check_decay()

    def step(self) -> None:
        self._check_decay()  # before any parameter moves: a step is all or nothing
        super().step()

    def _check_decay(self) -> None:
        factor = 1 - self.lr * self.weight_decay
        if factor <= 0:
            raise ValueError(
                f"AdamW lr * weight_decay must be < 1 (each step multiplies the weights by "
                f"1 - lr * weight_decay, here {factor:g}: they would be zeroed or flip sign), "
                f"got lr={self.lr:g} and weight_decay={self.weight_decay:g}"
            )

    def _decay(self, value: np.ndarray, grad: np.ndarray, decay: float) -> np.ndarray:
        if decay:
            value *= 1 - self.lr * decay
        return grad


def norm_and_bias(model: Module) -> list[Parameter]:
    """The parameters of one dimension: biases and BatchNorm's scales and shifts.

    The usual set to exempt from weight decay (``no_decay=``): decay shrinks weights to keep a
    layer's function simple, but a BatchNorm scale shrunk toward 0 silences its channel, and a
    bias adds no capacity worth penalising.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 4, 3), gn.BatchNorm2d(4)])
        >>> [p.shape for p in norm_and_bias(model)]
        [(4,), (4,), (4,)]
    """
    return [p for p in model.parameters() if p.value.ndim <= 1]


def _decayed(name: str, params: list[Parameter], no_decay: Iterable[Parameter]) -> list[bool]:
    """Per parameter, whether weight decay applies: all but those in ``no_decay``, which must
    be among ``params``."""
    exempt = {id(p) for p in no_decay}
    unknown = len(exempt - {id(p) for p in params})
    if unknown:
        raise ValueError(
            f"{name} no_decay holds {unknown} parameters that are not among its params; "
            "pass a subset of them, e.g. glassnet.optim.norm_and_bias(model)"
        )
    return [id(p) not in exempt for p in params]


def _check_params(name: str, params: Iterable[Parameter]) -> list[Parameter]:
    """The parameters as a list: glassnet Parameters holding floats, at least one, none twice."""
    if isinstance(params, Module) or not isinstance(params, Iterable):
        raise TypeError(
            f"{name} expects an iterable of glassnet Parameters (model.parameters()), "
            f"got {type(params).__name__}"
        )
    params = list(params)
    if not params:
        raise ValueError(f"{name} got an empty parameter list")
    first_index: dict[int, int] = {}
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"{name} expects glassnet Parameters (model.parameters()), "
                f"item {i} is {type(p).__name__}"
            )
        if not isinstance(p.value, np.ndarray) or p.value.dtype.kind != "f":
            raise TypeError(
                f"{name} updates floating-point parameters, item {i} holds "
                f"{getattr(p.value, 'dtype', type(p.value).__name__)}"
            )
        j = first_index.setdefault(id(p), i)
        if j != i:
            raise ValueError(
                f"{name} got the same Parameter twice (items {j} and {i}): "
                "each step would update it twice"
            )
    return params
