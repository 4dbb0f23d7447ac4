"""What a run trains on and what the explorer shows: the dataset registry and its loaders.

``load_dataset(cfg)`` is the one entry point. Every loader returns plain arrays (a ``_Raw``);
``_finish`` then splits them with a fixed seed (unless the data has an official split),
subsets, standardises vectors with training statistics and turns them into tensors.

Sources: scikit-learn's bundled digits (the default, no download), Fashion-MNIST and MNIST from
IDX files (Debian's ``dataset-fashion-mnist``, an env var, ``--root`` or the download cache),
procedurally generated dSprites-style sprites, and a user's ``.npz`` / ``.npy`` / ``.csv``, a
folder or ``.zip`` of images, or a folder of IDX files. Bad data raises ``ValueError`` (or
``FileNotFoundError``) with one sentence naming the file, what was wrong and what is expected.
Nothing is read at import time.

One concern a module, each importing only those below it (no cycles)::

    registry   DATASETS, load_dataset, available_datasets; split, subset, tensors
    files      users' .npz / .npy / .csv, dispatch of a path    images   folders and .zips of images
    sprites    generated sprites     idx   IDX files and where they live     download   download_idx
    base       Dataset, _Raw, limits, the cache folder, shared checks
    sources    where a run's data may come from (imported as ``vae.data.sources``, not from here)
"""

from .base import DEFAULT_CACHE_DIR, MAX_CLASSES, MAX_FILE_BYTES, MAX_IMAGE_FILES, MAX_IMAGE_PIXELS, Dataset
from .download import IDX_MIRRORS, IDX_NAMES, IDX_SHA256, download_idx
from .idx import DEBIAN_FASHION_MNIST_DIR, IDX_ENV
from .images import IMAGE_SUFFIXES
from .registry import DATASETS, FASHION_LABELS, available_datasets, load_dataset
from .sprites import (
    SPRITE_FACTORS,
    SPRITE_POSITIONS,
    SPRITE_ROTATIONS,
    SPRITE_SCALES,
    SPRITE_SHAPES,
    generate_sprites,
)

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST_DIR",
    "DEFAULT_CACHE_DIR",
    "FASHION_LABELS",
    "IDX_ENV",
    "IDX_MIRRORS",
    "IDX_NAMES",
    "IDX_SHA256",
    "IMAGE_SUFFIXES",
    "MAX_CLASSES",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_FILES",
    "MAX_IMAGE_PIXELS",
    "SPRITE_FACTORS",
    "SPRITE_POSITIONS",
    "SPRITE_ROTATIONS",
    "SPRITE_SCALES",
    "SPRITE_SHAPES",
    "Dataset",
    "available_datasets",
    "download_idx",
    "generate_sprites",
    "load_dataset",
]
