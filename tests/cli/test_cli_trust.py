"""The command line as a new user meets it: models saved the README's way, the run's own
dataset, pictures of the wrong brightness, unreadable files among good ones, files that are
not models, ``--version``, long summaries and the tutorial's closing commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main

PIL = pytest.importorskip("PIL.Image")


def small_model(ran: bool = True) -> gn.Sequential:
    """A digits-sized model built as the README builds one: no ``input_shape=``."""
    model = gn.Sequential(
        [gn.Conv2d(1, 2, 3, rng=0), gn.ReLU(), gn.Flatten(), gn.Linear(2 * 6 * 6, 3, rng=1)]
    )
    if ran:
        model.forward(np.zeros((4, 8, 8, 1), np.float32))
    return model


def save(
    model: gn.Sequential | gn.Model,
    path: Path,
    dataset: str | None = None,
    background: str | None = None,
) -> str:
    metadata = {"classes": json.dumps(["a", "b", "c"])}
    if dataset is not None:
        metadata["dataset"] = dataset
    if background is not None:
        metadata["background"] = background
    gn.save(model, path, metadata=metadata)
    return str(path)


def picture(path: Path, background: int, stroke: int) -> str:
    pixels = np.full((8, 8), background, np.uint8)
    pixels[2:6, 3:5] = stroke
    PIL.fromarray(pixels).save(path)
    return str(path)


# -- input shape -------------------------------------------------------------------------------


def test_a_model_saved_the_readme_way_works_with_predict_summary_and_profile(tmp_path, capsys):
    path = save(small_model(), tmp_path / "m.safetensors")
    assert gn.load(path).input_shape == (8, 8, 1)
    image = picture(tmp_path / "x.png", 0, 255)
    assert main(["predict", path, image]) == 0
    assert re.fullmatch(r".*x\.png: [abc] \(0\.\d{4}\)\n", capsys.readouterr().out)
    assert main(["summary", path]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == "3 Linear       (3,)                  219"
    assert main(["profile", path, "--steps", "1", "--batch-size", "2", "--infer"]) == 0
    assert "inference, batch 2, median of 1 steps" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["predict", "summary", "profile", "export"])
def test_a_model_that_never_ran_needs_input_shape(tmp_path, capsys, command):
    path = save(small_model(ran=False), tmp_path / "m.safetensors")
    extra = {"predict": [picture(tmp_path / "x.png", 0, 255)], "export": [str(tmp_path / "m.onnx")]}
    argv = [command, path, *extra.get(command, [])]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"glassnet: error: {path} does not record its input shape: give it with --input-shape "
        "H,W,C (e.g. 28,28,1)\n"
    )
    if command == "export":
        pytest.importorskip("onnx")
    if command == "profile":
        argv += ["--steps", "1", "--batch-size", "2"]
    assert main([*argv, "--input-shape", "8,8,1"]) == 0


def test_a_named_model_takes_input_shape_too(capsys):
    assert main(["summary", "digits-cnn", "--input-shape", "16,16,1"]) == 2
    assert capsys.readouterr().err == (
        "glassnet: error: Sequential layer 6 (Linear): Linear expects 512 input features (last "
        "axis), got 2048 (input shape (1, 2048))\n"
    )


def test_predict_summary_export_and_profile_take_a_graph_model(tmp_path, capsys):
    x = gn.Input((8, 8, 1))
    h = gn.Conv2d(1, 2, 3, padding=1, rng=0)(x)
    h = gn.Add()([h, gn.ReLU()(h)])
    model = gn.Model(x, gn.Linear(2 * 8 * 8, 3, rng=1)(gn.Flatten()(h)))
    path = save(model, tmp_path / "g.safetensors", dataset="mnist")
    image = picture(tmp_path / "x.png", 0, 255)
    assert main(["predict", path, image, "--top", "3"]) == 0
    assert re.fullmatch(r".*x\.png: [abc] \(0\.\d{4}\), [abc] .*\n", capsys.readouterr().out)
    assert main(["summary", path]) == 0
    assert re.search(
        r"^add_0 +Add +conv2d_0, relu_0 +\(8, 8, 2\) +0 ", capsys.readouterr().out, re.M
    )
    assert main(["profile", path, "--steps", "1", "--batch-size", "2", "--infer"]) == 0
    assert "inference, batch 2, median of 1 steps" in capsys.readouterr().out
    pytest.importorskip("onnx")
    assert main(["export", path, str(tmp_path / "g.onnx")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'g.onnx'}: ONNX opset")


# -- evaluate on the run's own data ------------------------------------------------------------


@pytest.fixture
def run_folder(tmp_path) -> Path:
    """A run folder whose run.json names a folder dataset of 8x8 pictures of classes a, b, c."""
    data = tmp_path / "pictures"
    for k, name in enumerate("abc"):
        (data / "test" / name).mkdir(parents=True)
        for i in range(2):
            picture(data / "test" / name / f"{i}.png", 0, 80 * k + 40 * i)
    run = tmp_path / "run"
    run.mkdir()
    save(small_model(), run / "model.safetensors", dataset="folder")
    (run / "run.json").write_text(json.dumps({"dataset": "folder", "data_dir": str(data)}))
    return run


def test_evaluate_uses_the_runs_dataset_and_data_folder_and_says_so(run_folder, capsys):
    assert main(["evaluate", str(run_folder / "model.safetensors")]) == 0
    out = capsys.readouterr().out
    data = run_folder.parent / "pictures"
    assert out.splitlines()[0] == (
        f"dataset: folder in {data} (test split; from {run_folder / 'run.json'})"
    )
    assert "accuracy:" in out and "precision" in out


def test_evaluate_flags_win_over_the_run(run_folder, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run_folder.parent / "pictures", other)
    model = str(run_folder / "model.safetensors")
    assert main(["evaluate", model, "--data-dir", str(other), "--split", "test"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"dataset: folder in {other} (test split; from {run_folder / 'run.json'})"
    )
    assert main(["evaluate", model, "--dataset", "mnist", "--data-dir", str(other)]) == 2
    assert "mnist" in capsys.readouterr().err


def test_evaluate_without_a_run_uses_the_model_files_record(run_folder, tmp_path, capsys):
    (run_folder / "run.json").unlink()
    data = run_folder.parent / "pictures"
    assert main(["evaluate", str(run_folder / "model.safetensors"), "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"dataset: folder in {data} (test split; from the model file)"
    )


# -- predict -----------------------------------------------------------------------------------


def test_predict_warns_about_a_dark_digit_on_white_and_points_to_invert(tmp_path, capsys):
    path = save(small_model(), tmp_path / "m.safetensors", dataset="mnist")
    white = picture(tmp_path / "white.png", 250, 10)
    assert main(["predict", path, white]) == 0
    assert capsys.readouterr().err == (
        f"warning: {white} has a light background (border brightness 0.98 of 1) but mnist "
        "images are light on a dark background: if it is dark on light, add --invert\n"
    )
    assert main(["predict", path, white, "--invert"]) == 0
    assert capsys.readouterr().err == ""
    dark = picture(tmp_path / "dark.png", 5, 250)
    assert main(["predict", path, dark, "--invert"]) == 0
    assert capsys.readouterr().err.endswith("if it is dark on light, drop --invert\n")


def test_predict_does_not_warn_for_colour_datasets_or_unknown_training_data(tmp_path, capsys):
    for dataset in ("cifar10", None):
        path = save(small_model(), tmp_path / f"{dataset}.safetensors", dataset=dataset)
        assert main(["predict", path, picture(tmp_path / "w.png", 250, 10)]) == 0
        assert capsys.readouterr().err == ""


def test_predict_warns_by_the_training_images_recorded_brightness(tmp_path, capsys):
    """Dark ink on white paper as training data: a light-on-dark picture is the odd one."""
    path = save(small_model(), tmp_path / "m.safetensors", dataset="folder", background="0.9312")
    dark = picture(tmp_path / "dark.png", 5, 250)
    assert main(["predict", path, dark]) == 0
    assert capsys.readouterr().err == (
        f"warning: {dark} has a dark background (border brightness 0.02 of 1) but folder "
        "images (border brightness 0.93) are dark on a light background: if it is light on "
        "dark, add --invert\n"
    )
    assert main(["predict", path, picture(tmp_path / "white.png", 250, 10)]) == 0
    assert capsys.readouterr().err == ""
    # the record wins over the dataset's name; without a dataset the images are unnamed
    for dataset, images in [("mnist", "mnist images"), (None, "the training images")]:
        path = save(small_model(), tmp_path / "r.safetensors", dataset=dataset, background="0.8")
        assert main(["predict", path, dark]) == 0
        assert f"but {images} (border brightness 0.80) are dark on a light" in (
            capsys.readouterr().err
        )


@pytest.mark.parametrize("background", ["bright", "1.5", "nan"])
def test_predict_refuses_a_background_record_that_is_no_brightness(tmp_path, capsys, background):
    path = save(small_model(), tmp_path / "m.safetensors", background=background)
    assert main(["predict", path, picture(tmp_path / "x.png", 0, 255)]) == 2
    assert capsys.readouterr().err == (
        f"glassnet: error: {path}: metadata 'background' must be a brightness in [0, 1], "
        f"got '{background}'\n"
    )


def test_predict_reports_unreadable_images_and_classifies_the_rest(tmp_path, capsys):
    path = save(small_model(), tmp_path / "m.safetensors")
    good = [picture(tmp_path / f"{k}.png", 0, 200) for k in range(2)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    missing = str(tmp_path / "missing.png")
    code = main(["predict", path, good[0], str(broken), missing, good[1]])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == good
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith("glassnet: error: ") for line in lines[:2])
    assert str(broken) in lines[0] and missing in lines[1]
    assert lines[2] == "glassnet: 2 of 4 images could not be read"


# -- files that are not models -----------------------------------------------------------------


def test_predict_on_a_checkpoint_says_how_to_use_it(tmp_path, capsys):
    from glassnet.train.checkpoint import TrainingState, save_checkpoint

    model = small_model()
    checkpoint = tmp_path / "checkpoint.safetensors"
    save_checkpoint(checkpoint, model, gn.SGD(model.parameters(), lr=0.1), TrainingState())
    for command in ("predict", "evaluate", "summary", "export", "profile"):
        extra = {"predict": [picture(tmp_path / "x.png", 0, 255)], "export": ["m.onnx"]}
        assert main([command, str(checkpoint), *extra.get(command, [])]) == 2
        assert capsys.readouterr().err == (
            f"glassnet: error: {checkpoint}: this is a training checkpoint, not a model file: "
            f"continue training with 'glassnet train --resume {checkpoint}', or use the run's "
            f"model file ({tmp_path / 'model.safetensors'})\n"
        )


def test_predict_with_a_picture_as_the_model_says_it_is_a_picture(tmp_path, capsys):
    image = picture(tmp_path / "x.png", 0, 255)
    assert main(["predict", image, image]) == 2
    assert capsys.readouterr().err == (
        f"glassnet: error: {image}: not a safetensors file (so not a glassnet model file "
        "either): it looks like a PNG image\n"
    )


# -- small things ------------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"glassnet {gn.__version__}\n"


def test_a_bad_glassnet_blas_is_one_line_before_any_folder_is_made(tmp_path):
    """In a process of its own: the setting is read once per process."""
    env = {**os.environ, "GLASSNET_BLAS": "fastest"}
    out = tmp_path / "runs" / "run"
    done = subprocess.run(
        [sys.executable, "-m", "glassnet", "train", "--out", str(out), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert re.fullmatch(
        r"glassnet: error: GLASSNET_BLAS=fastest: expected one of \"numpy\", .*, got 'fastest'\n",
        done.stderr,
    )
    assert not (tmp_path / "runs").exists()


def test_summary_columns_stay_aligned_past_layer_nine(tmp_path, capsys):
    layers = [gn.ReLU() for _ in range(10)] + [gn.GlobalAvgPool2d(), gn.Flatten()]
    model = gn.Sequential([*layers, gn.Linear(1, 3, rng=0)], input_shape=(8, 8, 1))
    path = save(model, tmp_path / "m.safetensors")
    assert main(["summary", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "layer              output shape       params"
    assert lines[10] == "9 ReLU             (8, 8, 1)               0"
    assert lines[11] == "10 GlobalAvgPool2d (1,)                    0"
    assert lines[13] == "12 Linear          (3,)                    6"
    assert {line.index("(") for line in lines[1:-1]} == {19}
    assert {len(line) for line in lines} == {len(lines[0])}


def test_the_tutorials_closing_commands_run(tmp_path, monkeypatch, capsys):
    """The commands at the tutorial's end, in order, on what they say (train for one epoch)."""
    tutorial = (Path(__file__).resolve().parents[2] / "docs" / "tutorial.md").read_text("utf-8")
    ending = tutorial[tutorial.rindex("look inside one") :]
    commands = re.findall(r"^    (glassnet .*)$", ending, re.M)
    assert commands[0] == "glassnet train --out runs/digits" and len(commands) == 5
    snippet = re.search(r"```python\n(.*?)```", ending, re.S)
    assert snippet is not None
    monkeypatch.chdir(tmp_path)
    assert (
        main([*shlex.split(commands[0])[1:], "--epochs", "1", "--no-progress", "--no-plots"]) == 0
    )
    exec(snippet.group(1), {"gn": gn})
    for command in commands[1:]:
        assert main(shlex.split(command)[1:]) == 0, command
    assert capsys.readouterr().out.splitlines()[-1] == "wrote features.png"
