"""The public names of glassnet.data and the get_dataset entry point."""

from __future__ import annotations

import pytest

import glassnet
import glassnet.data as data


def test_all_is_exact_and_importable() -> None:
    public = {n for n in vars(data) if not n.startswith("_")} - {"annotations", "Path"}
    modules = {
        "augment",
        "batching",
        "cifar",
        "dataset",
        "digits",
        "download",
        "folder",
        "idx",
        "prefetch",
        "images",
        "scenes",
    }
    assert set(data.__all__) == public - modules
    assert data.__all__ == sorted(data.__all__)
    for name in data.__all__:
        assert getattr(data, name) is not None


def test_top_level_names() -> None:
    for name in ("Dataset", "DataLoader", "get_dataset", "iterate_batches", "load_digits",
                 "load_mnist", "load_fashion_mnist", "train_val_split"):  # fmt: skip
        assert getattr(glassnet, name) is getattr(data, name)


def test_get_dataset_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; valid names: digits, mnist, "
                       "fashion-mnist, cifar10, folder"):  # fmt: skip
        data.get_dataset("imagenet")
    with pytest.raises(ValueError, match="dataset 'mnist' needs data_dir"):
        data.get_dataset("mnist")
    with pytest.raises(ValueError, match="apply to the 'folder' dataset only, not to 'cifar10'"):
        data.get_dataset("cifar10", tmp_path, image_size=32)
    with pytest.raises(
        data.DatasetError,
        match=r"cifar10 test: missing \['test_batch.bin'\] in .* \(as .bin or .bin.gz\), and no cifar-10-binary.tar.gz",
    ):
        data.get_dataset("cifar10", tmp_path, "test")
