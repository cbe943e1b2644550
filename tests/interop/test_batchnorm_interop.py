"""BatchNorm across the boundaries: ONNX BatchNormalization in onnxruntime, PyTorch both ways."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.test_onnx import MAX_DIFF, run_onnx

import glassnet as gn
from glassnet.interop._common import hwc_to_chw_columns

pytestmark = pytest.mark.torch  # reference checks: required under CI
#: Max absolute difference allowed between onnxruntime and glassnet (float32).
TOL_ONNX = 1e-4


def bn_net(rng: np.random.Generator) -> gn.Sequential:
    """Conv+BatchNorm2d+ReLU blocks, a BatchNorm1d between Flatten and Linear, and one after."""
    model = gn.Sequential(
        [
            gn.Conv2d(3, 6, 3, padding=1, bias=False, rng=1),
            gn.BatchNorm2d(6),
            gn.ReLU(),
            gn.MaxPool2d(2),
            gn.Conv2d(6, 4, 3, padding=1, rng=2),
            gn.BatchNorm2d(4, eps=1e-3, momentum=None, affine=False),
            gn.ReLU(),
            gn.Flatten(),
            gn.BatchNorm1d(4 * 3 * 3),
            gn.Linear(4 * 3 * 3, 8, rng=3),
            gn.BatchNorm1d(8, affine=False),
            gn.Linear(8, 5, rng=4),
        ],
        input_shape=(6, 6, 3),
    )
    for _, p in model.named_parameters():  # away from the identity initialisation
        p.value[...] += rng.normal(0, 0.3, p.shape).astype(p.dtype)
    for _ in range(3):  # running statistics away from (0, 1)
        model.forward(rng.normal(1.0, 2.0, (8, 6, 6, 3)).astype(np.float32))
    return model.eval()


def test_onnx_batch_normalization_matches_in_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    import onnx

    rng = np.random.default_rng(0)
    model = bn_net(rng)
    path = tmp_path / "bn.onnx"
    gn.export_onnx(model, path)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert ops.count("BatchNormalization") == 4
    for batch in (1, 6):
        x = rng.normal(1.0, 2.0, (batch, 6, 6, 3)).astype(np.float32)
        expected = model.forward(x)
        diff = float(np.max(np.abs(run_onnx(path, x) - expected)))
        MAX_DIFF["BatchNorm2d/1d net"] = max(MAX_DIFF.get("BatchNorm2d/1d net", 0.0), diff)
        assert diff <= TOL_ONNX * max(1.0, float(np.abs(expected).max())), diff


def test_onnx_exports_running_statistics_under_glassnet_names(tmp_path):
    pytest.importorskip("onnx")
    import onnx

    path = tmp_path / "bn.onnx"
    gn.export_onnx(bn_net(np.random.default_rng(1)), path)
    names = {t.name for t in onnx.load(path).graph.initializer}
    assert {"1.weight", "1.bias", "1.running_mean", "1.running_var", "5.weight"} <= names


def test_onnx_refuses_batch_norm_without_running_statistics(tmp_path):
    pytest.importorskip("onnx")
    model = gn.Sequential([gn.BatchNorm2d(2, track_running_stats=False)])
    with pytest.raises(ValueError, match="track_running_stats=False normalises with each batch"):
        gn.export_onnx(model, tmp_path / "bn.onnx", input_shape=(3, 3, 2))


def torch_bn_net(nn):
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 4, 3, padding=1),
        nn.BatchNorm2d(4, eps=1e-3, momentum=None, affine=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.BatchNorm1d(4 * 3 * 3),
        nn.Linear(4 * 3 * 3, 8),
        nn.BatchNorm1d(8, momentum=0.3),
        nn.Linear(8, 5),
    )


def torch_out(torch, module, x):
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_torch_keeps_weights_running_statistics_and_training(dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch_bn_net(torch.nn).to(getattr(torch, dtype))
    rng = np.random.default_rng(2)
    for _ in range(2):  # running statistics and counters away from their initial values
        module(torch.from_numpy(rng.normal(1, 2, (5, 3, 6, 6)).astype(dtype)))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model = gn.from_torch(module.eval(), (6, 6, 3))
    assert [type(layer).__name__ for layer in model][8] == "BatchNorm1d"
    assert model[5].momentum is None and model[5].eps == 1e-3 and not model[5].affine
    assert model[1].buffers["num_batches_tracked"] == 2
    tol = 1e-5 if dtype == "float32" else 1e-10
    x = rng.normal(1, 2, (4, 6, 6, 3)).astype(dtype)
    np.testing.assert_allclose(model.forward(x), torch_out(torch, module, x), atol=tol, rtol=tol)
    # and the two keep agreeing over training steps in train mode (batch statistics)
    model.train()
    module.train()
    for _ in range(2):
        x = rng.normal(1, 2, (4, 6, 6, 3)).astype(dtype)
        np.testing.assert_allclose(model.forward(x), torch_out(torch, module, x), atol=tol * 10)
    ours = model.state_dict()
    for name, value in module.state_dict().items():
        if value.ndim > 1:
            continue  # the weights did not change (no optimizer step)
        if name.startswith("8.") and value.ndim == 1:  # after Flatten: (C, H, W) feature order
            ours[name] = hwc_to_chw_columns(ours[name][None], (3, 3, 4))[0]
        np.testing.assert_allclose(ours[name], value.numpy(), atol=tol, err_msg=name)
    model.eval()
    module.eval()
    np.testing.assert_allclose(model.forward(x), torch_out(torch, module, x), atol=tol, rtol=tol)


def test_to_torch_round_trips_a_batch_norm_net():
    torch = pytest.importorskip("torch")
    model = bn_net(np.random.default_rng(3))
    module = gn.to_torch(model)
    assert not module.training
    assert isinstance(module[10], torch.nn.BatchNorm1d) and not module[10].affine
    assert module[5].momentum is None and module[5].eps == 1e-3
    x = np.random.default_rng(4).normal(1, 2, (3, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(torch_out(torch, module, x), model.forward(x), atol=1e-5)
    back = gn.from_torch(module, (6, 6, 3)).eval()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name], value, err_msg=name)


def test_load_torch_state_dict_checks_buffers():
    torch = pytest.importorskip("torch")
    model = gn.Sequential([gn.Conv2d(3, 2, 3, rng=0), gn.BatchNorm2d(2)], input_shape=(5, 5, 3))
    state = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2)).state_dict()
    bad = {**state, "1.num_batches_tracked": torch.tensor(1.0)}
    with pytest.raises(ValueError, match="expected an integer tensor .a counter., got float32"):
        gn.load_torch_state_dict(model, bad)
    missing = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(ValueError, match=r"has \['bias', 'num_batches_tracked', 'running_mean'"):
        gn.load_torch_state_dict(model, missing)
    gn.load_torch_state_dict(model, state)
    np.testing.assert_array_equal(model[1].buffers["running_var"], np.ones(2, np.float32))


def test_from_torch_refuses_batch_norm_1d_on_sequences():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    module = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm1d(2))
    with pytest.raises(ValueError, match=r"BatchNorm1d.*expects a 2-D \(N, F\) input"):
        gn.from_torch(module, (4, 4, 3))
