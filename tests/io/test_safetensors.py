"""glassnet.io.safetensors: round trips, upstream compatibility, atomic writes, clear errors."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from glassnet.io import ModelFileError, load_file, read_file, read_header, save_file
from glassnet.io.safetensors import DTYPES, MAX_HEADER_BYTES

ALL_DTYPES = [np.dtype(dt).newbyteorder("=") for dt in DTYPES.values()]


def random_array(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def views(rng: np.random.Generator, dtype: np.dtype) -> dict[str, np.ndarray]:
    """Arrays whose memory is not plain C order, and edge shapes."""
    base = random_array(rng, dtype, (6, 8))
    return {
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
        "strided": base[::2, 1::3],
        "reversed": base[::-1, ::-1],
        "column": base[:, 3],
        "scalar": random_array(rng, dtype, ()),
        "empty": random_array(rng, dtype, (0, 5)),
        "empty_inner": random_array(rng, dtype, (3, 0, 2)),
        "four_d": random_array(rng, dtype, (2, 3, 4, 5)).transpose(0, 2, 3, 1),
    }


def assert_same(loaded: dict[str, np.ndarray], saved: dict[str, np.ndarray]) -> None:
    assert sorted(loaded) == sorted(saved)
    for name, array in saved.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)
        assert loaded[name].flags.writeable and loaded[name].flags.c_contiguous


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_round_trip_views_and_edge_shapes(tmp_path: Path, dtype: np.dtype) -> None:
    tensors = views(np.random.default_rng(0), dtype)
    save_file(tensors, tmp_path / "t.safetensors")
    assert_same(load_file(tmp_path / "t.safetensors"), tensors)


def test_round_trip_mixed_dtypes_keeps_values_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    tensors = {
        f"layer.{i}.{dt}": random_array(rng, dt, (3, i + 1)) for i, dt in enumerate(ALL_DTYPES)
    }
    tensors["special"] = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324], dtype=np.float64)
    tensors["big_endian"] = np.arange(5, dtype=">i4")
    path = tmp_path / "t.safetensors"
    save_file(tensors, path, {"a": "1", "b": "ünïcode ✓"})
    loaded, metadata = read_file(path)
    assert metadata == {"a": "1", "b": "ünïcode ✓"}
    np.testing.assert_array_equal(loaded["big_endian"], np.arange(5))
    assert loaded["special"].tobytes() == tensors["special"].tobytes()
    del tensors["big_endian"], loaded["big_endian"]
    assert_same(loaded, tensors)


def test_layout_is_sorted_aligned_and_padded(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_file(
        {"b": np.zeros(3, np.uint8), "a": np.zeros(1, np.float64), "c": np.ones(2, np.int32)}, path
    )
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert length % 8 == 0
    text = raw[8 : 8 + length].decode()
    assert list(json.loads(text)) == ["a", "b", "c"]  # names sorted in the JSON
    assert text.endswith("}") or text.rstrip(" ").endswith("}")
    header = read_header(path)
    # The buffer holds larger item sizes first, so every tensor is aligned to its item size.
    assert [
        (k, v.begin, v.end) for k, v in sorted(header.tensors.items(), key=lambda kv: kv[1])
    ] == [
        ("a", 0, 8),
        ("c", 8, 16),
        ("b", 16, 19),
    ]
    assert len(raw) == 8 + length + 19


def test_empty_file_and_metadata_only(tmp_path: Path) -> None:
    save_file({}, tmp_path / "e.safetensors")
    assert load_file(tmp_path / "e.safetensors") == {}
    save_file({}, tmp_path / "m.safetensors", {"k": ""})
    assert read_file(tmp_path / "m.safetensors") == ({}, {"k": ""})


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_file({"x": np.zeros(2)}, path)
    save_file({"x": np.ones(3)}, path)
    np.testing.assert_array_equal(load_file(path)["x"], np.ones(3))
    assert os.listdir(tmp_path) == ["t.safetensors"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.safetensors"
    save_file({"x": np.arange(4.0)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="metadata must map str to str"):
        save_file({"x": np.zeros(1)}, path, {"epochs": 3})  # type: ignore[dict-item]

    def failing_fsync(fd: int) -> None:  # the disk fails after the bytes were written
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_file({"x": np.ones(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.safetensors"]


@pytest.mark.parametrize(
    ("tensors", "error", "match"),
    [
        ({"x": np.zeros(2, np.complex64)}, TypeError, r"tensor 'x' has dtype complex64, expected"),
        ({"x": np.array(["a"])}, TypeError, r"dtype <U1"),
        ({"x": np.array([None])}, TypeError, r"dtype object"),
        ({1: np.zeros(1)}, TypeError, r"tensor names must be str, got 1"),
        ({"__metadata__": np.zeros(1)}, ValueError, r"reserved for metadata"),
    ],
)
def test_save_rejects_what_it_cannot_write(tmp_path: Path, tensors, error, match) -> None:
    with pytest.raises(error, match=match):
        save_file(tensors, tmp_path / "t.safetensors")
    assert not any(tmp_path.iterdir())


# -- errors: each names the file and the problem ------------------------------------------


def write_raw(
    path: Path, header: bytes | dict, buffer: bytes = b"", length: int | None = None
) -> Path:
    if isinstance(header, dict):
        header = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + buffer)
    return path


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    ("header", "buffer", "length", "match"),
    [
        (b"", b"", None, r"header is not valid JSON"),
        (b"{}", b"", 2**60, r"header length 1152921504606846976 exceeds the limit of 100000000"),
        (b"{}", b"", MAX_HEADER_BYTES, r"runs past the end of the file"),
        (b"{\xff}", b"", None, r"header is not valid UTF-8 \(invalid start byte at byte 1\)"),
        (b"[" * 100_000 + b"]" * 100_000, b"", None, r"header is not valid JSON"),
        (b'{"x": 1' + b"0" * 5000 + b"}", b"", None, r"header is not valid JSON"),
        (b'{"a": 1, "a": 2}', b"", None, r"duplicate key 'a'"),
        (b"[]", b"", None, r"header must be a JSON object, got list"),
        ({"__metadata__": []}, b"", None, r"__metadata__ must be an object, got list"),
        ({"__metadata__": {"k": 1}}, b"", None, r"__metadata__\['k'\] must be a string, got int"),
        (
            {"x": []},
            b"",
            None,
            r"tensor 'x': expected an object with keys dtype, shape, data_offsets",
        ),
        ({"x": {**F32, "extra": 1}}, bytes(8), None, r"got \['data_offsets', 'dtype', 'extra'"),
        ({"x": {**F32, "dtype": "BF16"}}, bytes(8), None, r"unsupported dtype 'BF16'"),
        ({"x": {**F32, "dtype": 4}}, bytes(8), None, r"unsupported dtype 4"),
        ({"x": {**F32, "shape": [-2]}}, bytes(8), None, r"shape must be a list of at most 32"),
        ({"x": {**F32, "shape": [True]}}, bytes(8), None, r"got \[True\]"),
        ({"x": {**F32, "shape": [2.0]}}, bytes(8), None, r"non-negative integers"),
        ({"x": {**F32, "shape": "2"}}, bytes(8), None, r"got '2'"),
        ({"x": {**F32, "shape": [1] * 33}}, bytes(8), None, r"at most 32"),
        ({"x": {**F32, "shape": [0, 2**62, 4]}}, b"", None, r"too large for NumPy"),
        ({"x": {**F32, "shape": [2**62, 2**62]}}, bytes(8), None, r"too large for NumPy"),
        ({"x": {**F32, "data_offsets": [-8, 0]}}, bytes(8), None, r"two non-negative integers"),
        ({"x": {**F32, "data_offsets": [0, 8, 16]}}, bytes(8), None, r"got \[0, 8, 16\]"),
        (
            {"x": {**F32, "data_offsets": [0, 12]}},
            bytes(12),
            None,
            r"span 12 bytes, but F32 \[2\] needs 8",
        ),
        ({"x": {**F32, "data_offsets": [8, 0]}}, bytes(8), None, r"span -8 bytes"),
        ({"x": F32, "y": F32}, bytes(8), None, r"tensor 'y' at bytes \[0, 8\) overlaps"),
        ({"x": {**F32, "data_offsets": [4, 12]}}, bytes(12), None, r"leaves a gap"),
        ({"x": F32}, bytes(7), None, r"cover 8 bytes of a 7-byte data buffer"),
        ({"x": F32}, bytes(9), None, r"cover 8 bytes of a 9-byte data buffer"),
    ],
)
def test_malformed_files_raise_model_file_error(tmp_path, header, buffer, length, match) -> None:
    path = write_raw(tmp_path / "bad.safetensors", header, buffer, length)
    with pytest.raises(ModelFileError, match=match) as info:
        load_file(path)
    assert str(info.value).startswith(str(path) + ": ")
    with pytest.raises(ModelFileError, match=match):
        read_header(path)


@pytest.mark.parametrize("size", range(8))
def test_too_short_files(tmp_path: Path, size: int) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x00" * size)
    with pytest.raises(ModelFileError, match=rf"file has {size} bytes, too short"):
        load_file(path)


def test_missing_file_stays_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_file(tmp_path / "nope.safetensors")


def test_bool_bytes_other_than_zero_and_one_read_as_true(tmp_path: Path) -> None:
    header = {"m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}}
    path = write_raw(tmp_path / "b.safetensors", header, b"\x00\x01\x07")
    np.testing.assert_array_equal(load_file(path)["m"], [False, True, True])


def test_zero_size_tensors_may_share_an_offset(tmp_path: Path) -> None:
    empty = {"dtype": "F64", "shape": [0, 3], "data_offsets": [8, 8]}
    header = {"x": {**F32, "shape": [2]}, "e1": empty, "e2": empty}
    loaded = load_file(write_raw(tmp_path / "z.safetensors", header, bytes(8)))
    assert loaded["e1"].shape == (0, 3) and loaded["x"].shape == (2,)


# -- compatibility with the upstream safetensors package ------------------------------------


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_upstream_reads_our_files(tmp_path: Path, dtype: np.dtype) -> None:
    st = pytest.importorskip("safetensors.numpy")
    tensors = views(np.random.default_rng(2), dtype)
    save_file(tensors, tmp_path / "ours.safetensors", {"format": "test"})
    assert_same(st.load_file(tmp_path / "ours.safetensors"), tensors)
    from safetensors import safe_open

    with safe_open(tmp_path / "ours.safetensors", framework="numpy") as f:
        assert f.metadata() == {"format": "test"}


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_we_read_upstream_files(tmp_path: Path, dtype: np.dtype) -> None:
    st = pytest.importorskip("safetensors.numpy")
    # Upstream 0.8 mis-writes non-contiguous arrays, so it gets contiguous copies.
    tensors = {
        k: np.ascontiguousarray(v) for k, v in views(np.random.default_rng(3), dtype).items()
    }
    st.save_file(tensors, tmp_path / "theirs.safetensors", metadata={"k": "v"})
    loaded, metadata = read_file(tmp_path / "theirs.safetensors")
    assert metadata == {"k": "v"}
    assert_same(loaded, tensors)
