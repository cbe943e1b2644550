"""The two building blocks every layer shares: ``Parameter`` and ``Module``.

A ``Parameter`` is a value with its gradient beside it. A ``Module`` holds parameters, buffers
(state that is saved but not trained, such as BatchNorm's running statistics), a cache from
its last ``forward`` and a train/eval flag; its math lives in ``glassnet.functional``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import numpy as np

from glassnet.nn.graph import call_symbolic, is_symbolic
from glassnet.nn.validation import check_array, check_float_dtype

#: False inside ``no_grad()``: forward passes then keep nothing for ``backward``.
_KEEP_FOR_BACKWARD: ContextVar[bool] = ContextVar("glassnet_keep_for_backward", default=True)


@contextmanager
def no_grad() -> Iterator[None]:
    """Forward passes inside the block keep no cache for ``backward``.

    A layer's ``forward`` normally keeps what its ``backward`` will need (a convolution keeps
    its im2col columns, C_in*KH*KW times the size of its input), and a network keeps that for
    every layer at once. Predicting needs none of it: inside ``no_grad()`` each cache is
    dropped as soon as its layer has computed, so memory holds one layer's work at a time.
    ``predict``, ``evaluate`` and ``fit``'s validation run inside it. The setting belongs to
    the current thread (a ``ContextVar``) and is restored on leaving the block.

    Example:
        >>> import glassnet as gn
        >>> layer = gn.Linear(2, 1, rng=0)
        >>> with gn.no_grad():
        ...     y = layer.forward(np.ones((1, 2)))
        >>> y.shape, layer._cache is None  # backward would now ask for a forward first
        ((1, 1), True)
    """
    token = _KEEP_FOR_BACKWARD.set(False)
    try:
        yield
    finally:
        _KEEP_FOR_BACKWARD.reset(token)


def keeps_for_backward() -> bool:
    """Whether forward passes now keep what ``backward`` needs: False inside ``no_grad()``."""
    return _KEEP_FOR_BACKWARD.get()


def kept(cache: Any) -> Any:
    """``cache`` if this forward pass is to be followed by ``backward``, else None."""
    return cache if keeps_for_backward() else None


#: Every Module subclass by class name, so that a JSON config can name the layer to build.
LAYER_REGISTRY: dict[str, type[Module]] = {}


class Parameter:
    """A trainable array and its accumulated gradient.

    Attributes:
        value: the array the layer computes with.
        grad: ``dL/dvalue``, same shape and dtype; ``backward`` adds to it, ``zero_grad`` resets it.
        requires_grad: whether optimizers update it (default True). False freezes the value,
            as in PyTorch: every optimizer skips the parameter entirely (no update, no weight
            decay, no state), while ``backward`` still fills ``grad``.

    Example:
        >>> p = Parameter(np.ones((2, 3)))
        >>> p.shape, float(p.grad.sum()), p.requires_grad
        ((2, 3), 0.0, True)
    """

    __slots__ = ("value", "grad", "requires_grad")

    def __init__(self, value: np.ndarray, requires_grad: bool = True) -> None:
        self.value = value
        self.grad = np.zeros_like(value)
        self.requires_grad = requires_grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{frozen})"


class Module:
    """Base class of layers and models.

    A subclass sets ``self.params`` (an ordered name -> Parameter dict) and, for state that is
    saved but not trained, ``self.buffers`` (name -> array, updated in place), implements
    ``forward(x)`` and ``backward(dout)``, and lists its constructor arguments in ``config_keys``
    so that ``get_config()`` / ``from_config()`` round-trip through JSON. A container of layers
    also returns them from ``children()``.
    """

    config_keys: ClassVar[tuple[str, ...]] = ()
    #: Constructor defaults that ``__repr__`` leaves out.
    repr_defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):  # private shared bases are not buildable layers
            LAYER_REGISTRY[cls.__name__] = cls

    def __init__(self) -> None:
        self.params: dict[str, Parameter] = {}
        #: non-trainable state that travels with the weights (e.g. running statistics)
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self._cache: Any = None
        #: The shape of the last ``forward``'s output: the gradient ``backward`` must be given.
        self._out_shape: tuple[int, ...] | None = None

    # -- computation -------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- the compute layout -------------------------------------------------------------------
    #: Whether ``forward_chwn`` / ``backward_chwn`` take images in the compute layout
    #: (C, H, W, N) (see ``glassnet.functional._windows``). ``Sequential`` then hands images
    #: from one such layer to the next without converting them.
    compute_layout: ClassVar[bool] = False

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        """``forward`` on a (C, H, W, N) image batch; the output is (C', H', W', N) or (N, F)."""
        raise NotImplementedError(f"{type(self).__name__} has no compute-layout forward")

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """``backward`` in the compute layout; ``input_grad=False`` may skip ``dL/dx`` (None)."""
        raise NotImplementedError(f"{type(self).__name__} has no compute-layout backward")

    #: Whether ``forward`` takes a list of arrays (``Add``, ``Concatenate``) and ``backward``
    #: returns a list of gradients, one per input.
    multi_input: ClassVar[bool] = False

    def __call__(self, x: Any, name: str | None = None) -> Any:
        """``forward(x)`` on arrays; on symbolic tensors (``gn.Input``), a node of a graph.

        Args:
            x: an array (or a list for ``multi_input`` layers); or a ``SymbolicTensor``
                (a list of them), which records this call in a graph for ``gn.Model``.
            name: with symbolic tensors only, the layer's name in the model (its parameters
                are then ``"<name>.weight"``, ...); see ``glassnet.nn.model``.
        """
        if is_symbolic(x):
            return call_symbolic(self, x, name)
        if name is not None:
            raise TypeError("name= is only taken when calling a layer on symbolic tensors")
        return self.forward(x)

    def _keep(self, out: np.ndarray, cache: Any) -> np.ndarray:
        """Keep what ``backward`` needs (the cache, the output's shape) and return ``out``."""
        self._cache = kept(cache)
        self._out_shape = out.shape
        return out

    def _call_state(self) -> tuple[Any, tuple[int, ...] | None]:
        """What the last ``forward`` left for ``backward``; a graph keeps it per call, so that
        one layer object called twice runs each backward on its own call."""
        return self._cache, self._out_shape

    def _set_call_state(self, state: tuple[Any, tuple[int, ...] | None]) -> None:
        self._cache, self._out_shape = state

    def _take_cache(self) -> Any:
        """The cache of the last ``forward``; a clear error if there was none."""
        if self._cache is None:
            raise self._no_forward()
        return self._cache

    def _no_forward(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.backward called before forward: "
            "run forward(x) first (in training mode for Dropout, outside no_grad())"
        )

    def _check_dout(self, dout: Any) -> np.ndarray:
        """The gradient given to ``backward``: a float array of the last output's shape."""
        if self._out_shape is None:
            raise self._no_forward()
        where = f"{type(self).__name__}.backward"
        dout = check_array(dout, where)
        if dout.shape != self._out_shape:
            raise ValueError(
                f"{where} expects a gradient of the forward output's shape {self._out_shape}, "
                f"got {dout.shape}"
            )
        return dout

    # -- parameters --------------------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, p in self.params.items():
            yield prefix + name, p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def num_parameters(self) -> int:
        return sum(p.value.size for p in self.parameters())

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` for every buffer, named like ``named_parameters``."""
        for name, b in self.buffers.items():
            yield prefix + name, b

    def state_dict(self) -> dict[str, np.ndarray]:
        """Named copies of every parameter value, then every buffer, e.g. ``{"0.weight": ...}``."""
        state = {name: p.value.copy() for name, p in self.named_parameters()}
        state.update((name, b.copy()) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers, checking names, shapes, dtypes and values.

        Each array is cast to its target's dtype (float64 -> float32 is allowed: a model
        trained in float64 loads into a float32 one, rounded); an integer buffer (BatchNorm's
        ``num_batches_tracked``) takes integers only. Everything is checked before anything is
        copied, so a refused state leaves the model as it was.

        Raises:
            KeyError: with ``strict``, a missing or unexpected name (all of them listed).
            ValueError: an array whose shape differs from its target's, or that holds
                inf or NaN once cast (a float64 value too large for float32 becomes inf).
            TypeError: an array that is not floating point (integers, booleans, objects), or
                not an integer for an integer buffer.

        Example:
            >>> from glassnet.nn.layers import Linear
            >>> layer = Linear(2, 1, rng=0)
            >>> layer.load_state_dict({"weight": np.array([[1.0, 2.0]]), "bias": np.zeros(1)})
            >>> layer.params["weight"].value
            array([[1., 2.]], dtype=float32)
            >>> layer.load_state_dict({"weight": np.array([[1e300, 0.0]]), "bias": np.zeros(1)})
            Traceback (most recent call last):
            ...
            ValueError: state_dict['weight'] has inf or NaN once cast to float32
        """
        own = {name: p.value for name, p in self.named_parameters()}
        own.update(self.named_buffers())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        values = {}
        for name, target in own.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(
                    f"state_dict[{name!r}] has shape {value.shape}, expected {target.shape}"
                )
            kinds = "f" if target.dtype.kind == "f" else "iu"
            if value.dtype.kind not in kinds:
                expected = "floating point" if kinds == "f" else "an integer type"
                raise TypeError(
                    f"state_dict[{name!r}] has dtype {value.dtype}, expected {expected} "
                    f"(it is cast to the model's {target.dtype})"
                )
            with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
                values[name] = value.astype(target.dtype, copy=False)
            if kinds == "f" and not np.isfinite(values[name]).all():
                raise ValueError(f"state_dict[{name!r}] has inf or NaN once cast to {target.dtype}")
        for name, value in values.items():
            own[name][...] = value

    def astype(self, dtype: np.dtype | type) -> Module:
        """Convert every parameter (and its gradient) and float buffer to ``dtype``; returns self.

        A layer's ``dtype`` setting follows, so its config describes its arrays. Integer
        buffers (counters) keep their type, as in PyTorch.

        Raises:
            ValueError: ``dtype`` is not float32 or float64.
        """
        name = check_float_dtype(f"{type(self).__name__}.astype dtype", dtype)
        for p in self.parameters():
            p.value = p.value.astype(name)
            p.grad = np.zeros_like(p.value)
        for key, b in self.buffers.items():
            if b.dtype.kind == "f":
                self.buffers[key] = b.astype(name)
        if "dtype" in self.config_keys:
            self.dtype = name
        return self

    # -- structure ---------------------------------------------------------------------------
    def children(self) -> list[Module]:
        """The layers directly inside this one; none for a layer. A container overrides it
        (``Sequential``, ``Model``): ``modules()`` finds every layer through it, e.g. the
        BatchNorm layers whose statistics data-parallel training keeps equal on every rank."""
        return []

    def modules(self) -> list[Module]:
        """This module and every layer inside it, depth first, each once (as PyTorch's).

        Example:
            >>> import glassnet as gn
            >>> [type(m).__name__ for m in gn.Sequential([gn.Flatten(), gn.ReLU()]).modules()]
            ['Sequential', 'Flatten', 'ReLU']
        """
        found: dict[int, Module] = {id(self): self}
        for child in self.children():
            for module in child.modules():
                found.setdefault(id(module), module)
        return list(found.values())

    # -- modes -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        self.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- configuration -----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The JSON-able constructor arguments: ``type(self)(**get_config())`` rebuilds it."""
        return {key: _jsonable(getattr(self, key)) for key in self.config_keys}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Module:
        return cls(**config)

    @classmethod
    def parameter_count(cls, config: dict[str, Any]) -> int:
        """How many numbers ``from_config(config)`` would allocate, without allocating them.

        Lets a loader refuse an oversized architecture from an untrusted file before building.
        """
        return 0

    def __repr__(self) -> str:
        args = [
            f"{k}={v!r}"
            for k, v in self.get_config().items()
            if k not in self.repr_defaults or self.repr_defaults[k] != v
        ]
        return f"{type(self).__name__}({', '.join(args)})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def layer_from_config(spec: dict[str, Any]) -> Module:
    """Build a layer from ``{"class": name, "config": {...}}``, with a clear error for unknowns.

    Example:
        >>> layer_from_config({"class": "ReLU", "config": {}})
        ReLU()
    """
    try:
        name, config = spec["class"], spec["config"]
    except (KeyError, TypeError):
        raise ValueError(f"a layer spec needs 'class' and 'config', got {spec!r}") from None
    cls = LAYER_REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown layer class {name!r}; known: {sorted(LAYER_REGISTRY)}")
    return cls.from_config(config)
