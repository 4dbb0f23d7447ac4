"""Tests for vae/data/: registry, loaders, downloader, sprites, and one test per bad-input rule."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae import data
from vae.config import DataConfig
from vae.data import idx, images

FASHION = data.DEBIAN_FASHION_MNIST_DIR
# Skipped on a laptop without Debian's package; in CI (CI=true) a missing package fails instead.
has_fashion = pytest.mark.skipif(
    len(idx._find_idx(FASHION)) != 4 and not os.environ.get("CI"),
    reason="Debian's dataset-fashion-mnist is not installed",
)


# ---------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file holding a uint8 array."""
    header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def write_idx(folder: Path, n_train=30, n_test=10, gz=True, side=6, seed=0) -> dict[str, np.ndarray]:
    """Four small MNIST-format files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


def load_file(path, **kw) -> data.Dataset:
    max_bytes = kw.pop("max_bytes", data.MAX_FILE_BYTES)
    return data.load_dataset(DataConfig(name="file", path=str(path), **kw), max_bytes=max_bytes)


def png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def image_folder(root: Path, classes=("cat", "dog"), per_class=3, side=8, colour=False) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            shape = (side, side, 3) if colour else (side, side)
            png(root / c / f"{i}.png", rng.integers(0, 256, shape))
    return root


# ---------------------------------------------------------------- registry and digits


def test_digits_shapes_range_labels():
    ds = data.load_dataset(DataConfig())
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert 0.0 <= float(ds.x_train.min()) and float(ds.x_train.max()) == 1.0
    assert ds.label_names == [str(i) for i in range(10)]
    assert set(ds.y_test.tolist()) == set(range(10))  # stratified: every class in test
    assert ds.item_shape == (1, 8, 8) and ds.is_image and ds.likelihood == "bernoulli"
    assert ds.source == "scikit-learn (bundled)"


def test_digits_deterministic_and_seeded():
    a, b = data.load_dataset(DataConfig()), data.load_dataset(DataConfig())
    c = data.load_dataset(DataConfig(split_seed=1))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_test_fraction_is_honoured():
    ds = data.load_dataset(DataConfig(test_fraction=0.5))
    assert len(ds.x_test) == 899 and len(ds.x_train) == 898


def test_max_train_and_max_test_take_a_fixed_subset():
    cfg = DataConfig(max_train=100, max_test=20)
    a, b = data.load_dataset(cfg), data.load_dataset(cfg)
    assert a.x_train.shape[0] == 100 and a.x_test.shape[0] == 20 and a.y_train.shape == (100,)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    full = data.load_dataset(DataConfig())
    rows = {tuple(r) for r in full.x_train.flatten(1).tolist()}
    assert all(tuple(r) in rows for r in a.x_train.flatten(1).tolist())  # subset of the train split


def test_unknown_dataset_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar'; known datasets are digits, fashion-mnist"):
        data.load_dataset(DataConfig(name="cifar"))


def test_available_datasets_describes_each():
    entries = {e["name"]: e for e in data.available_datasets()}
    assert set(entries) == {"digits", "fashion-mnist", "mnist", "sprites", "file"}
    for e in entries.values():
        assert set(e) == {"name", "description", "available", "where", "how_to_get"}
        assert e["available"] == (e["how_to_get"] == "")
    assert entries["digits"]["available"]


def test_available_datasets_with_root(tmp_path):
    write_idx(tmp_path / "mnist")
    entries = {e["name"]: e for e in data.available_datasets(str(tmp_path))}
    assert entries["mnist"]["available"] and entries["mnist"]["where"] == str(tmp_path / "mnist")
    assert not entries["fashion-mnist"]["available"]
    assert "dataset-fashion-mnist" in entries["fashion-mnist"]["how_to_get"]


@pytest.mark.slow
def test_import_runs_nothing():
    code = "import sys, vae.data; assert not {'sklearn', 'pandas', 'PIL'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# ---------------------------------------------------------------- Fashion-MNIST / MNIST / IDX


@has_fashion
def test_fashion_mnist_official_split_and_labels(monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    ds = data.load_dataset(DataConfig(name="fashion-mnist"))
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.label_names[0] == "T-shirt/top" and ds.label_names[9] == "Ankle boot" and len(ds.label_names) == 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10  # the official test set
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert ds.source == str(FASHION) and ds.likelihood == "bernoulli"


@has_fashion
def test_fashion_mnist_subset(monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    ds = data.load_dataset(DataConfig(name="fashion-mnist", max_train=500, max_test=50))
    assert ds.x_train.shape == (500, 1, 28, 28) and ds.x_test.shape == (50, 1, 28, 28)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "none")  # where idx looks
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*--download fashion-mnist"):
        data.load_dataset(DataConfig(name="fashion-mnist"))


def test_fashion_mnist_env_var_and_root(tmp_path, monkeypatch):
    write_idx(tmp_path / "env", n_train=20)
    write_idx(tmp_path / "root" / "fashion-mnist", n_train=12)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "env"))
    assert data.load_dataset(DataConfig(name="fashion-mnist")).x_train.shape == (20, 1, 6, 6)
    ds = data.load_dataset(DataConfig(name="fashion-mnist", root=str(tmp_path / "root")))
    assert ds.x_train.shape == (12, 1, 6, 6) and ds.label_names == data.FASHION_LABELS


def test_explicit_root_without_files_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist was not found in"):
        data.load_dataset(DataConfig(name="mnist", root=str(tmp_path)))


def test_mnist_from_download_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(tmp_path))
    write_idx(tmp_path / "mnist")
    ds = data.load_dataset(DataConfig(name="mnist"))
    assert ds.x_test.shape == (10, 1, 6, 6) and ds.label_names == [str(i) for i in range(10)]


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_parses_gzipped_and_plain(tmp_path, gz):
    arrays = write_idx(tmp_path, gz=gz)
    ds = load_file(tmp_path)
    assert ds.x_train.shape == (30, 1, 6, 6) and ds.x_test.shape == (10, 1, 6, 6)
    expected = arrays["train-images-idx3-ubyte"][:, None] / 255
    np.testing.assert_allclose(ds.x_train.numpy(), expected, rtol=1e-6)
    assert ds.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()


def test_idx_bad_magic_is_refused(tmp_path):
    write_idx(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    with pytest.raises(ValueError, match="does not start with an IDX magic number"):
        load_file(tmp_path)


def test_idx_truncated_is_refused(tmp_path):
    write_idx(tmp_path, gz=False)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(ValueError, match="header promises .* the file is truncated"):
        load_file(tmp_path)


def test_idx_corrupt_gzip_is_refused(tmp_path):
    write_idx(tmp_path, gz=True)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:30])
    with pytest.raises(ValueError, match="truncated or corrupt gzip file"):
        load_file(tmp_path)


def test_idx_label_count_must_match(tmp_path):
    write_idx(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29)))
    with pytest.raises(ValueError, match=r"labels of shape \(29,\) for 30 images"):
        load_file(tmp_path)


def test_idx_labels_for_one_part_only_are_refused(tmp_path):
    write_idx(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="labels for only one of train and test"):
        load_file(tmp_path)


# ---------------------------------------------------------------- download


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep pytest output quiet
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def idx_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving four small IDX .gz files; yields (url, digests)."""
    served = tmp_path / "served"
    write_idx(served, gz=True)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served.iterdir()}
    _Handler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", digests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_download_idx_from_local_server(tmp_path, idx_server):
    url, digests = idx_server
    calls = []
    folder = data.download_idx(
        "mnist", tmp_path / "cache", base_url=url, digests=digests, progress=lambda *a: calls.append(a)
    )
    assert folder == tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(digests)
    assert calls and calls[-1][0] == 1.0  # (fraction, message), ends complete
    ds = data.load_dataset(DataConfig(name="mnist", root=str(tmp_path / "cache")))
    assert ds.x_train.shape == (30, 1, 6, 6)
    n = len(_Handler.requests)
    data.download_idx("mnist", tmp_path / "cache", base_url=url, digests=digests)
    assert len(_Handler.requests) == n  # verified files are not fetched again


def test_download_idx_wrong_digest_is_refused_and_leaves_nothing(tmp_path, idx_server):
    url, digests = idx_server
    wrong = dict(digests, **{"train-images-idx3-ubyte.gz": "0" * 64})
    with pytest.raises(ValueError, match="has SHA-256 .* not the expected 0{64}; the download was deleted"):
        data.download_idx("fashion-mnist", tmp_path / "cache", base_url=url, digests=wrong)
    assert list((tmp_path / "cache" / "fashion-mnist").iterdir()) == []


def test_download_idx_unreachable_server(tmp_path, idx_server):
    url, digests = idx_server
    with pytest.raises(ConnectionError, match="Could not download"):
        data.download_idx("mnist", tmp_path, base_url=url + "missing/", digests=digests)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_download_idx_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="Unknown downloadable dataset 'cifar'; expected one of mnist, fashion-mnist"):
        data.download_idx("cifar", tmp_path)


def test_download_digest_table_is_complete():
    for name in data.IDX_MIRRORS:
        table = data.IDX_SHA256[name]
        assert sorted(table) == sorted(f"{n}.gz" for n in data.IDX_NAMES.values())
        assert all(len(d) == 64 and int(d, 16) >= 0 for d in table.values())


# ---------------------------------------------------------------- sprites


def test_sprites_deterministic_binary_and_shaped():
    cfg = DataConfig(name="sprites", count=300, split_seed=3)
    a, b = data.load_dataset(cfg), data.load_dataset(cfg)
    assert a.x_train.shape == (240, 1, 32, 32) and a.x_test.shape == (60, 1, 32, 32)
    assert torch.equal(a.x_train, b.x_train) and np.array_equal(a.factors_test, b.factors_test)
    assert set(torch.unique(a.x_train).tolist()) == {0.0, 1.0}
    assert a.source == "generated (seed 3)" and a.label_names == ["square", "ellipse", "heart"]
    other = data.load_dataset(cfg.replace(split_seed=4))
    assert not np.array_equal(a.factors_train, other.factors_train)


def test_sprites_factors_are_consistent():
    ds = data.load_dataset(DataConfig(name="sprites", count=2000))
    assert ds.factor_names == ["shape", "scale", "rotation", "x", "y"]
    f = ds.factors_train
    assert ds.y_train.tolist() == f[:, 0].astype(int).tolist()
    assert set(np.round(f[:, 1], 6)) <= set(np.round(data.SPRITE_SCALES, 6))
    assert f[:, 2].min() >= 0 and f[:, 2].max() < 2 * np.pi
    lit = ds.x_train.sum(dim=(1, 2, 3)).numpy()
    assert lit.min() > 0  # every sprite is visible
    assert lit[f[:, 1] == 1.0].mean() > 2 * lit[f[:, 1] == 0.5].mean()  # area grows with scale²
    x = ds.x_train[:, 0].numpy()
    cols = (x.sum(1) * np.arange(32)).sum(1) / x.sum((1, 2))  # centre of mass along x
    assert np.corrcoef(cols, f[:, 3])[0, 1] > 0.95


def test_sprites_size_64_and_progress():
    calls = []
    x, f = data.generate_sprites(40, size=64, seed=0, progress=lambda *a: calls.append(a))
    assert x.shape == (40, 1, 64, 64) and x.dtype == np.float32 and f.shape == (40, 5)
    assert calls[-1] == (1.0, "generating sprites")


# ---------------------------------------------------------------- npz / npy


def test_npz_round_trip_channels_last_rgb_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 5, 5, 3), dtype=np.uint8)
    y = np.repeat(["a", "b"], 10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_file(tmp_path / "d.npz")
    assert ds.item_shape == (3, 5, 5) and len(ds.x_train) + len(ds.x_test) == 20
    assert ds.label_names == ["a", "b"] and ds.name == "d.npz"
    everything = torch.cat([ds.x_train, ds.x_test]).numpy()  # (20, 3, 5, 5)
    back = np.round(everything.transpose(0, 2, 3, 1) * 255).astype(np.uint8)  # (20, 5, 5, 3)
    assert sorted(map(bytes, back)) == sorted(map(bytes, x))  # same images, channels restored


def test_npz_labels_key_and_first_array(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((6, 4, 4), np.float32), labels=np.array([0, 1] * 3))
    ds = load_file(tmp_path / "d.npz")
    assert ds.item_shape == (1, 4, 4) and ds.label_names == ["0", "1"]


def test_npy_grey_uint8_is_scaled(tmp_path):
    x = np.full((10, 4, 4), 255, np.uint8)
    x[:, 0, 0] = 0
    np.save(tmp_path / "g.npy", x)
    ds = load_file(tmp_path / "g.npy")
    assert ds.item_shape == (1, 4, 4) and float(ds.x_train.max()) == 1.0 and float(ds.x_train.min()) == 0.0
    assert ds.y_train is None and ds.likelihood == "bernoulli"


def test_npy_vectors_are_standardised_and_invertible(tmp_path):
    x = np.random.default_rng(0).normal(50, 10, (40, 3))
    np.save(tmp_path / "v.npy", x)
    ds = load_file(tmp_path / "v.npy")
    assert ds.item_shape == (3,) and not ds.is_image and ds.likelihood == "gaussian"
    assert np.allclose(ds.x_train.numpy().mean(0), 0, atol=1e-5)
    rows = ds.to_original_units(ds.x_train)
    assert all(np.isclose(x, r, atol=1e-3).all(1).any() for r in rows)


class Boom:
    """Unpickling this creates a marker file: proof that a loader ran pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_npy_pickled_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "evil.npy", np.array([Boom(marker), 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds pickled Python objects, which are refused"):
        load_file(tmp_path / "evil.npy")
    assert not marker.exists()
    np.load(tmp_path / "evil.npy", allow_pickle=True)  # the payload is live: unpickling would run it
    assert marker.exists()


def test_npz_object_array_is_refused(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([[1, "a"], [2, "b"]], dtype=object))
    with pytest.raises(ValueError, match="holds pickled Python objects"):
        load_file(tmp_path / "o.npz")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_are_refused(tmp_path, bad):
    x = np.zeros((5, 3))
    x[2, 1] = bad
    np.save(tmp_path / "n.npy", x)
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        load_file(tmp_path / "n.npy")


def test_empty_array_is_refused(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 4)))
    with pytest.raises(ValueError, match="holds an empty array"):
        load_file(tmp_path / "e.npy")


def test_single_sample_is_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="holds a single sample; expected at least 2"):
        load_file(tmp_path / "s.npy")


def test_wrong_dimensions_are_refused(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros(7))
    with pytest.raises(ValueError, match=r"shape \(7,\); expected N×D vectors"):
        load_file(tmp_path / "d.npy")


def test_image_values_out_of_range_are_refused(tmp_path):
    np.save(tmp_path / "r.npy", np.full((3, 4, 4), -1.0))
    with pytest.raises(ValueError, match=r"pixel values from -1 to -1; expected values in \[0, 1\] or \[0, 255\]"):
        load_file(tmp_path / "r.npy")


def test_label_count_must_match_data(tmp_path):
    np.savez(tmp_path / "m.npz", x=np.zeros((5, 3)), y=np.arange(4))
    with pytest.raises(ValueError, match=r"labels of shape \(4,\) for 5 items; expected one label per item"):
        load_file(tmp_path / "m.npz")


def test_truncated_npy_is_refused(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((50, 10)))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:300])
    with pytest.raises(ValueError, match="is truncated or not a valid NumPy file"):
        load_file(tmp_path / "t.npy")


def test_truncated_npz_is_refused(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.zeros((50, 10)))
    (tmp_path / "t.npz").write_bytes((tmp_path / "t.npz").read_bytes()[:300])
    with pytest.raises(ValueError, match="is truncated or not a valid zip archive"):
        load_file(tmp_path / "t.npz")


def test_file_over_size_limit_is_refused(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros((10, 10)))
    with pytest.raises(ValueError, match=r"is 928 bytes, over the 100-byte limit"):
        load_file(tmp_path / "big.npy", max_bytes=100)


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz does not exist; expected a .npz, .npy, .csv"):
        load_file(tmp_path / "nope.npz")


def test_unsupported_file_type_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="unsupported type '.txt'"):
        load_file(tmp_path / "notes.txt")


def test_split_falls_back_to_plain_when_a_class_is_a_singleton(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.eye(6), y=np.array([0, 0, 0, 0, 0, 1]))
    ds = load_file(tmp_path / "s.npz")
    assert len(ds.y_train) + len(ds.y_test) == 6


# ---------------------------------------------------------------- csv


def test_csv_round_trip_labels_and_original_units(tmp_path):
    rows = ["height,species,weight"] + [f"{150 + i},{'ab'[i % 2]},{60 + 2 * i}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    ds = load_file(tmp_path / "t.csv", label_column="species")
    assert ds.feature_names == ["height", "weight"] and ds.label_names == ["a", "b"]
    assert ds.item_shape == (2,) and ds.likelihood == "gaussian"
    assert np.allclose(ds.x_train.numpy().mean(0), 0, atol=1e-5)
    original = ds.to_original_units(ds.x_train)
    assert np.allclose(original[:, 1], 60 + 2 * (original[:, 0] - 150), atol=1e-3)
    for h, label in zip(original[:, 0], ds.y_train.tolist(), strict=True):
        assert ds.label_names[label] == "ab"[round(h - 150) % 2]


def test_csv_ragged_rows_are_refused(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3\n4,5\n")
    with pytest.raises(ValueError, match="has 1 fields on line 3 but 2 in its header"):
        load_file(tmp_path / "r.csv")


def test_csv_text_in_numeric_column_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,oops\n4,5\n")
    with pytest.raises(ValueError, match=r"has text \('oops', line 3\) in column 'b'"):
        load_file(tmp_path / "t.csv")


def test_csv_header_only_is_refused(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,c\n")
    with pytest.raises(ValueError, match="has a header but no data rows"):
        load_file(tmp_path / "h.csv")


def test_csv_empty_file_is_refused(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="e.csv is empty"):
        load_file(tmp_path / "e.csv")


def test_csv_missing_value_is_refused(tmp_path):
    (tmp_path / "m.csv").write_text("a,b\n1,2\n3,\n4,5\n")
    with pytest.raises(ValueError, match="missing or non-finite value in column 'b', line 3"):
        load_file(tmp_path / "m.csv")


def test_csv_single_row_is_refused(tmp_path):
    (tmp_path / "s.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="s.csv holds a single sample; expected at least 2"):
        load_file(tmp_path / "s.csv")


def test_csv_unknown_label_column_lists_columns(tmp_path):
    (tmp_path / "c.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match="has no label column 'kind'; its columns are a, b"):
        load_file(tmp_path / "c.csv", label_column="kind")


def test_csv_too_many_classes_is_refused(tmp_path):
    rows = ["x,id"] + [f"{i},id{i}" for i in range(data.MAX_CLASSES + 1)]
    (tmp_path / "ids.csv").write_text("\n".join(rows))
    with pytest.raises(ValueError, match="has 1,001 distinct labels, more than the 1000 allowed classes"):
        load_file(tmp_path / "ids.csv", label_column="id")


def test_csv_empty_label_is_refused(tmp_path):
    (tmp_path / "l.csv").write_text("x,k\n1,a\n2,\n3,b\n")
    with pytest.raises(ValueError, match="empty cells in label column 'k'"):
        load_file(tmp_path / "l.csv", label_column="k")


# ---------------------------------------------------------------- image folders and zips


def test_image_folder_round_trip_grey_with_labels(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=5)
    (root / "cat" / ".DS_Store").write_bytes(b"junk")
    (root / "readme.txt").write_text("not an image")
    calls = []
    ds = data.load_dataset(DataConfig(name="file", path=str(root)), progress=lambda *a: calls.append(a))
    assert ds.item_shape == (1, 8, 8) and ds.label_names == ["cat", "dog"]
    assert len(ds.x_train) + len(ds.x_test) == 10 and calls[-1] == (1.0, "reading images")
    first = np.asarray(Image.open(root / "cat" / "0.png"), np.float32) / 255
    everything = torch.cat([ds.x_train, ds.x_test])[:, 0].numpy()
    assert any(np.allclose(first, img) for img in everything)


def test_image_folder_colour_gives_rgb(tmp_path):
    root = image_folder(tmp_path / "imgs", colour=True)
    png(root / "cat" / "grey.png", np.zeros((8, 8)))
    ds = load_file(root)
    assert ds.item_shape == (3, 8, 8)


def test_image_folder_different_sizes_need_a_size(tmp_path):
    root = image_folder(tmp_path / "imgs")
    png(root / "dog" / "big.png", np.zeros((12, 10)))
    with pytest.raises(ValueError, match=r"images of different sizes .*big.png is 10×12\); pick a size"):
        load_file(root)
    ds = load_file(root, size=16)
    assert ds.item_shape == (1, 16, 16)


def test_corrupt_image_is_refused(tmp_path):
    root = image_folder(tmp_path / "imgs")
    (root / "cat" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(ValueError, match="bad.png could not be read as an image"):
        load_file(root)


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no PNG or JPEG images"):
        load_file(tmp_path)


def _zip_of(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*.png")):
            zf.write(p, "wrapped/" + p.relative_to(folder).as_posix())
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return target


def test_zip_round_trip_ignores_junk_and_extracts_nothing(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=4)
    z = _zip_of(root, tmp_path / "i.zip", {"__MACOSX/wrapped/cat/._0.png": b"junk", "wrapped/.DS_Store": b"x"})
    before = sorted(tmp_path.rglob("*"))
    ds = load_file(z)
    assert ds.item_shape == (1, 8, 8) and ds.label_names == ["cat", "dog"]
    assert len(ds.x_train) + len(ds.x_test) == 8
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("name", ["../evil.png", "/abs/evil.png", "C:/evil.png"])
def test_zip_unsafe_entry_is_refused(tmp_path, name):
    z = _zip_of(image_folder(tmp_path / "imgs"), tmp_path / "u.zip", {name: b"x"})
    with pytest.raises(ValueError, match="has an unsafe entry"):
        load_file(z)


def test_zip_bomb_is_refused_by_declared_size(tmp_path):
    z = _zip_of(image_folder(tmp_path / "imgs"), tmp_path / "b.zip", {"wrapped/cat/big.png": bytes(200_000)})
    assert z.stat().st_size < 20_000
    with pytest.raises(ValueError, match=r"declares 2\d\d,\d\d\d bytes uncompressed, over the 100,000-byte limit"):
        load_file(z, max_bytes=100_000)


def test_corrupt_zip_is_refused(tmp_path):
    z = _zip_of(image_folder(tmp_path / "imgs"), tmp_path / "c.zip")
    z.write_bytes(z.read_bytes()[:100])
    with pytest.raises(ValueError, match="is truncated or not a valid zip archive"):
        load_file(z)


def test_idx_labels_out_of_range_are_refused(tmp_path):
    write_idx(tmp_path / "fashion-mnist", gz=False)
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(10, 12)))
    with pytest.raises(ValueError, match=r"has labels outside 0..9; expected class numbers"):
        data.load_dataset(DataConfig(name="fashion-mnist", root=str(tmp_path)))


def test_non_numeric_array_is_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="holds <U1 data; expected a numeric array"):
        load_file(tmp_path / "s.npy")


def test_images_with_other_channel_counts_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 6, 6, 5), np.uint8))
    with pytest.raises(ValueError, match=r"images of shape \(4, 6, 6, 5\); expected 1 or 3 channels"):
        load_file(tmp_path / "c.npy")


def test_oversized_image_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 50)  # where the image decoder reads it
    root = image_folder(tmp_path / "imgs")
    with pytest.raises(ValueError, match=r"has 8×8 pixels, over the 50 allowed"):
        load_file(root)


def test_single_folder_of_images_has_no_labels(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("only",), per_class=4)
    ds = load_file(root)
    assert ds.y_train is None and ds.label_names is None and len(ds.x_train) == 3


def test_the_train_page_offers_a_missing_dataset_as_a_download_and_then_shows_it(tmp_path, idx_server, monkeypatch,
                                                                                  runs):  # fmt: skip
    """MNIST not here: the Train page offers the download (from a local server standing in for the mirror, with its
    progress), checks it and shows the data, where before it gave a terminal command only."""
    from apptest import open_app

    from ui.forms import NEW_FORM_KEY

    url, digests = idx_server
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(tmp_path / "cache"))
    monkeypatch.setitem(data.download.IDX_MIRRORS, "mnist", url)
    monkeypatch.setitem(data.download.IDX_SHA256, "mnist", digests)
    at = open_app("train", state={NEW_FORM_KEY: True})
    at.selectbox(key="train_dataset").set_value("mnist").run()
    assert any("python -m vae datasets --download mnist" in w.value for w in at.warning)
    at.button(key="train_download").click().run()
    assert not at.exception and not at.error
    assert any("30 training and 10 test images" in c.value for c in at.caption), [c.value for c in at.caption]
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(digests)


def test_a_download_that_cannot_reach_its_mirror_is_a_sentence_on_the_train_page(tmp_path, idx_server, monkeypatch,
                                                                                   runs):  # fmt: skip
    from apptest import open_app, shown

    from ui.forms import NEW_FORM_KEY

    url, digests = idx_server
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(tmp_path / "cache"))
    monkeypatch.setitem(data.download.IDX_MIRRORS, "mnist", url + "missing/")
    monkeypatch.setitem(data.download.IDX_SHA256, "mnist", digests)
    at = open_app("train", state={NEW_FORM_KEY: True})
    at.selectbox(key="train_dataset").set_value("mnist").run()
    at.button(key="train_download").click().run()
    assert not at.exception
    assert any("could not be downloaded here" in shown(e.value) for e in at.error)
