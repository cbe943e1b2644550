"""Data-parallel training under ``mpiexec -n 2``: the same training as one process.

Each test starts MPI jobs as subprocesses (``fit_worker.py``, or the CLI). Without mpi4py or
``mpiexec`` they skip; under CI=true a skip is a failure (tests/conftest.py), since CI installs
the ``mpi`` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.io.safetensors import read_file

pytestmark = pytest.mark.mpi

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fit_worker.py")


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed")
    beside = Path(sys.executable).with_name("mpiexec")  # MPICH's wheel puts it in the venv
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec on PATH")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", GLASSNET_BLAS="off")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def run(ranks: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``fit_worker.py`` as ``ranks`` MPI ranks (``ranks=1``: a plain process, no mpiexec)."""
    command = [sys.executable, str(WORKER), *args]
    if ranks > 1:
        command = [_mpiexec(), "-n", str(ranks), *command]
    else:
        _mpiexec()  # the same skip as the MPI runs it is compared with
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT
    )


def trained(ranks: int, out: Path, *args: str) -> list[dict[str, np.ndarray]]:
    """Every rank's weights, buffers and history after a run that must succeed."""
    result = run(ranks, "--out", str(out), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return [dict(np.load(f"{out}.rank{k}.npz")) for k in range(ranks)]


def state(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k.startswith("state.")}


def model_error(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> float:
    """max |ours - ref| over every weight and buffer, relative to the largest |ref|."""
    diff = max(float(np.max(np.abs(ours[k] - ref[k]))) for k in state(ref))
    return diff / max(float(np.max(np.abs(v))) for v in state(ref).values())


def same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in state(a))


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-10), ("float32", 1e-5)])
def test_two_ranks_train_the_same_model_as_one_process(tmp_path, dtype, tolerance):
    """Synchronized BatchNorm: the only difference left is the order of the additions."""
    args = ("--dtype", dtype, "--epochs", "3", "--sync-batchnorm")
    one = trained(1, tmp_path / "one", *args)[0]
    two = trained(2, tmp_path / "two", *args)
    assert same_bits(two[0], two[1]), "the ranks hold different weights"
    assert model_error(two[0], one) <= tolerance
    h1, h2 = json.loads(str(one["history"])), json.loads(str(two[0]["history"]))
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=tolerance)
    assert h2["accuracy"] == h1["accuracy"]


def test_one_rank_through_mpi_is_one_process_bit_for_bit(tmp_path):
    """The data-parallel path with K = 1 (its exchanges copy) changes no number."""
    one = trained(1, tmp_path / "one")[0]
    via_mpi = trained(1, tmp_path / "mpi", "--always-distributed")[0]
    assert same_bits(one, via_mpi)


def test_augmented_batches_and_a_weight_average_match_one_process_too(tmp_path):
    """Each rank augments the whole batch with the run's generator and keeps its share."""
    args = ("--sync-batchnorm", "--augment", "--ema", "0.9")
    one = trained(1, tmp_path / "one", *args)[0]
    two = trained(2, tmp_path / "two", *args)
    assert same_bits(two[0], two[1])
    assert model_error(two[0], one) <= 1e-10


def test_two_ranks_repeat_their_run_bit_for_bit(tmp_path):
    first = trained(2, tmp_path / "a", "--dtype", "float32")
    second = trained(2, tmp_path / "b", "--dtype", "float32")
    assert same_bits(first[0], second[0])


def test_per_rank_batchnorm_keeps_the_running_statistics_identical_on_every_rank(tmp_path):
    """Each rank normalises its own share (so the model differs from one process's), but every
    step moves the running statistics by the mean of the ranks': every rank holds the same."""
    one = trained(1, tmp_path / "one")[0]
    two = trained(2, tmp_path / "two")
    assert same_bits(two[0], two[1])
    assert model_error(two[0], one) > 1e-6  # per-rank statistics are not the batch's
    averaged = trained(2, tmp_path / "averaged", "--ema", "0.9")  # averages of them too
    assert same_bits(averaged[0], averaged[1])
    batches = 2 * 10  # 2 epochs of 10 batches
    np.testing.assert_array_equal(two[0]["state.1.num_batches_tracked"], batches)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_k_ranks_are_one_process_accumulating_k_micro_batches_bit_for_bit(tmp_path, ranks, dtype):
    """Per-rank BatchNorm on K ranks and fit(accumulate=K) in one process add the same numbers
    in the same order (gradients, statistics, the uneven 11/11/10 split of 3): equal bits, in
    float32 too."""
    args = ("--dtype", dtype, "--epochs", "3")
    one = trained(1, tmp_path / "one", *args, "--accumulate", str(ranks))[0]
    spread = trained(ranks, tmp_path / "spread", *args)
    assert same_bits(spread[0], one)
    assert same_bits(spread[-1], one)
    assert json.loads(str(spread[0]["history"]))["loss"] == json.loads(str(one["history"]))["loss"]


@pytest.mark.parametrize(("ranks", "images"), [(2, 100), (3, 100), (3, 2)])
def test_the_ranks_validate_their_shares_and_all_score_every_image(tmp_path, ranks, images):
    """100 validation images: 50/50 or 34/33/33 outputs, gathered; 2 images over 3 ranks:
    too few to share, each rank runs both."""
    args = ("--sync-batchnorm", "--validation", str(images))
    one = json.loads(str(trained(1, tmp_path / "one", *args)[0]["history"]))
    spread = [json.loads(str(r["history"])) for r in trained(ranks, tmp_path / "spread", *args)]
    for h in spread:
        assert (h["val_loss"], h["val_accuracy"]) == (
            spread[0]["val_loss"],
            spread[0]["val_accuracy"],
        )
    np.testing.assert_allclose(spread[0]["val_loss"], one["val_loss"], rtol=1e-10)
    assert spread[0]["val_accuracy"] == one["val_accuracy"]


def test_three_ranks_with_an_uneven_split_match_one_process(tmp_path):
    """32 samples per batch over 3 ranks (11, 11, 10), and a last batch of 12 (300 = 9*32 + 12)."""
    one = trained(1, tmp_path / "one", "--sync-batchnorm")[0]
    three = trained(3, tmp_path / "three", "--sync-batchnorm")
    assert same_bits(three[0], three[2])
    assert model_error(three[0], one) <= 1e-10


@pytest.mark.parametrize("resumed_ranks", [2, 1])
def test_a_run_resumes_on_any_number_of_ranks(tmp_path, resumed_ranks):
    """1 epoch on 2 ranks, then 2 more on 2 ranks or in one process: the uninterrupted run."""
    checkpoint = str(tmp_path / "ckpt.safetensors")
    reference = trained(2, tmp_path / "ref", "--epochs", "3", "--sync-batchnorm")[0]
    trained(2, tmp_path / "first", "--epochs", "1", "--sync-batchnorm", "--checkpoint", checkpoint)
    resumed = trained(
        resumed_ranks, tmp_path / "resumed", "--epochs", "3", "--sync-batchnorm",
        "--checkpoint", checkpoint, "--resume", checkpoint,
    )  # fmt: skip
    assert same_bits(resumed[0], resumed[-1])
    assert model_error(resumed[0], reference) <= 1e-10
    assert json.loads(str(resumed[0]["history"]))["epoch"] == [1, 2, 3]


def test_a_mismatched_rank_is_refused_on_every_rank_at_the_start(tmp_path):
    result = run(2, "--out", str(tmp_path / "x"), "--seed-per-rank", timeout=60)
    assert result.returncode != 0
    assert "model weights (ranks 1 differ from rank 0)" in result.stderr
    assert result.stderr.count("ValueError: the 2 ranks do not train the same thing") == 2
    assert not list(tmp_path.glob("x.rank*.npz"))


def test_a_killed_rank_stops_the_job_within_seconds(tmp_path):
    """Rank 1 is SIGKILLed mid-run: mpiexec ends every rank and says which process died; the
    checkpoint of the last finished epoch is intact and the run resumes from it."""
    checkpoint = tmp_path / "ckpt.safetensors"
    args = ("--samples", "1797", "--epochs", "200", "--checkpoint", str(checkpoint))
    start = time.monotonic()
    result = run(2, "--out", str(tmp_path / "x"), *args, "--kill-rank1-after", "4", timeout=60)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert "BAD TERMINATION" in result.stdout + result.stderr
    assert "Killed (signal 9)" in result.stdout + result.stderr
    assert elapsed < 30  # 4 s of training, then the launcher's clean-up
    assert checkpoint.exists(), "no epoch was checkpointed before the kill"
    done = json.loads(read_file(checkpoint)[1]["training"])["epoch"]
    resumed = trained(
        1, tmp_path / "resumed", *args[:2], "--epochs", str(done + 1), "--resume", str(checkpoint)
    )
    assert json.loads(str(resumed[0]["history"]))["epoch"] == list(range(1, done + 2))


def test_divergence_stops_every_rank_with_the_same_error(tmp_path):
    result = run(2, "--out", str(tmp_path / "x"), "--lr", "1e9", timeout=60)
    assert result.returncode != 0
    assert result.stderr.count("TrainingDiverged: training diverged at epoch 1") == 2


def glassnet_train(ranks: int, *args: str) -> subprocess.CompletedProcess:
    env = _env()
    del env["OPENBLAS_NUM_THREADS"]  # the command sets the threads of each rank itself
    command = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "glassnet", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def test_the_cli_trains_on_two_ranks_and_rank_0_alone_prints_and_writes(tmp_path):
    out = tmp_path / "run"
    result = glassnet_train(2, "--epochs", "1", "--out", str(out), "--no-plots", "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // 2)
    assert f"data-parallel: 2 MPI ranks, {threads} BLAS thread" in result.stdout
    for line in ("training digits-cnn", "epoch 1/1", "test accuracy: "):
        assert result.stdout.count(line) == 1, result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors", "history.json", "metrics.json", "model.safetensors", "run.json",
    ]  # fmt: skip


def test_a_cli_error_on_rank_0_ends_every_rank(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("someone else's")
    result = glassnet_train(2, "--epochs", "1", "--out", str(tmp_path / "taken"))
    assert result.returncode == 2
    assert result.stderr.count("glassnet: error") == 1  # rank 0 reports what all raised
    assert "glassnet: error (rank 0 of 2): output folder" in result.stderr
    assert "already exists and is not empty (notes.txt)" in result.stderr


def test_a_cli_divergence_is_reported_once_and_leaves_no_run(tmp_path):
    result = glassnet_train(2, "--lr", "1e6", "--out", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 1
    assert result.stderr.count("glassnet: error") == 1
    assert "glassnet: error: training diverged at epoch 1, batch 2/41: the loss" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_batch_too_small_to_share_is_refused_on_every_rank(tmp_path):
    result = run(2, "--out", str(tmp_path / "x"), "--samples", "289", timeout=60)  # 9*32 + 1
    assert result.returncode != 0
    message = "ValueError: batch_size 32 over 289 samples leaves a batch of 1 samples, too few"
    assert result.stderr.count(message) == 2


def test_accumulate_under_mpiexec_is_refused_on_every_rank(tmp_path):
    result = run(2, "--out", str(tmp_path / "x"), "--accumulate", "2", timeout=60)
    assert result.returncode != 0
    message = "ValueError: accumulate > 1 with data-parallel training is not supported"
    assert result.stderr.count(message) == 2


DROPOUT_MASKS = """
import numpy as np, glassnet as gn
from glassnet.distributed import DataParallel
dp = DataParallel()
shared = np.random.default_rng(7)
model = gn.Sequential([gn.Dropout(0.5, rng=shared), gn.Flatten(), gn.Dropout(0.5, rng=shared)])
dp.attach(model)
once = shared.bit_generator.state == np.random.default_rng(7).bit_generator.jumped(dp.rank).state
masks = dp.comm.allgather(model.forward(np.ones((4, 8, 8, 1))))
answers = dp.comm.gather(f"{dp.rank} {np.array_equal(*masks)} {once}")
if dp.is_root:  # one print: the ranks' lines could interleave
    print(answers)
"""


def script_output(ranks: int, script: str, *args: str) -> str:
    """What rank 0 of ``script`` (Python source) printed as ``ranks`` MPI ranks; it must succeed."""
    command = [_mpiexec(), "-n", str(ranks), sys.executable, "-c", script, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_each_rank_draws_its_own_dropout_masks_from_a_jumped_generator():
    assert script_output(2, DROPOUT_MASKS) == "['0 False True', '1 False True']\n"


VALIDATION_SHARES = """
import numpy as np, glassnet as gn
from glassnet.distributed import DataParallel
from glassnet.train import loop
dp, seen, outputs = DataParallel(), [], loop._outputs
def counting(model, images, *args):
    seen.append(len(images))
    return outputs(model, images, *args)
loop._outputs = counting
digits = gn.load_digits()
model = gn.Sequential([gn.Flatten(), gn.Linear(64, 10, rng=0)])
gn.fit(model, (digits.images[:64], digits.labels[:64]), gn.SGD(model.parameters(), lr=0.1),
       epochs=1, batch_size=32, validation=(digits.images[64:164], digits.labels[64:164]),
       progress=False, log=lambda line: None, distributed=dp)
answers = dp.comm.gather(f"{dp.rank} {seen[-1]}")  # the epoch's validation, after the checks
if dp.is_root:
    print(answers)
"""


def test_each_rank_computes_only_its_share_of_the_validation_outputs():
    assert script_output(3, VALIDATION_SHARES) == "['0 34', '1 33', '2 33']\n"


NODE_SHARED = """
import json, sys, numpy as np, glassnet as gn
from glassnet.distributed import DataParallel, node_shared
dp = DataParallel()

def load():
    with open(sys.argv[1], "a") as calls:
        calls.write("loaded\\n")
    return gn.load_digits(), np.arange(5)

digits, small = node_shared(dp, load)
images = digits.images
views = dp.comm.gather([images.flags.writeable, small.flags.writeable, int(images.sum())])
if dp.is_root:
    print(json.dumps([views, type(digits).__name__, len(digits), digits.classes[:2]]))
"""


def test_node_shared_loads_once_per_machine_into_read_only_shared_memory(tmp_path):
    calls = tmp_path / "calls.txt"
    output = script_output(2, NODE_SHARED, str(calls))
    assert calls.read_text() == "loaded\n"
    views, kind, count, classes = json.loads(output)
    digits = gn.load_digits()
    expected = int(digits.images.sum())
    # the images (92 kB) in shared memory, read-only; the 40-byte array a private copy
    assert views == [[False, True, expected], [False, True, expected]]
    assert (kind, count, classes) == ("Dataset", len(digits), ["0", "1"])
