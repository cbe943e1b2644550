"""Files in and out: safetensors weights and glassnet model files.

Every reader here raises ``ModelFileError`` (a ``ValueError``) for a malformed file.
"""

from glassnet.io.errors import ModelFileError
from glassnet.io.files import atomic_write_text, atomic_writer
from glassnet.io.model_file import load, read_metadata, save
from glassnet.io.safetensors import load_file, read_file, read_header, save_file

__all__ = [
    "ModelFileError",
    "atomic_write_text",
    "atomic_writer",
    "load",
    "load_file",
    "read_file",
    "read_header",
    "read_metadata",
    "save",
    "save_file",
]
