"""glassnet.blas: NumPy's BLAS left alone, a fixed and visible choice, private copies, opt-out.

The private-copy tests run where NumPy's BLAS is an OpenBLAS with several kernel sets and this
CPU runs Haswell's (NumPy's own wheels on x86-64 Linux with AVX2); elsewhere they skip.
Whatever runs in this process, glassnet's choice is put back after each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from glassnet import blas
from glassnet.blas import choice, gemm
from glassnet.blas.cpu import cpu_flags, cpu_model, preferred_kernels, runnable_kernels
from glassnet.blas.openblas import numpy_openblas

OPENBLAS = numpy_openblas()
PRIVATE = (
    OPENBLAS is not None and OPENBLAS.multi_cpu() and "Haswell" in runnable_kernels(cpu_flags())
)
needs_private = pytest.mark.skipif(not PRIVATE, reason="no OpenBLAS with Haswell kernels here")

EPYC = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC 9R14\n"
    "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl\n\n"
    "processor\t: 1\n"
)
XEON = EPYC.replace("AuthenticAMD", "GenuineIntel").replace(": 25", ": 6")


@pytest.fixture(autouse=True)
def choice_restored():
    """glassnet's choice as it was before the test (the suite runs with GLASSNET_BLAS=off)."""
    state = dict(choice._state)
    yield
    choice._state.update(state)


def run_python(code: str, **env: str | None) -> str:
    """``code`` in a fresh interpreter with this checkout's glassnet; its stdout."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    environment.pop("GLASSNET_BLAS", None)  # the suite's setting: each test says its own
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- the CPU and the fixed table ------------------------------------------------------------


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
    ("cpuinfo", "expected"),
    [
        (EPYC, "Haswell"),  # Zen 4: measured faster on Haswell's kernels
        (EPYC.replace(" avx512f", ""), None),  # Zen 3: no AVX-512, OpenBLAS's own pick
        (EPYC.replace(": 25", ": 26"), None),  # Zen 5: not measured, OpenBLAS's own
        (XEON, None),  # Intel with AVX-512: measured faster on SkylakeX, as detected
        ("", None),
    ],
)
def test_the_table_names_kernels_by_cpu_identity_alone(cpuinfo, expected):
    assert preferred_kernels(cpuinfo) == expected


# --- NumPy's BLAS is never changed ----------------------------------------------------------

UNTOUCHED = """
    import hashlib, threadpoolctl
    import numpy as np

    def numpy_state():
        rng = np.random.default_rng(0)
        a = rng.standard_normal((301, 203), dtype=np.float32)
        b = rng.standard_normal((203, 157), dtype=np.float32)
        info = [{k: v for k, v in lib.items() if k != "filepath"} | {"path": lib["filepath"]}
                for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"]
        return hashlib.sha256((a @ b).tobytes()).hexdigest(), info

    before = numpy_state()
    import glassnet as gn
    gn.blas.use(SETTING) if SETTING else None
    model = gn.models.build_model("lenet5", 10, rng=0)[0]
    opt = gn.SGD(model.parameters(), lr=0.1)
    loss_fn = gn.CrossEntropyLoss()
    x = np.random.default_rng(1).random((8, 28, 28, 1), dtype=np.float32)
    loss_fn.forward(model.forward(x), np.arange(8))
    model.backward(loss_fn.backward()); opt.step()
    status = gn.blas.status()
    after = numpy_state()
    print(before == after, status.private, status.kernels, status.numpy_kernels)
    print(before[1])
"""


@pytest.mark.parametrize("setting", [None, "numpy", "Haswell", "SkylakeX"])
def test_import_and_training_leave_numpys_products_bit_identical(setting):
    if setting not in (None, "numpy") and (
        not PRIVATE or setting not in runnable_kernels(cpu_flags())
    ):
        pytest.skip(f"no OpenBLAS with {setting} kernels here")
    code = UNTOUCHED.replace("SETTING", repr(setting))
    same, private, kernels, numpy_kernels = run_python(code).splitlines()[0].split()
    assert same == "True"  # the product's bytes, threads, kernels, library: all as before
    if setting in ("Haswell", "SkylakeX"):
        assert (private, kernels) == ("True", setting)
    if setting == "numpy":
        assert (private, kernels) == ("False", numpy_kernels)


@needs_private
def test_a_private_copy_follows_numpys_thread_count_and_leaves_it_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas.use("Haswell")
    copy, threads = choice.selected().blas, OPENBLAS.threads()
    with threadpoolctl.threadpool_limits(1, user_api="blas"):  # the user limits NumPy's
        gemm.matmul(np.ones((4, 3), np.float32), np.ones((3, 2), np.float32))
        assert copy.threads() == 1 == OPENBLAS.threads()
    gemm.matmul(np.ones((4, 3), np.float32), np.ones((3, 2), np.float32))
    assert copy.threads() == threads == OPENBLAS.threads()


# --- the same seed gives the same numbers ---------------------------------------------------

TRAIN = """
    import threading, time
    if EXTRA_THREAD:  # as in a Jupyter kernel: another thread runs while glassnet is imported
        threading.Thread(target=lambda: time.sleep(3), daemon=True).start()
    import numpy as np
    import glassnet as gn
    model = gn.models.build_model("cifar-cnn", 10, rng=0)[0]
    opt = gn.Adam(model.parameters(), lr=1e-3)
    loss_fn = gn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    x, y = rng.random((16, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 16)
    for _ in range(3):
        loss = loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward()); opt.step(); opt.zero_grad()
    print(repr(loss), gn.blas.status())
"""


@pytest.mark.parametrize("glassnet_blas", [None, "Haswell"])
def test_the_same_seed_gives_the_same_loss_whatever_the_cache_or_threads(tmp_path, glassnet_blas):
    if glassnet_blas is not None and not PRIVATE:
        pytest.skip("no OpenBLAS with Haswell kernels here")
    odd = tmp_path / "odd"
    odd.mkdir()
    # a stored timing of this machine (an older glassnet's) choosing other kernels, and junk
    tuning = {"key": "any", "detected": "SkylakeX", "choice": "Haswell", "speedup": 2.3,
              "times_ms": {}, "date": "2026-11-23"}  # fmt: skip
    (odd / "blas-kernels.json").write_text(json.dumps({"format": 2, "tunings": {"any": tuning}}))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "blas-kernels.json").write_bytes(b"\x00{not json")
    runs = [
        run_python(
            TRAIN.replace("EXTRA_THREAD", extra),
            GLASSNET_CACHE_DIR=str(cache),
            GLASSNET_BLAS=glassnet_blas,
        )  # fmt: skip
        for cache, extra in [
            (tmp_path / "none", "False"),
            (odd, "False"),
            (tmp_path / "junk", "True"),
            (odd, "True"),
        ]  # fmt: skip
    ]
    assert len(set(runs)) == 1, runs
    loss = float(runs[0].split()[0])
    assert 0 < loss < 10


# --- visible and opt-out --------------------------------------------------------------------


def test_status_names_the_library_kernels_threads_and_why():
    status = blas.use("numpy")
    if OPENBLAS is None:
        assert status.kernels is None and not status.private
        return
    assert status.library == f"NumPy's OpenBLAS {OPENBLAS.version()}"
    assert status.kernels == status.numpy_kernels == OPENBLAS.corename()
    assert status.threads == OPENBLAS.threads() and not status.private
    assert str(status) == (
        f"NumPy's OpenBLAS {OPENBLAS.version()}, {OPENBLAS.corename()} kernels, "
        f'{OPENBLAS.threads()} threads (gn.blas.use("numpy"): NumPy\'s own library, as it is)'
    )


@needs_private
def test_opting_in_runs_glassnets_products_on_a_private_copy_and_out_again():
    detected = OPENBLAS.corename()
    status = blas.use("haswell")  # any case
    assert status.private and status.kernels == "Haswell" and status.numpy_kernels == detected
    assert status.library == f"glassnet's private copy of OpenBLAS {OPENBLAS.version()}"
    assert f"NumPy's own products keep {detected}" in status.reason
    assert OPENBLAS.corename() == detected
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((37, 53)), rng.standard_normal((53, 29))
    np.testing.assert_allclose(gemm.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gemm.matmul(a, b[:, 0]), a @ b[:, 0], rtol=1e-12, atol=1e-12)
    with blas.using("numpy") as inside:
        assert not inside.private and inside.kernels == detected
    assert blas.status().private  # back to the choice before the block
    assert not blas.use("off").private


@needs_private
@pytest.mark.parametrize(
    ("env", "private"),
    [({"GLASSNET_BLAS": "numpy"}, False), ({"GLASSNET_BLAS": "off"}, False),
     ({"GLASSNET_BLAS": "Haswell"}, True), ({"GLASSNET_BLAS": "auto"}, None),
     ({"GLASSNET_BLAS": None}, None),
     ({"GLASSNET_BLAS": None, "OPENBLAS_CORETYPE": "Haswell"}, False)],
)  # fmt: skip
def test_glassnet_blas_opts_in_and_out(env, private):
    code = "import glassnet as gn; s = gn.blas.status(); print(s.private, s.kernels, '|', s)"
    out = run_python(code, **env)
    if private is None:  # the fixed table decides
        wanted = preferred_kernels()
        private = wanted is not None and wanted != OPENBLAS.corename()
    assert out.startswith(f"{private} "), out
    if "OPENBLAS_CORETYPE" in env:
        assert "OPENBLAS_CORETYPE=Haswell, set by you" in out


def test_the_table_puts_glassnets_products_on_a_private_copy_where_it_names_kernels(
    monkeypatch,
):
    if not PRIVATE:
        pytest.skip("no OpenBLAS with Haswell kernels here")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    other = "Haswell" if OPENBLAS.corename() != "Haswell" else "SkylakeX"
    if other not in runnable_kernels(cpu_flags()):
        pytest.skip(f"this CPU cannot run {other} kernels")
    monkeypatch.setattr(choice, "preferred_kernels", lambda: other)
    status = blas.use("auto")
    assert status.private and status.kernels == other
    assert (
        f"glassnet's choice for this CPU, measured faster than the detected {OPENBLAS.corename()}"
        in status.reason
    )
    monkeypatch.setattr(choice, "preferred_kernels", lambda: None)
    assert not blas.use("auto").private


def test_wrong_settings_are_refused_with_what_is_allowed(monkeypatch):
    with pytest.raises(TypeError, match="use: setting must be a string, got NoneType"):
        blas.use(None)
    with pytest.raises(ValueError, match=r'gn.blas.use\("Haswel"\): expected one of "numpy", '
                       r'"off", "auto", "Haswell", "SkylakeX", got \'Haswel\''):  # fmt: skip
        blas.use("Haswel")
    monkeypatch.setattr(choice, "cpu_flags", lambda: frozenset({"avx", "avx2"}))
    with pytest.raises(ValueError, match="this CPU cannot run OpenBLAS's Haswell kernels"):
        blas.use("Haswell")
    assert blas.use("numpy").private is False  # a refused setting changed nothing


def test_a_wrong_glassnet_blas_is_named_at_the_first_product():
    code = """
        import numpy as np, glassnet as gn
        try:
            gn.functional.linear_forward(np.ones((2, 3)), np.ones((4, 3)))
        except ValueError as error:
            print(error)
    """
    out = run_python(code, GLASSNET_BLAS="fastest")
    assert out.startswith('GLASSNET_BLAS=fastest: expected one of "numpy", "off", "auto"')


def test_import_glassnet_alone_loads_no_private_copy():
    code = """
        import glassnet
        from glassnet.blas import choice
        print(choice._state["selection"], choice._copies)
    """
    assert run_python(code, GLASSNET_BLAS="Haswell").split() == ["None", "{}"]


@needs_private
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("c_in", "c_out", "stride"), [(1, 6, 1), (6, 16, 1), (8, 8, 1), (3, 5, 2)]
)  # first layers (a product per window entry), the row shift, the input gradient as a
# convolution (C_in >= C_out), im2col's one product (stride 2)
def test_conv_and_linear_on_a_private_copy_equal_numpys_products(
    dtype, c_in, c_out, stride, monkeypatch
):
    from glassnet import functional as F
    from glassnet.functional import conv_fast

    # the convolutions' products through BLAS, not the compiled direct route
    monkeypatch.setattr(conv_fast, "_direct_applies", lambda *_: False)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 9, 10, c_in)).astype(dtype)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    dense_x, dense_w = rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal((3, 7))
    dense_w = dense_w.astype(dtype)

    def products():
        out, cache = F.conv2d_forward(x, w, None, stride, 1)
        dense, dense_cache = F.linear_forward(dense_x, dense_w)
        return (out, *F.conv2d_backward(np.ones_like(out), cache), dense,
                *F.linear_backward(np.ones_like(dense), dense_cache, dense_w))  # fmt: skip

    with blas.using("numpy"):
        expected = products()
    with blas.using("Haswell") as status:
        assert status.private
        calls = []
        copy = choice.selected().blas
        for routine in ("gemm", "gemv"):
            real = getattr(copy, routine)

            def spy(char, real=real, routine=routine):
                function = real(char)
                return lambda *args: (calls.append(routine), function(*args))[1]

            copy.__dict__[routine] = spy
        try:
            got = products()
        finally:
            copy.__dict__.pop("gemm"), copy.__dict__.pop("gemv")
    assert calls.count("gemm") >= 4  # forward, both gradients, the dense layer's three
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol * np.abs(e).max())


@needs_private
def test_each_kernel_set_gets_its_own_copy_and_keeps_it():
    if "SkylakeX" not in runnable_kernels(cpu_flags()):
        pytest.skip("this CPU cannot run SkylakeX kernels")
    # two copies in one process: the loader must not take the second for the first
    haswell, skylake = blas.use("Haswell"), blas.use("SkylakeX")
    assert (haswell.kernels, skylake.kernels) == ("Haswell", "SkylakeX")
    assert blas.use("Haswell").kernels == "Haswell"
    assert choice._copies["Haswell"] is choice.selected().blas  # loaded once
