"""Property-based fuzzing of the readers: every broken file must end in ``ModelFileError``.

Valid files are generated, then truncated, bit-flipped, spliced, given a lying header length or
a hostile JSON header; the reader must either load the file or raise ``ModelFileError`` (any
other exception fails the test), and must not allocate much more than the file's size.

Run as a script to fuzz longer and print how many files were tried and how each ended:

    GLASSNET_FUZZ_EXAMPLES=2000 python tests/io/test_fuzz.py
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet.io import ModelFileError, load_file, save_file
from glassnet.io.model_file import BUILD_MARGIN, RESERVED_KEYS
from glassnet.io.safetensors import DTYPES
from glassnet.nn.module import LAYER_REGISTRY

FUZZ = settings(
    max_examples=int(os.environ.get("GLASSNET_FUZZ_EXAMPLES", "100")),
    deadline=None,  # timing is reported by the script, not asserted on a shared machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Extra bytes a reader may allocate besides a multiple of the file size (JSON objects, NumPy);
#: gn.load may also build up to BUILD_MARGIN parameters (float64 draw, value, gradient).
ALLOCATION_SLACK = {"load_file": 2_000_000, "load": 2_000_000 + 24 * BUILD_MARGIN}

#: (reader, kind) -> Counter of outcomes: "loaded" or "ModelFileError".
STATS: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
SLOWEST: dict[str, float] = defaultdict(float)
LARGEST_PEAK: dict[str, int] = defaultdict(int)


def attempt(reader: Callable[..., object], raw: bytes, kind: str) -> str:
    """Write ``raw`` to a file, read it; return the outcome, failing on any other exception."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.safetensors"
        path.write_bytes(raw)
        tracemalloc.start()
        start = time.perf_counter()
        try:
            reader(path)
            outcome = "loaded"
        except ModelFileError as error:
            assert str(error).startswith(f"{path}: "), error
            outcome = "ModelFileError"
        finally:
            elapsed = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    name = reader.__name__
    bound = 4 * len(raw) + ALLOCATION_SLACK[name]
    assert peak < bound, f"{kind}: {peak} bytes for a {len(raw)}-byte file"
    STATS[name, kind][outcome] += 1
    SLOWEST[name] = max(SLOWEST[name], elapsed)
    LARGEST_PEAK[name] = max(LARGEST_PEAK[name], peak)
    return outcome


# -- strategies -------------------------------------------------------------------------------

ALL_DTYPES = [np.dtype(dt).newbyteorder("=") for dt in DTYPES.values()]
names = st.text(max_size=10).filter(lambda name: name != "__metadata__")
arrays = hnp.arrays(
    dtype=st.sampled_from(ALL_DTYPES),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as is": lambda a: a,
    "transposed": lambda a: a.T,
    "fortran": np.asfortranarray,
    "reversed": lambda a: a[::-1] if a.ndim else a,
    "strided": lambda a: a[::2] if a.ndim else a,
}


@st.composite
def tensor_dicts(draw: st.DrawFn) -> dict[str, np.ndarray]:
    tensors = draw(st.dictionaries(names, arrays, max_size=4))
    return {name: draw(st.sampled_from(list(VIEWS.values())))(a) for name, a in tensors.items()}


metadata = st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=3)


def file_bytes(tensors: dict[str, np.ndarray], meta: dict[str, str] | None) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "valid.safetensors"
        save_file(tensors, path, meta)
        return path.read_bytes()


def frame(header: bytes, buffer: bytes = b"", length: int | None = None) -> bytes:
    """A file from its parts; ``length`` overrides the true header length."""
    return struct.pack("<Q", len(header) if length is None else length) + header + buffer


@st.composite
def mutations(draw: st.DrawFn, raw: bytes) -> tuple[str, bytes]:
    """One way of breaking a valid file: (kind, broken bytes)."""
    header_end = 8 + struct.unpack("<Q", raw[:8])[0]
    kind = draw(
        st.sampled_from(
            ["truncate", "flip bits", "flip header bits", "insert", "delete", "header length"]
        )
    )
    if kind == "truncate":
        return kind, raw[: draw(st.integers(0, len(raw) - 1))]
    if kind in ("flip bits", "flip header bits"):
        data = bytearray(raw)
        end = header_end if kind == "flip header bits" else len(raw)
        for bit in draw(st.lists(st.integers(0, 8 * end - 1), min_size=1, max_size=8)):
            data[bit // 8] ^= 1 << (bit % 8)
        return kind, bytes(data)
    if kind == "insert":
        at = draw(st.integers(0, len(raw)))
        return kind, raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at:]
    if kind == "delete":
        at = draw(st.integers(0, len(raw) - 1))
        return kind, raw[:at] + raw[at + draw(st.integers(1, 16)) :]
    lying = st.sampled_from([2**60, 2**64 - 1, 2**63, 100_000_001, len(raw), header_end - 7])
    length = draw(lying | st.integers(0, 2**64 - 1) | st.integers(0, len(raw)))
    return kind, struct.pack("<Q", length) + raw[8:]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
counts = st.integers(-3, 16) | st.sampled_from([2**31, 2**32 + 4, 2**62, 2**63, 2**64, 10**30])
entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from([*DTYPES, "BF16", "F8_E4M3", "f32", "", "F32 "]) | json_values,
        "shape": st.lists(counts, max_size=4)
        | st.lists(st.just(1), min_size=30, max_size=70)
        | json_values,
        "data_offsets": st.lists(counts, min_size=0, max_size=3) | json_values,
    },
    optional={"extra": json_values},
)
hostile_objects = st.dictionaries(
    names,
    entries | json_values,
    max_size=4,
).map(lambda d: {**d}) | st.fixed_dictionaries(
    {"__metadata__": json_values | st.dictionaries(st.text(max_size=4), json_values)}
)


@st.composite
def hostile_headers(draw: st.DrawFn) -> tuple[str, bytes]:
    """(kind, file bytes) with a header written to break a reader."""
    kind = draw(
        st.sampled_from(
            [
                "json object",
                "json value",
                "deep nesting",
                "huge integer",
                "duplicate keys",
                "non-UTF-8",
                "random bytes",
                "lying length",
            ]
        )
    )
    if kind == "json object":
        header = json.dumps(draw(hostile_objects)).encode()
    elif kind == "json value":
        header = json.dumps(draw(json_values)).encode()
    elif kind == "deep nesting":
        depth = draw(st.integers(1, 200_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        header = opener * depth + b"0" + closer * depth
    elif kind == "huge integer":
        header = b'{"x": {"dtype": "U8", "shape": [' + b"9" * draw(st.integers(10, 20_000)) + b"]}}"
    elif kind == "duplicate keys":
        entry = json.dumps({"dtype": "U8", "shape": [1], "data_offsets": [0, 1]})
        header = f'{{"x": {entry}, "x": {entry}}}'.encode()
    elif kind == "non-UTF-8":
        text = json.dumps(draw(hostile_objects)).encode()
        at = draw(st.integers(0, len(text)))
        header = (
            text[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]))
            + text[at:]
        )
    elif kind == "random bytes":
        header = draw(st.binary(max_size=64))
    else:
        header = json.dumps(draw(hostile_objects)).encode()
        return kind, frame(header, draw(st.binary(max_size=64)), draw(st.integers(0, 2**64 - 1)))
    # A buffer that sometimes matches the offsets, so the later checks are reached too.
    buffer = draw(st.binary(max_size=64) | st.integers(0, 64).map(bytes))
    return kind, frame(header, buffer)


# -- the properties ----------------------------------------------------------------------------


@FUZZ
@given(tensors=tensor_dicts(), meta=metadata)
def test_valid_files_round_trip(
    tensors: dict[str, np.ndarray], meta: dict[str, str] | None
) -> None:
    raw = file_bytes(tensors, meta)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.safetensors"
        path.write_bytes(raw)
        loaded = load_file(path)
    assert sorted(loaded) == sorted(tensors)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape and loaded[name].dtype == array.dtype
        assert loaded[name].tobytes() == np.ascontiguousarray(array).tobytes()


@FUZZ
@given(tensors=tensor_dicts(), meta=metadata, data=st.data())
def test_mutated_files_load_or_raise_model_file_error(tensors, meta, data) -> None:
    kind, broken = data.draw(mutations(file_bytes(tensors, meta)))
    outcome = attempt(load_file, broken, kind)
    if kind == "truncate" or (kind == "header length" and broken[:8] == struct.pack("<Q", 2**60)):
        assert outcome == "ModelFileError"


@FUZZ
@given(case=hostile_headers())
def test_hostile_headers_load_or_raise_model_file_error(case: tuple[str, bytes]) -> None:
    kind, raw = case
    outcome = attempt(load_file, raw, kind)
    if kind in ("deep nesting", "huge integer", "duplicate keys", "non-UTF-8"):
        assert outcome == "ModelFileError"


# -- gn.load: the same property, plus valid safetensors with a wrong architecture ------------

LAYERS = {
    "conv": lambda d: gn.Conv2d(d.draw(st.integers(1, 3)), 2, d.draw(st.integers(1, 3)), rng=0),
    "linear": lambda d: gn.Linear(d.draw(st.integers(1, 5)), d.draw(st.integers(1, 5)), rng=0),
    "relu": lambda d: gn.ReLU(),
    "pool": lambda d: gn.MaxPool2d(2),
    "flatten": lambda d: gn.Flatten(),
    "dropout": lambda d: gn.Dropout(0.25),
}


@st.composite
def model_files(draw: st.DrawFn) -> bytes:
    kinds = draw(st.lists(st.sampled_from(sorted(LAYERS)), min_size=1, max_size=4))
    data = draw(st.data())
    model = gn.Sequential([LAYERS[kind](data) for kind in kinds])
    if draw(st.booleans()):
        model.astype(np.float64)
    with tempfile.TemporaryDirectory() as folder:
        user = draw(metadata)
        if user is not None:  # a model file's own keys are not the user's to set
            user = {k: v for k, v in user.items() if k not in RESERVED_KEYS}
        gn.save(model, Path(folder) / "model.safetensors", user)
        return (Path(folder) / "model.safetensors").read_bytes()


CONFIG_KEYS = sorted({key for cls in LAYER_REGISTRY.values() for key in cls.config_keys})
config_values = (
    st.integers(-2, 16)
    | st.sampled_from([10**13, 2**70, -(2**70)])
    | st.booleans()
    | st.none()
    | st.floats()
    | st.text(max_size=4)
    | st.lists(st.integers(-1, 8), max_size=3)
    | st.sampled_from(["same", "valid", "he_uniform", "float64", "float16", "convolution"])
)
layer_specs = (
    st.fixed_dictionaries(
        {
            "class": st.sampled_from([*sorted(LAYER_REGISTRY), "Nope", "", "Sequential"])
            | json_values,
            "config": st.dictionaries(
                st.sampled_from([*CONFIG_KEYS, "rng", "units"]), config_values
            )
            | json_values,
        }
    )
    | json_values
)


@st.composite
def wrong_architectures(draw: st.DrawFn) -> tuple[str, bytes]:
    """(kind, file bytes): valid safetensors whose glassnet metadata is wrong."""
    meta = {"format": "glassnet", "format_version": "1"}
    kind = draw(
        st.sampled_from(
            ["layer specs", "architecture value", "architecture text", "format", "version"]
        )
    )
    if kind == "layer specs":
        layers = draw(st.lists(layer_specs, max_size=4))
        meta["architecture"] = json.dumps({"class": "Sequential", "config": {"layers": layers}})
    elif kind == "architecture value":
        meta["architecture"] = json.dumps(draw(json_values | layer_specs))
    elif kind == "architecture text":
        meta["architecture"] = draw(
            st.text(max_size=20) | st.integers(1, 5000).map(lambda n: "[" * n + "]" * n)
        )
    else:
        meta[kind.replace("version", "format_version")] = draw(st.text(max_size=4))
        meta["architecture"] = json.dumps({"class": "Sequential", "config": {"layers": []}})
    if draw(st.booleans()):
        del meta[draw(st.sampled_from(sorted(meta)))]
    tensors = draw(tensor_dicts() | st.just({"0.weight": np.zeros((2, 3), np.float32)}))
    return kind, file_bytes(tensors, meta)


@FUZZ
@given(raw=model_files(), data=st.data())
def test_mutated_model_files_load_or_raise_model_file_error(raw: bytes, data) -> None:
    assert attempt(gn.load, raw, "valid model") == "loaded"
    kind, broken = data.draw(mutations(raw))
    outcome = attempt(gn.load, broken, kind)
    if kind == "truncate":
        assert outcome == "ModelFileError"


@FUZZ
@given(case=wrong_architectures())
def test_wrong_architectures_load_or_raise_model_file_error(case: tuple[str, bytes]) -> None:
    kind, raw = case
    outcome = attempt(gn.load, raw, kind)  # a random spec can be valid: a lone Dropout, say
    if kind in ("format", "version", "architecture text"):
        assert outcome == "ModelFileError"


def report() -> str:
    lines = [f"{'reader':<12} {'kind':<18} {'tried':>7} {'ModelFileError':>15} {'loaded':>7}"]
    total = Counter[str]()
    for (reader, kind), outcomes in sorted(STATS.items()):
        tried = sum(outcomes.values())
        total["tried"] += tried
        total["error"] += outcomes["ModelFileError"]
        total["loaded"] += outcomes["loaded"]
        lines.append(
            f"{reader:<12} {kind:<18} {tried:>7} {outcomes['ModelFileError']:>15} "
            f"{outcomes['loaded']:>7}"
        )
    lines.append(f"{'total':<31} {total['tried']:>7} {total['error']:>15} {total['loaded']:>7}")
    valid = sum(STATS["load", "valid model"].values())
    lines.append(f"of which {valid} unbroken model files (the baseline each mutation starts from)")
    lines.append("other exceptions: 0 (any would have stopped the run)")
    for reader in sorted(SLOWEST):
        lines.append(
            f"{reader}: slowest file {SLOWEST[reader] * 1000:.1f} ms, "
            f"largest traced allocation {LARGEST_PEAK[reader] / 1e6:.2f} MB"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    for test in [
        test_valid_files_round_trip,
        test_mutated_files_load_or_raise_model_file_error,
        test_hostile_headers_load_or_raise_model_file_error,
        test_mutated_model_files_load_or_raise_model_file_error,
        test_wrong_architectures_load_or_raise_model_file_error,
    ]:
        test()
    print(report())
