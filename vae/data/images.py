"""Users' images: a folder or .zip of PNG / JPEG files (one sub-folder per class), decoded in memory under
limits on count, pixels and bytes, and the zip guards (declared size, member names, read errors) that
.npz archives share.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from ..progress import Progress, counted
from .base import MAX_IMAGE_FILES, MAX_IMAGE_PIXELS, _encode_labels, _Raw, _unit_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


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


# ---------------------------------------------------------------- zip archives


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


# ---------------------------------------------------------------- decoding


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
        if i % 256 == 0 or i == len(members) - 1:
            counted(progress, i + 1, len(members), "reading images")
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
