"""The latent map's history: a fixed probe set encoded as training goes, and the frames aligned for replay.

The trainer picks a probe set once (up to ``TrainConfig.probe_size`` test items, stratified by label, chosen by
the run's seed) and writes a **frame** before the first step, after every epoch and every ``FRAME_SECONDS`` of
training inside long epochs: the probe's latent means and the decoded fixed prior samples. Inside the run's
history folder (``vae.runs.folder.history_dir``)::

    probe.safetensors            indices (P,) into the split, labels (P,) or -1; metadata: split
    frame-000000.safetensors     mu (P, L) float16, samples (S, C, H, W) uint8 for images;
                                 metadata: epoch (fractional), step, elapsed, time, test_elbo (epoch frames)

    umap-layouts.npz             each frame's UMAP layout by step (``umap_layouts``), with its codes' fingerprint

Each file is written atomically; a resume drops frames past its checkpoint and writes the one it resumes at,
so no step is recorded twice or missed. Frames are aligned for display by PCA per frame and an orthogonal
Procrustes fit to the previous frame (``aligned_layouts``): milliseconds per frame, and an item stays where it
was unless the model moved it. In UMAP (``umap_layouts``), each frame's map starts from the previous frame's
layout and is turned onto it: seconds per frame, fitted by the map worker for the app and kept in the folder.
"""

from __future__ import annotations

import functools
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from ..runs import folder as rf
from ..runs.fileio import save_tensors
from ..runs.guard import MAX_TENSORS, UnsafeFile, regular_file
from ..runs.schema import count, finite

FRAME_SECONDS = 10.0  # inside an epoch longer than this, a frame every this many seconds of training
PROBE_FILE = "probe.safetensors"
_FRAME = "frame-{:06d}.safetensors"


@dataclass(frozen=True)
class Frame:
    """One recorded moment of training: where it is on disk and what it says about itself."""

    path: Path
    epoch: float
    step: int
    elapsed: float
    test_elbo: float | None
    time: float = 0.0  # wall clock (time.time()) when the trainer wrote it

    def codes(self) -> np.ndarray:
        """The probe's latent means at this moment, (P, latent_dim) float32."""
        return _read_codes(self.path)

    def samples(self) -> np.ndarray | None:
        """The fixed prior samples decoded at this moment, (S, C, H, W) in [0, 1], or None (not images)."""
        return _read_samples(self.path)


# ---------------------------------------------------------------- the probe set


def probe_indices(n: int, labels: np.ndarray | None, size: int, seed: int) -> np.ndarray:
    """``size`` of ``n`` items (all if fewer), sorted, stratified by ``labels`` when given; fixed by ``seed``."""
    if size >= n:
        return np.arange(n)
    if labels is None or len(np.unique(labels)) < 2:
        return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    from sklearn.model_selection import train_test_split

    try:
        keep, _ = train_test_split(np.arange(n), train_size=size, stratify=labels, random_state=seed)
    except ValueError:  # a class with a single item cannot be stratified
        keep = np.random.default_rng(seed).choice(n, size, replace=False)
    return np.sort(keep)


def prepare(run_dir, dataset, x_test: torch.Tensor, x_train: torch.Tensor, cfg, resumed_at: int | None):
    """The probe items (P, *input_shape) a training records, or None when ``cfg.probe_size`` is 0.

    A fresh start (``resumed_at`` None) picks the probe set and drops any earlier frames; a resume keeps its
    probe set and drops the frames recorded after the step it resumes at.
    """
    if cfg.probe_size == 0:
        return None
    probe = read_probe(run_dir) if resumed_at is not None else None
    split = "test" if len(x_test) else "train"
    x_all, y_all = (x_test, dataset.y_test) if split == "test" else (x_train, dataset.y_train)
    if probe is None or probe[2] != split or (len(probe[0]) and probe[0].max() >= len(x_all)):
        labels = None if y_all is None else y_all.numpy()
        idx = probe_indices(len(x_all), labels, cfg.probe_size, cfg.seed)
        drop_frames_after(run_dir, -1)  # frames of another probe set mean nothing now
        write_probe(run_dir, idx, None if labels is None else labels[idx], split)
    else:
        idx = probe[0]
    drop_frames_after(run_dir, -1 if resumed_at is None else resumed_at)
    return x_all[torch.from_numpy(idx)]


def write_probe(run_dir: str | Path, indices: np.ndarray, labels: np.ndarray | None, split: str) -> None:
    folder = rf.history_dir(run_dir)
    folder.mkdir(exist_ok=True)
    lab = np.full(len(indices), -1) if labels is None else labels
    tensors = {"indices": torch.as_tensor(indices, dtype=torch.int64), "labels": torch.as_tensor(lab).long()}
    save_tensors(folder / PROBE_FILE, tensors, {"split": split})


def read_probe(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """(indices, labels or None, split) of the run's probe set; None for a run without a history."""
    try:
        path = rf.history_dir(run_dir) / PROBE_FILE
        if regular_file(path, MAX_TENSORS) is None:
            return None
        with safe_open(str(path), framework="pt") as f:
            indices, labels = f.get_tensor("indices").numpy(), f.get_tensor("labels").numpy()
            split = (f.metadata() or {}).get("split", "test")
    except (OSError, ValueError, KeyError, SafetensorError):  # UnsafeFile is a ValueError
        return None
    if indices.ndim != 1 or labels.shape != indices.shape or not isinstance(split, str):
        return None
    return indices, (None if (labels < 0).all() else labels), split


# ---------------------------------------------------------------- frames


def write_frame(run_dir: str | Path, mu: torch.Tensor, samples: torch.Tensor | None, meta: dict) -> Path:
    """Append one frame (the next number): ``mu`` (P, L), ``samples`` (S, C, H, W) in [0, 1] or None."""
    folder = rf.history_dir(run_dir)
    folder.mkdir(exist_ok=True)
    path = folder / _FRAME.format(len(frame_paths(run_dir)))
    tensors = {"mu": mu.detach().to(torch.float16)}
    if samples is not None:
        tensors["samples"] = (samples.detach().clamp(0, 1) * 255).round().to(torch.uint8)
    save_tensors(path, tensors, {"meta": json.dumps(meta)})
    return path


def frame_paths(run_dir: str | Path) -> list[Path]:
    try:
        folder = rf.history_dir(run_dir)
    except UnsafeFile:  # a link where the history should be: never read through
        return []
    return sorted(folder.glob("frame-*.safetensors")) if folder.is_dir() else []


def _frame(path: Path) -> Frame | None:
    """The frame in ``path``, or None when it is not a readable frame (damaged, not a regular file, bad meta)."""
    try:
        regular_file(path, MAX_TENSORS)
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("meta", "{}"))
            if "mu" not in f.keys() or len(f.get_slice("mu").get_shape()) != 2:  # noqa: SIM118
                return None
    except (OSError, ValueError, RecursionError, SafetensorError):  # a damaged frame is skipped, never fatal
        return None
    if not isinstance(meta, dict) or not (finite(meta.get("epoch", 0), 0, 1e12) and count(meta.get("step", 0))):
        return None
    elapsed, elbo, when = meta.get("elapsed", 0), meta.get("test_elbo"), meta.get("time")
    return Frame(path, float(meta.get("epoch", 0)), meta.get("step", 0), float(elapsed) if finite(elapsed) else 0.0,
                 float(elbo) if finite(elbo) else None, float(when) if finite(when) else 0.0)  # fmt: skip


def frames(run_dir: str | Path) -> list[Frame]:
    """Every readable frame of the run, in order ([] for a run without a history); a damaged one is skipped."""
    return [frame for path in frame_paths(run_dir) if (frame := _frame(path)) is not None]


def missing(run_dir: str | Path) -> str:
    """Why the run has no history to show (a sentence's end): none recorded, a link or a file where its folder
    should be, a damaged probe file, no readable frame."""
    try:
        folder = rf.history_dir(run_dir)
    except UnsafeFile as e:
        return f"its latent history cannot be read ({e})"
    if not folder.is_dir():
        return "it was trained before runs recorded one"
    if read_probe(run_dir) is None:
        return "its latent history's probe file is missing or damaged"
    return "none of its latent history's frames can be read" if not frames(run_dir) else "it has one"


def drop_frames_after(run_dir: str | Path, step: int) -> None:
    """Remove frames recorded after ``step`` (a resume redoes those steps)."""
    for frame in frames(run_dir):
        if frame.step > step:
            frame.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- aligned layouts


def _pca2(codes: np.ndarray) -> np.ndarray:
    from ..projection.sequence import pca2

    return pca2(codes)


def independent_layouts(all_codes: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame's own PCA, unaligned (the baseline alignment is measured against)."""
    return [_pca2(c) for c in all_codes]


def aligned_layouts(all_codes: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame's PCA rotated (or reflected) onto the previous frame's layout by orthogonal Procrustes."""
    return align(independent_layouts(all_codes))


def align(layouts: list[np.ndarray]) -> list[np.ndarray]:
    """Each layout rotated (or reflected) onto the one before it, as turned, by orthogonal Procrustes."""
    from scipy.linalg import orthogonal_procrustes

    out: list[np.ndarray] = []
    for layout in layouts:
        if out:
            rotation, _ = orthogonal_procrustes(layout, out[-1])  # (2, 2)
            layout = layout @ rotation
        out.append(layout)
    return out


def frame_layouts(frames: list[Frame]) -> list[np.ndarray]:
    """Each frame's own PCA (as ``independent_layouts``), each read and computed once per frame file: a watched
    training adds a frame every epoch, and the page asks for every frame again each time."""
    return [_frame_pca(*_file_key(frame)).copy() for frame in frames]


def _file_key(frame: Frame) -> tuple[str, int, int]:
    """A frame file's path, modification time and size: what its cached PCA and picture are kept under."""
    st = frame.path.stat()
    return str(frame.path), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=1024)  # (P, 2) each: 16 MB at most for 2,000-item probes
def _frame_pca(path: str, mtime_ns: int, size: int) -> np.ndarray:
    return _pca2(_read_codes(Path(path)))


def _read_samples(path: Path) -> np.ndarray | None:
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("samples").float().numpy() / 255 if "samples" in f.keys() else None  # noqa: SIM118


def _read_codes(path: Path) -> np.ndarray:
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("mu").float().numpy()


UMAP_FILE = "umap-layouts.npz"  # in the history folder: each frame's UMAP layout, fitted from the previous one's


def _fingerprint(codes: np.ndarray) -> float:
    return float(np.asarray(codes, dtype=np.float64).sum())


def cached_umap_layouts(run_dir: str | Path, seed: int = 0) -> dict[int, tuple[float, np.ndarray]]:
    """The UMAP layouts fitted so far, by frame step: (the codes' fingerprint, layout (P, 2)); {} when none (or
    when the file is damaged or not a regular file: it is refitted)."""
    from ..runs.guard import read_bytes

    path = rf.history_dir(run_dir) / UMAP_FILE
    try:
        data = np.load(io.BytesIO(read_bytes(path, MAX_TENSORS)), allow_pickle=False)
        if int(data["seed"]) != seed:
            return {}
        steps, prints, layouts = data["steps"], data["fingerprints"], data["layouts"]
        return {int(k): (float(f), layouts[i]) for i, (k, f) in enumerate(zip(steps, prints, strict=True))}
    except (OSError, ValueError, KeyError, UnsafeFile, EOFError):
        return {}


def _save_umap_layouts(run_dir: str | Path, seed: int, fitted: dict[int, tuple[float, np.ndarray]]) -> None:
    from ..runs.fileio import atomic_write_bytes

    steps = sorted(fitted)
    buf = io.BytesIO()
    np.savez(buf, seed=seed, steps=np.array(steps, dtype=np.int64),
             fingerprints=np.array([fitted[k][0] for k in steps]),
             layouts=np.stack([fitted[k][1] for k in steps]))  # fmt: skip
    atomic_write_bytes(rf.history_dir(run_dir) / UMAP_FILE, buf.getvalue())


def umap_layouts(
    run_dir: str | Path, seed: int = 0, progress=None, fit_missing: bool = True, fitter=None
) -> list[np.ndarray | None]:
    """Each frame's UMAP layout, in order (``vae.projection.sequence``): the first started from its PCA, each next
    one from the previous frame's layout and turned onto it, so items glide rather than jump. Fitted frames are kept
    in the history folder (``UMAP_FILE``) as each is done, so a killed fit resumes where it stopped; with
    ``fit_missing`` False a frame not fitted yet is None (and so is every frame after it). ``fitter`` has
    ``umap_sequence``'s signature (the map worker's, for the app); by default the fit runs in this process."""
    from ..projection.sequence import umap_sequence

    every = frames(run_dir)
    codes = [f.codes() for f in every]
    fitted = cached_umap_layouts(run_dir, seed)
    out: list[np.ndarray | None] = []
    for frame, c in zip(every, codes, strict=True):  # the kept layouts, up to the first frame missing one
        have = fitted.get(frame.step)
        if have is None or have[1].shape != (len(c), 2) or not math.isclose(have[0], _fingerprint(c), rel_tol=1e-9):
            break
        out.append(have[1])
    first = len(out)
    if first == len(every) or not fit_missing:
        return out + [None] * (len(every) - first)

    def keep(i: int, layout: np.ndarray) -> None:
        fitted[every[first + i].step] = (_fingerprint(codes[first + i]), layout)
        _save_umap_layouts(run_dir, seed, fitted)

    fit = fitter or umap_sequence
    fit(codes[first:], start=out[-1] if out else None, seed=seed, progress=progress, on_layout=keep)
    kept = cached_umap_layouts(run_dir, seed)
    return out + [kept[f.step][1] for f in every[first:]]


def stability(layouts: list[np.ndarray]) -> list[float | None]:
    """Each layout's Procrustes disparity against the previous one (None for the first): 0 when a frame is the
    previous one turned and scaled."""
    from scipy.spatial import procrustes

    return [None] + [float(procrustes(a, b)[2]) for a, b in zip(layouts, layouts[1:], strict=False)]


def mean_displacement(layouts: list[np.ndarray]) -> float:
    """Mean distance an item moves between consecutive frames, as a fraction of the maps' mean diameter."""
    if len(layouts) < 2:
        return 0.0
    moves = [np.linalg.norm(b - a, axis=1).mean() for a, b in zip(layouts, layouts[1:], strict=False)]
    diameter = np.mean([np.ptp(lay, axis=0).max() for lay in layouts]) or 1.0
    return float(np.mean(moves) / diameter)


# ---------------------------------------------------------------- animation


_PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff",
            "#fecb52"]  # fmt: skip


def animation_gif(layouts: list[np.ndarray], labels: np.ndarray | None, captions: list[str], side: int = 360,
                  names: list[str] | None = None) -> bytes:  # fmt: skip
    """An animated GIF of the aligned frames: points coloured by label, a caption (the epoch) per frame, one shared
    scale, and a legend of the labels (``names``, else their numbers)."""
    from PIL import Image, ImageDraw

    everything = np.concatenate(layouts)
    lo, hi = everything.min(0), everything.max(0)
    scale = (side - 40) / max(float((hi - lo).max()), 1e-9)
    ys = labels if labels is not None else np.zeros(len(layouts[0]), dtype=int)
    colours = [_PALETTE[int(y) % len(_PALETTE)] for y in ys]
    shown = sorted({int(y) for y in ys}) if labels is not None else []
    per_row = 5
    legend_h = 16 * math.ceil(len(shown) / per_row) if shown else 0
    images = []
    for layout, caption in zip(layouts, captions, strict=True):
        img = Image.new("RGB", (side, side + 24 + legend_h), "white")
        draw = ImageDraw.Draw(img)
        xy = (layout - lo) * scale + 20  # (P, 2) pixels; y grows downwards, as a map's top is drawn first
        for (x, y), colour in zip(xy, colours, strict=True):
            draw.ellipse((x - 2, side - y - 2, x + 2, side - y + 2), fill=colour)
        draw.text((8, side + 4), caption, fill="black")
        for k, y in enumerate(shown):  # the legend: a dot of each label's colour and its name
            lx, ly = 8 + (k % per_row) * (side - 16) // per_row, side + 24 + 16 * (k // per_row)
            draw.ellipse((lx, ly + 3, lx + 8, ly + 11), fill=_PALETTE[y % len(_PALETTE)])
            name = names[y] if names and 0 <= y < len(names) else str(y)
            draw.text((lx + 12, ly), name[:12], fill="black")
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE))
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=400, loop=0)
    return buf.getvalue()


def sample_jpegs(frames: list[Frame]) -> list[bytes] | None:
    """Each frame's decoded prior samples (the same latent points every frame) tiled into one JPEG, or None when
    the frames hold none (data that is not images). JPEG at its own size: a live page re-sends every frame's
    picture each second, and a PNG of 64 grey Fashion-MNIST samples took 50-90 KB against about 12. Each frame's
    JPEG is made once per frame file (a watched training adds a frame an epoch and the page asks for all again)."""
    out = []
    for frame in frames:
        jpeg = _frame_jpeg(*_file_key(frame))
        if jpeg is None:
            return None
        out.append(jpeg)
    return out


@functools.lru_cache(maxsize=1024)  # about 12 KB each
def _frame_jpeg(path: str, mtime_ns: int, size: int) -> bytes | None:
    from PIL import Image

    from ..images import make_grid, to_uint8_hwc

    samples = _read_samples(Path(path))  # (S, C, H, W)
    if samples is None:
        return None
    buf = io.BytesIO()
    grid = to_uint8_hwc(make_grid(samples, ncol=int(np.ceil(np.sqrt(len(samples))))))
    Image.fromarray(grid).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def caption(frame: Frame) -> str:
    elbo = f" · test ELBO {frame.test_elbo:.1f}" if frame.test_elbo is not None else ""
    return f"epoch {frame.epoch:.2f} · step {frame.step:,}{elbo}"
