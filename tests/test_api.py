"""The public names: every one in ``__all__`` resolves, and the lists are sorted and unique."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import glassnet
import glassnet.nn


@pytest.mark.parametrize("module", [glassnet, glassnet.nn], ids=lambda m: m.__name__)
def test_all_resolves_and_is_sorted_and_unique(module: types.ModuleType) -> None:
    assert module.__all__ == sorted(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_nn_names_are_the_same_objects_as_at_the_top_level() -> None:
    from glassnet.nn import Conv2d, CrossEntropyLoss, Sequential  # as in torch.nn

    assert (Conv2d, CrossEntropyLoss, Sequential) == (
        glassnet.Conv2d,
        glassnet.CrossEntropyLoss,
        glassnet.Sequential,
    )
    assert set(glassnet.nn.__all__) <= set(glassnet.__all__)


def test_submodules_reachable_after_import_glassnet_alone() -> None:
    """``gn.testing`` and ``gn.models`` without importing them first (a fresh interpreter)."""
    code = "import glassnet as gn; print(gn.testing.numerical_gradient.__name__, gn.models.lenet5.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numerical_gradient", "lenet5"]
