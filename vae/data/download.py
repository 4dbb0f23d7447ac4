"""Downloading the official IDX archives of MNIST and Fashion-MNIST into the cache, each verified by its
SHA-256 and written into place only whole (a temp file, then ``os.replace``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..progress import Progress, counted
from .base import MAX_FILE_BYTES

IDX_NAMES = {  # role -> official file name (without .gz)
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
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
                counted(progress, done, total, f"downloading {label}")
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise ConnectionError(f"Could not download {url} ({reason}); check the network or the mirror.") from None
    return h.hexdigest()
