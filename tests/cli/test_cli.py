"""The command line end to end on the digits, in-process and as a killed-and-resumed process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--epochs", "8", "--out", str(out), "--no-progress", "--no-plots"])
    assert code == 0
    return out


def test_train_on_digits_saves_everything_and_reports_test_accuracy(trained, capsys):
    for name in (
        "model.safetensors",
        "checkpoint.safetensors",
        "history.json",
        "metrics.json",
        "run.json",
    ):
        assert (trained / name).is_file(), name
    history = json.loads((trained / "history.json").read_text())
    assert history["epoch"] == list(range(1, 9))
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95
    assert np.array(metrics["confusion_matrix"]).sum() == 359
    model = gn.load(trained / "model.safetensors")
    assert model.input_shape == (8, 8, 1)  # in the architecture, so not repeated as metadata
    metadata = gn.read_metadata(trained / "model.safetensors")
    assert sorted(metadata) == [
        "architecture",
        "background",
        "classes",
        "dataset",
        "format",
        "format_version",
        "task",
    ]
    assert metadata["task"] == "classification"
    # the training images' border brightness, for predict's warning about inverted pictures
    digits = gn.data.load_digits("train")
    assert metadata["background"] == f"{gn.data.border_brightness(digits.images):.4f}"
    assert 0.1 < float(metadata["background"]) < 0.2  # dark: 8x8 digits touch their frame


def test_train_prints_the_test_accuracy_last(tmp_path, capsys):
    assert (
        main(["train", "--epochs", "1", "--out", str(tmp_path), "--no-progress", "--no-plots"]) == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("test accuracy: ")
    assert 0.0 < float(lines[-1].split(": ")[1]) <= 1.0


def test_evaluate_prints_per_class_report(trained, capsys):
    assert main(["evaluate", str(trained / "model.safetensors"), "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "recall" in out
    metrics = json.loads((trained / "metrics.json").read_text())
    assert f"accuracy: {metrics['test_accuracy']:.4f}" in out


def test_predict_prints_class_and_probability(trained, tmp_path, capsys):
    from PIL import Image

    from glassnet.data import load_digits

    test = load_digits("test")
    paths = []
    for k in range(3):
        path = tmp_path / f"digit{k}.png"
        Image.fromarray(test.images[k, :, :, 0]).save(path)
        paths.append(str(path))
    assert main(["predict", str(trained / "model.safetensors"), *paths, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    model = gn.load(trained / "model.safetensors")
    probs = gn.train.predict(model, test.images[:3])
    for line, row in zip(lines, probs, strict=True):
        best = int(np.argmax(row))
        assert f": {best} ({row[best]:.4f})" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["predict", "missing.safetensors", "x.png"],
            "glassnet: error: model file not found: missing.safetensors",
        ),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], "glassnet: error: "),
        (["train", "--dataset", "folder", "--data-dir", "."], "needs --model"),
        (["evaluate", "README.md"], "glassnet: error: "),
    ],
)
def test_errors_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_help_everywhere(capsys):
    for command in ([], ["train"], ["evaluate"], ["predict"], ["summary"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: glassnet" in capsys.readouterr().out


def test_summary_of_a_named_model(capsys):
    assert main(["summary", "lenet5"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].split() == ["total", "61706"]


def _train_process(out: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "glassnet.cli", "train", "--epochs", "10", "--no-progress",
            "--no-plots", *extra]  # fmt: skip
    if "--resume" not in extra:
        argv += ["--out", str(out)]
    # SIGINT as a terminal delivers it, also when pytest itself runs in a background job
    # (which starts with SIGINT ignored, and its children with it)
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_resumes_to_the_uninterrupted_weights(how, tmp_path):
    straight = tmp_path / "straight"
    straight_run = _train_process(straight)
    straight_run.communicate()
    assert straight_run.returncode == 0

    cut = tmp_path / "cut"
    process = _train_process(cut)
    _wait_for(cut / "checkpoint.safetensors", process)
    process.send_signal(how)
    _, err = process.communicate()
    if how == signal.SIGINT:
        assert process.returncode == 130
        assert "resume with: glassnet train --resume" in err
    else:
        assert process.returncode == -signal.SIGKILL
    done = json.loads(
        gn.io.safetensors.read_header(cut / "checkpoint.safetensors").metadata["training"]
    )["epoch"]
    assert 1 <= done < 10, "the kill should land mid-run"

    resumed = _train_process(cut, "--resume", str(cut / "checkpoint.safetensors"))
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err
    assert f"resumed from {cut / 'checkpoint.safetensors'} after epoch {done}" in out
    a, b = gn.load(straight / "model.safetensors"), gn.load(cut / "model.safetensors")
    for name, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[name], value, err_msg=name)
    assert (
        json.loads((cut / "history.json").read_text())["loss"]
        == json.loads((straight / "history.json").read_text())["loss"]
    )


def test_download_uses_verified_files_already_in_the_cache(tmp_path, capsys):
    """With the files present (and matching the published MD5s) nothing is fetched."""
    import shutil

    source = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
    if not source.is_dir():
        pytest.skip("../shared/data/mnist is not here")
    cache = tmp_path / "cache"
    shutil.copytree(source, cache / "mnist")
    code = main(["train", "--dataset", "mnist", "--download", "--data-dir", str(cache),
                 "--epochs", "1", "--out", str(tmp_path / "out"), "--no-progress", "--no-plots",
                 "--val-fraction", "0.9"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("test accuracy: ")


def test_download_is_refused_for_other_datasets(capsys):
    assert main(["train", "--dataset", "digits", "--download"]) == 2
    assert (
        "--download is for mnist, fashion-mnist and cifar10, not digits" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("classes", "problem"),
    [
        ('["zero", "one"]', "got 2 names"),  # fewer names than the model's 3 outputs
        ('"abc"', "got a str"),  # a JSON string, not a list (3 characters, 3 outputs)
        ('["a", "b", 3]', "got a list with a int"),
        ("[not json", "not valid JSON"),
    ],
)
def test_predict_refuses_class_names_that_do_not_fit_the_outputs(
    classes, problem, tmp_path, capsys
):
    from PIL import Image

    model = gn.Sequential([gn.Flatten(), gn.Linear(64, 3, rng=0)], input_shape=(8, 8, 1))
    path = tmp_path / "m.safetensors"
    gn.save(model, path, metadata={"classes": classes})
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(path), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"glassnet: error: {path}: metadata 'classes' must be a JSON list of 3")
    assert err.strip().endswith(f"got {classes!r}") and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            {"dataset": "digits", "model": "digits-cnn"},
            r"lacks the settings \['data_dir', 'epochs', 'batch_size', ",
        ),
        ("{", "is not valid JSON"),
        ([1, 2], "holds a list, not a JSON object of settings"),
    ],
)
def test_resume_with_a_broken_run_file_names_the_file_and_keys(content, problem, tmp_path, capsys):
    run_file = tmp_path / "run.json"
    run_file.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["train", "--resume", str(tmp_path / "checkpoint.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"glassnet: error: cannot resume: {run_file} ")
    assert re.search(problem, err) and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-size", "0", "must be >= 1, got 0"),
        ("--epochs", "0", "must be >= 1, got 0"),
        ("--early-stopping", "0", "must be >= 1, got 0"),
        ("--seed", "-1", "must be >= 0, got -1"),
        ("--seed", "1.5", "expected an integer, got '1.5'"),
    ],
)
def test_counts_and_seeds_out_of_range_are_refused_before_the_output_folder(
    flag, value, message, tmp_path, capsys
):
    with pytest.raises(SystemExit) as info:
        main(["train", flag, value, "--out", str(tmp_path / "out"), "--no-progress"])
    assert info.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_records_are_written_atomically_and_resume_notes_ignored_flags(
    tmp_path, capsys, monkeypatch
):
    import glassnet.io.files

    written = []
    atomic_write_text = glassnet.io.files.atomic_write_text

    def recording(path, text):
        written.append(Path(path).name)
        atomic_write_text(path, text)

    monkeypatch.setattr(glassnet.io.files, "atomic_write_text", recording)
    out = tmp_path / "run"
    argv = ["train", "--epochs", "1", "--out", str(out), "--no-progress", "--no-plots"]
    assert main(argv) == 0
    assert written == ["run.json", "history.json", "metrics.json"]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    capsys.readouterr()

    resume = ["--resume", str(out / "checkpoint.safetensors"), "--no-progress", "--no-plots"]
    argv = ["train", "--epochs", "2", "--lr", "0.5", "--batch-size", "8", "--overwrite", *resume]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err == (
        f"note: --resume continues with the settings in {out / 'run.json'}; ignoring --batch-size,"
        " --lr, --overwrite (only --epochs can change)\n"
    )
    assert json.loads((out / "run.json").read_text())["lr"] == 2e-3  # the recipe's, kept
    assert main(["train", "--epochs", "3", *resume]) == 0
    assert "note:" not in capsys.readouterr().err


def test_an_existing_run_is_never_overwritten_without_overwrite(tmp_path, capsys):
    out = tmp_path / "old-run"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"the finished 30-epoch model")
    (out / "curves.png").write_bytes(b"its curves")
    (out / "notes.txt").write_text("the user's own notes")
    argv = ["train", "--epochs", "1", "--out", str(out), "--no-progress", "--no-plots"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"glassnet: error: output folder {out} already exists and is not empty (curves.png, "
        f"model.safetensors, notes.txt); pass --overwrite to replace the run in it, --resume "
        f"{out / 'checkpoint.safetensors'} to continue it, or choose another --out\n"
    )
    assert (out / "model.safetensors").read_bytes() == b"the finished 30-epoch model"

    assert main([*argv, "--overwrite"]) == 0
    assert gn.load(out / "model.safetensors").num_parameters() > 0
    assert not (out / "curves.png").exists()  # the old run's, removed: not the new run's
    assert (out / "notes.txt").read_text() == "the user's own notes"


@pytest.mark.parametrize("lr", ["nan", "inf", "-1", "0", "fast"])
def test_a_bad_learning_rate_is_refused_before_the_output_folder(lr, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--lr", lr, "--out", str(tmp_path / "out"), "--no-progress"])
    assert info.value.code == 2
    expected = "expected a number, got 'fast'" if lr == "fast" else "must be a finite number > 0"
    assert f"argument --lr: {expected}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_run_diverging_in_its_first_epoch_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "runs" / "new-run"
    argv = ["train", "--lr", "1e6", "--out", str(out), "--no-progress", "--no-plots"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"glassnet: error: training diverged at epoch 1, batch 2/41: the loss \S+ exceeds "
        r"\S+, the larger of 100 times the first batch's loss \(\S+\) and 100; no checkpoint "
        r"was written yet\. Try a smaller learning rate \(now 1e\+06\)\.\n",
        err,
    ), err
    assert list(tmp_path.iterdir()) == []  # runs/ made for this run went too


def test_an_interrupt_before_the_first_checkpoint_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import glassnet.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(glassnet.train, "fit", interrupted)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--no-progress", "--no-plots"]) == 130
    assert capsys.readouterr().err == (
        f"glassnet: interrupted; no epoch had finished, so {out} was removed\n"
    )
    assert not out.exists()


def test_resume_removes_what_interrupted_writes_left(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--no-progress", "--no-plots"]
    assert main(["train", "--epochs", "1", "--out", str(out), *argv]) == 0
    stale = [
        out / ".checkpoint.safetensors.0123456789ab.tmp",
        out / ".history.json.abcdef012345.tmp",
    ]
    for path in stale:
        path.write_bytes(b"half written")
    (out / ".mine.tmp").write_text("not glassnet's naming")
    resume = ["train", "--epochs", "2", "--resume", str(out / "checkpoint.safetensors"), *argv]
    assert main(resume) == 0
    assert not any(path.exists() for path in stale)
    assert (out / ".mine.tmp").exists()
