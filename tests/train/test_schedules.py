"""Learning-rate schedules: values per epoch and per step by hand, config round trip, errors."""

from __future__ import annotations

import json

import pytest

from glassnet.train import (
    ConstantLR,
    CosineLR,
    LinearWarmupLR,
    StepLR,
    TriangularLR,
    make_schedule,
    schedule_config,
)


def test_linear_warmup_ramps_over_its_steps_then_holds():
    schedule = LinearWarmupLR(warmup_steps=5)
    rates = [schedule(s, 0.5) for s in range(8)]
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5], rel=1e-15)
    assert schedule.per_step


def test_triangle_rises_to_its_peak_and_falls_to_its_end():
    # T = 20, peak at 0.25 * 20 = 5: up from 0.1 * 2.0 = 0.2 by 0.36 a step, then down to
    # 0.05 * 2.0 = 0.1 by (2.0 - 0.1) / 15 a step
    schedule = TriangularLR(total_steps=20, peak_fraction=0.25, start_factor=0.1, end_factor=0.05)
    rates = [schedule(s, 2.0) for s in range(25)]
    assert rates[:6] == pytest.approx([0.2, 0.56, 0.92, 1.28, 1.64, 2.0], rel=1e-14)
    assert rates[5] == 2.0  # the peak exactly
    assert rates[6] == pytest.approx(2.0 - 1.9 / 15, rel=1e-14)
    assert rates[12] == pytest.approx(2.0 - 7 * 1.9 / 15, rel=1e-14)
    assert rates[20] == pytest.approx(0.1, rel=1e-14)  # the end ...
    assert rates[20:] == [rates[20]] * 5  # ... where it stays
    assert max(rates) == rates[5]


def test_triangle_without_a_rise_starts_at_the_peak():
    schedule = TriangularLR(total_steps=4, peak_fraction=0.0)
    assert [schedule(s, 1.0) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_per_epoch_schedules_are_not_per_step():
    for schedule in (ConstantLR(), StepLR(), CosineLR(epochs=3)):
        assert not schedule.per_step


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantLR(),
        StepLR(step_size=3, gamma=0.5),
        CosineLR(epochs=7, min_lr=1e-4),
        LinearWarmupLR(warmup_steps=100),
        TriangularLR(total_steps=980, peak_fraction=0.23, start_factor=0.2, end_factor=0.01),
    ],
)
def test_config_round_trips_through_json(schedule):
    config = json.loads(json.dumps(schedule_config(schedule)))
    assert "per_step" not in config  # a property of the class, not an argument
    name = config.pop("name")
    rebuilt = make_schedule(name, **config)
    assert rebuilt == schedule
    assert type(rebuilt) is type(schedule)


def test_per_step_schedules_are_named():
    assert schedule_config(LinearWarmupLR(10)) == {"name": "warmup", "warmup_steps": 10}
    assert schedule_config(TriangularLR(50)) == {
        "name": "triangular",
        "total_steps": 50,
        "peak_fraction": 0.2,
        "start_factor": 0.2,
        "end_factor": 0.0,
    }


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: LinearWarmupLR(0), ValueError, "LinearWarmupLR warmup_steps must be >= 1, got 0"),
        (lambda: LinearWarmupLR(2.5), TypeError, "warmup_steps must be an int, got float 2.5"),
        (lambda: TriangularLR(0), ValueError, "TriangularLR total_steps must be >= 1, got 0"),
        (lambda: TriangularLR(10, peak_fraction=1.0), ValueError,
         r"peak_fraction must be a finite number in \[0, 1\), got 1.0"),
        (lambda: TriangularLR(10, start_factor=-0.1), ValueError,
         "start_factor must be a finite number >= 0, got -0.1"),
        (lambda: TriangularLR(10, end_factor="0"), TypeError,
         "end_factor must be a number, got str '0'"),
        (lambda: make_schedule("onecycle"), ValueError,
         r"unknown learning-rate schedule 'onecycle'; choose from .*'triangular', 'warmup'"),
    ],
)  # fmt: skip
def test_schedule_errors_say_what_was_expected(build, error, match):
    with pytest.raises(error, match=match):
        build()
