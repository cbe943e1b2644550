"""glassnet.blas.tune and ``glassnet tune-blas``: measure and recommend, never apply or store."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import blas
from glassnet.blas import choice, measure
from glassnet.blas.cpu import cpu_flags, runnable_kernels
from glassnet.blas.gemm import matmul
from glassnet.blas.openblas import numpy_openblas
from glassnet.cli import main

OPENBLAS = numpy_openblas()
MULTI = OPENBLAS is not None and OPENBLAS.multi_cpu() and bool(runnable_kernels(cpu_flags()))


@pytest.fixture(autouse=True)
def choice_restored():
    state = dict(choice._state)
    yield
    choice._state.update(state)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # 2x and 1.25x faster: recommended, with the geometric mean of the speed-ups
        ({"numpy": {"a": 2.0, "b": 1.0}, "H": {"a": 1.0, "b": 0.8}}, ("H", (2 * 1.25) ** 0.5)),
        # faster overall, but one workload 10% slower: no
        ({"numpy": {"a": 2.0, "b": 1.0}, "H": {"a": 1.0, "b": 1.1}}, ("numpy", 1.0)),
        # 2% faster: within the noise
        ({"numpy": {"a": 1.0, "b": 1.0}, "H": {"a": 0.98, "b": 0.98}}, ("numpy", 1.0)),
        # two faster sets: the faster one
        ({"numpy": {"a": 1.0}, "H": {"a": 0.8}, "Z": {"a": 0.5}}, ("Z", 2.0)),
        ({"numpy": {"a": 1.0}}, ("numpy", 1.0)),
    ],
)
def test_choose_recommends_only_a_clear_gain_with_no_loss(times, expected):
    recommended, gain = measure.choose(times, "numpy")
    assert recommended == expected[0]
    assert gain == pytest.approx(expected[1])


def make_tuning(recommended: str = "Haswell", speedup: float = 2.0) -> blas.Tuning:
    names = [w.name for w in measure.WORKLOADS]
    times = {"numpy": dict.fromkeys(names, 2.0), "Haswell": dict.fromkeys(names, 1.0)}
    return blas.Tuning(times, recommended, speedup)


def test_the_table_lists_every_workload_under_every_setting_and_says_how_to_opt_in():
    tuning = make_tuning()
    lines = tuning.table().splitlines()
    assert lines[0].split()[-2:] == ["numpy", "Haswell"]
    assert len(lines) == 1 + len(measure.WORKLOADS)
    assert lines[1].split()[-2:] == ["2.000", "1.000"]
    assert tuning.advice() == (
        "recommendation: Haswell kernels, 2.00x faster here than NumPy's own; opt in with "
        'GLASSNET_BLAS=Haswell or glassnet.blas.use("Haswell") (measured under the load of '
        "the moment)"
    )
    assert make_tuning("numpy", 1.0).advice().startswith("recommendation: NumPy's own kernels")


@pytest.fixture
def tiny_workloads(monkeypatch):
    """One cheap workload through glassnet's products, so that tune runs in milliseconds."""
    monkeypatch.setattr(measure, "WORKLOADS", (measure.Workload("tiny", "-", 1, False),))
    a = np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32)
    monkeypatch.setattr(measure, "_workload_step", lambda workload: lambda: matmul(a, a))


@pytest.mark.skipif(not MULTI, reason="NumPy's BLAS has no kernel sets to time here")
def test_tune_times_every_setting_and_changes_nothing(tiny_workloads):
    before = blas.use("numpy")
    tuning = blas.tune(rounds=2)
    assert list(tuning.times_ms) == ["numpy", *runnable_kernels(cpu_flags())]
    assert all(t["tiny"] > 0 for t in tuning.times_ms.values())
    assert tuning.recommended in tuning.times_ms
    assert blas.status() == before and OPENBLAS.corename() == before.numpy_kernels


@pytest.mark.skipif(not MULTI, reason="NumPy's BLAS has no kernel sets to time here")
def test_tune_blas_command_prints_times_status_and_advice_and_stores_nothing(
    tiny_workloads, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("GLASSNET_CACHE_DIR", str(tmp_path))
    assert main(["tune-blas", "--rounds", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("workload (median ms)") and lines[1].startswith("tiny")
    assert lines[2].startswith("BLAS in use: NumPy's OpenBLAS")  # the suite's GLASSNET_BLAS=off
    assert lines[3].startswith("recommendation: ")
    assert list(tmp_path.iterdir()) == []


def test_tune_blas_command_rejects_too_few_rounds(capsys):
    assert main(["tune-blas", "--rounds", "2"]) == 2
    assert "--rounds must be at least 3 for a median to mean much, got 2" in capsys.readouterr().err


def test_tune_refuses_bad_rounds_and_a_blas_without_kernel_sets(monkeypatch):
    with pytest.raises(ValueError, match="tune: rounds must be at least 1, got 0"):
        blas.tune(rounds=0)
    monkeypatch.setattr(measure, "numpy_openblas", lambda: None)
    monkeypatch.setattr(measure, "numpy_blas_name", lambda: "accelerate 1.0")
    with pytest.raises(RuntimeError, match="accelerate 1.0 is not an OpenBLAS with kernel sets"):
        blas.tune()
