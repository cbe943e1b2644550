"""The training loop: learning on real data, exact resume, divergence, early stopping."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import glassnet as gn
from glassnet.data import load_digits
from glassnet.io.errors import ModelFileError
from glassnet.models import build_model
from glassnet.train import (
    CosineLR,
    StepLR,
    TrainingDiverged,
    TriangularLR,
    evaluate,
    fit,
    load_checkpoint,
    predict,
)
from glassnet.train.checkpoint import check_writable


@pytest.fixture(scope="module")
def digits():
    return load_digits("train"), load_digits("test")


def quiet(_: str) -> None:
    pass


def new_run(seed: int = 0, lr: float = 2e-3):
    model, _ = build_model("digits-cnn", rng=seed)
    return model, gn.Adam(model.parameters(), lr=lr)


def test_fit_learns_real_digits(digits):
    train, test = digits
    model, opt = new_run()
    before = evaluate(model, test).accuracy
    history = fit(model, train, opt, epochs=6, batch_size=32, progress=False, log=quiet)
    after = evaluate(model, test)
    assert before < 0.3
    assert after.accuracy >= 0.95  # measured 0.97-0.98 after 6 epochs
    assert history["loss"][-1] < history["loss"][0] / 3
    assert after.confusion.sum() == len(test)
    assert list(history) == ["epoch", "loss", "accuracy", "lr", "seconds"]


def test_resume_from_a_checkpoint_gives_the_uninterrupted_weights(digits, tmp_path):
    train, _ = digits
    subset = train.subset(np.arange(400))
    model, opt = new_run()
    straight = fit(model, subset, opt, epochs=4, batch_size=32, schedule=StepLR(2, 0.5),
                   checkpoint=tmp_path / "a.ckpt", progress=False, log=quiet)  # fmt: skip

    first, opt1 = new_run()
    fit(first, subset, opt1, epochs=2, batch_size=32, schedule=StepLR(2, 0.5),
        checkpoint=tmp_path / "b.ckpt", progress=False, log=quiet)  # fmt: skip
    resumed, opt2 = new_run(seed=99)  # different initial weights: all must come from the file
    history = fit(resumed, subset, opt2, epochs=4, batch_size=32, schedule=StepLR(2, 0.5),
                  resume=tmp_path / "b.ckpt", rng=12345, progress=False, log=quiet)  # fmt: skip
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    assert history["loss"] == straight["loss"]
    assert history["lr"] == [2e-3, 2e-3, 1e-3, 1e-3]


def test_divergence_stops_with_epoch_and_batch_and_keeps_the_last_checkpoint(digits, tmp_path):
    train, _ = digits
    model, opt = new_run()
    ckpt = tmp_path / "run.ckpt"
    fit(model, train, opt, epochs=1, batch_size=64, checkpoint=ckpt, progress=False, log=quiet)
    saved = model.state_dict()
    saved_bytes = ckpt.read_bytes()
    opt.lr = 1e30  # guaranteed to blow up
    with pytest.raises(
        TrainingDiverged,
        match=r"at epoch 2, batch \d+/\d+: .*last good checkpoint .*after epoch 1\) is intact",
    ):
        fit(model, train, opt, epochs=3, batch_size=64, checkpoint=ckpt, resume=ckpt,
            schedule=StepLR(1, 1.0), progress=False, log=quiet)  # fmt: skip
    assert ckpt.read_bytes() == saved_bytes
    fresh, fresh_opt = new_run(seed=5)
    state = load_checkpoint(ckpt, fresh, fresh_opt)
    assert state.epoch == 1
    for name, value in saved.items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)


def test_a_finite_blow_up_stops_with_epoch_batch_and_the_rule(digits, tmp_path):
    """Adam with lr=1e6: the loss reaches 1e29 and stays finite; the rule stops it."""
    train, _ = digits
    model, opt = new_run()
    ckpt = tmp_path / "run.ckpt"
    fit(model, train, opt, epochs=1, batch_size=64, checkpoint=ckpt, progress=False, log=quiet)
    saved_bytes = ckpt.read_bytes()
    opt.lr = 1e6
    with pytest.raises(TrainingDiverged) as info:
        fit(model, train, opt, epochs=3, batch_size=64, checkpoint=ckpt, resume=ckpt,
            schedule=StepLR(1, 1.0), progress=False, log=quiet)  # fmt: skip
    # the first batch's loss comes from the checkpoint: the reference survives a resume
    message = str(info.value)
    assert re.fullmatch(
        r"training diverged at epoch 2, batch (\d+)/23: the loss (\S+) exceeds 2\d\d\.\d, "
        r"the larger of 100 times the first batch's loss \(2\.\d+\) and 100; the last good "
        rf"checkpoint {re.escape(str(ckpt))} \(after epoch 1\) is intact\. Try a smaller "
        r"learning rate \(now 1e\+06\)\.",
        message,
    ), message
    assert ckpt.read_bytes() == saved_bytes

    fresh, _ = new_run()
    with pytest.raises(
        TrainingDiverged,
        match=r"at epoch 1, batch 2/23: the loss .* exceeds .*; no checkpoint was written yet",
    ):
        fit(fresh, train, gn.Adam(fresh.parameters(), lr=1e6), epochs=3, batch_size=64,
            progress=False, log=quiet)  # fmt: skip


def test_the_divergence_rule_leaves_healthy_and_merely_too_fast_training_alone(digits):
    """lr=0.05 (25x the recipe) peaks near 9 times the first loss; the limit is 100 times."""
    model, opt = new_run(lr=0.05)
    history = fit(model, digits[0], opt, epochs=2, batch_size=32, progress=False, log=quiet)
    assert len(history["loss"]) == 2


def test_a_checkpoint_write_killed_midway_leaves_a_file_the_next_run_removes(digits, tmp_path):
    ckpt = tmp_path / "run.ckpt"
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_text("not ours")
    killed = "\n".join([
        "import os, sys",
        "from glassnet.io.files import atomic_writer",
        "with atomic_writer(sys.argv[1]) as f:",
        "    f.write(b'half a checkpoint'); f.flush(); os._exit(9)",
    ])  # fmt: skip
    assert subprocess.run([sys.executable, "-c", killed, str(ckpt)]).returncode == 9
    (left,) = [p for p in tmp_path.iterdir() if p != unrelated]
    assert re.fullmatch(r"\.run\.ckpt\.[0-9a-f]{12}\.tmp", left.name) and not ckpt.exists()
    lines = []
    model, opt = new_run()
    fit(model, digits[0].subset(np.arange(32)), opt, epochs=1, checkpoint=ckpt, progress=False,
        log=lines.append)  # fmt: skip
    assert lines[0] == f"removed {left}, left by an interrupted checkpoint write"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp", "run.ckpt"]


def test_early_stopping_restores_the_best_weights(digits):
    train, test = digits
    model, opt = new_run(lr=0.05)  # too large: validation loss soon stops improving
    history = fit(model, train.subset(np.arange(300)), opt, epochs=30, batch_size=32,
                  validation=test, early_stopping=2, progress=False, log=quiet)  # fmt: skip
    assert len(history["epoch"]) < 30
    best = int(np.argmin(history["val_loss"]))
    assert len(history["epoch"]) == best + 1 + 2
    assert evaluate(model, test).loss == pytest.approx(history["val_loss"][best])


def test_cosine_schedule_sets_the_learning_rate_per_epoch(digits):
    model, opt = new_run()
    history = fit(model, digits[0].subset(np.arange(64)), opt, epochs=4, batch_size=32,
                  schedule=CosineLR(4), progress=False, log=quiet)  # fmt: skip
    np.testing.assert_allclose(
        history["lr"], [2e-3 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)]
    )


def test_predict_returns_probabilities_and_takes_uint8(digits):
    _, test = digits
    model, _ = new_run()
    probs = predict(model, test.images[:5])
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(predict(model, test.to_float()[:5]), probs)


def test_predict_rejects_images_of_the_wrong_size(digits):
    model, _ = new_run()
    with pytest.raises(
        ValueError, match=r"expects inputs of shape \(N, 8, 8, 1\), got \(2, 28, 28, 1\)"
    ):
        predict(model, np.zeros((2, 28, 28, 1), np.uint8))
    with pytest.raises(
        ValueError, match=r"expects inputs of shape \(N, 8, 8, 1\), got \(2, 8, 8, 3\)"
    ):
        predict(model, np.zeros((2, 8, 8, 3), np.uint8))


def test_checkpoint_of_another_architecture_is_refused(digits, tmp_path):
    model, opt = new_run()
    fit(model, digits[0].subset(np.arange(32)), opt, epochs=1, checkpoint=tmp_path / "c",
        progress=False, log=quiet)  # fmt: skip
    other, _ = build_model("lenet5", rng=0)
    with pytest.raises(ModelFileError, match="different architecture"):
        load_checkpoint(tmp_path / "c", other, gn.Adam(other.parameters()))
    with pytest.raises(ModelFileError, match="not a glassnet training checkpoint"):
        gn.save(model, tmp_path / "m")
        load_checkpoint(tmp_path / "m", model, opt)


def test_unwritable_or_full_output_folder_is_reported_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write to output folder"):
        check_writable(blocker / "run", 1000)

    class Usage:
        free = 10 * 2**20

    monkeypatch.setattr("glassnet.train.checkpoint.shutil.disk_usage", lambda _: Usage)
    with pytest.raises(
        OSError, match=r"not enough free disk space .*100.0 MiB needed.*10.0 MiB free"
    ):
        check_writable(tmp_path / "ok", 100 * 2**20)


def test_metrics():
    from glassnet.train import confusion_matrix, precision_recall

    m = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    precision, recall = precision_recall(m)
    np.testing.assert_allclose(precision, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(recall, [0.5, 1.0, 2 / 3])


def test_resume_with_dropout_gives_the_uninterrupted_weights(digits, tmp_path):
    """Dropout's masks come from its generator: the checkpoint must carry its state."""
    subset = digits[0].subset(np.arange(300))

    def mlp(seed):
        model = gn.Sequential([gn.Flatten(), gn.Linear(64, 32, rng=seed), gn.ReLU(),
                               gn.Dropout(0.5, rng=seed + 1), gn.Linear(32, 10, rng=seed + 2)])  # fmt: skip
        return model, gn.SGD(model.parameters(), lr=0.05, momentum=0.9)

    run = {"batch_size": 32, "rng": 7, "progress": False, "log": quiet}
    straight, opt = mlp(0)
    fit(straight, subset, opt, epochs=3, **run)
    first, opt1 = mlp(0)
    fit(first, subset, opt1, epochs=1, checkpoint=tmp_path / "d.ckpt", **run)
    resumed, opt2 = mlp(50)  # other weights and another Dropout generator
    fit(resumed, subset, opt2, epochs=3, resume=tmp_path / "d.ckpt", **run)
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    assert resumed[3].rng.bit_generator.state == straight[3].rng.bit_generator.state


def test_a_per_step_schedule_resumes_to_the_uninterrupted_weights(digits, tmp_path):
    """The step count comes from the checkpoint's epoch: a resumed run sets the same rates."""
    subset = digits[0].subset(np.arange(300))  # 10 batches of 32 (the last 12) per epoch
    schedule = TriangularLR(total_steps=30, peak_fraction=0.2, start_factor=0.2)
    run = {"batch_size": 32, "rng": 7, "schedule": schedule, "progress": False, "log": quiet}

    def mlp(seed):
        model = gn.Sequential([gn.Flatten(), gn.Linear(64, 32, rng=seed), gn.ReLU(),
                               gn.Linear(32, 10, rng=seed + 1)])  # fmt: skip
        optimizer = gn.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        rates, step = [], optimizer.step

        def recording_step():
            rates.append(optimizer.lr)
            step()

        optimizer.step = recording_step
        return model, optimizer, rates

    straight, opt, straight_rates = mlp(0)
    history = fit(straight, subset, opt, epochs=3, **run)
    first, opt1, _ = mlp(0)
    fit(first, subset, opt1, epochs=1, checkpoint=tmp_path / "s.ckpt", **run)
    resumed, opt2, resumed_rates = mlp(50)  # other weights: all must come from the file
    fit(resumed, subset, opt2, epochs=3, resume=tmp_path / "s.ckpt", **run)

    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value, err_msg=name)
    assert straight_rates == [schedule(s, 0.05) for s in range(30)]
    assert straight_rates[6] == 0.05  # the peak, at step 0.2 * 30
    assert resumed_rates == straight_rates[10:]
    assert history["lr"] == [straight_rates[9], straight_rates[19], straight_rates[29]]


def test_a_plain_callable_schedule_is_per_epoch(digits):
    model, opt = new_run()
    history = fit(model, digits[0].subset(np.arange(64)), opt, epochs=3, batch_size=32,
                  schedule=lambda epoch, lr: lr / (epoch + 1), progress=False, log=quiet)  # fmt: skip
    assert history["lr"] == [2e-3, 2e-3 / 2, 2e-3 / 3]
