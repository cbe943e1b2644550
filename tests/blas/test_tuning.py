"""glassnet.blas: the CPU's kernel sets, the choice rule, the store, and switching for real.

The switching tests run where NumPy's BLAS is an OpenBLAS with several kernel sets this CPU can
run (NumPy's own wheels on x86-64 Linux with AVX2); elsewhere they skip, as there is nothing to
choose. Each leaves the process on the kernels OpenBLAS detected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from glassnet import blas
from glassnet.blas import tuning
from glassnet.blas.cpu import cpu_flags, cpu_model, runnable_kernels
from glassnet.blas.openblas import numpy_openblas
from glassnet.cli import main

EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl\n\nprocessor\t: 1\n"


def test_cpuinfo_fields_are_read_from_the_first_processor():
    assert cpu_model(EPYC) == "AMD EPYC 9R14"
    assert {"avx2", "avx512vl", "fpu"} <= cpu_flags(EPYC)
    assert cpu_model("") == "unknown" and cpu_flags("") == frozenset()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl", ["Haswell", "SkylakeX"]),
        ("avx avx2 fma avx512f", ["Haswell"]),  # AVX-512 foundation alone is not SkylakeX's set
        ("avx avx2", []),  # no FMA: Haswell's kernels would crash
        ("neon asimd", []),
    ],
)
def test_only_kernels_whose_every_instruction_the_cpu_has_are_candidates(flags, expected):
    assert runnable_kernels(frozenset(flags.split())) == expected


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # 2x and 1.25x faster: chosen, with the geometric mean of the speed-ups
        ({"X": {"a": 2.0, "b": 1.0}, "H": {"a": 1.0, "b": 0.8}}, ("H", (2 * 1.25) ** 0.5)),
        # faster overall, but one product 10% slower: never slower anywhere, so no
        ({"X": {"a": 2.0, "b": 1.0}, "H": {"a": 1.0, "b": 1.1}}, ("X", 1.0)),
        # 2% faster: within the noise, not worth a switch
        ({"X": {"a": 1.0, "b": 1.0}, "H": {"a": 0.98, "b": 0.98}}, ("X", 1.0)),
        # two faster sets: the faster one
        ({"X": {"a": 1.0}, "H": {"a": 0.8}, "Z": {"a": 0.5}}, ("Z", 2.0)),
        # only the detected kernels were measured
        ({"X": {"a": 1.0}}, ("X", 1.0)),
    ],
)
def test_choose_switches_only_for_a_clear_gain_and_no_loss(times, expected):
    choice, gain = blas.choose(times, "X")
    assert choice == expected[0]
    assert gain == pytest.approx(expected[1])


@pytest.fixture(autouse=True)
def state_restored():
    """glassnet's record of the kernels' origin, as it was before the test."""
    state = dict(tuning._state)
    yield
    tuning._state.update(state)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GLASSNET_CACHE_DIR", str(tmp_path))
    return tmp_path / tuning.STORE_NAME


def make_tuning(
    key: str = "cpu | build | detected X | 2 threads", choice: str = "H"
) -> blas.Tuning:
    names = [w.name for w in tuning.WORKLOADS]
    times = {"X": {name: 2.0 for name in names}, "H": {name: 1.0 for name in names}}
    return blas.Tuning(key, "X", choice, 2.0, times, "2026-11-23T00:00:00+00:00")


def test_tunings_are_stored_per_key_and_a_damaged_store_reads_as_empty(cache):
    first, second = make_tuning("one"), make_tuning("two", choice="X")
    tuning.save(first)
    tuning.save(second)
    assert tuning._stored() == {"one": first, "two": second}
    assert json.loads(cache.read_text())["format"] == tuning.STORE_FORMAT
    cache.write_text("{not json")
    assert tuning._stored() == {}


def test_tuning_table_lists_every_workload_under_every_kernel_set():
    lines = make_tuning().table().splitlines()
    assert lines[0].split()[-2:] == ["X", "H"]
    assert len(lines) == 1 + len(tuning.WORKLOADS)
    assert lines[1].split()[-2:] == ["2.000", "1.000"]


def test_the_kernels_are_left_alone_when_the_user_or_glassnet_blas_off_says_so(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # named first, with GLASSNET_BLAS=off too
    assert tuning._openblas_glassnet_may_switch() is None
    assert "OPENBLAS_CORETYPE=Haswell, set by you" in tuning._state["reason"]
    if numpy_openblas() is not None:
        assert blas.status().detected is None  # forced at load, as far as glassnet knows
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setenv("GLASSNET_BLAS", "off")
    assert tuning._openblas_glassnet_may_switch() is None
    assert "GLASSNET_BLAS=off" in str(blas.status())


# --- switching for real ---------------------------------------------------------------------

OPENBLAS = numpy_openblas()
SWITCHABLE = OPENBLAS is not None and OPENBLAS.can_switch()
CANDIDATES = runnable_kernels(cpu_flags()) if SWITCHABLE else []
needs_switching = pytest.mark.skipif(
    OPENBLAS is None or not [k for k in CANDIDATES if k != OPENBLAS.corename()],
    reason="NumPy's BLAS has no other kernel set this CPU runs",
)


@pytest.fixture
def detected_kernels_after():
    """Back to the kernels OpenBLAS detects after the test."""
    assert OPENBLAS is not None
    yield OPENBLAS.corename()
    OPENBLAS.switch(None)


@needs_switching
def test_switching_kernels_changes_the_set_and_keeps_the_products(detected_kernels_after):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 300), np.float32), rng.standard_normal((300, 500), np.float32)
    expected = a @ b
    environment = os.environ.get("OPENBLAS_CORETYPE")
    for kernels in CANDIDATES:
        assert OPENBLAS.switch(kernels) == kernels
        np.testing.assert_allclose(a @ b, expected, rtol=1e-4, atol=1e-4)
    assert OPENBLAS.switch(None) == detected_kernels_after
    assert os.environ.get("OPENBLAS_CORETYPE") == environment  # restored


@needs_switching
def test_tune_times_every_product_under_every_candidate_and_stores_the_choice(
    cache, monkeypatch, detected_kernels_after
):
    monkeypatch.delenv("GLASSNET_BLAS")
    result = blas.tune(rounds=1)
    assert result.detected == detected_kernels_after
    assert set(result.times_ms) == {detected_kernels_after, *CANDIDATES}
    for times in result.times_ms.values():
        assert set(times) == {w.name for w in tuning.WORKLOADS}
        assert all(t > 0 for t in times.values())
    assert (result.choice, result.speedup) == (
        blas.choose(result.times_ms, result.detected)[0],
        pytest.approx(blas.choose(result.times_ms, result.detected)[1], abs=1e-3),
    )
    assert tuning._stored() == {result.key: result}
    assert OPENBLAS.corename() == result.choice


def run_python(code: str, cache: Path, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("GLASSNET_BLAS",)}
    environment.update(GLASSNET_CACHE_DIR=str(cache.parent), **env)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_switching
def test_import_applies_the_stored_choice_for_this_machine_only(cache):
    assert OPENBLAS is not None
    detected = OPENBLAS.corename()
    other = next(k for k in CANDIDATES if k != detected)
    key = tuning._key(OPENBLAS)
    stored = make_tuning(key, choice=other)
    tuning.save(blas.Tuning(key, detected, other, 1.3, stored.times_ms, stored.date))
    report = "import numpy, glassnet; s = glassnet.blas.status(); print(s.kernels, '|', s)"
    # NumPy loaded first, as in most scripts: glassnet switches at import, and the commands'
    # ensure_tuned finds the machine measured (the build line, which names the kernels in
    # use, changed with the switch)
    out = run_python(report.replace("; s =", "; glassnet.blas.ensure_tuned(); s ="), cache)
    kernels, line = out.strip().split(" | ", 1)
    assert kernels == other
    assert f"glassnet's measured choice, 1.30x faster here than the detected {detected}" in line
    # the user's own setting wins, and GLASSNET_BLAS=off leaves OpenBLAS's choice
    assert run_python(report, cache, OPENBLAS_CORETYPE=detected).startswith(detected)
    assert run_python(report, cache, GLASSNET_BLAS="off").startswith(detected)
    # measured on another machine only: not applied
    cache.unlink()
    tuning.save(blas.Tuning("another CPU", detected, other, 1.3, stored.times_ms, stored.date))
    assert "not measured here yet" in run_python(report, cache)


@needs_switching
def test_a_stored_choice_the_cpu_cannot_run_is_not_applied(monkeypatch, detected_kernels_after):
    assert OPENBLAS is not None
    other = next(k for k in CANDIDATES if k != detected_kernels_after)
    monkeypatch.setattr(tuning, "cpu_flags", lambda: frozenset())
    choice = make_tuning(choice=other)
    tuning._use(OPENBLAS, blas.Tuning(choice.key, detected_kernels_after, other, 2.0, {}, ""))
    assert OPENBLAS.corename() == detected_kernels_after
    assert f"this CPU cannot run {other} kernels" in tuning._state["reason"]


@needs_switching
def test_tune_blas_command_prints_the_times_and_the_kernels_in_use(
    cache, monkeypatch, capsys, detected_kernels_after
):
    monkeypatch.delenv("GLASSNET_BLAS")
    assert main(["tune-blas", "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("workload (median ms)")
    assert f"BLAS: OpenBLAS {OPENBLAS.version()}, {OPENBLAS.corename()} kernels" in out
    assert cache.is_file()


@needs_switching
def test_tune_blas_command_shows_the_times_when_the_cache_cannot_be_written(
    tmp_path, monkeypatch, capsys, detected_kernels_after
):
    monkeypatch.delenv("GLASSNET_BLAS")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GLASSNET_CACHE_DIR", str(tmp_path / "file"))
    assert main(["tune-blas", "--rounds", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("workload (median ms)")
    assert "could not store the BLAS choice in the cache (" in captured.err
    assert captured.err.rstrip().endswith("it held for this run only")


def test_tune_blas_command_rejects_too_few_rounds(capsys):
    assert main(["tune-blas", "--rounds", "2"]) == 2
    assert "--rounds must be at least 3 for a median to mean much, got 2" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [("OPENBLAS_CORETYPE", "Haswell"), ("GLASSNET_BLAS", "off")])
def test_tune_refuses_where_the_user_chose_the_kernels(setting, monkeypatch):
    monkeypatch.delenv("GLASSNET_BLAS")
    monkeypatch.setenv(*setting)
    with pytest.raises(
        RuntimeError, match=f"does not choose NumPy's BLAS kernels here: {setting[0]}"
    ):
        blas.tune()


@pytest.mark.parametrize(
    "store",
    [
        '{"tunings": []}',
        '{"tunings": {"k": {"key": "k"}}}',
        '{"tunings": {"k": {"key": "k", "detected": "X", "choice": "H", "speedup": "fast", '
        '"times_ms": {}, "date": ""}}}',
        '{"tunings": {"k": {"key": "another", "detected": "X", "choice": "H", "speedup": 2.0, '
        '"times_ms": {}, "date": ""}}}',
        "[" * 100_000 + "]" * 100_000,  # deeper than the JSON parser recurses
        '{"format": 1, "tunings": {"k": {"key": "k", "detected": "X", "choice": "H", '
        '"speedup": 2.0, "times_ms": {}, "date": ""}}}',  # measured by an earlier method
    ],
)
def test_damaged_or_outdated_store_entries_count_as_absent(store, cache):
    cache.write_text(store)
    assert tuning._stored() == {}


@needs_switching
def test_a_damaged_store_never_breaks_import(cache):
    cache.write_text('{"tunings": {"k": 1}}')
    out = run_python("import glassnet; print(glassnet.blas.status().reason)", cache)
    assert "not measured here yet" in out


@needs_switching
def test_import_waits_when_other_threads_run_and_apply_tuned_switches_later(
    cache, monkeypatch, detected_kernels_after
):
    monkeypatch.delenv("GLASSNET_BLAS")
    other = next(k for k in CANDIDATES if k != detected_kernels_after)
    key = tuning._key(OPENBLAS)
    tuning.save(blas.Tuning(key, detected_kernels_after, other, 1.3, {}, ""))
    monkeypatch.setattr(tuning.threading, "active_count", lambda: 3)
    blas.apply_tuned(when_alone=True)
    assert OPENBLAS.corename() == detected_kernels_after
    assert f"measured choice, {other}, waits: other threads ran at import" in blas.status().reason
    blas.ensure_tuned()  # as the commands do: applied, nothing measured
    assert blas.status().kernels == other
    assert "glassnet's measured choice, 1.30x faster" in blas.status().reason


@needs_switching
def test_an_unwritable_cache_keeps_the_choice_for_the_run(
    tmp_path, monkeypatch, capsys, detected_kernels_after
):
    monkeypatch.delenv("GLASSNET_BLAS")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("GLASSNET_CACHE_DIR", str(not_a_folder))
    blas.ensure_tuned()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("glassnet: timing NumPy's BLAS kernels on this CPU, once")
    assert lines[1].startswith("glassnet: could not store the BLAS choice (")
    assert lines[1].endswith("): it holds for this run")


def test_without_an_openblas_status_names_numpys_blas_and_tune_refuses(monkeypatch, capsys):
    monkeypatch.setattr(tuning, "numpy_openblas", lambda: None)
    status = blas.status()
    assert (status.kernels, status.reason) == (None, "not an OpenBLAS glassnet tunes")
    monkeypatch.delenv("GLASSNET_BLAS")
    with pytest.raises(RuntimeError, match="is not an OpenBLAS glassnet tunes"):
        blas.tune()
    blas.ensure_tuned()  # nothing to choose between: says nothing, measures nothing
    assert capsys.readouterr().out == ""
