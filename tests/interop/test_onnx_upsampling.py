"""ONNX export of ConvTranspose2d and Upsample: onnxruntime computes what glassnet computes."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.nets import randomize
from tests.interop.test_onnx import check_export

import glassnet as gn

pytestmark = pytest.mark.torch  # a reference check: onnxruntime is the oracle, required under CI

NETS = {
    "conv transpose 2x2 stride 2": (
        [gn.ConvTranspose2d(3, 4, 2, stride=2, rng=0)], (5, 6, 3)),
    "conv transpose groups, padding, output_padding, dilation, no bias": (
        [gn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                            groups=2, dilation=(1, 2), bias=False, rng=1)], (4, 5, 4)),
    "conv transpose stride 1 padding 1 after a conv": (
        [gn.Conv2d(2, 3, 3, rng=2), gn.ReLU(), gn.ConvTranspose2d(3, 2, 3, padding=1, rng=3)],
        (7, 7, 2)),
}  # fmt: skip
UPSAMPLES = [
    {"scale_factor": 2}, {"scale_factor": 3}, {"scale_factor": 1.5}, {"scale_factor": (2, 2.5)},
    {"scale_factor": 0.5}, {"scale_factor": 1 / 3}, {"size": (7, 5)}, {"size": (12, 16)},
    {"size": (3, 4)}, {"size": 1}, {"scale_factor": 2.05}, {"scale_factor": (1.05, 2.04)},
    {"scale_factor": 0.7}, {"scale_factor": 1.3},
]  # fmt: skip
for mode in ("nearest", "bilinear"):
    for kwargs in UPSAMPLES:
        for shape in ((6, 8, 2), (20, 10, 1)):
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            NETS[f"upsample {mode} {args} on {shape}"] = ([gn.Upsample(mode=mode, **kwargs)], shape)


@pytest.mark.parametrize("name", NETS)
def test_onnxruntime_matches_glassnet(name, tmp_path):
    pytest.importorskip("onnx")
    layers, shape = NETS[name]
    check_export(randomize(gn.Sequential(layers)), shape, tmp_path / "m.onnx", name)


def test_a_small_decoder_exports_as_conv_transpose_and_resize(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = randomize(
        gn.Sequential([
            gn.Conv2d(3, 8, 3, padding=1, rng=4), gn.ReLU(), gn.MaxPool2d(2),
            gn.ConvTranspose2d(8, 4, 2, stride=2, rng=5),
            gn.Upsample(scale_factor=2, mode="bilinear"), gn.Conv2d(4, 2, 1, rng=6),
            gn.Upsample(size=(20, 24)),
        ])
    )  # fmt: skip
    check_export(model, (8, 8, 3), tmp_path / "m.onnx", "decoder", opset=13)
    graph = onnx.load(tmp_path / "m.onnx").graph
    assert [n.op_type for n in graph.node] == [
        "Transpose", "Conv", "Relu", "MaxPool", "ConvTranspose", "Resize", "Conv",
        "Shape", "Slice", "Concat", "Resize", "Transpose",
    ]  # fmt: skip
    conv_t = graph.node[4]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv_t.attribute}
    assert attrs["strides"] == [2, 2] and attrs["group"] == 1 and attrs["pads"] == [0, 0, 0, 0]
    resize = {a.name: onnx.helper.get_attribute_value(a) for a in graph.node[5].attribute}
    assert resize == {"mode": b"linear", "coordinate_transformation_mode": b"half_pixel"}


@pytest.mark.parametrize(
    ("scale_factor", "shape", "ops"),
    [
        (1.2, (16, 16, 3), ["Gather", "Gather"]),  # Resize's float32 dst / 1.2 rounds 6 / 1.2 down
        (0.7, (12, 10, 2), ["Resize"]),  # 10 * 0.7 = 7 with the float32 scale one step up
        ((1.05, 2.05), (12, 10, 2), ["Resize"]),  # sizes kept (x1) and doubled (x2) exactly
    ],
)
def test_nearest_export_keeps_glassnets_indices(scale_factor, shape, ops, tmp_path):
    onnx = pytest.importorskip("onnx")
    model = gn.Sequential([gn.Upsample(scale_factor=scale_factor)])
    check_export(model, shape, tmp_path / "m.onnx", f"nearest {scale_factor} on {shape}")
    graph = onnx.load(tmp_path / "m.onnx").graph
    assert [n.op_type for n in graph.node][1:-1] == ops
    if ops == ["Resize"]:
        scales = onnx.numpy_helper.to_array(graph.initializer[0])
        assert scales[0] == scales[1] == 1.0 and scales[3] in (
            2.0,
            np.nextafter(np.float32(0.7), 1),
        )
