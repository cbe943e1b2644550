"""fit's pieces for modern recipes: tasks, augmentation on a thread, weight averages, test-time
flips; each reproducible under a seed and across resume."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import glassnet as gn
from glassnet.data import load_digits
from glassnet.data.augment import Augment
from glassnet.data.prefetch import prefetch
from glassnet.io.errors import ModelFileError
from glassnet.models import build_model
from glassnet.train import Classification, Task, WeightAverage, fit, predict_logits
from glassnet.train.loop import evaluate


@pytest.fixture(scope="module")
def digits():
    train = load_digits("train")
    return train.subset(np.arange(320)), load_digits("test")


def quiet(_: str) -> None:
    pass


def new_run(seed: int = 0):
    model, _ = build_model("digits-cnn", rng=seed)
    return model, gn.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)


FLIP_AND_SHIFT = Augment([("random_translate", {"max_shift": 1}), ("random_horizontal_flip", {})])


def weights(model):
    return model.state_dict()


def assert_same_weights(a, b):
    for name, value in weights(a).items():
        np.testing.assert_array_equal(weights(b)[name], value, err_msg=name)


def test_an_identity_augmentation_leaves_the_run_unchanged(digits):
    """The augmentation draws from its own stream: the shuffling order stays the run's."""
    train, _ = digits
    plain, opt = new_run()
    fit(plain, train, opt, epochs=2, batch_size=32, progress=False, log=quiet)
    calls = []

    def identity(images, rng):
        calls.append(images.dtype)
        return images

    augmented, opt = new_run()
    fit(augmented, train, opt, epochs=2, batch_size=32, augment=identity, progress=False, log=quiet)
    assert_same_weights(plain, augmented)
    assert len(calls) == 2 * 10 and set(calls) == {np.dtype(np.uint8)}  # stored pixels


def test_augmented_runs_repeat_under_a_seed_and_differ_from_plain_ones(digits):
    train, _ = digits
    runs = []
    for _ in range(2):
        model, opt = new_run()
        fit(model, train, opt, epochs=2, batch_size=32, augment=FLIP_AND_SHIFT,
            progress=False, log=quiet)  # fmt: skip
        runs.append(model)
    assert_same_weights(*runs)
    plain, opt = new_run()
    fit(plain, train, opt, epochs=2, batch_size=32, progress=False, log=quiet)
    first = "0.weight"
    assert not np.array_equal(weights(plain)[first], weights(runs[0])[first])


def test_resume_with_augmentation_and_an_average_gives_the_uninterrupted_weights(digits, tmp_path):
    train, test = digits
    settings = dict(batch_size=32, augment=FLIP_AND_SHIFT, ema=0.9, validation=test,
                    progress=False, log=quiet)  # fmt: skip
    straight, opt = new_run()
    history = fit(straight, train, opt, epochs=3, **settings)

    first, opt1 = new_run()
    fit(first, train, opt1, epochs=2, checkpoint=tmp_path / "run.ckpt", **settings)
    resumed, opt2 = new_run(seed=7)
    resumed_history = fit(
        resumed, train, opt2, epochs=3, resume=tmp_path / "run.ckpt", rng=99, **settings
    )
    assert_same_weights(straight, resumed)
    assert resumed_history["val_accuracy"] == history["val_accuracy"]

    without, opt3 = new_run()
    with pytest.raises(ModelFileError, match="weight average"):
        fit(
            without,
            train,
            opt3,
            epochs=3,
            resume=tmp_path / "run.ckpt",
            batch_size=32,
            progress=False,
            log=quiet,
        )  # fmt: skip  (the checkpoint has one, this run has none)
    plain, opt4 = new_run()
    fit(plain, train, opt4, epochs=1, batch_size=32, checkpoint=tmp_path / "p.ckpt",
        progress=False, log=quiet)  # fmt: skip
    averaged, opt5 = new_run()
    with pytest.raises(ModelFileError, match="weight average lacks"):
        fit(averaged, train, opt5, epochs=2, ema=0.9, resume=tmp_path / "p.ckpt",
            batch_size=32, progress=False, log=quiet)  # fmt: skip


def test_fit_with_ema_leaves_the_model_holding_the_average(digits):
    """Replays fit's steps by hand: average <- d * average + (1 - d) * weights per step."""
    train, _ = digits
    model, opt = new_run()
    fit(model, train, opt, epochs=1, batch_size=160, ema=0.5, progress=False, log=quiet)

    twin, opt = new_run()
    start = weights(twin)
    snapshots = []
    original_step = opt.step

    def step_and_record():
        original_step()
        snapshots.append(weights(twin))

    opt.step = step_and_record
    fit(twin, train, opt, epochs=1, batch_size=160, progress=False, log=quiet)
    assert len(snapshots) == 2
    name = "2.weight"
    expected = 0.5 * (0.5 * start[name] + 0.5 * snapshots[0][name]) + 0.5 * snapshots[1][name]
    np.testing.assert_allclose(weights(model)[name], expected, rtol=1e-6)


def test_weight_average_refuses_a_bad_decay_and_keeps_counts_unaveraged():
    model = gn.Sequential([gn.Conv2d(1, 2, 3), gn.BatchNorm2d(2)], input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match="ema decay must be"):
        WeightAverage(model, 1.0)
    average = WeightAverage(model, 0.9)
    model.train()
    model.forward(np.random.default_rng(0).random((4, 5, 5, 1), dtype=np.float32))
    average.update()
    assert average.averages["1.num_batches_tracked"] == 1
    np.testing.assert_allclose(
        average.averages["1.running_mean"], 0.1 * model.state_dict()["1.running_mean"]
    )


def test_test_time_flips_average_the_image_and_its_mirror(digits):
    _, test = digits
    model, _ = build_model("digits-cnn", rng=0)
    images = test.images[:5]
    plain = predict_logits(model, images)
    mirrored = predict_logits(model, images[:, :, ::-1])
    np.testing.assert_allclose(
        predict_logits(model, images, tta=True), 0.5 * (plain + mirrored), rtol=1e-5, atol=1e-6
    )
    flipped = evaluate(model, test, tta=True)
    assert flipped.accuracy != evaluate(model, test).accuracy or flipped.loss != pytest.approx(
        evaluate(model, test).loss
    )


def test_a_task_without_flips_refuses_test_time_flips(digits):
    _, test = digits

    class Counting(Classification):
        name = "counting"
        unflip = Task.unflip

    model, _ = build_model("digits-cnn", rng=0)
    with pytest.raises(ValueError, match="test-time flips are not defined for counting"):
        evaluate(model, test, tta=True, task=Counting())


def test_the_task_s_loss_trains_label_smoothing_reaches_the_loss(digits):
    train, _ = digits
    histories = []
    for smoothing in (0.0, 0.2):
        model, opt = new_run()
        task = Classification(gn.CrossEntropyLoss(label_smoothing=smoothing))
        histories.append(fit(model, train, opt, epochs=1, batch_size=32, task=task,
                             progress=False, log=quiet))  # fmt: skip
    # the same first batches: a smoothed target costs more at the same logits
    assert histories[1]["loss"][0] > histories[0]["loss"][0]


def test_prefetch_keeps_order_raises_where_it_failed_and_stops_when_abandoned():
    assert list(prefetch(iter(range(10)), depth=3)) == list(range(10))

    def failing():
        yield 1
        raise KeyError("item 2 broke")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(KeyError, match="item 2 broke"):
        next(items)

    produced = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    items = prefetch(endless(), depth=2)
    assert next(items) == 0
    items.close()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 4  # one taken, two queued, one being put when stopped
    assert not any(t.name == "glassnet-prefetch" for t in threading.enumerate())
