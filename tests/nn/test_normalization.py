"""BatchNorm1d / BatchNorm2d: PyTorch's behaviour step by step, gradients, buffers and files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.functional.test_batchnorm import dx_scale
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet.functional._windows import to_chwn, to_nhwc
from glassnet.testing import check_layer_gradients
from glassnet.train import fit, load_checkpoint


def conv_bn(seed: int = 0, dtype: str = "float32") -> gn.Sequential:
    return gn.Sequential(
        [
            gn.Conv2d(1, 4, 3, padding=1, bias=False, dtype=dtype, rng=seed),
            gn.BatchNorm2d(4, dtype=dtype),
            gn.ReLU(),
            gn.MaxPool2d(2),
            gn.Flatten(),
            gn.Linear(4 * 4 * 4, 6, dtype=dtype, rng=seed + 1),
            gn.BatchNorm1d(6, momentum=None, dtype=dtype),
            gn.Linear(6, 10, dtype=dtype, rng=seed + 2),
        ]
    )


# -- gradients and layouts -------------------------------------------------------------------


@pytest.mark.parametrize("layer_cls", [gn.BatchNorm1d, gn.BatchNorm2d])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(layer_cls, affine, training):
    rng = np.random.default_rng(int(affine) + 2 * int(training))
    layer = layer_cls(3, affine=affine, dtype="float64")
    if affine:
        layer.params["weight"].value[:] = rng.normal(size=3)
        layer.params["bias"].value[:] = rng.normal(size=3)
    layer.buffers["running_mean"][:] = rng.normal(size=3)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2, size=3)
    layer.train(training)
    shape = (2, 3, 4, 3) if layer_cls is gn.BatchNorm2d else (5, 3)
    errors = check_layer_gradients(layer, rng.normal(size=shape) * 2 + 1, rng)
    assert set(errors) == ({"x", "weight", "bias"} if affine else {"x"})
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_compute_layout_equals_the_public_one():
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(3, 4, 5, 2)), rng.normal(size=(3, 4, 5, 2))
    public, compute = gn.BatchNorm2d(2, dtype="float64"), gn.BatchNorm2d(2, dtype="float64")
    out = public.forward(x)
    dx = public.backward(dout)
    np.testing.assert_allclose(to_nhwc(compute.forward_chwn(to_chwn(x))), out, atol=1e-13)
    np.testing.assert_allclose(to_nhwc(compute.backward_chwn(to_chwn(dout))), dx, atol=1e-13)
    for name, value in public.state_dict().items():
        np.testing.assert_allclose(compute.state_dict()[name], value, atol=1e-15)


def test_eval_uses_running_statistics_and_does_not_update_them():
    bn = gn.BatchNorm1d(2, eps=0.0, dtype="float64")
    bn.buffers["running_mean"][:] = [1.0, -1.0]
    bn.buffers["running_var"][:] = [4.0, 0.25]
    out = bn.eval().forward(np.array([[3.0, 0.0], [1.0, -1.0]]))
    np.testing.assert_allclose(out, [[1.0, 2.0], [0.0, 0.0]])
    assert bn.buffers["num_batches_tracked"] == 0
    np.testing.assert_array_equal(bn.buffers["running_mean"], [1.0, -1.0])


def test_without_running_statistics_eval_normalises_with_the_batch():
    bn = gn.BatchNorm1d(1, track_running_stats=False, eps=0.0).eval()
    assert bn.buffers == {} and bn.state_dict() == {"weight": [1.0], "bias": [0.0]}
    np.testing.assert_allclose(bn.forward(np.array([[1.0], [3.0]])), [[-1.0], [1.0]])


def test_layers_run_inside_sequential_and_train():
    rng = np.random.default_rng(1)
    model = conv_bn()
    x = rng.random((8, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    loss_fn, opt = gn.CrossEntropyLoss(), gn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        losses.append(loss_fn.forward(model.forward(x), y))
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        opt.zero_grad()
    assert losses[-1] < losses[0] / 3
    assert model[1].buffers["num_batches_tracked"] == 15
    assert model[6].buffers["num_batches_tracked"] == 15


# -- PyTorch reference -----------------------------------------------------------------------

layer_configs = st.fixed_dictionaries(
    {
        "dim": st.sampled_from([1, 2]),
        "N": st.integers(2, 5),
        "C": st.integers(1, 5),
        "H": st.integers(1, 5),
        "W": st.integers(1, 5),
        "eps": st.sampled_from([1e-5, 1e-3, 0.1]),
        "momentum": st.sampled_from([0.1, 0.3, 1.0, None]),
        "affine": st.booleans(),
        "track": st.booleans(),
        "steps": st.integers(1, 4),
        "seed": st.integers(0, 2**31),
    }
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40, deadline=None)
@given(cfg=layer_configs)
def test_matches_pytorch_over_training_steps_then_eval(dtype, cfg):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import nchw_to_nhwc, nhwc_to_nchw

    c = cfg
    rng = np.random.default_rng(c["seed"])
    options = {"eps": c["eps"], "momentum": c["momentum"], "affine": c["affine"]}
    options["track_running_stats"] = c["track"]
    two_d = c["dim"] == 2
    ours = (gn.BatchNorm2d if two_d else gn.BatchNorm1d)(c["C"], dtype=dtype, **options)
    ref = (torch.nn.BatchNorm2d if two_d else torch.nn.BatchNorm1d)(c["C"], **options)
    ref = ref.to(torch.float64 if dtype == np.float64 else torch.float32)
    if c["affine"]:
        for name in ("weight", "bias"):
            value = rng.normal(size=c["C"]).astype(dtype)
            ours.params[name].value[:] = value
            getattr(ref, name).data[:] = torch.tensor(value)
    shape = (c["N"], c["H"], c["W"], c["C"]) if two_d else (c["N"], c["C"])
    to_ref, from_ref = (nhwc_to_nchw, nchw_to_nhwc) if two_d else (np.array, torch.Tensor.numpy)
    axes = tuple(range(len(shape) - 1))
    for step in range(c["steps"] + 1):
        training = step < c["steps"]
        ours.train(training)
        ref.train(training)
        ours.zero_grad()
        ref.zero_grad()
        x = (rng.normal(size=shape) * rng.uniform(0.5, 3) + rng.normal()).astype(dtype)
        dout = rng.normal(size=shape).astype(dtype)
        out, dx = ours.forward(x), ours.backward(dout)
        xt = torch.tensor(to_ref(x), requires_grad=True)
        out_t = ref(xt)
        out_t.backward(torch.tensor(to_ref(dout)))
        mode = "train" if training else "eval"
        op = f"BatchNorm{c['dim']}d {mode}"
        errors = {op: rel_error(out, from_ref(out_t.detach())), f"{op} dx": rel_error(
            dx, from_ref(xt.grad), dx_scale(to_chwn(dout) if two_d else dout, ours._cache) if ours._cache.batch_stats else None
        )}  # fmt: skip
        if c["affine"]:
            scale = np.abs(dout).sum(axis=axes).max()
            for name in ("weight", "bias"):
                ref_grad = getattr(ref, name).grad.numpy()
                errors[f"{op} d{name}"] = rel_error(ours.params[name].grad, ref_grad, scale)
        if c["track"]:
            for name in ("running_mean", "running_var"):
                errors[f"BatchNorm {name}"] = rel_error(
                    ours.buffers[name], getattr(ref, name).numpy()
                )
            assert ours.buffers["num_batches_tracked"] == ref.num_batches_tracked.item()
        for name, err in errors.items():
            record_torch_error(name, dtype, err)
        assert max(errors.values()) <= TOL_VS_TORCH[dtype], (cfg, step, errors)


@pytest.mark.torch
def test_state_dict_names_shapes_and_dtypes_are_pytorchs():
    torch = pytest.importorskip("torch")
    ours = gn.Sequential([gn.Conv2d(3, 4, 3, bias=False), gn.BatchNorm2d(4), gn.ReLU()])
    ref = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU()
    )
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    assert sorted(ours_state) == sorted(ref_state)
    for name, tensor in ref_state.items():
        assert ours_state[name].shape == tuple(tensor.shape), name
        assert ours_state[name].dtype == tensor.numpy().dtype, name
    # and PyTorch's tensors load as they are, counter included
    ref(torch.randn(2, 3, 5, 5))
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    assert ours[1].buffers["num_batches_tracked"] == 1


# -- buffers: state_dict, casting, files and checkpoints ---------------------------------------


def test_state_dict_holds_buffers_as_copies_and_loads_them_in_place():
    bn = gn.BatchNorm2d(2)
    bn.forward(np.random.default_rng(0).normal(size=(2, 3, 3, 2)).astype(np.float32))
    state = bn.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    state["running_mean"][:] = 7  # a copy: the layer keeps its own
    assert not (bn.buffers["running_mean"] == 7).any()
    running_mean = bn.buffers["running_mean"]
    bn.load_state_dict(state)
    assert bn.buffers["running_mean"] is running_mean  # copied in place
    np.testing.assert_array_equal(running_mean, [7, 7])


def test_load_state_dict_checks_buffers():
    bn = gn.BatchNorm1d(2)
    state = bn.state_dict()
    with pytest.raises(TypeError, match=r"'num_batches_tracked'\] has dtype float64, expected an"):
        bn.load_state_dict({**state, "num_batches_tracked": np.array(3.0)})
    with pytest.raises(ValueError, match=r"'running_var'\] has shape \(3,\), expected \(2,\)"):
        bn.load_state_dict({**state, "running_var": np.ones(3)})
    with pytest.raises(KeyError, match=r"missing \['running_mean'\]"):
        bn.load_state_dict({k: v for k, v in state.items() if k != "running_mean"})
    bn.load_state_dict({**state, "num_batches_tracked": np.array(3, np.int32)})
    assert bn.buffers["num_batches_tracked"].dtype == np.int64
    assert bn.buffers["num_batches_tracked"] == 3


def test_astype_casts_float_buffers_and_keeps_the_counter():
    model = conv_bn().astype(np.float64)
    for name, value in model.named_buffers():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float64
        assert value.dtype == expected, name
    assert model[1].get_config()["dtype"] == "float64"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_file_round_trip_keeps_running_statistics(tmp_path, dtype):
    rng = np.random.default_rng(2)
    model = conv_bn(dtype=dtype)
    for _ in range(3):
        model.forward(rng.random((4, 8, 8, 1)).astype(dtype))
    path = tmp_path / "bn.safetensors"
    gn.save(model, path)
    loaded = gn.load(path)
    assert repr(loaded) == repr(model)
    for name, value in model.state_dict().items():
        assert loaded.state_dict()[name].dtype == value.dtype, name
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
    x = rng.random((2, 8, 8, 1)).astype(dtype)
    np.testing.assert_array_equal(loaded.eval().forward(x), model.eval().forward(x))
    arch = json.loads(gn.read_metadata(path)["architecture"])
    assert arch["config"]["layers"][6]["config"]["momentum"] is None


def test_model_file_refuses_a_counter_of_another_dtype(tmp_path):
    from glassnet.io.safetensors import read_file, save_file

    path = tmp_path / "bn.safetensors"
    gn.save(gn.Sequential([gn.BatchNorm1d(2)]), path)
    tensors, metadata = read_file(path)
    tensors["0.num_batches_tracked"] = np.array(0.0)
    save_file(tensors, path, metadata)
    with pytest.raises(gn.ModelFileError, match=r"'0.num_batches_tracked' has dtype float64, exp"):
        gn.load(path)


def test_a_float32_file_loads_into_a_float64_architecture_with_the_counter(tmp_path):
    path = tmp_path / "bn.safetensors"
    model = gn.Sequential([gn.BatchNorm1d(2, dtype="float64")])
    model.forward(np.arange(4.0).reshape(2, 2))
    gn.save(model.astype(np.float32), path)
    loaded = gn.load(path)
    assert loaded[0].buffers["running_var"].dtype == np.float32
    assert loaded[0].buffers["num_batches_tracked"] == 1


def test_resume_from_a_checkpoint_keeps_running_statistics(tmp_path):
    data = gn.load_digits("train").subset(np.arange(160))

    def run(seed):
        model = gn.Sequential([gn.Conv2d(1, 4, 3, bias=False, rng=seed), gn.BatchNorm2d(4),
                               gn.ReLU(), gn.Flatten(), gn.Linear(4 * 6 * 6, 10, rng=seed + 1),
                               gn.BatchNorm1d(10)])  # fmt: skip
        return model, gn.SGD(model.parameters(), lr=0.05, momentum=0.9)

    options = {"batch_size": 32, "rng": 3, "progress": False, "log": lambda _: None}
    straight, opt = run(0)
    fit(straight, data, opt, epochs=3, **options)
    first, opt1 = run(0)
    fit(first, data, opt1, epochs=1, checkpoint=tmp_path / "bn.ckpt", **options)
    resumed, opt2 = run(40)
    assert load_checkpoint(tmp_path / "bn.ckpt", resumed, opt2).epoch == 1
    assert resumed[1].buffers["num_batches_tracked"] == 5
    np.testing.assert_array_equal(
        resumed[1].buffers["running_var"], first[1].buffers["running_var"]
    )
    resumed, opt2 = run(40)
    fit(resumed, data, opt2, epochs=3, resume=tmp_path / "bn.ckpt", **options)
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)


# -- configuration and errors ------------------------------------------------------------------


def test_config_round_trip_and_repr():
    bn = gn.BatchNorm2d(8, eps=1e-3, momentum=None, affine=False)
    assert repr(bn) == "BatchNorm2d(num_features=8, eps=0.001, momentum=None, affine=False)"
    again = gn.BatchNorm2d.from_config(json.loads(json.dumps(bn.get_config())))
    assert again.get_config() == bn.get_config()
    assert bn.num_parameters() == 0 and gn.BatchNorm2d(8).num_parameters() == 16
    assert gn.BatchNorm2d.parameter_count(gn.BatchNorm2d(8).get_config()) == 33


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_features": 0}, ValueError, "BatchNorm2d num_features must be >= 1, got 0"),
        ({"num_features": True}, TypeError, "num_features must be an int, got bool True"),
        ({"num_features": 2.0}, TypeError, "num_features must be an int, got float 2.0"),
        ({"num_features": 2, "eps": -1}, ValueError, "eps must be a finite number >= 0, got -1"),
        (
            {"num_features": 2, "momentum": 1.5},
            ValueError,
            r"momentum must be a finite number in \[0, 1\], got 1.5",
        ),
        (
            {"num_features": 2, "momentum": "0.1"},
            TypeError,
            "momentum must be a number, got str '0.1'",
        ),
        ({"num_features": 2, "affine": 1}, TypeError, "affine must be True or False, got int 1"),
        (
            {"num_features": 2, "track_running_stats": None},
            TypeError,
            "track_running_stats must be True or False, got NoneType None",
        ),
        ({"num_features": 2, "dtype": "int8"}, ValueError, "dtype must be float32 or float64"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        gn.BatchNorm2d(**kwargs)


def test_input_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d expects 3 input channels .* got 2"):
        gn.BatchNorm2d(3).forward(np.zeros((2, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects a 4-D input \(N, H, W, C\)"):
        gn.BatchNorm2d(3).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"BatchNorm1d expects 3 input features .* got 4"):
        gn.BatchNorm1d(3).forward(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="BatchNorm1d expects a float array"):
        gn.BatchNorm1d(3).forward(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        gn.BatchNorm1d(3).forward(np.zeros((1, 3)))
    with pytest.raises(RuntimeError, match="BatchNorm1d.backward called before forward"):
        gn.BatchNorm1d(3).backward(np.zeros((2, 3)))


def test_synchronized_statistics_are_summed_in_training_only():
    """As PyTorch's SyncBatchNorm: evaluation with batch statistics (no running ones) is each
    replica's own, so replicas evaluating different numbers of batches never wait on a sum."""
    bn = gn.BatchNorm1d(2, track_running_stats=False).astype("float64")
    calls = []
    bn.replica_sum = lambda array: calls.append(array.shape) or array
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    bn.eval()
    np.testing.assert_allclose(bn.forward(x), [[-1.0, -1.0], [1.0, 1.0]], atol=1e-4)
    assert calls == []
    bn.train()
    bn.forward(x)
    assert len(calls) == 3  # the sum, the count, the squares
