"""The detector's losses: hand values, finite differences and PyTorch (autograd of the same
formulas, and ``l1_loss``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet import functional as F
from glassnet.detection.centernet import encode_targets
from glassnet.nn.detection_loss import CenterNetLoss
from glassnet.testing import numerical_gradient, relative_error


def targets(rng, N=2, H=6, W=6, K=3, stride=4):
    """Targets from random boxes: Gaussian heatmaps with exact 1s, offsets, sizes, mask."""
    boxes = np.full((N, 3, 5), -1.0)
    for n in range(N):
        for m in range(rng.integers(1, 4)):
            x0, y0 = rng.uniform(0, W * stride - 8, 2)
            w, h = rng.uniform(4, 8, 2)
            boxes[n, m] = (x0, y0, x0 + w, y0 + h, rng.integers(K))
    return boxes, *encode_targets(boxes, (H, W), K, stride)


def test_focal_loss_by_hand():
    # z = 0: p = 1/2. Centre: (1/2)^2 log 2. Y = 0.5 (beta 4): (1/2)^4 (1/2)^2 log 2. Y = 0: 1/4 log 2
    heat = np.array([1.0, 0.5, 0.0]).reshape(1, 1, 3, 1)
    loss, d = F.focal_loss_with_logits(np.zeros((1, 1, 3, 1)), heat)
    assert loss == pytest.approx((1 / 4 + 1 / 64 + 1 / 4) * np.log(2), rel=1e-14)
    # dl/dz at the centre: 2 (1/2)(1/4)(-log 2) - 1/8; elsewhere (1-Y)^4 (1/8 + 2 (1/4)(1/2) log 2)
    expected = [-np.log(2) / 4 - 1 / 8, (1 / 16) * (1 / 8 + np.log(2) / 4), 1 / 8 + np.log(2) / 4]
    np.testing.assert_allclose(d.ravel(), expected, rtol=1e-14)


def test_focal_loss_is_finite_for_huge_logits():
    heat = np.array([1.0, 0.0, 1.0, 0.0]).reshape(1, 1, 4, 1)
    loss, d = F.focal_loss_with_logits(np.array([1e4, -1e4, -1e4, 1e4]).reshape(1, 1, 4, 1), heat)
    assert loss == pytest.approx(1e4, rel=1e-12)  # two wrong by 1e4 each, over 2 centres
    assert np.isfinite(d).all()


def test_masked_l1_by_hand_and_no_centres():
    pred = np.array([[[[1.0, -2.0], [5.0, 5.0]]]])
    mask = np.array([[[True, False]]])
    loss, d = F.masked_l1(pred, np.zeros_like(pred), mask)
    assert loss == 3.0
    assert d.tolist() == [[[[1.0, -1.0], [0.0, 0.0]]]]
    assert F.masked_l1(pred, pred + 1, np.zeros_like(mask))[0] == 0.0  # no centres: 0, not NaN


@pytest.mark.parametrize("name", ["focal", "centernet"])
def test_gradients_match_finite_differences(name):
    rng = np.random.default_rng(1)
    boxes, heat, reg, mask = targets(rng)
    z = rng.normal(size=(*heat.shape[:3], heat.shape[3] + 4)) * 2
    heat, reg = heat.astype(np.float64), reg.astype(np.float64)
    if name == "focal":
        z = z[..., :3]

        def f():
            return F.focal_loss_with_logits(z, heat)[0]

        analytic = F.focal_loss_with_logits(z, heat)[1]
    else:

        def f():
            return F.centernet_loss(z, heat, reg, mask, 0.7, 0.3)[0]

        analytic = F.centernet_loss(z, heat, reg, mask, 0.7, 0.3)[1]
    assert relative_error(analytic, numerical_gradient(f, z)) < TOL_GRADCHECK


def torch_focal(torch, z, heat, alpha=2.0, beta=4.0):
    """CenterNet's focal loss written in PyTorch ops (as CenterNet's ``_neg_loss``)."""
    log_p, log_q = torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z)
    positive = heat == 1
    pos = -((1 - log_p.exp()) ** alpha) * log_p
    neg = -((1 - heat) ** beta) * log_p.exp() ** alpha * log_q
    return torch.where(positive, pos, neg).sum() / max(1, int(positive.sum()))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), scale=st.sampled_from([1.0, 5.0, 30.0]))
def test_matches_pytorch(dtype, seed, scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    boxes, heat, reg, mask = targets(rng, H=5, W=7, K=4)
    z = (rng.normal(size=(*heat.shape[:3], 8)) * scale).astype(dtype)
    heat, reg = heat.astype(dtype), reg.astype(dtype)
    loss, dz, parts = F.centernet_loss(z, heat, reg, mask, 1.0, 0.1)

    zt = torch.tensor(z, requires_grad=True)
    ht, rt, mt = torch.tensor(heat), torch.tensor(reg), torch.tensor(mask)
    count = max(1, int(mask.sum()))
    l1 = torch.nn.functional.l1_loss
    offset = l1(zt[..., 4:6][mt], rt[..., :2][mt], reduction="sum") / count
    size = l1(zt[..., 6:][mt], rt[..., 2:][mt], reduction="sum") / count
    total = torch_focal(torch, zt[..., :4], ht) + offset + 0.1 * size
    total.backward()
    errors = {
        "centernet_loss": rel_error(np.array(loss), total.detach().numpy()),
        "centernet_loss dz": rel_error(dz, zt.grad.numpy()),
        "masked_l1": rel_error(np.array(parts["offset"]), offset.detach().numpy()),
    }
    for op, error in errors.items():
        record_torch_error(op, dtype, error)
    assert max(errors.values()) <= TOL_VS_TORCH[dtype], errors


def test_loss_layer_wraps_the_functional_loss():
    rng = np.random.default_rng(2)
    boxes, heat, reg, mask = targets(rng)
    z = rng.normal(size=(*heat.shape[:3], 7))
    loss_fn = CenterNetLoss(stride=4, size_weight=0.2)
    loss = loss_fn.forward(z, boxes)
    heat, reg = heat.astype(np.float64), reg.astype(np.float64)  # as the layer casts them
    expected, dz, parts = F.centernet_loss(z, heat, reg, mask, 1.0, 0.2)
    assert loss == expected and loss_fn.parts == parts
    np.testing.assert_array_equal(loss_fn.backward(), dz)
    assert repr(loss_fn) == "CenterNetLoss(stride=4, offset_weight=1.0, size_weight=0.2)"


@pytest.mark.parametrize(
    ("outputs", "boxes", "error", "message"),
    [
        (np.zeros((1, 4, 4)), np.zeros((1, 1, 5)), ValueError,
         r"outputs expects a 4-D input \(N, H, W, C\), got shape \(1, 4, 4\)"),
        (np.zeros((1, 4, 4, 4)), np.zeros((1, 1, 5)), ValueError, r"K \+ 4\) with K >= 1"),
        (np.zeros((2, 4, 4, 6)), np.zeros((1, 1, 5)), ValueError, "boxes for each of the 2"),
        (np.zeros((1, 4, 4, 6)), np.array([[[0, 0, 4, 4, 2]]]), ValueError,
         r"classes must lie in \[0, 2\) for outputs of 2 classes, got 2"),
        (np.zeros((1, 4, 4, 6)), np.zeros((1, 1, 4)), ValueError, r"shape \(N, M, 5\)"),
        (np.zeros((1, 4, 4, 6), int), np.zeros((1, 1, 5)), TypeError, "float"),
    ],
)  # fmt: skip
def test_loss_layer_refuses_bad_arguments(outputs, boxes, error, message):
    loss_fn = CenterNetLoss()
    with pytest.raises(error, match=message):
        loss_fn.forward(outputs, boxes)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        loss_fn.backward()


def test_loss_layer_is_exported():
    assert gn.nn.CenterNetLoss is CenterNetLoss
