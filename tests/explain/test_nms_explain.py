"""``explain.nms`` and ``glassnet explain nms``: the steps, the numbers written out, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from glassnet import explain
from glassnet.cli import main
from glassnet.detection import nms


def test_default_example_steps_and_numbers():
    result = explain.nms()
    assert [(s.kept, s.suppressed) for s in result.steps[0]] == [(0, [1]), (2, [3])]
    assert [(s.kept, s.suppressed) for s in result.steps[1]] == [(4, [])]
    assert result.kept == [0, 4, 2]
    text = str(result)
    assert (
        "#1 vs #0: intersection 9×10 = 90, union 100 + 100 - 90 = 110, IoU = 90/110 = 0.8182 "
        "> 0.5: removed" in text
    )
    assert (
        "#3 vs #0: intersection 4×10 = 40, union 100 + 100 - 40 = 160, IoU = 40/160 = 0.2500 <= 0.5: stays"
        in text
    )
    assert text.splitlines()[-1] == "kept: #0, #4, #2 (best score first)"


def test_own_boxes_agree_with_the_detector_nms():
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 30, (12, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    scores, classes = rng.random(12), rng.integers(0, 2, 12)
    result = explain.nms(boxes, scores, classes, 0.3)
    assert result.kept == nms(boxes, scores, classes, 0.3).tolist()


def test_cli_prints_the_steps(capsys):
    code = main(["explain", "nms", "--boxes", "0,0,10,10;0,0,10,5", "--scores", "0.9,0.8",
                 "--iou-threshold", "0.4"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert (
        "#1 vs #0: intersection 10×5 = 50, union 50 + 100 - 50 = 100, IoU = 50/100 = 0.5000 > 0.4: removed"
        in out
    )
    assert out.splitlines()[-1] == "kept: #0 (best score first)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--boxes", "0,0,10,10"], "give --scores, one per box, with your own --boxes"),
        (["--boxes", "0,0,10,10", "--scores", "0.9,0.8"],
         "one score and one class per box: 1 boxes, 2 scores, 1 classes"),
        (["--boxes", "0,0,10", "--scores", "1"], r"boxes must have shape \(M, 4\)"),
        (["--boxes", "5,0,0,10", "--scores", "1"], "x0 <= x1 and y0 <= y1"),
        (["--iou-threshold", "2"], r"iou_threshold must lie in \[0, 1\], got 2"),
    ],
)  # fmt: skip
def test_cli_errors(capsys, argv, message):
    code = main(["explain", "nms", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("glassnet: error: ")
    assert re.search(message, err), err
