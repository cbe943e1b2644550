"""Short fingerprints of what every rank must agree on before the first step.

A rank that built another model, loaded other data or runs another glassnet would still take
part in every exchange (the arrays may even have the same sizes) and silently train something
else; comparing these fingerprints at the start (``DataParallel.check_same``) turns that into
an error naming what differs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from glassnet.nn.module import Module
from glassnet.optim import Optimizer


def digest(*arrays: np.ndarray) -> str:
    """A hash of the arrays' dtypes, shapes and bytes.

    Example:
        >>> digest(np.zeros(3)) == digest(np.zeros(3)), digest(np.zeros(3)) == digest(np.ones(3))
        (True, False)
    """
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def describe(
    model: Module,
    optimizer: Optimizer,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    settings: dict[str, Any],
) -> dict[str, str]:
    """What must be the same on every rank: versions, model, optimizer, data and settings.

    Args:
        data: name -> (inputs, targets), e.g. ``{"train": ..., "validation": ...}``.
        settings: the loop's other choices (epochs, batch size, the data order's generator
            state), JSON-able.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
        >>> sorted(describe(model, gn.SGD(model.parameters(), lr=0.1), {}, {}))
        ['glassnet and NumPy versions', 'model architecture', 'model weights', 'optimizer', \
'training settings']
    """
    from glassnet import __version__

    state = optimizer.state_dict()
    what = {
        "glassnet and NumPy versions": f"glassnet {__version__}, NumPy {np.__version__}",
        "model architecture": json.dumps(
            {"class": type(model).__name__, "config": model.get_config()}, sort_keys=True
        ),
        "model weights": digest(*model.state_dict().values()),
        "optimizer": json.dumps({k: state[k] for k in ("class", "hyper", "steps")})
        + digest(*state["buffers"].values()),
        "training settings": json.dumps(settings, sort_keys=True, default=str),
    }
    for name, (inputs, targets) in data.items():
        what[f"{name} data"] = digest(inputs, targets)
    return what
