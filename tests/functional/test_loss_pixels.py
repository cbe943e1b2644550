"""Per-pixel losses for segmentation: cross-entropy with class weights and an ignore index, and
soft Dice; by hand, against finite differences and against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet import functional as F
from glassnet.testing import numerical_gradient, relative_error


def _scene(rng: np.random.Generator, N: int, H: int, W: int, K: int, ignore: int | None):
    """Logits (N, H, W, K) and targets (N, H, W), about a fifth of them ``ignore``."""
    z = rng.normal(size=(N, H, W, K)) * 3
    t = rng.integers(0, K, size=(N, H, W))
    if ignore is not None:
        t[rng.random(t.shape) < 0.2] = ignore
        t[0, 0, 0] = 0  # at least one pixel counts
    return z, t


def test_per_pixel_cross_entropy_is_the_mean_over_pixels():
    rng = np.random.default_rng(0)
    z, t = _scene(rng, 2, 3, 4, 5, None)
    loss, d = F.cross_entropy(z, t)
    flat_loss, flat_d = F.cross_entropy(z.reshape(-1, 5), t.reshape(-1))
    assert loss == flat_loss
    np.testing.assert_array_equal(d, flat_d.reshape(z.shape))
    assert d.shape == (2, 3, 4, 5)


def test_weighted_cross_entropy_by_hand():
    # two pixels, K = 2: z = (log 3, 0) -> p = (3/4, 1/4) at both; targets 0 and 1
    z = np.array([[[[np.log(3.0), 0.0], [np.log(3.0), 0.0]]]])  # (1, 1, 2, 2)
    t = np.array([[[0, 1]]])
    loss, d = F.cross_entropy(z, t, weight=np.array([1.0, 3.0]))
    # (1 * -log 3/4 + 3 * -log 1/4) / (1 + 3)
    assert loss == pytest.approx((-np.log(0.75) - 3 * np.log(0.25)) / 4, rel=1e-14)
    # (w_t (p - onehot)) / W per pixel
    expected = np.array([[[[0.75 - 1, 0.25], [3 * 0.75, 3 * (0.25 - 1)]]]]) / 4
    np.testing.assert_allclose(d, expected, rtol=1e-14)


def test_ignored_pixels_count_nowhere():
    rng = np.random.default_rng(1)
    z, t = _scene(rng, 2, 4, 4, 3, 255)
    ignored = t == 255
    loss, d = F.cross_entropy(z, t, ignore_index=255)
    assert np.all(d[ignored] == 0)
    # the mean over the kept pixels only
    kept_loss, _ = F.cross_entropy(z[~ignored], t[~ignored])
    assert loss == pytest.approx(kept_loss, rel=1e-14)
    # their logits do not matter
    z2 = z.copy()
    z2[ignored] = 1000.0
    assert F.cross_entropy(z2, t, ignore_index=255)[0] == pytest.approx(loss, rel=1e-14)


def test_ignore_index_may_be_a_class():
    z = np.array([[[[2.0, 0.0], [0.0, 1.0]]]])
    loss, d = F.cross_entropy(z, np.array([[[0, 1]]]), ignore_index=0)
    assert loss == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-14)  # pixel 2 alone
    assert np.all(d[0, 0, 0] == 0)


def test_nothing_to_count_is_zero_loss_and_zero_gradient():
    z = np.ones((1, 2, 2, 3))
    for kwargs, t in (
        ({"ignore_index": 7}, np.full((1, 2, 2), 7)),
        ({"weight": np.array([0.0, 1.0, 1.0])}, np.zeros((1, 2, 2), np.int64)),
    ):
        loss, d = F.cross_entropy(z, t, **kwargs)
        assert loss == 0.0
        assert d.shape == z.shape and not d.any()


@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 255])
def test_cross_entropy_gradient_matches_finite_differences(eps, weighted, ignore):
    rng = np.random.default_rng(2)
    z, t = _scene(rng, 2, 3, 3, 4, ignore)
    weight = rng.random(4) + 0.1 if weighted else None
    kwargs = {"weight": weight, "ignore_index": -100 if ignore is None else ignore}
    _, analytic = F.cross_entropy(z, t, eps, **kwargs)
    numeric = numerical_gradient(lambda: F.cross_entropy(z, t, eps, **kwargs)[0], z)
    assert relative_error(analytic, numeric) < TOL_GRADCHECK


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    N=st.integers(1, 3),
    H=st.integers(1, 6),
    W=st.integers(1, 6),
    K=st.integers(2, 11),
    weighted=st.booleans(),
    ignore=st.sampled_from([None, -100, 255, 0]),
    eps=st.sampled_from([0.0, 0.1, 1.0]),
)
def test_per_pixel_cross_entropy_matches_pytorch(dtype, seed, N, H, W, K, weighted, ignore, eps):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    z, t = _scene(rng, N, H, W, K, ignore)
    if ignore == 0:
        t[0, 0, 0] = 1  # class 0 is ignored here: another class must count
    z = z.astype(dtype)
    weight = rng.random(K) + 0.1 if weighted else None
    ignore_index = -100 if ignore is None else ignore
    loss_fn = gn.CrossEntropyLoss(eps, weight=weight, ignore_index=ignore_index)
    loss = loss_fn.forward(z, t)
    zt = torch.tensor(z.transpose(0, 3, 1, 2).copy(), requires_grad=True)  # (N, K, H, W)
    t_loss = torch.nn.functional.cross_entropy(
        zt,
        torch.tensor(t),
        weight=None if weight is None else torch.tensor(weight.astype(dtype)),
        ignore_index=ignore_index,
        label_smoothing=eps,
    )
    t_loss.backward()
    t_grad = zt.grad.numpy().transpose(0, 2, 3, 1)  # (N, H, W, K)
    errors = (
        rel_error(np.array(loss), t_loss.detach().numpy()),
        rel_error(loss_fn.backward(), t_grad),
    )
    record_torch_error("cross_entropy per pixel", dtype, errors[0])
    record_torch_error("cross_entropy per pixel dz", dtype, errors[1])
    assert loss_fn.backward().dtype == dtype
    assert max(errors) <= TOL_VS_TORCH[dtype]


def test_dice_by_hand():
    # four pixels at p = 1/2 each; targets 0, 0, 0, 1; smooth 1
    z = np.zeros((1, 2, 2, 2))
    loss, _ = F.dice_loss(z, np.array([[[0, 0], [0, 1]]]), smooth=1.0)
    # class 0: (2 * 1.5 + 1) / (2 + 3 + 1) = 4/6; class 1: (2 * 0.5 + 1) / (2 + 1 + 1) = 2/4
    assert loss == pytest.approx(1 - (4 / 6 + 2 / 4) / 2, rel=1e-14)


def test_dice_of_a_perfect_prediction_approaches_zero():
    t = np.array([[[0, 1], [2, 1]]])
    z = np.eye(3)[t] * 50.0  # (1, 2, 2, 3), softmax ~ one-hot
    loss, d = F.dice_loss(z, t, smooth=1e-6)
    assert loss == pytest.approx(0.0, abs=1e-12)
    assert np.abs(d).max() < 1e-12


def test_dice_ignores_pixels():
    rng = np.random.default_rng(3)
    z, t = _scene(rng, 2, 3, 3, 4, 9)
    ignored = t == 9
    loss, d = F.dice_loss(z, t, ignore_index=9)
    assert np.all(d[ignored] == 0)
    kept_loss, _ = F.dice_loss(z[~ignored], t[~ignored])
    assert loss == pytest.approx(kept_loss, rel=1e-14)


@pytest.mark.parametrize("smooth", [1e-3, 1.0])
@pytest.mark.parametrize("ignore", [None, 9])
def test_dice_gradient_matches_finite_differences(smooth, ignore):
    rng = np.random.default_rng(4)
    z, t = _scene(rng, 2, 3, 3, 4, ignore)
    kwargs = {"smooth": smooth, "ignore_index": -100 if ignore is None else ignore}
    _, analytic = F.dice_loss(z, t, **kwargs)
    numeric = numerical_gradient(lambda: F.dice_loss(z, t, **kwargs)[0], z)
    assert relative_error(analytic, numeric) < TOL_GRADCHECK


def _torch_dice(torch, z, t, smooth: float, ignore_index: int):
    """The same variant in PyTorch, from its own softmax and one_hot, differentiated by autograd."""
    K = z.shape[-1]
    kept = (t != ignore_index).unsqueeze(-1)  # (N, H, W, 1)
    p = torch.softmax(z, dim=-1) * kept
    g = torch.nn.functional.one_hot(torch.where(t == ignore_index, 0, t), K) * kept
    dims = tuple(range(z.ndim - 1))
    intersection = (p * g).sum(dims)
    union = p.sum(dims) + g.sum(dims) + smooth
    return 1 - ((2 * intersection + smooth) / union).mean()


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    N=st.integers(1, 3),
    H=st.integers(1, 6),
    W=st.integers(1, 6),
    K=st.integers(2, 11),
    ignore=st.sampled_from([None, 255]),
    smooth=st.sampled_from([1e-5, 1.0]),
)
def test_dice_matches_pytorch(dtype, seed, N, H, W, K, ignore, smooth):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    z, t = _scene(rng, N, H, W, K, ignore)
    z = z.astype(dtype)
    ignore_index = -100 if ignore is None else ignore
    loss_fn = gn.DiceLoss(smooth, ignore_index=ignore_index)
    loss = loss_fn.forward(z, t)
    zt = torch.tensor(z, requires_grad=True)
    t_loss = _torch_dice(torch, zt, torch.tensor(t), smooth, ignore_index)
    t_loss.backward()
    errors = (
        rel_error(np.array(loss), t_loss.detach().numpy()),
        rel_error(loss_fn.backward(), zt.grad.numpy()),
    )
    record_torch_error("dice", dtype, errors[0])
    record_torch_error("dice dz", dtype, errors[1])
    assert loss_fn.backward().dtype == dtype
    assert max(errors) <= TOL_VS_TORCH[dtype]


def test_dice_cross_entropy_is_the_sum_of_its_terms():
    rng = np.random.default_rng(6)
    z, t = _scene(rng, 2, 3, 4, 5, 255)
    weight = np.array([0.1, 1.0, 1.0, 2.0, 1.0])
    loss, d = F.dice_cross_entropy(z, t, weight, 0.5, 2.0, 255)
    ce, d_ce = F.cross_entropy(z, t, 0.0, weight, 255)
    dice, d_dice = F.dice_loss(z, t, 2.0, 255)
    assert loss == pytest.approx(ce + 0.5 * dice, rel=1e-15)
    np.testing.assert_allclose(d, d_ce + 0.5 * d_dice, rtol=0, atol=1e-17)
    assert F.dice_cross_entropy(z, t, weight, 0.0, 2.0, 255)[0] == ce  # lambda 0: CE alone


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 9])
def test_dice_cross_entropy_gradient_matches_finite_differences(weighted, ignore):
    rng = np.random.default_rng(7)
    z, t = _scene(rng, 2, 3, 3, 4, ignore)
    weight = np.array([0.1, 1.0, 2.0, 1.0]) if weighted else None
    kwargs = {
        "weight": weight,
        "dice_weight": 1.5,
        "ignore_index": -100 if ignore is None else ignore,
    }
    _, analytic = F.dice_cross_entropy(z, t, **kwargs)
    numeric = numerical_gradient(lambda: F.dice_cross_entropy(z, t, **kwargs)[0], z)
    assert relative_error(analytic, numeric) < TOL_GRADCHECK


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    N=st.integers(1, 3),
    H=st.integers(1, 6),
    W=st.integers(1, 6),
    K=st.integers(2, 11),
    ignore=st.sampled_from([None, 255]),
    weighted=st.booleans(),
    dice_weight=st.sampled_from([0.0, 1.0, 2.5]),
)
def test_dice_ce_matches_pytorch(dtype, seed, N, H, W, K, ignore, weighted, dice_weight):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    z, t = _scene(rng, N, H, W, K, ignore)
    z = z.astype(dtype)
    weight = rng.uniform(0.1, 2.0, K) if weighted else None
    ignore_index = -100 if ignore is None else ignore
    loss_fn = gn.DiceCELoss(weight=weight, dice_weight=dice_weight, ignore_index=ignore_index)
    loss = loss_fn.forward(z, t)
    zt = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(t)
    t_ce = torch.nn.functional.cross_entropy(
        zt.permute(0, 3, 1, 2),
        tt,
        weight=None if weight is None else torch.tensor(weight.astype(dtype)),
        ignore_index=ignore_index,
    )
    t_loss = t_ce + dice_weight * _torch_dice(torch, zt, tt, 1.0, ignore_index)
    t_loss.backward()
    errors = (
        rel_error(np.array(loss), t_loss.detach().numpy()),
        rel_error(loss_fn.backward(), zt.grad.numpy()),
    )
    record_torch_error("dice + cross_entropy", dtype, errors[0])
    record_torch_error("dice + cross_entropy dz", dtype, errors[1])
    assert loss_fn.backward().dtype == dtype
    assert max(errors) <= TOL_VS_TORCH[dtype]


def test_layers_wrap_the_functional_forms():
    rng = np.random.default_rng(5)
    z, t = _scene(rng, 1, 3, 3, 4, 255)
    weight = np.array([0.5, 1.0, 2.0, 1.0])
    ce = gn.CrossEntropyLoss(0.1, weight=weight, ignore_index=255)
    loss, d = F.cross_entropy(z, t, 0.1, weight, 255)
    assert ce.forward(z, t) == loss
    np.testing.assert_array_equal(ce.backward(), d)
    dice = gn.DiceLoss(0.5, ignore_index=255)
    loss, d = F.dice_loss(z, t, 0.5, 255)
    assert dice.forward(z, t) == loss
    np.testing.assert_array_equal(dice.backward(), d)
    dice_ce = gn.DiceCELoss(weight=weight, dice_weight=2.0, smooth=0.5, ignore_index=255)
    loss, d = F.dice_cross_entropy(z, t, weight, 2.0, 0.5, 255)
    assert dice_ce.forward(z, t) == loss
    np.testing.assert_array_equal(dice_ce.backward(), d)


def test_reprs():
    assert repr(gn.CrossEntropyLoss()) == "CrossEntropyLoss(label_smoothing=0.0)"
    assert (
        repr(gn.CrossEntropyLoss(weight=[1, 2], ignore_index=255))
        == "CrossEntropyLoss(label_smoothing=0.0, weight=[1.0, 2.0], ignore_index=255)"
    )
    assert repr(gn.DiceLoss()) == "DiceLoss(smooth=1.0, ignore_index=-100)"
    assert repr(gn.DiceCELoss()) == "DiceCELoss(dice_weight=1.0, smooth=1.0)"
    assert (
        repr(gn.DiceCELoss(weight=[0.1, 1], dice_weight=0.5, ignore_index=255))
        == "DiceCELoss(weight=[0.1, 1.0], dice_weight=0.5, smooth=1.0, ignore_index=255)"
    )


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "DiceLoss", "DiceCELoss"])
@pytest.mark.parametrize(
    ("logits", "targets", "error", "match"),
    [
        (np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 3), np.int64), ValueError,
         r"{loss} expects targets of shape \(1, 2, 2\) for logits \(1, 2, 2, 3\), got \(1, 2, 3\)"),
        (np.zeros((1, 2, 2, 3)), np.full((1, 2, 2), 3), ValueError,
         r"{loss} targets must be class indices in \[0, 3\) \(or ignore_index -100\), got values from 3 to 3"),
        (np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2)), TypeError,
         "{loss} expects integer class indices as targets, got dtype float64"),
        (np.zeros((1, 2, 2, 3), np.int64), np.zeros((1, 2, 2), np.int64), TypeError,
         "{loss} logits expects a float array"),
    ],
)  # fmt: skip
def test_per_pixel_errors_say_what_was_expected(loss, logits, targets, error, match):
    with pytest.raises(error, match=match.replace("{loss}", loss)):
        getattr(gn, loss)().forward(logits, targets)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight": [1.0, -1.0]}, ValueError, r"weight must be finite and >= 0, got \[1.0, -1.0\]"),
        (
            {"weight": [[1.0]]},
            ValueError,
            r"weight must hold one number per class \(K,\), got shape \(1, 1\)",
        ),
        ({"weight": ["a"]}, TypeError, "weight must be an array of numbers"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index must be an int, got float 1.5"),
    ],
)
def test_cross_entropy_options_are_checked(kwargs, error, match):
    with pytest.raises(error, match=f"CrossEntropyLoss {match}"):
        gn.CrossEntropyLoss(**kwargs)


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "DiceCELoss"])
def test_weight_length_must_match_the_classes(loss):
    loss_fn = getattr(gn, loss)(weight=[1.0, 2.0])
    with pytest.raises(
        ValueError, match=rf"{loss} weight has 2 entries but the logits have 3 classes"
    ):
        loss_fn.forward(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2), np.int64))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight": [1.0, -1.0]}, ValueError, r"weight must be finite and >= 0, got \[1.0, -1.0\]"),
        ({"dice_weight": -0.5}, ValueError, r"dice_weight must be a finite number >= 0, got -0.5"),
        ({"smooth": 0}, ValueError, r"smooth must be a finite number > 0, got 0"),
        ({"ignore_index": 1.5}, TypeError, "ignore_index must be an int, got float 1.5"),
    ],
)
def test_dice_ce_options_are_checked(kwargs, error, match):
    with pytest.raises(error, match=f"DiceCELoss {match}"):
        gn.DiceCELoss(**kwargs)


def test_ignored_targets_may_lie_outside_the_classes():
    loss_fn = gn.CrossEntropyLoss(ignore_index=255)
    loss = loss_fn.forward(np.zeros((1, 1, 2, 3)), np.array([[[1, 255]]]))
    assert loss == pytest.approx(np.log(3))


def test_dice_smooth_must_be_positive():
    with pytest.raises(ValueError, match=r"DiceLoss smooth must be a finite number > 0, got 0"):
        gn.DiceLoss(0)
