"""Dataset registry and loaders: what a run trains on and what the explorer shows.

``load_dataset(cfg)`` is the one entry point. Every loader returns plain arrays (a ``_Raw``);
``_finish`` then splits them with a fixed seed (unless the data has an official split),
subsets, standardises vectors with training statistics and turns them into tensors.

Sources: scikit-learn's bundled digits (the default, no download), Fashion-MNIST and MNIST from
IDX files (Debian's ``dataset-fashion-mnist``, an env var, ``--root`` or the download cache),
procedurally generated dSprites-style sprites, and a user's ``.npz`` / ``.npy`` / ``.csv``, a
folder or ``.zip`` of images, or a folder of IDX files. Bad data raises ``ValueError`` (or
``FileNotFoundError``) with one sentence naming the file, what was wrong and what is expected.
Nothing is read at import time.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from vae.config import DataConfig

Progress = Callable[[int, int, str], None]

MAX_FILE_BYTES = 1 << 30  # per file (and per archive, uncompressed)
MAX_CLASSES = 1000
MAX_IMAGE_FILES = 200_000
MAX_IMAGE_PIXELS = 4096 * 4096  # per image, checked before decoding
DEFAULT_CACHE_DIR = Path(os.environ.get("LATENT_EXPLORER_DATA") or Path.home() / ".cache/latent-explorer/datasets")
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

DATASETS = {
    "digits": "scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes)",
    "fashion-mnist": "Fashion-MNIST: 70,000 28×28 grey clothing images in 10 classes (official 60k/10k split)",
    "mnist": "MNIST: 70,000 28×28 grey handwritten digits (official 60k/10k split)",
    "sprites": "generated dSprites-style shapes with known factors: shape, scale, rotation, x, y",
    "file": "your own .npz, .npy, .csv, .zip or folder of images or IDX files",
}
FASHION_LABELS = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot".split("|")
IDX_NAMES = {  # role -> official file name (without .gz)
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_ENV = {"fashion-mnist": "FASHION_MNIST_DIR", "mnist": "MNIST_DIR"}
IDX_MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
# SHA-256 of the official .gz archives as the mirrors serve them. (Debian's copies are re-gzipped
# without the file name, so their .gz bytes differ; their decompressed contents are identical.)
IDX_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

SPRITE_SHAPES = ["square", "ellipse", "heart"]
SPRITE_FACTORS = ["shape", "scale", "rotation", "x", "y"]
SPRITE_SCALES = np.linspace(0.5, 1.0, 6)
SPRITE_ROTATIONS = np.arange(40) * (2 * np.pi / 40)
SPRITE_POSITIONS = np.linspace(0.0, 1.0, 32)


@dataclass
class Dataset:
    """A dataset split into train and test tensors, plus what the explorer needs to show it."""

    name: str
    x_train: torch.Tensor  # (N, C, H, W) in [0, 1] or (N, D), float32
    x_test: torch.Tensor
    y_train: torch.Tensor | None  # (N,) int64
    y_test: torch.Tensor | None
    label_names: list[str] | None
    description: str
    source: str
    likelihood: str
    feature_names: list[str] | None = None
    scaler_mean: np.ndarray | None = None
    scaler_scale: np.ndarray | None = None
    factors_train: np.ndarray | None = None  # (N, n_factors)
    factors_test: np.ndarray | None = None
    factor_names: list[str] | None = None

    @property
    def item_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` for images, ``(D,)`` for vectors."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4

    def to_original_units(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Undo the csv standardisation (``x * scale + mean``); the identity for other data."""
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if self.scaler_mean is None or self.scaler_scale is None:
            return arr
        return arr.astype(np.float64) * self.scaler_scale + self.scaler_mean


@dataclass
class _Raw:
    """What a loader hands to ``_finish``: all items, or an official train part plus ``test``."""

    x: np.ndarray  # (N, C, H, W) float32 in [0, 1], or (N, D)
    y: np.ndarray | None
    label_names: list[str] | None
    description: str
    source: str
    likelihood: str = "bernoulli"
    standardise: bool = False
    feature_names: list[str] | None = None
    factors: np.ndarray | None = None
    factor_names: list[str] | None = None
    test: tuple[np.ndarray, np.ndarray | None] | None = None


# ---------------------------------------------------------------- entry points


def load_dataset(cfg: DataConfig, progress: Progress | None = None, *, max_bytes: int = MAX_FILE_BYTES) -> Dataset:
    """Load the dataset ``cfg`` names, split (``test_fraction``, ``split_seed``) and subset it."""
    loaders = {
        "digits": _load_digits,
        "fashion-mnist": _load_registered_idx,
        "mnist": _load_registered_idx,
        "sprites": _load_sprites,
        "file": _load_file,
    }
    if cfg.name not in loaders:
        raise ValueError(f"Unknown dataset {cfg.name!r}; known datasets are {', '.join(DATASETS)}.")
    raw = loaders[cfg.name](cfg, progress, max_bytes)
    name = Path(cfg.path).name if cfg.name == "file" else cfg.name
    return _finish(raw, cfg, name)


def available_datasets(root: str | None = None) -> list[dict]:
    """Every registered dataset with whether it can be loaded here, where from, and how to get it."""
    out = []
    for name, description in DATASETS.items():
        where, how = "", ""
        if name in IDX_ENV:
            folder = _locate_idx(name, root)
            where = str(folder) if folder else "not found"
            how = "" if folder else _how_to_get(name, root)
        elif name == "digits":
            where = "scikit-learn (bundled)"
        elif name == "sprites":
            where = "generated on demand"
        else:
            where = "a path you choose"
        out.append({"name": name, "description": description, "available": not how, "where": where, "how_to_get": how})
    return out


def _cache_dir() -> Path:
    """The download cache: ``$LATENT_EXPLORER_DATA`` if set now, else ``DEFAULT_CACHE_DIR``."""
    env = os.environ.get("LATENT_EXPLORER_DATA")
    return Path(env).expanduser() if env else DEFAULT_CACHE_DIR


# ---------------------------------------------------------------- split, subset, tensors


def _finish(raw: _Raw, cfg: DataConfig, name: str) -> Dataset:
    """Split, subset, standardise (train statistics) and convert a loader's arrays."""
    fac_tr = fac_te = None
    if raw.test is None and len(raw.x) < 2:
        raise ValueError(f"{raw.source} holds a single sample; expected at least 2 to split into train and test.")
    if raw.test is None:
        tr, te = _split_indices(len(raw.x), raw.y, cfg.test_fraction, cfg.split_seed)
        x_tr, x_te = raw.x[tr], raw.x[te]
        y_tr, y_te = (None, None) if raw.y is None else (raw.y[tr], raw.y[te])
        if raw.factors is not None:
            fac_tr, fac_te = raw.factors[tr], raw.factors[te]
    else:
        (x_tr, y_tr), (x_te, y_te) = (raw.x, raw.y), raw.test
    keep_tr = _subset(len(x_tr), cfg.max_train, cfg.split_seed, 1)
    keep_te = _subset(len(x_te), cfg.max_test, cfg.split_seed, 2)
    x_tr, y_tr, fac_tr = (_take(a, keep_tr) for a in (x_tr, y_tr, fac_tr))
    x_te, y_te, fac_te = (_take(a, keep_te) for a in (x_te, y_te, fac_te))
    mean = scale = None
    if raw.standardise:
        mean, scale = x_tr.mean(0, dtype=np.float64), x_tr.std(0, dtype=np.float64)
        scale[scale < 1e-12] = 1.0
        x_tr, x_te = (x_tr - mean) / scale, (x_te - mean) / scale
    return Dataset(
        name=name,
        x_train=_tensor(x_tr, torch.float32),
        x_test=_tensor(x_te, torch.float32),
        y_train=None if y_tr is None else _tensor(y_tr, torch.int64),
        y_test=None if y_te is None else _tensor(y_te, torch.int64),
        label_names=raw.label_names,
        description=raw.description,
        source=raw.source,
        likelihood=raw.likelihood,
        feature_names=raw.feature_names,
        scaler_mean=mean,
        scaler_scale=scale,
        factors_train=fac_tr,
        factors_test=fac_te,
        factor_names=raw.factor_names,
    )


def _split_indices(n: int, y: np.ndarray | None, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train / test indices; stratified when every class has at least two items."""
    from sklearn.model_selection import train_test_split

    n_test = min(n - 1, max(1, math.ceil(n * test_fraction)))
    stratify = None
    if y is not None:
        counts = np.bincount(y)
        counts = counts[counts > 0]
        if counts.min() >= 2 and min(n_test, n - n_test) >= len(counts):
            stratify = y
    tr, te = train_test_split(np.arange(n), test_size=n_test, random_state=seed % 2**32, stratify=stratify)
    return np.sort(tr), np.sort(te)


def _subset(n: int, k: int | None, seed: int, stream: int) -> np.ndarray | None:
    """A sorted fixed-seed choice of ``k`` of ``n`` indices, or None to keep everything."""
    if k is None or k >= n:
        return None
    return np.sort(np.random.default_rng([seed, stream]).choice(n, k, replace=False))


def _take(a: np.ndarray | None, keep: np.ndarray | None) -> np.ndarray | None:
    return a if a is None or keep is None else a[keep]


def _tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


# ---------------------------------------------------------------- shared checks


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path} is {size:,} bytes, over the {max_bytes:,}-byte limit; expected a smaller file.")


def _encode_labels(values: np.ndarray, n: int, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (sorted unique values) and their names; checks the count and the class limit.

    The rule for too many classes: labels name classes (they colour the latent map), so more than
    ``MAX_CLASSES`` distinct values (a column of IDs or measurements, say) is refused with a sentence
    rather than silently dropped; the person then picks another label column or none. Float labels
    count as classes only when every value is whole.
    """
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"{where} has labels of shape {values.shape} for {n} items; expected one label per item.")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ValueError(f"{where} has missing or non-finite labels; expected a label for every item.")
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    elif values.dtype.kind == "O":
        values = values.astype(str)
    elif values.dtype.kind not in "biuU":
        raise ValueError(f"{where} has labels of type {values.dtype}; expected integers or strings.")
    uniques, codes = np.unique(values, return_inverse=True)
    if len(uniques) > MAX_CLASSES:
        raise ValueError(
            f"{where} has {len(uniques):,} distinct labels, more than the {MAX_CLASSES} allowed classes; "
            "expected class names, not IDs or measurements, so choose other labels or none."
        )
    return codes.astype(np.int64).reshape(-1), [str(u) for u in uniques]


# ---------------------------------------------------------------- digits and sprites


def _load_digits(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    """scikit-learn's bundled 8×8 digits, pixel/16 in [0, 1], shape (1797, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    labels = [str(i) for i in range(10)]
    return _Raw(x, d.target.astype(np.int64), labels, DATASETS["digits"], "scikit-learn (bundled)")


def _load_sprites(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    size, count = cfg.size or 32, cfg.count or 20_000
    x, factors = generate_sprites(count, size, cfg.split_seed, progress)
    return _Raw(
        x,
        factors[:, 0].astype(np.int64),
        list(SPRITE_SHAPES),
        f"{count:,} generated {size}×{size} sprites (shape, scale, rotation, x, y)",
        f"generated (seed {cfg.split_seed})",
        factors=factors,
        factor_names=list(SPRITE_FACTORS),
    )


def generate_sprites(
    count: int, size: int = 32, seed: int = 0, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` binary sprites ``(count, 1, size, size)`` and their factor values ``(count, 5)``.

    Factor combinations are drawn without replacement (while they last) from shape × scale ×
    rotation × x × y with ``seed``; factor columns are shape index, scale, rotation (radians),
    x and y (in [0, 1]). Rendering is vectorised over chunks of images.
    """
    dims = (len(SPRITE_SHAPES), len(SPRITE_SCALES), len(SPRITE_ROTATIONS), len(SPRITE_POSITIONS), len(SPRITE_POSITIONS))
    total = math.prod(dims)
    flat = np.random.default_rng(seed).choice(total, count, replace=count > total)
    s, k, r, i, j = np.unravel_index(flat, dims)
    factors = np.column_stack(
        [s, SPRITE_SCALES[k], SPRITE_ROTATIONS[r], SPRITE_POSITIONS[i], SPRITE_POSITIONS[j]]
    ).astype(np.float64)  # (count, 5)
    images = np.empty((count, 1, size, size), np.float32)
    chunk = max(1, (1 << 21) // (size * size))
    for start in range(0, count, chunk):
        images[start : start + chunk, 0] = _render_sprites(factors[start : start + chunk], size)
        if progress:
            progress(min(start + chunk, count), count, "generating sprites")
    return images, factors


def _render_sprites(f: np.ndarray, size: int) -> np.ndarray:
    """Rasterise factor rows ``(n, 5)`` into ``(n, size, size)`` float32 masks in {0, 1}."""
    n = len(f)
    radius = (0.18 * size * f[:, 1]).astype(np.float32)[:, None, None]  # (n, 1, 1)
    margin = 1.2 * 0.18 * size
    grid = np.arange(size, dtype=np.float32) + 0.5
    cx = (margin + f[:, 3] * (size - 2 * margin)).astype(np.float32)
    cy = (margin + f[:, 4] * (size - 2 * margin)).astype(np.float32)
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, size)
    dy = grid[None, :, None] - cy[:, None, None]  # (n, size, 1)
    cos = np.cos(f[:, 2]).astype(np.float32)[:, None, None]
    sin = np.sin(f[:, 2]).astype(np.float32)[:, None, None]
    out = np.empty((n, size, size), np.float32)
    for shape in range(len(SPRITE_SHAPES)):
        m = f[:, 0] == shape
        if not m.any():
            continue
        u = (cos[m] * dx[m] + sin[m] * dy[m]) / radius[m]  # (k, size, size), object frame
        v = (cos[m] * dy[m] - sin[m] * dx[m]) / radius[m]
        if shape == 0:  # square
            inside = np.maximum(np.abs(u), np.abs(v)) <= 0.8
        elif shape == 1:  # ellipse, 2:1
            inside = u * u + 4.0 * v * v <= 1.0
        else:  # heart: (a² + b² - 1)³ - a² b³ <= 0, point down when unrotated
            a, b = 1.1 * u, 0.12 - 1.1 * v
            q = a * a + b * b - 1.0
            inside = q * q * q - a * a * b * b * b <= 0.0
        out[m] = inside
    return out


# ---------------------------------------------------------------- IDX (MNIST format)


def _read_idx(path: Path, max_bytes: int) -> np.ndarray:
    """Parse one IDX file, gzipped or not, checking the magic number and the dimensions."""
    _check_size(path, max_bytes)
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                f.seek(0)
                with gzip.GzipFile(fileobj=f) as g:
                    raw = g.read(max_bytes + 1)
            else:
                f.seek(0)
                raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is a truncated or corrupt gzip file ({e}); expected a gzipped IDX file.") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{path} unpacks to more than {max_bytes:,} bytes; expected a smaller IDX file.")
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in _IDX_DTYPES or not raw[3]:
        raise ValueError(f"{path} does not start with an IDX magic number; expected an MNIST-format IDX file.")
    header = 4 + 4 * raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], ">u4")) if len(raw) >= header else ()
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(dims) != raw[3] or len(raw) != expected:
        raise ValueError(
            f"{path} holds {len(raw):,} bytes but its header promises {expected:,}; the file is truncated."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


def _find_idx(folder: Path) -> dict[str, Path]:
    """IDX files in ``folder`` by role (``train_images`` ...), plain files before ``.gz``."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        n = p.name.lower()
        kind = "images" if "idx3-ubyte" in n else "labels" if "idx1-ubyte" in n else None
        part = "test" if ("t10k" in n or "test" in n) else "train" if "train" in n else None
        if kind and part and p.is_file():
            found.setdefault(f"{part}_{kind}", p)
    return found


def _idx_candidates(name: str, root: str | None) -> list[Path]:
    """Where a registered IDX dataset is looked for; an explicit ``root`` is the only place."""
    if root:
        return [Path(root).expanduser(), Path(root).expanduser() / name]
    env = os.environ.get(IDX_ENV[name])
    places = [Path(env).expanduser()] if env else []
    if name == "fashion-mnist":
        places.append(DEBIAN_FASHION_MNIST_DIR)
    return places + [_cache_dir() / name]


def _locate_idx(name: str, root: str | None) -> Path | None:
    for folder in _idx_candidates(name, root):
        if len(_find_idx(folder)) == 4:
            return folder
    return None


def _how_to_get(name: str, root: str | None) -> str:
    places = ", ".join(str(p) for p in _idx_candidates(name, root))
    apt = "`apt-get install dataset-fashion-mnist` or " if name == "fashion-mnist" else ""
    return (
        f"{name} was not found in {places}; get it with {apt}`python -m vae datasets --download {name}`, "
        f"or set {IDX_ENV[name]} (or --root) to a folder holding its four IDX files."
    )


def _load_registered_idx(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    folder = _locate_idx(cfg.name, cfg.root)
    if folder is None:
        raise FileNotFoundError(_how_to_get(cfg.name, cfg.root))
    labels = FASHION_LABELS if cfg.name == "fashion-mnist" else [str(i) for i in range(10)]
    return _load_idx_folder(folder, progress, max_bytes, labels, DATASETS[cfg.name])


def _load_idx_folder(
    folder: Path, progress: Progress | None, max_bytes: int, label_names: list[str] | None = None, description: str = ""
) -> _Raw:
    """Images, labels if present, and the official test split if present, from a folder of IDX files."""
    files = _find_idx(folder)
    if "train_images" not in files:
        raise ValueError(f"{folder} holds no train-images IDX file; expected train-images-idx3-ubyte[.gz].")
    parts = [p for p in ("train", "test") if f"{p}_images" in files]
    if len(parts) == 2 and (("train_labels" in files) != ("test_labels" in files)):
        raise ValueError(
            f"{folder} has labels for only one of train and test; expected label files for both or neither."
        )
    loaded = {}
    for i, part in enumerate(parts):
        if progress:
            progress(i, len(parts), f"reading {part} IDX files")
        x = _idx_images(_read_idx(files[f"{part}_images"], max_bytes), files[f"{part}_images"])
        y = _read_idx(files[f"{part}_labels"], max_bytes) if f"{part}_labels" in files else None
        if y is not None and y.shape != (len(x),):
            where = files[f"{part}_labels"]
            raise ValueError(f"{where} holds labels of shape {y.shape} for {len(x):,} images; expected one per image.")
        loaded[part] = (x, None if y is None else y.astype(np.int64))
    x, y = loaded["train"]
    if y is not None:
        top = max(int(lab.max()) for _, lab in loaded.values()) + 1
        label_names = label_names or [str(i) for i in range(top)]
        limit = min(len(label_names), MAX_CLASSES)
        if min(int(lab.min()) for _, lab in loaded.values()) < 0 or top > limit:
            raise ValueError(f"{folder} has labels outside 0..{limit - 1}; expected class numbers in that range.")
    description = description or f"IDX images from {folder.name}"
    return _Raw(x, y, label_names if y is not None else None, description, str(folder), test=loaded.get("test"))


def _idx_images(arr: np.ndarray, path: Path) -> np.ndarray:
    """IDX (N, H, W) pixels → float32 (N, 1, H, W) in [0, 1]."""
    if arr.ndim != 3 or len(arr) < 1:
        raise ValueError(f"{path} holds an array of shape {arr.shape}; expected images (N, H, W) in an idx3 file.")
    return _unit_images(arr[:, None], str(path))


# ---------------------------------------------------------------- download


def download_idx(
    name: str,
    cache_dir: str | Path,
    base_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60,
    *,
    digests: dict[str, str] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Path:
    """Download the four IDX archives of ``name`` into ``cache_dir/name`` and verify each SHA-256.

    Files already there with the right digest are kept. ``base_url`` replaces the official mirror
    and ``digests`` the built-in table (both for tests). A mismatch deletes the download and
    raises ``ValueError``; a network failure raises ``ConnectionError``.
    """
    if name not in IDX_MIRRORS:
        raise ValueError(f"Unknown downloadable dataset {name!r}; expected one of {', '.join(IDX_MIRRORS)}.")
    table = IDX_SHA256[name] if digests is None else digests
    base = (base_url or IDX_MIRRORS[name]).rstrip("/") + "/"
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"Download URL {base!r} is not http(s); expected an http:// or https:// mirror.")
    folder = Path(cache_dir).expanduser() / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in (f"{n}.gz" for n in IDX_NAMES.values()):
        if file not in table:
            raise ValueError(f"No SHA-256 digest is known for {file}; expected one so the download can be verified.")
        target = folder / file
        if not (target.exists() and _sha256(target) == table[file]):
            _fetch(base + file, target, table[file], timeout, max_bytes, progress)
    return folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, target: Path, sha256: str, timeout: float, max_bytes: int, progress: Progress | None) -> None:
    """Stream ``url`` into a temp file beside ``target``; ``os.replace`` it only if the digest matches."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, timeout, max_bytes, progress, target.name)
        if got != sha256:
            raise ValueError(f"{url} has SHA-256 {got}, not the expected {sha256}; the download was deleted.")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _stream(url: str, out, timeout: float, max_bytes: int, progress: Progress | None, label: str) -> str:
    """Copy ``url`` to the open file ``out`` in 1 MiB chunks; return the SHA-256 of what was written."""
    h, done = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            while chunk := resp.read(1 << 20):
                done += len(chunk)
                if done > max_bytes:
                    raise ValueError(f"{url} is larger than the {max_bytes:,}-byte limit; expected an IDX archive.")
                h.update(chunk)
                out.write(chunk)
                if progress:
                    progress(done, total, f"downloading {label}")
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise ConnectionError(f"Could not download {url} ({reason}); check the network or the mirror.") from None
    return h.hexdigest()


# ---------------------------------------------------------------- user files


def _load_file(cfg: DataConfig, progress: Progress | None, max_bytes: int) -> _Raw:
    """Dispatch a user's path on its type: folder (IDX or images), .npz, .npy, .csv, .zip."""
    path = Path(cfg.path).expanduser()
    expected = "a .npz, .npy, .csv or .zip file, or a folder of images or IDX files"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected {expected}.")
    if path.is_dir():
        if "train_images" in _find_idx(path):
            return _load_idx_folder(path, progress, max_bytes)
        return _load_images(_folder_members(path, max_bytes), cfg.size, str(path), progress, max_bytes)
    _check_size(path, max_bytes)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "rb") as f:
            _check_npy_header(f, path.stat().st_size, str(path))
        return _array_raw(_np_load(path, lambda: np.load(path, allow_pickle=False)), None, path)
    if suffix == ".npz":
        return _load_npz(path, max_bytes)
    if suffix == ".csv":
        return _load_csv(path, cfg.label_column)
    if suffix == ".zip":
        return _load_zip(path, cfg.size, max_bytes, progress)
    raise ValueError(f"{path} has an unsupported type {suffix or '(none)'!r}; expected {expected}.")


def _pickled(where: str) -> str:
    return (
        f"{where} holds pickled Python objects, which are refused because loading them can run code; "
        "expected plain numeric arrays saved with np.save / np.savez."
    )


def _not_numpy(where: str, why: object) -> str:
    return f"{where} is truncated or not a valid NumPy file ({why}); expected np.save / np.savez output."


def _np_load(path: Path, load: Callable):
    """Run a NumPy load, turning its errors into one-sentence ``ValueError``s (never unpickling)."""
    try:
        return load()
    except ValueError as e:
        if "Object arrays" in str(e) or "pickled" in str(e):
            raise ValueError(_pickled(str(path))) from None
        raise ValueError(_not_numpy(str(path), e)) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(_not_numpy(str(path), e)) from None


def _check_npy_header(f, available: int, where: str) -> None:
    """Read only the .npy header of the binary stream ``f`` (``available`` bytes long) and refuse it early.

    Refused before any data is read: pickles and object arrays, and a shape promising more bytes
    than the stream holds (a truncated file, or a forged header that would make NumPy allocate
    terabytes and fail with ``MemoryError``).
    """
    fmt = np.lib.format
    head = f.read(len(fmt.MAGIC_PREFIX) + 2)  # magic string + format version
    if head[:1] == b"\x80":  # a pickle stream (protocol 2+), as pickle.dump writes
        raise ValueError(_pickled(where))
    if len(head) < 8 or head[:6] != fmt.MAGIC_PREFIX:
        raise ValueError(_not_numpy(where, "no NumPy magic string at the start"))
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if (head[6], head[7]) not in readers:
        raise ValueError(_not_numpy(where, f"format version {head[6]}.{head[7]}, not 1.0 or 2.0"))
    try:
        shape, _, dtype = readers[head[6], head[7]](f)
    except ValueError as e:
        raise ValueError(_not_numpy(where, e)) from None
    if dtype.hasobject:
        raise ValueError(_pickled(where))
    promised, held = math.prod(shape) * dtype.itemsize, available - f.tell()
    if min(shape, default=0) < 0 or promised > held:
        why = f"its header promises {promised:,} bytes for shape {shape}, the file holds {held:,}"
        raise ValueError(_not_numpy(where, why))


def _load_npz(path: Path, max_bytes: int) -> _Raw:
    """Data from ``x`` (or the first array), labels from ``y`` / ``labels`` if present.

    Every member must be a .npy array whose header passes ``_check_npy_header`` (read through the
    archive, a few hundred bytes each) before NumPy loads anything.
    """
    with _open_zip(path, "np.savez output") as zf:
        _zip_guard(zf, path, max_bytes)
        for info in zf.infolist():
            where = f"{path} entry {info.filename!r}"
            try:
                with zf.open(info) as member:
                    _check_npy_header(member, info.file_size, where)
            except _ZIP_READ_ERRORS as e:
                raise ValueError(f"{where} could not be read ({e}); expected np.savez output.") from None

    def read():
        with np.load(path, allow_pickle=False) as z:
            if not z.files:
                raise ValueError(f"{path} holds no arrays; expected an array named x.")
            x = z["x"] if "x" in z.files else z[z.files[0]]
            key = next((k for k in ("y", "labels") if k in z.files), None)
            return x, None if key is None else z[key]

    x, y = _np_load(path, read)
    return _array_raw(x, y, path)


def _array_raw(x: np.ndarray, y: np.ndarray | None, path: Path) -> _Raw:
    """Validate an array of images (N,H,W), (N,H,W,C), (N,C,H,W) or vectors (N,D) and its labels."""
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {x.dtype} data; expected a numeric array of integers or floats.")
    if x.size == 0:
        raise ValueError(f"{path} holds an empty array of shape {x.shape}; expected at least two items.")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"{path} holds an array of shape {x.shape}; expected N×D vectors or N×H×W(×C) images.")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{path} contains NaN or infinite values; expected finite numbers.")
    y, names = (None, None) if y is None else _encode_labels(y, len(x), str(path))
    if x.ndim == 2:
        desc = f"{len(x):,} vectors of {x.shape[1]} features from {path.name}"
        if x.dtype == np.uint8:
            return _Raw((x / 255.0).astype(np.float32), y, names, desc, str(path))
        if x.min() >= 0 and x.max() <= 1:
            return _Raw(x.astype(np.float32), y, names, desc, str(path))
        return _Raw(x, y, names, desc, str(path), likelihood="gaussian", standardise=True)
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels-last → (N, C, H, W)
    elif x.shape[1] not in (1, 3):
        raise ValueError(f"{path} holds images of shape {x.shape}; expected 1 or 3 channels, first or last.")
    desc = f"{len(x):,} images of {x.shape[2]}×{x.shape[3]}×{x.shape[1]} from {path.name}"
    return _Raw(_unit_images(x, str(path)), y, names, desc, str(path))


def _unit_images(x: np.ndarray, where: str) -> np.ndarray:
    """Pixels to float32 in [0, 1]: integers 0–255 (and floats in [0, 255]) / 255, [0, 1] kept."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"{where} has pixel values from {lo:g} to {hi:g}; expected values in [0, 1] or [0, 255].")
    if x.dtype.kind == "f" and hi <= 1:
        return x.astype(np.float32)
    out = x.astype(np.float32)
    out *= np.float32(1 / 255)
    return out


def _load_csv(path: Path, label_column: str | None) -> _Raw:
    """Numeric columns (standardised later) and an optional label column."""
    import pandas as pd

    _check_csv_rows(path)
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty; expected a header row and at least two data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path} could not be read as CSV ({str(e).strip()}); expected comma-separated numbers."
        ) from None
    if len(df) == 0:
        raise ValueError(f"{path} has a header but no data rows; expected at least two rows of numbers.")
    y = names = None
    if label_column is not None:
        if label_column not in df.columns:
            cols = ", ".join(map(str, df.columns))
            raise ValueError(f"{path} has no label column {label_column!r}; its columns are {cols}.")
        labels = df.pop(label_column)
        if labels.isna().any():
            raise ValueError(f"{path} has empty cells in label column {label_column!r}; expected a label on every row.")
        y, names = _encode_labels(labels.to_numpy(), len(df), f"{path} column {label_column!r}")
    if df.shape[1] == 0:
        raise ValueError(f"{path} has no feature columns besides the labels; expected at least one numeric column.")
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
            row = int(np.argmax(bad.to_numpy()))
            raise ValueError(
                f"{path} has text ({df[col].iloc[row]!r}, line {row + 2}) in column {col!r}; "
                "expected numbers in every column but the label column."
            )
    x = df.to_numpy(np.float64)
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{path} has a missing or non-finite value in column {df.columns[col]!r}, line {row + 2}; "
            "expected a number in every cell."
        )
    desc = f"{len(x):,} rows × {x.shape[1]} columns from {path.name}"
    features = [str(c) for c in df.columns]
    return _Raw(x, y, names, desc, str(path), likelihood="gaussian", standardise=True, feature_names=features)


def _check_csv_rows(path: Path) -> None:
    """Refuse ragged rows (pandas would silently pad short ones with NaN)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader, width = csv.reader(f), None
        try:
            for row in reader:
                if not row:
                    continue
                if width is None:
                    width = len(row)
                elif len(row) != width:
                    raise ValueError(
                        f"{path} has {len(row)} fields on line {reader.line_num} but {width} in its header; "
                        "expected the same number of fields on every row."
                    )
        except csv.Error as e:
            raise ValueError(f"{path} is not valid CSV ({e}); expected comma-separated numbers.") from None


# ---------------------------------------------------------------- image folders and zips


def _folder_members(folder: Path, max_bytes: int) -> list[tuple[str, Callable[[], bytes]]]:
    """Image files under ``folder`` as (relative name, reader), skipping hidden and __MACOSX entries."""
    members, total = [], 0
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if _is_image_name(rel) and p.is_file():
            total += p.stat().st_size
            if total > max_bytes:
                raise ValueError(f"{folder} holds more than {max_bytes:,} bytes of images; expected a smaller folder.")
            members.append((rel, p.read_bytes))
    return members


def _is_image_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in parts)
    return bool(parts) and not hidden and parts[-1].lower().endswith(IMAGE_SUFFIXES)


def _open_zip(path: Path, expected: str = "a .zip archive of images") -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{path} is truncated or not a valid zip archive ({e}); expected {expected}.") from None


# a member that is corrupt, encrypted (RuntimeError) or compressed with an unsupported method
_ZIP_READ_ERRORS = (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error)


def _zip_guard(zf: zipfile.ZipFile, path: Path, max_bytes: int) -> None:
    """Refuse by declared uncompressed size (zip bombs) and unsafe member names, before reading."""
    total = sum(info.file_size for info in zf.infolist())
    if total > max_bytes:
        raise ValueError(
            f"{path} declares {total:,} bytes uncompressed, over the {max_bytes:,}-byte limit (zip bomb guard); "
            "expected a smaller archive."
        )
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or name[1:2] == ":" or ".." in PurePosixPath(name).parts:
            raise ValueError(f"{path} has an unsafe entry {info.filename!r}; expected relative paths without '..'.")


def _load_zip(path: Path, size: int | None, max_bytes: int, progress: Progress | None) -> _Raw:
    """Images from a .zip, read member by member in memory (nothing is extracted to disk).

    A member is read only up to its declared size (``zf.read`` would inflate a member whose header
    understates its size in one piece); a longer stream then fails its CRC check.
    """
    with _open_zip(path) as zf:
        _zip_guard(zf, path, max_bytes)

        def reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
            def read() -> bytes:
                try:
                    with zf.open(info) as member:
                        return member.read(info.file_size)
                except _ZIP_READ_ERRORS as e:
                    raise ValueError(
                        f"{path} entry {info.filename!r} could not be read ({e}); "
                        "expected an unencrypted zip using the usual deflate or no compression."
                    ) from None

            return read

        infos = [i for i in zf.infolist() if not i.is_dir() and _is_image_name(i.filename)]
        return _load_images([(i.filename, reader(i)) for i in infos], size, str(path), progress, max_bytes)


def _load_images(
    members: list[tuple[str, Callable[[], bytes]]],
    size: int | None,
    where: str,
    progress: Progress | None,
    max_bytes: int,
) -> _Raw:
    """Decode images (grey, or RGB if any is colour); label = the parent folder's name.

    The decoded pixels (8-bit RGB, after any resize) may take at most ``max_bytes``: small PNGs of
    large plain pictures would otherwise inflate a small archive into gigabytes of memory.
    """
    if not members:
        raise ValueError(f"{where} holds no PNG or JPEG images; expected image files, one sub-folder per class.")
    if len(members) > MAX_IMAGE_FILES:
        raise ValueError(f"{where} holds {len(members):,} images, more than the {MAX_IMAGE_FILES:,} allowed.")
    arrays, folders, first, total = [], [], None, 0
    for i, (name, read) in enumerate(members):
        img = _decode_image(read(), name, where, size)
        if size is None:
            first = first or (img.size, name)
            if img.size != first[0]:
                raise ValueError(
                    f"{where} has images of different sizes ({first[1]} is {first[0][0]}×{first[0][1]}, "
                    f"{name} is {img.size[0]}×{img.size[1]}); pick a size to resize them all to."
                )
        arrays.append(np.asarray(img))  # (H, W, 3) uint8
        total += arrays[-1].nbytes
        if total > max_bytes:
            raise ValueError(
                f"{where} decodes to more than {max_bytes:,} bytes of pixels by its image {name} ({i + 1:,} of "
                f"{len(members):,}); expected fewer or smaller images, or pick a smaller size to resize them to."
            )
        folders.append(PurePosixPath(name).parent.name)
        if progress and (i % 256 == 0 or i == len(members) - 1):
            progress(i + 1, len(members), "reading images")
    x = np.stack(arrays)  # (N, H, W, 3)
    colour = bool(np.any(x[..., 0] != x[..., 1]) or np.any(x[..., 1] != x[..., 2]))
    x = x.transpose(0, 3, 1, 2) if colour else x[:, None, :, :, 0]  # (N, C, H, W)
    y = names = None
    if len(set(folders)) > 1:
        y, names = _encode_labels(np.array([f or "(top level)" for f in folders]), len(x), where)
    desc = f"{len(x):,} {'colour' if colour else 'grey'} images of {x.shape[2]}×{x.shape[3]} from {Path(where).name}"
    return _Raw(_unit_images(x, where), y, names, desc, where)


def _decode_image(data: bytes, name: str, where: str, size: int | None):
    """One image as a loaded RGB PIL image, resized to ``size``×``size`` if given.

    Only PNG and JPEG data are decoded, whatever the file is called. Every mode (1, L, P, RGB,
    RGBA, LA, CMYK, 16-bit grey) becomes 8-bit RGB: 16-bit grey is scaled to 0–255 (Pillow's own
    conversion clips it at 255), and transparent pixels are laid over black, the background of
    MNIST-style data (dropping the alpha channel would show whatever colour hides under them).
    """
    from PIL import Image, UnidentifiedImageError

    bad = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
    try:
        img = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
    except bad as e:
        why = "unknown or damaged image data" if isinstance(e, UnidentifiedImageError) else e
        raise ValueError(
            f"{where}: {name} could not be read as an image ({why}); expected a PNG or JPEG file."
        ) from None
    if img.width * img.height > MAX_IMAGE_PIXELS:
        raise ValueError(f"{where}: {name} has {img.width}×{img.height} pixels, over the {MAX_IMAGE_PIXELS:,} allowed.")
    try:
        if img.mode.startswith("I"):  # 16-bit grey PNG: 0–65535
            img = Image.fromarray((np.asarray(img, np.float32) / 257).round().clip(0, 255).astype(np.uint8))
        elif img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            img = Image.new("RGB", img.size)  # black
            img.paste(rgba, mask=rgba.getchannel("A"))
        img = img.convert("RGB")
    except bad as e:
        raise ValueError(f"{where}: {name} could not be decoded ({e}); expected a complete PNG or JPEG file.") from None
    return img.resize((size, size), Image.Resampling.BILINEAR) if size else img
