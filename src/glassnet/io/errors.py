"""The one exception every model-file reader in ``glassnet.io`` raises for a bad file."""

from __future__ import annotations

import os


class ModelFileError(ValueError):
    """A file that is not a valid safetensors or glassnet model file.

    The message names the file and says what was expected and what was found. It is a
    ``ValueError``, so code that already catches ``ValueError`` keeps working. Operating-system
    errors (a missing file, no permission) stay ``OSError``: they say nothing about the file's
    contents.

    Example:
        >>> error = ModelFileError("model.safetensors", "header is not valid JSON")
        >>> str(error), isinstance(error, ValueError)
        ('model.safetensors: header is not valid JSON', True)
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def shorten(value: object, limit: int = 200) -> str:
    """``repr(value)`` (``str`` for an exception) cut to ``limit`` characters, for messages
    that quote untrusted file contents.

    Example:
        >>> shorten([0] * 100, limit=12)
        '[0, 0, 0, 0,...'
    """
    text = str(value) if isinstance(value, BaseException) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def name_list(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names (each cut to 100 characters) and how many more, for messages
    that list names from an untrusted file.

    Example:
        >>> name_list(["a", "b", "c"], limit=2)
        "['a', 'b'] and 1 more"
    """
    shown = repr([name[:100] for name in names[:limit]])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
