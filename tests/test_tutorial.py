"""docs/tutorial.md never goes stale: its snippets run in order and print what it shows.

Each ```python block runs in one shared namespace; what it prints must equal the ```text
block right after it (no text block: it must print nothing). In ```console blocks, each
``$ glassnet ...`` line runs in-process and must print the lines that follow it.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from glassnet.cli import main

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks(markdown: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(markdown)]


def console_runs(text: str) -> list[tuple[str, str]]:
    """``[(command, expected output)]`` of one console block."""
    runs: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            assert runs, f"console output before any command: {line!r}"
            runs[-1][1].append(line)
    return [(command, "".join(f"{o}\n" for o in out)) for command, out in runs]


def stale_snippets(
    markdown: str, capsys: pytest.CaptureFixture, name: str = TUTORIAL.name
) -> tuple[list[str], int]:
    """Run every snippet of the file ``name``; returns (descriptions of those whose output
    differs, snippets run)."""
    namespace: dict = {}
    items = blocks(markdown)
    stale, checked = [], 0
    for k, (kind, text) in enumerate(items):
        if kind == "python":
            expected = items[k + 1][1] if k + 1 < len(items) and items[k + 1][0] == "text" else ""
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(text, f"{name} block {k}", "exec"), namespace)
            if printed.getvalue() != expected:
                stale.append(f"python block {k}:\n{text}\nprinted:\n{printed.getvalue()}")
            checked += 1
        elif kind == "console":
            for command, expected in console_runs(text):
                argv = shlex.split(command)
                assert argv[0] == "glassnet", command
                capsys.readouterr()
                code = main(argv[1:])
                printed = capsys.readouterr().out
                if code != 0 or printed != expected:
                    stale.append(f"$ {command} (exit {code}) printed:\n{printed}")
                checked += 1
    return stale, checked


def test_the_tutorial_has_the_promised_steps():
    text = TUTORIAL.read_text("utf-8")
    for step in ("Convolution", "ReLU", "Pooling", "Several filters", "Flatten", "Dense",
                 "Loss", "Backpropagation", "Gradient descent"):  # fmt: skip
        assert re.search(rf"^## \d+\. {step}", text, re.M), step
    assert "9×(-1) = -6" in text and "max(1, 3, 4, 6) = 6" in text
    # softmax as users should write it: shifted by the maximum, never np.exp(logits) itself
    assert "gn.functional.softmax_forward(logits)" in text and "np.exp(logits)" not in text


def test_every_snippet_prints_what_the_tutorial_shows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # pictures from the console blocks land here
    stale, checked = stale_snippets(TUTORIAL.read_text("utf-8"), capsys)
    assert not stale, "\n\n".join(stale)
    assert checked >= 12
    assert (tmp_path / "pictures" / "edges.png").is_file()


def test_a_stale_output_is_noticed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = TUTORIAL.read_text("utf-8")
    changed = text.replace("9×(-1) = -6\n", "9×(-1) = -7\n").replace(
        "y[1] = 1×5 + 2×6 + (-1) = 16", "y[1] = 17"
    )
    assert changed.count("-7") > text.count("-7")
    stale, _ = stale_snippets(changed, capsys)
    assert len(stale) == 2 and "python block" in stale[0] and "$ glassnet explain dense" in stale[1]
