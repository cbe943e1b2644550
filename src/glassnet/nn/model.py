"""``Model``: a directed acyclic graph of layer calls (skips, fan-out, Add, Concatenate).

Build it by calling layers on ``gn.Input`` tensors, then ``Model(inputs, outputs)``::

    x = gn.Input((32, 32, 3))
    y = gn.ReLU()(gn.Conv2d(3, 16, 3, padding=1)(x))
    z = gn.Add()([y, gn.Conv2d(16, 16, 3, padding=1)(y)])   # y fans out: a residual
    model = gn.Model(x, z)

Names: each distinct layer gets one name, the one given with ``layer(x, name="conv1")`` or
else ``"<class name in lower case>_<k>"`` (``conv2d_0``, ``conv2d_1``, ``relu_0``, ...), k
counting that class's layers in the order they were first called, skipping names taken.
Parameters are ``"<layer name>.<parameter>"`` (``"conv2d_0.weight"``). Names may contain
dots, so a model can carry a PyTorch module's attribute paths (``name="layer1.0.conv1"``) and
then load that module's ``state_dict()`` (converted to NumPy) under the very same keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from glassnet import functional as F
from glassnet.nn import fusion, layout
from glassnet.nn.graph import Input, Node, SymbolicTensor, check_name
from glassnet.nn.module import Module, Parameter, keeps_for_backward, kept, layer_from_config
from glassnet.nn.validation import check_array, check_finite

#: The most nodes (layer calls) a model built from a config may have.
MAX_NODES = 10_000
#: The most inputs a model built from a config may have.
MAX_INPUTS = 64


class Model(Module):
    """A graph of layer calls from ``inputs`` to ``outputs``, run as one module.

    Math:
        forward: each node computes a_v = f_v(a_u for u in inputs(v)), in topological order.
        backward: in reverse order, g_u += (df_v/da_u)^T g_v for each input u of node v; a
        tensor read by several nodes (a fork) gets the sum of their gradients.

    The same layer object called twice shares its weights; each call's forward cache is kept
    apart and its parameter gradients add up. Images run between layers in the compute layout
    (C, H, W, N) where the layers allow it (see ``glassnet.nn.layout``).

    Args:
        inputs: a tensor from ``gn.Input`` or a list of them.
        outputs: a tensor made by calling layers on the inputs, or a list of them.

    ``forward`` takes an array for a one-input model, else a list of arrays in ``inputs``'
    order; it returns an array for a one-output model, else a list. ``backward`` mirrors it.

    Raises:
        TypeError: an input or output is not a symbolic tensor.
        ValueError: an input is not a ``gn.Input`` or is listed twice; an output depends on a
            ``gn.Input`` not among ``inputs`` (a tensor from another graph); an input that no
            output depends on; two layers with one name (or parameter names that collide);
            one layer given two names.

    Example:
        >>> import glassnet as gn
        >>> x = gn.Input((8, 8, 1))
        >>> h = gn.Conv2d(1, 4, 3, padding=1, rng=0)(x)
        >>> y = gn.Add()([h, gn.ReLU()(h)])
        >>> model = gn.Model(x, y)
        >>> model.forward(np.ones((2, 8, 8, 1), np.float32)).shape
        (2, 8, 8, 4)
        >>> [name for name, _ in model.named_parameters()]
        ['conv2d_0.weight', 'conv2d_0.bias']
    """

    def __init__(
        self,
        inputs: SymbolicTensor | Sequence[SymbolicTensor],
        outputs: SymbolicTensor | Sequence[SymbolicTensor],
    ) -> None:
        super().__init__()
        self.inputs = _tensor_list(inputs, "inputs")
        self.outputs = _tensor_list(outputs, "outputs")
        for i, t in enumerate(self.inputs):
            if t.node is not None:
                raise ValueError(f"Model inputs[{i}] must come from gn.Input, got {t}")
            if any(t is u for u in self.inputs[:i]):
                raise ValueError(f"Model inputs[{i}] is listed twice")
        nodes = self._reachable_nodes()
        tensor_ids = {id(t): i for i, t in enumerate(self.inputs)}
        for k, node in enumerate(nodes):
            tensor_ids[id(node.output)] = len(self.inputs) + k
        self.layers: list[Module] = []
        layer_ids: dict[int, int] = {}
        for node in nodes:
            if id(node.layer) not in layer_ids:
                layer_ids[id(node.layer)] = len(self.layers)
                self.layers.append(node.layer)
        #: per node, in topological order: (layer index, input tensor ids); tensor ids number
        #: the inputs 0..I-1, then node k's output I + k.
        self.nodes = [
            (layer_ids[id(n.layer)], [tensor_ids[id(t)] for t in n.inputs]) for n in nodes
        ]
        self.output_ids = [tensor_ids[id(t)] for t in self.outputs]
        #: one sample's shape of each tensor, by tensor id (inputs, then the nodes' outputs)
        self.tensor_shapes = [t.shape for t in self.inputs] + [n.output.shape for n in nodes]
        self.layer_names = _layer_names(self.layers, nodes, layer_ids)
        self.multi_input = len(self.inputs) > 1
        names = [name for name, _ in self.named_parameters()]
        if len(set(names)) != len(names):
            clash = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"Model parameter names collide: {clash}; rename the layers")

    def _reachable_nodes(self) -> list[Node]:
        """Every node the outputs depend on, in creation (so topological) order; checks inputs."""
        seen: dict[int, Node] = {}
        used_inputs: set[int] = set()
        stack = [(i, t) for i, t in enumerate(self.outputs)]
        while stack:
            i, t = stack.pop()
            if t.node is None:
                if not any(t is u for u in self.inputs):
                    raise ValueError(
                        f"Model outputs[{i}] depends on an Input of shape {t.shape} that is not "
                        "among the model's inputs (a tensor from another graph?)"
                    )
                used_inputs.add(id(t))
            elif id(t.node) not in seen:
                seen[id(t.node)] = t.node
                stack.extend((i, u) for u in t.node.inputs)
        for i, t in enumerate(self.inputs):
            if id(t) not in used_inputs:
                raise ValueError(
                    f"Model inputs[{i}] (shape {t.shape}) is disconnected: no output depends on it"
                )
        return sorted(seen.values(), key=lambda n: n.order)

    # -- computation -------------------------------------------------------------------------
    def forward(self, x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:  # type: ignore[override]
        """Run every node in order; inputs are checked once (array, float, shape, finite)."""
        xs = self._check_inputs(x)
        I = len(xs)  # noqa: E741
        # every tensor in the layouts it has been needed in so far: {chwn: array}
        values: list[dict[bool, np.ndarray]] = [{False: a} for a in xs]
        values += [{} for _ in self.nodes]
        ran_chwn: list[bool] = [True] * len(self.nodes)
        caches: list[Any] = [None] * len(self.nodes)
        steps = [(self.layers[li], ins, I + k) for k, (li, ins) in enumerate(self.nodes)]
        fused = fusion.chains(steps, self.output_ids, backward_follows=keeps_for_backward())
        waiting = {k for chain in fused.values() for k in chain.steps[:-1]}
        for k, (li, ins) in enumerate(self.nodes):
            if k in fused:  # a convolution with the layers after it in its stores, run here
                chain = fused[k]
                x = _in_layout(values[chain.reads], True)
                r = None if chain.residual is None else _in_layout(values[chain.residual], True)
                values[I + k] = {True: self._at(chain.steps[0], chain.run, x, r)}
                for j in chain.steps:  # each ran in the compute layout, its cache its own
                    caches[j] = self.layers[self.nodes[j][0]]._call_state()
            elif k not in waiting:
                layer = self.layers[li]
                want = layout.runs_chwn(layer, [next(iter(values[t].values())) for t in ins])
                args = [_in_layout(values[t], want) for t in ins]
                out, ran_chwn[k] = self._at(k, layout.forward, layer, args, [want] * len(args))
                values[I + k] = {ran_chwn[k]: out}
                caches[k] = layer._call_state()
        outs = [_in_layout(values[t], False) for t in self.output_ids]
        self._cache = kept(
            (ran_chwn, caches, [o.shape for o in outs], [(a.shape, a.dtype) for a in xs])
        )
        return outs[0] if len(outs) == 1 else outs

    def backward(  # type: ignore[override]
        self, dout: np.ndarray | Sequence[np.ndarray | None], input_grad: bool = True
    ) -> np.ndarray | list[np.ndarray] | None:
        """Propagate the output gradients back through every node; ``dL/d(inputs)``.

        Args:
            dout: ``dL/d(output)``, or for several outputs a list with one gradient each
                (``None`` for an output the loss does not use).
            input_grad: with ``False`` (what training needs) the inputs' gradients are not
                computed, nor any gradient only they would need; ``None`` is returned.

        Returns:
            The input's gradient, a list of them for several inputs, or ``None``.
        """
        ran_chwn, caches, out_shapes, in_meta = self._take_cache()
        douts = self._check_douts(dout, out_shapes)
        I = len(self.inputs)  # noqa: E741
        needs = [input_grad] * I  # does anything upstream of tensor t want a gradient?
        for li, ins in self.nodes:
            needs.append(bool(self.layers[li].parameters()) or any(needs[t] for t in ins))
        grads: dict[int, tuple[np.ndarray, bool]] = {}

        def accumulate(t: int, g: np.ndarray, chwn: bool) -> None:
            if t in grads:  # a fork: the branches' gradients add (never in place: g may be shared)
                g0, chwn0 = grads[t]
                grads[t] = (F.add_forward((g0, layout.convert(g, chwn, chwn0)))[0], chwn0)
            else:
                grads[t] = (g, chwn)

        for t, g in zip(self.output_ids, douts, strict=True):
            if g is not None:
                accumulate(t, g, False)
        for k in reversed(range(len(self.nodes))):
            li, ins = self.nodes[k]
            if I + k not in grads or not needs[I + k]:
                continue  # nothing reaches this node, or nothing before it wants a gradient
            g, chwn = grads.pop(I + k)
            layer = self.layers[li]
            layer._set_call_state(caches[k])
            wanted = [needs[t] for t in ins]
            dxs = self._at(k, layout.backward, layer, g, chwn, ran_chwn[k], any(wanted))
            for t, dx, w in zip(ins, dxs or [], wanted, strict=False):
                if w:
                    accumulate(t, dx, ran_chwn[k])
        if not input_grad:
            return None
        dxs = []
        for t, (shape, dtype) in enumerate(in_meta):
            g, chwn = grads.get(t, (np.zeros(shape, dtype), False))
            dxs.append(layout.convert(g, chwn, False))
        return dxs[0] if I == 1 else dxs

    def _check_inputs(self, x: Any) -> list[np.ndarray]:
        if len(self.inputs) == 1 and not isinstance(x, list | tuple):
            x = [x]
        if not isinstance(x, list | tuple) or len(x) != len(self.inputs):
            got = f"{len(x)} arrays" if isinstance(x, list | tuple) else type(x).__name__
            raise TypeError(f"this model takes a list of {len(self.inputs)} arrays, got {got}")
        for i, (a, t) in enumerate(zip(x, self.inputs, strict=True)):
            where = "Model input" if len(x) == 1 else f"Model input {i}"
            check_array(a, where)
            if a.shape[1:] != t.shape:
                raise ValueError(
                    f"{where} must have shape (N, {', '.join(map(str, t.shape))}), got {a.shape}"
                )
            if a.shape[0] != x[0].shape[0]:
                raise ValueError(f"{where} has {a.shape[0]} samples, input 0 has {x[0].shape[0]}")
            check_finite(a, where)
        return list(x)

    def _check_douts(self, dout: Any, out_shapes: list[tuple[int, ...]]) -> list[Any]:
        if len(out_shapes) == 1 and not isinstance(dout, list | tuple):
            dout = [dout]
        if not isinstance(dout, list | tuple) or len(dout) != len(out_shapes):
            got = f"{len(dout)} entries" if isinstance(dout, list | tuple) else type(dout).__name__
            raise TypeError(
                f"Model.backward takes a list of {len(out_shapes)} gradients (None for an unused "
                f"output), got {got}"
            )
        for i, (g, shape) in enumerate(zip(dout, out_shapes, strict=True)):
            if g is not None and (not isinstance(g, np.ndarray) or g.shape != shape):
                got = g.shape if isinstance(g, np.ndarray) else type(g).__name__
                raise ValueError(f"gradient of output {i} must have shape {shape}, got {got}")
        if all(g is None for g in dout):
            raise ValueError("Model.backward got no gradient (every entry is None)")
        return list(dout)

    def _at(self, k: int, method: Any, *args: Any) -> Any:
        """Call ``method(*args)``, prefixing an input error with node ``k``'s name and class."""
        try:
            return method(*args)
        except (ValueError, TypeError) as error:
            layer = self.layers[self.nodes[k][0]]
            where = f"Model node {k} ({self.layer_names[self.nodes[k][0]]}: {type(layer).__name__})"
            raise type(error)(f"{where}: {error}") from error

    # -- parameters and modes ----------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, layer in zip(self.layer_names, self.layers, strict=True):
            yield from layer.named_parameters(f"{prefix}{name}.")

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name, layer in zip(self.layer_names, self.layers, strict=True):
            yield from layer.named_buffers(f"{prefix}{name}.")

    def children(self) -> list[Module]:
        return list(self.layers)

    def train(self, mode: bool = True) -> Model:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def astype(self, dtype: np.dtype | type) -> Model:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """One sample's shape for a one-input model (as ``Sequential.input_shape``), else None."""
        return self.inputs[0].shape if len(self.inputs) == 1 else None

    def summary(self, input_shape: Sequence[int] | None = None) -> str:
        """A table of every node: its inputs, output shape, parameters and FLOPs per sample.

        FLOPs count the forward pass of one sample's convolutions and dense layers as in
        ``glassnet.profile.layer_flops``: two per multiply-add (Conv2d: 2 * H_out * W_out *
        C_out * C_in * KH * KW; Linear: 2 * F_out * F_in); other layers count 0, and so does a
        nested Sequential or Model (its own ``summary`` details it). A layer called
        twice lists its parameters at its first call only; later calls are named ``name#2``, ....

        Args:
            input_shape: accepted for ``Sequential``'s signature; must be the model's own.

        Example:
            >>> import glassnet as gn
            >>> x = gn.Input((4,))
            >>> print(gn.Model(x, gn.Add()([x, gn.Linear(4, 4, rng=0)(x)])).summary())
            node       class    inputs              output shape   params   FLOPs
            input_0    Input                        (4,)                0       0
            linear_0   Linear   input_0             (4,)               20      32
            add_0      Add      input_0, linear_0   (4,)                0       0
            total                                                      20      32
        """
        from glassnet.profile import layer_flops  # the one FLOP count, shared with profile

        if input_shape is not None and tuple(input_shape) != self.input_shape:
            raise ValueError(f"this model's input shape is {self.input_shape}, got {input_shape}")
        names = [f"input_{i}" for i in range(len(self.inputs))]
        rows = [
            (name, "Input", "", str(t.shape), 0, 0)
            for name, t in zip(names, self.inputs, strict=True)
        ]
        calls = [0] * len(self.layers)
        for k, (li, ins) in enumerate(self.nodes):
            layer, calls[li] = self.layers[li], calls[li] + 1
            shape = self.tensor_shapes[len(self.inputs) + k]
            names.append(self.layer_names[li] + (f"#{calls[li]}" if calls[li] > 1 else ""))
            params = layer.num_parameters() if calls[li] == 1 else 0
            flops = layer_flops(layer, (1, *shape))
            rows.append((names[-1], type(layer).__name__, ", ".join(names[t] for t in ins),
                         str(shape), params, flops))  # fmt: skip
        rows.append(("total", "", "", "", self.num_parameters(), sum(r[5] for r in rows)))
        header = ("node", "class", "inputs", "output shape", "params", "FLOPs")
        widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(6)]
        return "\n".join(
            "   ".join(
                f"{str(cell):>{w}}" if c >= 4 else f"{str(cell):<{w}}"
                for c, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
            for row in [header, *rows]
        )

    def get_layer(self, name: str) -> Module:
        """The layer called ``name`` in this model.

        Example:
            >>> import glassnet as gn
            >>> x = gn.Input((4,))
            >>> gn.Model(x, gn.Linear(4, 2, rng=0)(x, name="fc")).get_layer("fc")
            Linear(in_features=4, out_features=2)
        """
        if name not in self.layer_names:
            raise KeyError(f"no layer named {name!r}; this model has {self.layer_names}")
        return self.layers[self.layer_names.index(name)]

    # -- configuration -----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The graph as JSON: inputs' shapes, each layer once, each node's input references.

        ``"nodes"`` lists the calls in topological order as ``{"layer": index into "layers",
        "inputs": [tensor index, ...]}``; tensor indices count the model's inputs first, then
        node k's output as ``len(inputs) + k``; ``"outputs"`` lists tensor indices.
        """
        return {
            "inputs": [list(t.shape) for t in self.inputs],
            "layers": [
                {"name": name, "class": type(layer).__name__, "config": layer.get_config()}
                for name, layer in zip(self.layer_names, self.layers, strict=True)
            ],
            "nodes": [{"layer": li, "inputs": list(ins)} for li, ins in self.nodes],
            "outputs": list(self.output_ids),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        """Rebuild a model from ``get_config()``, validating every reference.

        Raises:
            ValueError: a malformed config: wrong keys, more than ``MAX_NODES`` nodes or
                ``MAX_INPUTS`` inputs, a bad or duplicate layer name, a reference out of range
                (or to a later node), a layer no node calls, a node no output depends on, or a
                graph the layers refuse.
        """
        if not isinstance(config, dict) or set(config) != {"inputs", "layers", "nodes", "outputs"}:
            raise ValueError(
                "Model config must be {'inputs', 'layers', 'nodes', 'outputs'}, got "
                f"{sorted(config) if isinstance(config, dict) else type(config).__name__}"
            )
        specs, nodes = _list(config, "layers", MAX_NODES), _list(config, "nodes", MAX_NODES)
        shapes = _list(config, "inputs", MAX_INPUTS)
        inputs = [Input(shape) for shape in shapes]
        names: list[str] = []
        layers = []
        for i, spec in enumerate(specs):
            name = check_name(
                spec.get("name") if isinstance(spec, dict) else None, f"layers[{i}] name"
            )
            if name in names:
                raise ValueError(f"layers[{i}] name {name!r} is used twice")
            names.append(name)
            layers.append(layer_from_config({k: v for k, v in spec.items() if k != "name"}))
        tensors = list(inputs)
        called = set()
        for k, node in enumerate(nodes):
            if not (isinstance(node, dict) and set(node) == {"layer", "inputs"}):
                raise ValueError(f"nodes[{k}] must be {{'layer', 'inputs'}}, got {node!r}")
            li = _index(node["layer"], len(layers), f"nodes[{k}] layer")
            refs = node["inputs"]
            if not isinstance(refs, list) or not refs:
                raise ValueError(f"nodes[{k}] inputs must be a non-empty list, got {refs!r}")
            args = [tensors[_index(r, len(tensors), f"nodes[{k}] input")] for r in refs]
            if not layers[li].multi_input and len(args) != 1:
                raise ValueError(f"nodes[{k}] gives {len(args)} inputs to a one-input layer")
            layer = layers[li]
            try:
                tensors.append(layer(args if layer.multi_input else args[0], name=names[li]))
            except (ValueError, TypeError) as error:
                raise type(error)(f"nodes[{k}] ({names[li]}): {error}") from error
            called.add(li)
        unused = sorted(set(range(len(layers))) - called)
        if unused:
            raise ValueError(f"layers {unused} are not called by any node")
        outputs = [
            tensors[_index(t, len(tensors), "outputs entry")]
            for t in _list(config, "outputs", MAX_NODES)
        ]
        model = cls(inputs, outputs)
        if len(model.nodes) != len(nodes):
            raise ValueError(f"{len(nodes) - len(model.nodes)} nodes lead to no output")
        return model

    def __repr__(self) -> str:
        return (
            "Model(\n"
            + "\n".join(
                f"  ({name}): {layer!r}"
                for name, layer in zip(self.layer_names, self.layers, strict=True)
            )
            + "\n)"
        )


def _in_layout(value: dict[bool, np.ndarray], chwn: bool) -> np.ndarray:
    """A tensor in the layout wanted, converted once and kept for its other readers.

    ``value`` maps "in the compute layout?" to the array in that layout, as far as needed.
    """
    if chwn not in value:
        have, array = next(iter(value.items()))
        value[chwn] = layout.convert(array, have, chwn)
    return value[chwn]


def _tensor_list(x: Any, what: str) -> list[SymbolicTensor]:
    tensors = list(x) if isinstance(x, list | tuple) else [x]
    if not tensors:
        raise ValueError(f"Model {what} must not be empty")
    for i, t in enumerate(tensors):
        if not isinstance(t, SymbolicTensor):
            raise TypeError(
                f"Model {what}[{i}] must be a symbolic tensor (from gn.Input or a layer call on "
                f"one), got {type(t).__name__}"
            )
    return tensors


def _layer_names(layers: list[Module], nodes: list[Node], layer_ids: dict[int, int]) -> list[str]:
    """One name per layer: the given one, else ``<class>_<k>`` (see the module docstring)."""
    given: list[str | None] = [None] * len(layers)
    for node in nodes:
        i = layer_ids[id(node.layer)]
        if node.name is not None:
            if given[i] is not None and given[i] != node.name:
                raise ValueError(
                    f"one {type(node.layer).__name__} layer is named both {given[i]!r} and "
                    f"{node.name!r}"
                )
            given[i] = node.name
    taken = [n for n in given if n is not None]
    if len(set(taken)) != len(taken):
        raise ValueError(
            f"two layers share the name {next(n for n in taken if taken.count(n) > 1)!r}"
        )
    counters: dict[str, int] = {}
    names = []
    for layer, name in zip(layers, given, strict=True):
        if name is None:
            base = type(layer).__name__.lower()
            while name is None or name in taken:
                name = f"{base}_{counters.get(base, 0)}"
                counters[base] = counters.get(base, 0) + 1
            taken.append(name)
        names.append(name)
    return names


def _list(config: dict[str, Any], key: str, cap: int) -> list[Any]:
    value = config[key]
    if not isinstance(value, list) or not value:
        raise ValueError(f"Model config {key!r} must be a non-empty list, got {value!r}")
    if len(value) > cap:
        raise ValueError(f"Model config {key!r} has {len(value)} entries, at most {cap} allowed")
    return value


def _index(value: Any, size: int, where: str) -> int:
    if type(value) is not int or not 0 <= value < size:
        raise ValueError(f"{where} must be an int in [0, {size}), got {value!r}")
    return value
