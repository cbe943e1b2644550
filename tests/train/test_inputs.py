"""fit, evaluate and predict refuse wrong data with one clear error, before computing anything."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.models import build_model
from glassnet.train import evaluate, fit, predict

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (12, 8, 8, 1)).astype(np.uint8)
LABELS = np.arange(12) % 10


def new_run():
    model, _ = build_model("digits-cnn", rng=0)
    return model, gn.Adam(model.parameters(), lr=2e-3)


def never(line: str) -> None:
    raise AssertionError(f"training started: {line}")


def fit_once(data, model=None, optimizer=None, **options):
    if model is None:
        model, optimizer = new_run()
    return fit(model, data, optimizer, epochs=1, batch_size=4, progress=False, log=never,
               **options)  # fmt: skip


@pytest.mark.parametrize(
    ("images", "labels", "error", "message"),
    [
        (IMAGES, np.where(LABELS == 1, 0.5, LABELS), ValueError,
         r"^train labels must be whole class indices, got 0.5 at index 1$"),
        (IMAGES, LABELS + 0.7, ValueError, r"got 0.7 at index 0$"),
        (IMAGES, np.where(LABELS == 2, np.nan, LABELS), ValueError, r"got nan at index 2$"),
        (IMAGES, np.where(LABELS == 3, 10, LABELS), ValueError,
         r"^train labels must be class indices in \[0, 10\), got values from 0 to 10 "
         r"\(the model has 10 outputs\)$"),
        (IMAGES, LABELS - 1, ValueError, r"got values from -1 to 8"),
        (IMAGES, LABELS.astype(str), TypeError,
         r"^train labels must be integer class indices, got dtype <U\d+$"),
        (IMAGES, LABELS == 1, TypeError, r"got dtype bool$"),
        (IMAGES, LABELS[:, None], ValueError,
         r"^train labels must have shape \(12,\), one per image, got \(12, 1\)$"),
        (IMAGES.astype(np.int64), LABELS, TypeError,
         r"^train images must be uint8 pixels 0-255 or floats in \[0, 1\], got dtype int64 "
         r"with values 0-255; pass pixels as images.astype\(np.uint8\) \(scaled by 1/255 here\) "
         r"or as floats scaled by 1/255$"),
        (IMAGES.astype(np.int32) * 1000, LABELS, TypeError, r"got dtype int32 with values 0 to 255000$"),
        (IMAGES.astype(np.float32), LABELS, ValueError,
         r"^train images are whole numbers up to 255: unscaled pixels, not floats in \[0, 1\]; "
         r"scale them by 1/255 \(or pass uint8 pixels, which are scaled here\)$"),
        (IMAGES.astype(np.float64) * 16 / 255 // 1, LABELS, ValueError, r"whole numbers up to 1[0-6]:"),
        (np.where(IMAGES > 250, np.inf, IMAGES / 255), LABELS, ValueError,
         r"^train images contain NaN or infinite values$"),
        (IMAGES[:0], LABELS[:0], ValueError,
         r"^train images: no images \(an empty set of shape \(0, 8, 8, 1\)\)$"),
        (np.zeros((12, 28, 28, 1), np.uint8), LABELS, ValueError,
         r"^train images: the model expects inputs of shape \(N, 8, 8, 1\), got \(12, 28, 28, 1\)$"),
        (np.zeros(12, np.uint8), LABELS, ValueError,
         r"^train images must be a stack of images \(N, H, W, C\), got shape \(12,\)$"),
        (IMAGES, LABELS[:5], ValueError, r"^12 images but 5 labels; the counts must match$"),
    ],
)  # fmt: skip
def test_fit_refuses_wrong_data_before_the_first_step(images, labels, error, message):
    model, opt = new_run()
    before = model.state_dict()
    with pytest.raises(error, match=message):
        fit_once((images, labels), model, opt)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_whole_number_float_labels_are_taken_as_those_integers():
    histories = []
    for labels in (LABELS, LABELS.astype(np.float64), LABELS.astype(np.float32).tolist()):
        model, opt = new_run()
        histories.append(fit(model, (IMAGES, labels), opt, epochs=1, batch_size=4,
                             progress=False, log=lambda _: None))  # fmt: skip
    assert histories[1]["loss"] == histories[0]["loss"] == histories[2]["loss"]


def test_a_bad_validation_set_is_refused_before_the_first_epoch_not_after_it():
    with pytest.raises(ValueError, match=r"^validation labels must be whole class indices"):
        fit_once((IMAGES, LABELS), validation=(IMAGES, LABELS + 0.5))


def test_an_optimizer_of_another_model_is_refused():
    model, _ = new_run()
    other, other_opt = new_run()
    with pytest.raises(
        ValueError,
        match=r"^optimizer holds 8 of its 8 parameters from outside this model \(was it built "
        r"for another model\?\); build it from this one, e.g. gn.Adam\(model.parameters\(\)\)$",
    ):
        fit_once((IMAGES, LABELS), model, other_opt)
    mixed = gn.SGD([*model.parameters()[:2], other.parameters()[0]], lr=0.1)
    with pytest.raises(ValueError, match=r"^optimizer holds 1 of its 3 parameters from outside"):
        fit_once((IMAGES, LABELS), model, mixed)
    with pytest.raises(TypeError, match=r"^optimizer must be a glassnet optimizer .*got str$"):
        fit_once((IMAGES, LABELS), model, "adam")
    with pytest.raises(
        TypeError, match=r"^model must be a glassnet model \(gn.Sequential, gn.Model\), got list$"
    ):
        fit_once((IMAGES, LABELS), [model], other_opt)


def test_training_only_some_of_the_parameters_is_allowed():
    model, _ = new_run()
    last = model.parameters()[-2:]  # the output layer: fine-tuning the head
    frozen = [p.value.copy() for p in model.parameters()[:-2]]
    head = [p.value.copy() for p in last]
    fit(model, (IMAGES, LABELS), gn.SGD(last, lr=0.1), epochs=1, progress=False,
        log=lambda _: None)  # fmt: skip
    for value, p in zip(frozen, model.parameters()[:-2], strict=True):
        np.testing.assert_array_equal(p.value, value)
    assert not np.array_equal(last[0].value, head[0])


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"epochs": 2.5}, TypeError, r"^epochs must be an int >= 1, got float 2.5$"),
        ({"epochs": 0}, ValueError, r"^epochs must be >= 1, got 0$"),
        ({"batch_size": True}, TypeError, r"^batch_size must be an int >= 1, got bool True$"),
        ({"early_stopping": 0}, ValueError, r"^early_stopping must be >= 1, got 0$"),
    ],
)
def test_fit_refuses_bad_counts(options, error, message):
    model, opt = new_run()
    settings = {"epochs": 1, "batch_size": 4, **options}
    with pytest.raises(error, match=message):
        fit(model, (IMAGES, LABELS), opt, progress=False, log=never, **settings)


def test_predict_and_evaluate_take_nested_lists_as_arrays():
    model, _ = new_run()
    floats = IMAGES[:3] / 255
    np.testing.assert_array_equal(predict(model, floats.tolist()), predict(model, floats))
    listed = evaluate(model, (floats.tolist(), LABELS[:3].tolist()))
    assert listed.loss == evaluate(model, (floats, LABELS[:3])).loss


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        ([[0.5, 0.5], [0.5]], TypeError,
         r"^images must be an array or a nested list of one shape: .*inhomogeneous"),
        (np.zeros((0, 8, 8, 1), np.uint8), ValueError, r"^images: no images \(an empty set"),
        (IMAGES.astype(np.int64), TypeError, r"^images must be uint8 pixels 0-255 or floats"),
        (np.full((1, 8, 8, 1), 255.0), ValueError, r"^images are whole numbers up to 255"),
        (np.full((1, 8, 8, 1), np.nan), ValueError, r"^images contain NaN or infinite values$"),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError,
         r"^images: the model expects inputs of shape \(N, 8, 8, 1\), got \(2, 8, 8, 3\)$"),
    ],
)  # fmt: skip
def test_predict_refuses_wrong_images(images, error, message):
    with pytest.raises(error, match=message):
        predict(new_run()[0], images)


def test_predict_refuses_a_bad_batch_size_and_evaluate_bad_labels():
    model, _ = new_run()
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0$"):
        predict(model, IMAGES, batch_size=0)
    with pytest.raises(ValueError, match=r"^data labels must be whole class indices, got 1.5"):
        evaluate(model, (IMAGES, LABELS + 1.5))
    with pytest.raises(ValueError, match=r"^data images: no images"):
        evaluate(model, (IMAGES[:0], LABELS[:0]))


def test_normalised_floats_above_one_are_accepted():
    """Standardised pixels ((x - mean) / std) go above 1 but are not whole numbers."""
    model, _ = new_run()
    standardised = (IMAGES - IMAGES.mean()) / IMAGES.std()
    assert standardised.max() > 1
    assert predict(model, standardised.astype(np.float32)).shape == (12, 10)
