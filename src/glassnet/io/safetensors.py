"""Read and write safetensors files in pure Python and NumPy, checking every byte of the header.

The format (https://github.com/huggingface/safetensors)::

    [8 bytes]  N, the header length, unsigned 64-bit little-endian
    [N bytes]  UTF-8 JSON object, padded with spaces:
               {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
                ...,
                "__metadata__": {"<key>": "<string value>", ...}}
    [rest]     the byte buffer: tensor ``name`` is ``buffer[begin:end]``, C order, little-endian

The reader trusts nothing: the header length and the number of tensors are capped (before the
JSON is parsed), a file of another kind (an image, an ONNX model, a pickle, ...) is named as
such, the JSON must be an object of the expected shape, every tensor's byte range must match
``prod(shape) * itemsize`` and the ranges must tile the buffer exactly (no gaps, no overlaps,
no trailing bytes, as the format requires). So it never allocates more than the file's size and
never executes anything; every problem is a ``ModelFileError`` naming the file.

The writer saves through ``np.ascontiguousarray`` (upstream safetensors 0.8 writes garbage for
transposed or strided NumPy arrays) and replaces the target atomically: a crash mid-write leaves
the old file or none, never half a file.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from collections.abc import Mapping
from typing import IO, Any, NamedTuple

import numpy as np

from glassnet.io.errors import ModelFileError, shorten
from glassnet.io.files import atomic_writer

#: The safetensors dtype codes this module reads and writes, as explicit little-endian dtypes.
DTYPES: dict[str, np.dtype] = {
    code: np.dtype(spec)
    for code, spec in [
        ("BOOL", "?"),
        ("U8", "<u1"),
        ("I8", "<i1"),
        ("U16", "<u2"),
        ("I16", "<i2"),
        ("F16", "<f2"),
        ("U32", "<u4"),
        ("I32", "<i4"),
        ("F32", "<f4"),
        ("U64", "<u8"),
        ("I64", "<i8"),
        ("F64", "<f8"),
    ]
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in DTYPES.items()}

#: Largest header accepted (the upstream reader's limit too); a bigger claim is a broken file.
MAX_HEADER_BYTES = 100_000_000
#: Most tensors a file may hold, counted in the header's bytes before parsing them (a model
#: with a thousand layers has a few thousand; a million empty entries took seconds to check).
MAX_TENSORS = 100_000
#: Most dimensions a tensor may have (NumPy 1.x's limit; NumPy 2 allows 64).
MAX_NDIM = 32
METADATA_KEY = "__metadata__"
_LENGTH = struct.Struct("<Q")


class TensorInfo(NamedTuple):
    """One header entry: where a tensor's bytes are and how to read them.

    Attributes:
        dtype: a key of ``DTYPES``, e.g. ``"F32"``.
        shape: the tensor's shape.
        begin, end: byte range in the buffer (which starts right after the header).
    """

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


class Header(NamedTuple):
    """A validated header: the tensor entries by name, the string metadata, the buffer start."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    buffer_start: int


# -- writing ---------------------------------------------------------------------------------


def save_file(
    tensors: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write arrays (and optional string metadata) to a safetensors file, atomically.

    Arrays are written through ``np.ascontiguousarray`` in little-endian order, so transposed,
    Fortran-order, strided and reversed views are saved as the values they show. The buffer
    holds tensors by decreasing item size, then by name, so each starts at a multiple of its
    item size (as upstream safetensors does); the JSON lists names sorted.

    Args:
        tensors: name -> array of a dtype in ``DTYPES`` (bool, int8..int64, uint8..uint64,
            float16/32/64). Any shape, including 0-d and empty.
        path: the file to create or replace.
        metadata: optional ``{str: str}`` stored under ``"__metadata__"``.

    Raises:
        TypeError: a non-string name or metadata entry, or an unsupported dtype.
        ValueError: the reserved name ``"__metadata__"`` used for a tensor.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> save_file({"w": np.eye(2, dtype=np.float32).T}, path, {"note": "identity"})
        >>> load_file(path)["w"]
        array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    arrays = {name: _little_endian_contiguous(name, value) for name, value in tensors.items()}
    header: dict[str, Any] = {}
    offset = 0
    layout = sorted(arrays, key=lambda name: (-arrays[name].itemsize, name))
    for name in layout:
        array = arrays[name]
        header[name] = {
            "dtype": _CODE_OF_KIND[array.dtype.kind, array.itemsize],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    if metadata is not None:
        header[METADATA_KEY] = _check_metadata(metadata)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the buffer starts 8-byte aligned
    with atomic_writer(path) as f:
        f.write(_LENGTH.pack(len(text)))
        f.write(text)
        for name in layout:
            f.write(arrays[name].reshape(-1).view(np.uint8).data)


def _little_endian_contiguous(name: object, value: np.ndarray) -> np.ndarray:
    if not isinstance(name, str):
        raise TypeError(f"tensor names must be str, got {name!r} ({type(name).__name__})")
    if name == METADATA_KEY:
        raise ValueError(f"{METADATA_KEY!r} is reserved for metadata, not a tensor name")
    array = np.asarray(value)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.itemsize))
    if code is None:
        raise TypeError(
            f"tensor {name!r} has dtype {array.dtype}, expected one of "
            f"{sorted({str(dt.newbyteorder('=')) for dt in DTYPES.values()})}"
        )
    # ascontiguousarray copies views (transposed, strided, reversed) into plain C order; it
    # turns a 0-d array into shape (1,), which the reshape undoes.
    return np.ascontiguousarray(array, dtype=DTYPES[code]).reshape(array.shape)


def _check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"metadata must map str to str, got {key!r}: {value!r} "
                f"({type(key).__name__}: {type(value).__name__}); json.dumps other values"
            )
    return dict(metadata)


# -- reading ---------------------------------------------------------------------------------


def read_header(path: str | os.PathLike[str]) -> Header:
    """Read and validate a safetensors header without reading the tensors.

    Raises:
        ModelFileError: anything wrong in the file (see ``load_file``).
        OSError: the file cannot be opened.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> save_file({"b": np.zeros(3, np.float64)}, path, {"k": "v"})
        >>> header = read_header(path)
        >>> header.tensors["b"], header.metadata
        (TensorInfo(dtype='F64', shape=(3,), begin=0, end=24), {'k': 'v'})
    """
    with open(path, "rb") as f:
        return _read_header(f, os.fspath(path))


def load_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file into fresh, writable NumPy arrays.

    Returns:
        name -> array with the file's dtype (little-endian) and shape, in the file's name order.

    Raises:
        ModelFileError: the file is not valid safetensors: a file of another kind (named:
            a PNG image, an ONNX model, ...), too short, a header length over
            ``MAX_HEADER_BYTES`` or past the end of the file, more than ``MAX_TENSORS``
            tensors, a header that is not UTF-8 JSON of the expected form, an unsupported
            dtype, a bad shape, byte ranges that do not match the shapes or do not tile the
            buffer exactly, or duplicate names.
        OSError: the file cannot be opened or read.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> save_file({"x": np.arange(3, dtype=np.int64)}, path)
        >>> load_file(path)
        {'x': array([0, 1, 2])}
    """
    return read_file(path)[0]


def read_file(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``load_file`` and ``read_header(path).metadata`` from a single read of the file.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.safetensors"
        >>> save_file({"x": np.ones(1, np.float16)}, path, {"k": "v"})
        >>> read_file(path)
        ({'x': array([1.], dtype=float16)}, {'k': 'v'})
    """
    name = os.fspath(path)
    with open(path, "rb") as f:
        header = _read_header(f, name)
        tensors = {}
        for key, info in header.tensors.items():
            f.seek(header.buffer_start + info.begin)
            raw = np.empty(info.end - info.begin, dtype=np.uint8)  # within the file's size
            if f.readinto(raw.data) != raw.size:
                raise ModelFileError(name, f"file ended inside tensor {key!r} (changed?)")
            # Bytes other than 0 and 1 would make odd NumPy bools; read them as True.
            values = raw != 0 if info.dtype == "BOOL" else raw.view(DTYPES[info.dtype])
            tensors[key] = values.reshape(info.shape)
    return tensors, header.metadata


def _read_header(f: IO[bytes], name: str) -> Header:
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if size < _LENGTH.size:
        raise ModelFileError(name, f"file has {size} bytes, too short for the 8-byte header length")
    start = f.read(16)
    (length,) = _LENGTH.unpack(start[: _LENGTH.size])
    implausible = length > MAX_HEADER_BYTES or length > size - _LENGTH.size
    json_start = start[8:9] == b"{"  # as in every header glassnet and upstream write
    kind = None if json_start and not implausible else _other_format(start, name)
    if kind is not None or (implausible and not json_start):
        looks = (
            f"it looks like {kind}" if kind else f"no header length in its first 8 bytes ({length})"
        )
        raise ModelFileError(
            name, f"not a safetensors file (so not a glassnet model file either): {looks}"
        )
    f.seek(_LENGTH.size)
    if length > MAX_HEADER_BYTES:
        raise ModelFileError(
            name, f"header length {length} exceeds the limit of {MAX_HEADER_BYTES} bytes"
        )
    if length > size - _LENGTH.size:
        raise ModelFileError(
            name, f"header length {length} runs past the end of the file ({size} bytes)"
        )
    raw = f.read(length)
    # Each entry has one "data_offsets" key; so may a metadata string, which only errs on the
    # side of refusing a header too big to be a model's.
    entries = raw.count(b'"data_offsets"')
    if entries > MAX_TENSORS:
        raise ModelFileError(
            name, f"header lists about {entries} tensors, more than the limit of {MAX_TENSORS}"
        )
    parsed = parse_json(raw, name, "header")
    if not isinstance(parsed, dict):
        raise ModelFileError(name, f"header must be a JSON object, got {type(parsed).__name__}")
    metadata = _parse_metadata(parsed.pop(METADATA_KEY, {}), name)
    buffer_size = size - _LENGTH.size - length
    tensors = {key: _parse_entry(key, entry, name) for key, entry in parsed.items()}
    _check_tiling(tensors, buffer_size, name)
    return Header(tensors, metadata, _LENGTH.size + length)


#: Leading bytes of files that users give by mistake, and what they are.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"PK\x03\x04", "a ZIP archive (a PyTorch .pt/.pth file, a NumPy .npz, a Keras file?)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x00\x00\x08\x01", "an IDX labels file (MNIST)"),
    (b"\x00\x00\x08\x03", "an IDX images file (MNIST)"),
)
#: Protobuf tags that can follow ModelProto's leading ir_version field (fields 2-8).
_ONNX_NEXT_TAGS = b"\x12\x1a\x22\x28\x32\x3a\x42"


def _other_format(start: bytes, name: str) -> str | None:
    """What a file that is not safetensors looks like, from its first 16 bytes; None if unknown.

    An ONNX model is a protobuf ModelProto: it starts with ir_version (tag 0x08, a small
    varint), then another of its fields. A pickle starts with the PROTO opcode 0x80 and a
    protocol number 2-5 (old PyTorch ``torch.save`` files).
    """
    for magic, kind in _MAGIC:
        if start.startswith(magic):
            return kind
    if name.endswith(".onnx") or (
        start[:1] == b"\x08" and 0 < start[1] < 0x80 and start[2:3] in _ONNX_NEXT_TAGS
    ):
        return "an ONNX model (glassnet reads its own .safetensors model files)"
    if start[:1] == b"\x80" and 2 <= start[1] <= 5:
        return "a Python pickle (an old-style PyTorch checkpoint?), which glassnet never loads"
    return None


def parse_json(raw: bytes | str, name: str, what: str) -> Any:
    """Parse untrusted JSON, turning every way it can fail into a ``ModelFileError``.

    Rejects invalid UTF-8, duplicate keys (``json`` would silently keep the last), nesting
    deep enough to exhaust the recursion limit and integers too long to convert.

    Example:
        >>> parse_json(b'{"a": [1, 2]}', "f.safetensors", "header")
        {'a': [1, 2]}
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as e:
        problem = f"{what} is not valid UTF-8 ({e.reason} at byte {e.start})"
        raise ModelFileError(name, problem) from None
    except _DuplicateKeyError as e:
        raise ModelFileError(name, f"{what} has duplicate key {e.args[0]!r}") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, too-long integers, deep nesting
        raise ModelFileError(name, f"{what} is not valid JSON ({shorten(e)})") from None


class _DuplicateKeyError(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _parse_metadata(metadata: object, name: str) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise ModelFileError(
            name, f"{METADATA_KEY} must be an object, got {type(metadata).__name__}"
        )
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise ModelFileError(
                name, f"{METADATA_KEY}[{key!r}] must be a string, got {type(value).__name__}"
            )
    return metadata


def _parse_entry(key: str, entry: object, name: str) -> TensorInfo:
    where = f"tensor {key[:100]!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ModelFileError(
            name, f"{where}: expected an object with keys dtype, shape, data_offsets, got {got}"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ModelFileError(
            name, f"{where}: unsupported dtype {dtype!r}, expected one of {list(DTYPES)}"
        )
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(map(_is_count, shape)):
        raise ModelFileError(
            name,
            f"{where}: shape must be a list of at most {MAX_NDIM} non-negative integers, "
            f"got {shorten(shape)}",
        )
    itemsize = DTYPES[dtype].itemsize
    # NumPy refuses arrays whose nominal size (zero dimensions counted as one) exceeds intp.
    if math.prod(max(d, 1) for d in shape) * itemsize > sys.maxsize:
        raise ModelFileError(name, f"{where}: shape {shape} is too large for NumPy")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise ModelFileError(
            name,
            f"{where}: data_offsets must be two non-negative integers [begin, end], "
            f"got {shorten(offsets)}",
        )
    begin, end = offsets
    nbytes = math.prod(shape) * itemsize
    if end - begin != nbytes:
        raise ModelFileError(
            name,
            f"{where}: data_offsets {offsets} span {end - begin} bytes, but {dtype} "
            f"{shape} needs {nbytes}",
        )
    return TensorInfo(dtype, tuple(shape), begin, end)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tiling(tensors: dict[str, TensorInfo], buffer_size: int, name: str) -> None:
    """The byte ranges, sorted, must follow each other from 0 to the end of the buffer."""
    position = 0
    for key, info in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if info.begin != position:
            problem = "overlaps the previous tensor" if info.begin < position else "leaves a gap"
            raise ModelFileError(
                name,
                f"tensor {key[:100]!r} at bytes [{info.begin}, {info.end}) {problem} "
                f"(expected it to start at {position})",
            )
        position = info.end
    if position != buffer_size:
        raise ModelFileError(
            name,
            f"tensors cover {position} bytes of a {buffer_size}-byte data buffer; "
            "the file is truncated or has trailing bytes",
        )
