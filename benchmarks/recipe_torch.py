"""The CIFAR-10 (or Fashion-MNIST) recipe of ``glassnet train`` run in PyTorch eager: the peer's
wall time on this machine.

Same net, from the same initial weights (glassnet's, through ``glassnet.to_torch``; a
whitening stem set from the same training images and frozen, ``requires_grad=False``), same
data and augmentation (glassnet's own pipeline on a background thread, so both pay the same
for it), same optimizer (SGD, Nesterov, weight decay off for biases and BatchNorm), label
smoothing, per-step triangular schedule, batch size, epochs, test-time augmentation (glassnet's
``augmented_outputs`` around the PyTorch net), and the same threads (``torch.set_num_threads``,
default: the cores). It prints the glassnet command whose figures it is set beside.

    python benchmarks/recipe_torch.py --dataset cifar10 --data-dir ../shared/data/cifar-10
    python benchmarks/recipe_torch.py --dataset cifar10 --data-dir DIR --epochs 1   # per epoch
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from glassnet.cli.train import RECIPES
from glassnet.data import get_dataset
from glassnet.data.augment import preset
from glassnet.data.batching import num_batches
from glassnet.data.dataset import to_float32
from glassnet.data.prefetch import prefetch
from glassnet.interop import to_torch
from glassnet.models import WHITENED_STEM, build_model, freeze_whitening_stem
from glassnet.train.schedules import TriangularLR
from glassnet.train.tasks import Classification
from glassnet.train.tta import augmented_outputs, check_tta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["cifar10", "fashion-mnist"], default="cifar10")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    recipe = RECIPES[args.dataset]
    epochs = args.epochs or recipe["epochs"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()

    train = get_dataset(args.dataset, args.data_dir, "train")
    test = get_dataset(args.dataset, args.data_dir, "test")
    model = build_model(recipe["model"], rng=0)[0]
    if recipe["model"] in WHITENED_STEM:
        freeze_whitening_stem(model, train.images)
    net = to_torch(model)
    if recipe["model"] in WHITENED_STEM:
        net[0].weight.requires_grad_(False)
    trained = [p for p in net.parameters() if p.requires_grad]
    decayed = [p for p in trained if p.ndim > 1]
    exempt = [p for p in trained if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decayed}, {"params": exempt, "weight_decay": 0.0}],
        lr=recipe["lr"], momentum=0.9, nesterov=True, weight_decay=recipe["weight_decay"],
    )  # fmt: skip
    batch = recipe["batch_size"]
    steps_per_epoch = num_batches(len(train), batch)
    schedule = TriangularLR(total_steps=recipe["epochs"] * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])
    augment = preset(recipe["augment"])
    rng = np.random.default_rng(0)

    def batches(order: np.ndarray):
        for i in range(0, len(order), batch):
            index = order[i : i + batch]
            x = augment(train.images[index], rng) if augment else train.images[index]
            x = torch.from_numpy(np.ascontiguousarray(to_float32(x).transpose(0, 3, 1, 2)))
            yield x, torch.from_numpy(train.labels[index])

    step, train_seconds = 0, 0.0
    for epoch in range(epochs):
        net.train()
        t0 = time.perf_counter()
        for x, y in prefetch(batches(rng.permutation(len(train)))):
            for group in optimizer.param_groups:
                group["lr"] = schedule(step, recipe["lr"])
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            step += 1
        train_seconds += time.perf_counter() - t0
        print(
            f"epoch {epoch + 1}/{epochs}  loss {loss.item():.4f}  {time.perf_counter() - t0:.1f}s"
        )

    net.eval()
    tta = check_tta(recipe["tta"], Classification())

    def forward(images: np.ndarray) -> np.ndarray:  # NHWC floats in, logits out
        return net(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))).numpy()

    correct = 0
    with torch.no_grad():
        for i in range(0, len(test), 1000):
            x = to_float32(test.images[i : i + 1000])
            logits = (
                forward(x) if tta is None else augmented_outputs(forward, x, tta, Classification())
            )
            correct += int((logits.argmax(1) == test.labels[i : i + 1000]).sum())
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"PyTorch {torch.__version__} eager, {args.threads} threads, {epochs} epochs "
          f"(the recipe's schedule spans {recipe['epochs']})")  # fmt: skip
    print(f"train {train_seconds:.1f}s ({train_seconds / epochs:.1f}s per epoch), whole run "
          f"{wall:.1f}s, peak memory {peak:.0f} MiB")  # fmt: skip
    print(f"test accuracy: {correct / len(test):.4f}")
    print(f"glassnet twin: glassnet train --dataset {args.dataset} --data-dir {args.data_dir}"
          + (f" --epochs {args.epochs}" if args.epochs else ""))  # fmt: skip


if __name__ == "__main__":
    main()
