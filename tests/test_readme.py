"""README.md never goes stale: its Python snippets run in order, in one namespace, and print
what it shows (checked as docs/tutorial.md is, by the same function)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_tutorial import blocks, stale_snippets

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_readme_snippet_prints_what_it_shows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text = README.read_text("utf-8")
    stale, checked = stale_snippets(text, capsys, README.name)
    assert not stale, "\n\n".join(stale)
    assert checked == sum(kind == "python" for kind, _ in blocks(text)) >= 2


def test_the_graph_snippet_is_the_one_checked(capsys):
    """The graph models section shows gn.Model, BatchNorm, the transposed convolution,
    Upsample and both merges, and a changed output is noticed."""
    text = README.read_text("utf-8")
    graph = text[text.index("## Graph models") :]
    for call in ("gn.Input(", "gn.Model(", "gn.BatchNorm2d(", "gn.ConvTranspose2d(",
                 "gn.Upsample(", "gn.Add()", "gn.Concatenate()"):  # fmt: skip
        assert call in graph.split("```text")[0], call
    changed = text.replace("(4, 64, 64, 5) (4, 32, 32, 3)\n", "(4, 32, 32, 5) (4, 32, 32, 3)\n")
    assert changed != text
    stale, _ = stale_snippets(changed, capsys, README.name)
    assert len(stale) == 1 and "python block" in stale[0]


@pytest.mark.parametrize("row", ["gn.Input", "gn.Model", "BatchNorm1d", "ConvTranspose2d",
                                 "Upsample", "groups", "resnet-cifar", "unet-small",
                                 "Identity"])  # fmt: skip
def test_the_pieces_table_names_the_graph_api_and_new_layers(row):
    text = README.read_text("utf-8")
    table = text[text.index("## The pieces") : text.index("## Graph models")]
    assert row in table
