"""Hostile and odd uploads through the real upload path: the loaders in vae/data/, then the Train page.

Every bad file must end in one sentence (a ``ValueError`` from the loader, an ``st.error`` on the
page), never a traceback, and the page must keep working with the form's choices kept. Images are
scikit-learn's digits, so decoded pixels can be checked against the originals.
"""

from __future__ import annotations

import io
import pickle
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from apptest import open_app, shown
from PIL import Image
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from ui.forms import NEW_FORM_KEY
from vae import data
from vae.config import DataConfig

ROOT = Path(__file__).resolve().parents[2]
DIGITS = load_digits()
GLYPHS = np.round(DIGITS.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8) uint8
GREY_PALETTE = [v for i in range(256) for v in (i, i, i)]


# ---------------------------------------------------------------- helpers


def load_file(path: Path, **kw) -> data.Dataset:
    """What the Train page does with a stored upload (through ui.load_data, uncached here)."""
    max_bytes = kw.pop("max_bytes", data.MAX_FILE_BYTES)
    return data.load_dataset(DataConfig(name="file", path=str(path), **kw), max_bytes=max_bytes)


def refusal(path: Path, **kw) -> str:
    """The loader's sentence for a bad file, checked to be one clear sentence."""
    with pytest.raises(ValueError) as info:
        load_file(path, **kw)
    message = str(info.value)
    assert_one_sentence(message)
    return message


def assert_one_sentence(message: str) -> None:
    assert message.endswith(".") and "\n" not in message, message
    assert "Traceback" not in message and " object at 0x" not in message, message


def png(arr: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def digit_zip(path: Path, count: int = 40, folder: str = "digits", encode=png) -> Path:
    """The first ``count`` digits as PNGs in a zip, one sub-folder per class."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(count):
            zf.writestr(f"{folder}/{DIGITS.target[i]}/{i}.png", encode(GLYPHS[i]))
    return path


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return path


def hand_made_zip(entries: list[tuple[str, bytes, int, int]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip built byte by byte, so its headers can lie: (name, stored stream, declared size, CRC-32) per entry."""
    body, central = b"", b""
    date = (1 << 5) | 1  # 1 January 1980
    for name, stream, size, crc in entries:
        n = name.encode()
        local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, date, crc, len(stream), size, len(n), 0)
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, date, crc, len(stream), size, len(n), 0, 0, 0, 0, 0,
            len(body),
        ) + n  # fmt: skip
        body += local + n + stream
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return body + central + end


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zero bytes (about 1/1000 of that on disk)."""
    co, chunk = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(1 << 20)
    return b"".join(co.compress(chunk) for _ in range(mib)) + co.flush()


def cost(fn):
    """(result or exception, seconds, peak Python memory in bytes) of calling ``fn``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001 - returned for the test to inspect
        out = e
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def npy_with_header(shape: tuple[int, ...], descr: str = "<f8", payload: bytes = bytes(64)) -> bytes:
    """A .npy whose header claims ``shape`` but which holds only ``payload``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


class WritesAFile:
    """Unpickling this writes ``marker``: proof that a loader ran pickle (the payload itself needs no import)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


# ---------------------------------------------------------------- .npz / .npy


def test_truncated_npz_is_one_sentence_wherever_it_is_cut(tmp_path):
    path = tmp_path / "digits.npz"
    np.savez_compressed(path, x=GLYPHS[:200], y=DIGITS.target[:200])
    whole = path.read_bytes()
    assert load_file(path).item_shape == (1, 8, 8)
    for cut in range(0, len(whole), len(whole) // 25):
        path.write_bytes(whole[:cut])
        assert "is truncated or not a valid zip archive" in refusal(path)


def test_npz_whose_array_is_cut_short_inside_a_whole_archive_is_refused(tmp_path):
    buf = io.BytesIO()
    np.save(buf, GLYPHS[:100])
    write_zip(tmp_path / "short.npz", {"x.npy": buf.getvalue()[:2000]})
    message = refusal(tmp_path / "short.npz")
    assert "entry 'x.npy' is truncated or not a valid NumPy file (its header promises 6,400 bytes" in message


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_a_forged_npy_header_is_refused_before_numpy_allocates_it(tmp_path, suffix):
    forged = npy_with_header((10**12, 10))  # 80 TB promised, 64 bytes held
    path = tmp_path / f"forged{suffix}"
    if suffix == ".npy":
        path.write_bytes(forged)
    else:
        write_zip(path, {"x.npy": forged})
    out, seconds, peak = cost(lambda: load_file(path))
    assert isinstance(out, ValueError), repr(out)  # unprotected: MemoryError, a traceback on the page
    assert "its header promises 80,000,000,000,000 bytes for shape (1000000000000, 10), the file holds 64" in str(out)
    assert_one_sentence(str(out))
    assert seconds < 1 and peak < 10_000_000


def test_npy_of_pickled_objects_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned.txt"
    np.save(tmp_path / "evil.npy", np.array([WritesAFile(marker), 1], dtype=object), allow_pickle=True)
    (tmp_path / "evil.pkl.npy").write_bytes(pickle.dumps([WritesAFile(marker)]))  # a bare pickle, renamed
    np.savez(tmp_path / "evil.npz", x=np.array([WritesAFile(marker)], dtype=object))
    for name in ("evil.npy", "evil.pkl.npy", "evil.npz"):
        with pytest.raises(ValueError) as info:
            load_file(tmp_path / name)
        assert not marker.exists(), name
        assert "holds pickled Python objects, which are refused because loading them can run code" in str(info.value)
        assert_one_sentence(str(info.value))
    np.load(tmp_path / "evil.npy", allow_pickle=True)  # the payload is live: unpickling it writes the file
    assert marker.read_text() == "unpickled"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"just some text, not numpy", "is truncated or not a valid NumPy file (no NumPy magic string at the start)"),
        (npy_with_header((4, 4), descr="<f8", payload=b""), "its header promises 128 bytes"),
        (b"\x93NUMPY\x03\x00" + bytes(60), "format version 3.0, not 1.0 or 2.0"),
    ],
    ids=["text", "header-only", "version-3"],
)
def test_npy_that_is_not_numpy_output_gets_a_sentence(tmp_path, content, expected):
    (tmp_path / "odd.npy").write_bytes(content)
    assert expected in refusal(tmp_path / "odd.npy")


def test_npz_member_that_is_not_an_array_is_refused(tmp_path):
    # np.load hands such a member back as raw bytes, which used to end in an AttributeError
    write_zip(tmp_path / "raw.npz", {"x": b"hello", "y.npy": b"not an array either"})
    assert "entry 'x' is truncated or not a valid NumPy file" in refusal(tmp_path / "raw.npz")


# ---------------------------------------------------------------- csv


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"a,b\n1,2\n3,oops\n4,5\n", "has text ('oops', line 3) in column 'b'; expected numbers"),
        (b"a,b\n1,2\nNaN,3\n4,5\n", "has a missing or non-finite value in column 'a', line 3; expected a number"),
        (b"a,b\n1,2\n3,\n4,5\n", "has a missing or non-finite value in column 'b', line 3"),
        (b"a,b\n1,2\n3,inf\n4,5\n", "has a missing or non-finite value in column 'b', line 3"),
        (b"a,b\n1,2\n3\n4,5\n", "has 1 fields on line 3 but 2 in its header"),
        (b"a,b\n1,2\n3,4,5\n4,5\n", "has 3 fields on line 3 but 2 in its header"),
        (b"a,b,c\n", "has a header but no data rows"),
        (b"a,b,c", "has a header but no data rows"),
        (b"", "is empty; expected a header row"),
        (b"a,b\n1,2\n", "holds a single sample; expected at least 2"),
        (b"a,\xe9\n1,2\n3,4\n", "could not be read as CSV ('utf-8' codec can't decode"),
        (b"a,b\n1," + b"9" * 200_000 + b"\n3,4\n", "is not valid CSV (field larger than field limit"),
    ],
    ids=["text", "NaN", "empty-cell", "inf", "short-row", "long-row", "header-only", "header-no-newline", "empty",
         "one-row", "latin-1", "huge-field"],
)  # fmt: skip
def test_bad_csv_gets_one_sentence(tmp_path, text, expected):
    (tmp_path / "bad.csv").write_bytes(text)
    assert expected in refusal(tmp_path / "bad.csv")


# ---------------------------------------------------------------- zips of images


def test_digit_zip_with_junk_and_nested_folders_loads_the_real_pixels(tmp_path):
    z = digit_zip(tmp_path / "d.zip", count=60, folder="outer/inner")
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("outer/README.txt", "not an image")
        zf.writestr("outer/inner/3/notes.csv", "1,2")
        zf.writestr("outer/nested.zip", (tmp_path / "d.zip").read_bytes()[:100])
        zf.writestr("__MACOSX/outer/inner/3/._1.png", b"resource fork")
    ds = load_file(z)
    assert ds.item_shape == (1, 8, 8) and ds.label_names == [str(d) for d in range(10)]  # label = the inner folder
    x = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])[:, 0]  # (60, 8, 8)
    y = np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()])
    assert len(x) == 60
    expected = {GLYPHS[i].tobytes(): str(DIGITS.target[i]) for i in range(60)}
    for img, label in zip(np.round(x * 255).astype(np.uint8), y, strict=True):
        assert expected[img.tobytes()] == ds.label_names[label]


def test_zip_of_only_non_image_files_is_refused(tmp_path):
    z = write_zip(tmp_path / "docs.zip", {"a/readme.txt": b"x", "b/c.csv": b"1,2", "d/e.npy": b"\x93NUMPY"})
    assert "holds no PNG or JPEG images; expected image files, one sub-folder per class" in refusal(z)


def test_zip_declaring_gigabytes_is_refused_from_its_headers_before_anything_is_read(tmp_path):
    stream = zlib.compress(bytes(1000))[2:-4]  # a real deflate stream, 1,000 zeros
    declared = 3_000_000_000
    z = tmp_path / "bomb.zip"
    z.write_bytes(hand_made_zip([("cats/bomb.png", stream, declared, zlib.crc32(bytes(1000)))]))
    assert z.stat().st_size < 200
    with zipfile.ZipFile(z) as zf:
        assert zf.infolist()[0].file_size == declared
    out, seconds, peak = cost(lambda: load_file(z))
    assert isinstance(out, ValueError), repr(out)
    assert "bomb.zip declares 3,000,000,000 bytes uncompressed, over the 1,073,741,824-byte limit" in str(out)
    assert_one_sentence(str(out))
    assert seconds < 0.5 and peak < 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]  # nothing extracted


def test_a_real_compressible_bomb_is_refused_by_its_declared_size(tmp_path):
    z = tmp_path / "zeros.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("a/zeros.png", "w") as f:
            for _ in range(32):
                f.write(bytes(1 << 20))  # 32 MiB of zeros
    assert z.stat().st_size < 100_000
    out, seconds, peak = cost(lambda: load_file(z, max_bytes=10_000_000))
    assert isinstance(out, ValueError) and "declares 33,554,432 bytes uncompressed" in str(out), repr(out)
    assert seconds < 0.5 and peak < 1_000_000


def test_a_bomb_understating_its_size_is_read_only_up_to_the_declared_size(tmp_path):
    # 64 MiB of zeros declared as 100 bytes: zipfile.read would inflate all of it in one go
    stream = deflated_zeros(64)
    z = tmp_path / "liar.zip"
    z.write_bytes(hand_made_zip([("a/x.png", stream, 100, zlib.crc32(bytes(100)))]))
    out, seconds, peak = cost(lambda: load_file(z))
    assert isinstance(out, ValueError), repr(out)
    assert "x.png could not be read as an image (unknown or damaged image data)" in str(out)
    assert_one_sentence(str(out))
    assert peak < 16_000_000, f"{peak:,} bytes"


def test_many_large_plain_images_are_refused_by_their_decoded_size(tmp_path):
    # 20 PNGs of 2000×2000 black: 80 kB zipped, 240 MB once decoded as RGB
    z = write_zip(tmp_path / "big.zip", {f"a/{i}.png": png(np.zeros((2000, 2000), np.uint8)) for i in range(20)})
    assert z.stat().st_size < 200_000
    out, seconds, peak = cost(lambda: load_file(z, max_bytes=20_000_000))
    assert isinstance(out, ValueError), repr(out)
    assert "decodes to more than 20,000,000 bytes of pixels by its image a/1.png (2 of 20)" in str(out)
    assert_one_sentence(str(out))
    assert peak < 60_000_000, f"{peak:,} bytes"


@pytest.mark.parametrize("method", [9, 99], ids=["deflate64", "aes"])
def test_zip_with_an_unsupported_compression_method_is_refused(tmp_path, method):
    z = tmp_path / "odd.zip"
    z.write_bytes(hand_made_zip([("a/x.png", b"xx", 2, 0), ("a/y.png", b"yy", 2, 0)], method=method))
    assert "entry 'a/x.png' could not be read (" in refusal(z)
    (tmp_path / "odd.npz").write_bytes(hand_made_zip([("x.npy", b"xx", 2, 0)], method=method))
    assert "entry 'x.npy' could not be read (" in refusal(tmp_path / "odd.npz")


# ---------------------------------------------------------------- image sizes and modes


def paletted(arr: np.ndarray) -> bytes:
    img = Image.fromarray(arr, "P")
    img.putpalette(GREY_PALETTE)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def alpha_glyph(arr: np.ndarray) -> bytes:
    """A white glyph whose shape is in the alpha channel, as icon exports save it."""
    rgba = np.full((*arr.shape, 4), 255, np.uint8)
    rgba[..., 3] = arr
    return png(rgba)


ENCODINGS = {
    "L": png,
    "RGB": lambda a: png(a, "RGB"),
    "RGBA": lambda a: png(a, "RGBA"),
    "P": paletted,
    "LA": lambda a: png(a, "LA"),
    "16-bit": lambda a: png(a.astype(np.uint16) * 257),
    "alpha-glyph": alpha_glyph,
}


@pytest.mark.parametrize("mode", list(ENCODINGS))
def test_every_image_mode_decodes_to_the_same_grey_pixels(tmp_path, mode):
    ds = load_file(digit_zip(tmp_path / "m.zip", count=30, encode=ENCODINGS[mode]))
    assert ds.item_shape == (1, 8, 8)
    got = {img.tobytes() for img in np.round(torch_cat(ds) * 255).astype(np.uint8)[:, 0]}
    assert got == {GLYPHS[i].tobytes() for i in range(30)}


def test_mixed_modes_and_sizes_need_a_size_then_follow_the_resize_rule(tmp_path):
    encode = list(ENCODINGS.values())
    entries = {f"d/{DIGITS.target[i]}/{i}.png": encode[i % len(encode)](GLYPHS[i]) for i in range(28)}
    wide = np.array(Image.fromarray(GLYPHS[28]).resize((16, 12), Image.Resampling.NEAREST))
    entries["d/wide/28.png"] = png(wide, "RGB")
    entries["d/wide/29.jpg"] = png(GLYPHS[29], fmt="JPEG")
    z = write_zip(tmp_path / "mixed.zip", entries)
    assert "has images of different sizes (d/0/0.png is 8×8, d/wide/28.png is 16×12); pick a size" in refusal(z)
    ds = load_file(z, size=28)  # every image stretched to 28×28 (bilinear), whatever its mode or shape
    assert ds.item_shape == (1, 28, 28) and len(ds.x_train) + len(ds.x_test) == 30
    first = np.asarray(Image.fromarray(GLYPHS[0]).resize((28, 28), Image.Resampling.BILINEAR), np.float32) / 255
    assert min(np.abs(img[0] - first).max() for img in torch_cat(ds)) < 1 / 255 + 1e-6


def test_colour_images_give_three_channels(tmp_path):
    tint = lambda a: png(np.stack([a, a // 2, np.zeros_like(a)], -1))
    ds = load_file(digit_zip(tmp_path / "c.zip", count=20, encode=tint))
    assert ds.item_shape == (3, 8, 8)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_named_png_are_refused(tmp_path, fmt):
    z = digit_zip(tmp_path / "f.zip", count=4, encode=lambda a: png(a, fmt=fmt))
    assert "could not be read as an image (unknown or damaged image data); expected a PNG or JPEG file" in refusal(z)


def torch_cat(ds: data.Dataset) -> np.ndarray:
    return np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])


# ---------------------------------------------------------------- size limit, 0 and 1 samples, many classes


def test_files_over_the_loaders_limit_are_refused_before_being_read(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"\x80garbage that is never parsed" * 100)
    (tmp_path / "junk.csv").write_bytes(b"\x00\x01" * 2000)
    digit_zip(tmp_path / "junk.zip", count=40)
    for name in ("junk.npy", "junk.csv", "junk.zip"):
        size = (tmp_path / name).stat().st_size
        message = refusal(tmp_path / name, max_bytes=1000)
        assert f"{name} is {size:,} bytes, over the 1,000-byte limit; expected a smaller file." in message


ZERO_AND_ONE = [
    ("none.npy", lambda p: np.save(p, np.zeros((0, 8, 8), np.uint8)), "holds an empty array of shape (0, 8, 8)"),
    ("none.npz", lambda p: np.savez(p, x=np.zeros((0, 64))), "holds an empty array of shape (0, 64)"),
    ("none.csv", lambda p: p.write_text("a,b\n"), "has a header but no data rows"),
    ("none.zip", lambda p: write_zip(p, {"a/readme.txt": b"x"}), "holds no PNG or JPEG images"),
    ("one.npy", lambda p: np.save(p, GLYPHS[:1]), "holds a single sample; expected at least 2"),
    ("one.npz", lambda p: np.savez(p, x=GLYPHS[:1], y=DIGITS.target[:1]), "holds a single sample"),
    ("one.csv", lambda p: p.write_text("a,b\n1,2\n"), "holds a single sample"),
    ("one.zip", lambda p: digit_zip(p, count=1), "holds a single sample"),
]


@pytest.mark.parametrize(("name", "content", "expected"), ZERO_AND_ONE, ids=[c[0] for c in ZERO_AND_ONE])
def test_zero_and_one_sample_are_refused(tmp_path, name, content, expected):
    content(tmp_path / name)
    assert expected in refusal(tmp_path / name)


def test_two_samples_are_enough_for_one_train_and_one_test_item(tmp_path):
    ds = load_file(digit_zip(tmp_path / "two.zip", count=2))
    assert (len(ds.x_train), len(ds.x_test)) == (1, 1) and ds.label_names == ["0", "1"]


def test_a_label_column_of_ten_thousand_classes_is_refused_and_the_file_loads_without_it(tmp_path):
    rows = "".join(f"{i % 97},{(i * 7) % 13},{i}\n" for i in range(10_000))
    (tmp_path / "ids.csv").write_text("f1,f2,label\n" + rows)
    message = refusal(tmp_path / "ids.csv", label_column="label")
    assert "column 'label' has 10,000 distinct labels, more than the 1000 allowed classes" in message
    assert "choose other labels or none" in message
    ds = load_file(tmp_path / "ids.csv")  # no label column: the numbers are three features
    assert ds.item_shape == (3,) and ds.label_names is None and len(ds.x_train) == 8000


def test_the_class_limit_is_exactly_max_classes(tmp_path):
    n = data.MAX_CLASSES
    np.savez(tmp_path / "ok.npz", x=np.arange(2 * n, dtype=np.float32)[:, None], y=np.arange(2 * n) % n)
    assert len(load_file(tmp_path / "ok.npz").label_names) == n
    np.savez(tmp_path / "many.npz", x=np.arange(2 * n + 2, dtype=np.float32)[:, None], y=np.arange(2 * n + 2) // 2)
    assert f"has {n + 1:,} distinct labels" in refusal(tmp_path / "many.npz")


# ---------------------------------------------------------------- the Train page (AppTest)


# ``runs`` (tests/conftest.py): a private copy of the finished digits run, made the app's runs folder.


def open_upload_form(epochs: int = 7) -> AppTest:
    at = open_app("train", state={NEW_FORM_KEY: True}, timeout=60)  # the form open, as "New run" leaves it
    at.number_input(key="train_epochs").set_value(epochs).run()
    at.radio(key="train_source").set_value("Upload a file").run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, content: bytes) -> list[str]:
    """Upload a file through the page's uploader; the page's error sentences."""
    mime = {".csv": "text/csv", ".zip": "application/zip"}.get(Path(name).suffix, "application/octet-stream")
    at.file_uploader(key="train_upload").set_value((name, content, mime)).run()
    assert not at.exception, at.exception
    return [shown(e.value) for e in at.error]


def assert_page_keeps_working(at: AppTest, tmp: Path, epochs: int = 7) -> None:
    """A good digits zip loads after the bad files, with the form's earlier choice kept."""
    good = digit_zip(tmp / "good.zip", count=50).read_bytes()
    assert upload(at, "good.zip", good) == []
    assert "40 training and 10 test images of 1×8×8, 10 classes." in [c.value for c in at.caption]
    assert not at.button(key="train_start").disabled
    assert at.number_input(key="train_epochs").value == epochs


def bad_files(tmp: Path, marker: Path) -> dict[str, tuple[bytes, str]]:
    """Upload name -> (content, what the page must say)."""
    np.savez(tmp / "t.npz", x=GLYPHS[:300])
    np.save(tmp / "evil.npy", np.array([WritesAFile(marker)], dtype=object), allow_pickle=True)
    stream = zlib.compress(bytes(1000))[2:-4]
    return {
        "cut.npz": ((tmp / "t.npz").read_bytes()[:5000], "cut.npz is truncated or not a valid zip archive"),
        "evil.npy": ((tmp / "evil.npy").read_bytes(), "evil.npy holds pickled Python objects, which are refused"),
        "forged.npy": (npy_with_header((10**12, 10)), "forged.npy is truncated or not a valid NumPy file"),
        "nan.csv": (b"a,b\n1,2\nNaN,3\n4,5\n", "nan.csv has a missing or non-finite value in column 'a', line 3"),
        "text.csv": (b"a,b\n1,2\nabc,3\n", "text.csv has text ('abc', line 3) in column 'a'"),
        "ragged.csv": (b"a,b\n1,2\n3\n", "ragged.csv has 1 fields on line 3 but 2 in its header"),
        "header.csv": (b"a,b,c\n", "header.csv has a header but no data rows"),
        "bomb.zip": (
            hand_made_zip([("c/bomb.png", stream, 3_000_000_000, zlib.crc32(bytes(1000)))]),
            "bomb.zip declares 3,000,000,000 bytes uncompressed",
        ),
        "docs.zip": (write_zip(tmp / "docs.zip", {"a/b.txt": b"x"}).read_bytes(), "docs.zip holds no PNG or JPEG"),
        "gif.zip": (
            digit_zip(tmp / "gif.zip", 4, encode=lambda a: png(a, fmt="GIF")).read_bytes(),
            "could not be read as an image (unknown or damaged image data); expected a PNG or JPEG file.",
        ),
        "empty.npy": (npy_bytes(np.zeros((0, 8, 8))), "empty.npy holds an empty array of shape (0, 8, 8)"),
        "one.npy": (npy_bytes(GLYPHS[:1]), "one.npy holds a single sample; expected at least 2"),
    }


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.slow
def test_page_turns_every_bad_upload_into_one_sentence_and_keeps_working(runs, tmp_path):
    marker = tmp_path / "pwned.txt"
    at = open_upload_form()
    for name, (content, expected) in bad_files(tmp_path, marker).items():
        errors = upload(at, name, content)
        assert len(errors) == 1 and expected in errors[0], (name, errors)
        assert_one_sentence(errors[0])
        assert errors[0].startswith(name) and str(runs) not in errors[0]  # named as uploaded, not as stored
        assert "train_start" not in [b.key for b in at.button], name
    assert not marker.exists()
    assert_page_keeps_working(at, tmp_path)


def test_page_mixed_image_sizes_ask_for_a_size_then_train_on_the_resized_images(runs, tmp_path):
    entries = {f"d/{DIGITS.target[i]}/{i}.png": list(ENCODINGS.values())[i % 7](GLYPHS[i]) for i in range(40)}
    entries["d/9/big.png"] = png(np.array(Image.fromarray(GLYPHS[40]).resize((16, 16))), "RGBA")
    at = open_upload_form()
    errors = upload(at, "mixed.zip", write_zip(tmp_path / "mixed.zip", entries).read_bytes())
    assert errors == [
        "mixed.zip has images of different sizes (d/0/0.png is 8×8, d/9/big.png is 16×16); "
        "pick a size to resize them all to."
    ]
    at.selectbox(key="train_resize").set_value(28).run()
    assert not at.exception and not at.error
    assert "32 training and 9 test images of 1×28×28, 10 classes." in [c.value for c in at.caption]
    assert at.radio(key="train_arch").options == ["MLP", "Convolutional"]  # 28×28 allows a conv model
    assert at.number_input(key="train_epochs").value == 7


def test_page_label_column_of_ten_thousand_classes_gets_a_sentence_and_no_labels_works(runs):
    rows = "".join(f"{i % 97},{(i * 7) % 13},{i}\n" for i in range(10_000))
    at = open_upload_form()
    errors = upload(at, "ids.csv", ("f1,f2,label\n" + rows).encode())
    assert at.selectbox(key="train_label_col").value == "label"  # guessed from its name
    assert errors == [
        "ids.csv column 'label' has 10,000 distinct labels, more than the 1000 allowed classes; "
        "expected class names, not IDs or measurements, so choose other labels or none."
    ]
    at.selectbox(key="train_label_col").set_value("(no labels)").run()
    assert not at.exception and not at.error
    assert "8,000 training and 2,000 test rows of 3 features, no labels." in [c.value for c in at.caption]
    assert at.number_input(key="train_epochs").value == 7


def test_page_upload_over_the_loaders_limit_gets_a_sentence(runs, monkeypatch):
    monkeypatch.setitem(data.load_dataset.__kwdefaults__, "max_bytes", 2000)
    at = open_upload_form()
    content = npy_bytes(GLYPHS[:100])
    assert upload(at, "big.npy", content) == [
        f"big.npy is {len(content):,} bytes, over the 2,000-byte limit; expected a smaller file."
    ]
    assert upload(at, "small.npy", npy_bytes(GLYPHS[:20])) == []
    assert at.number_input(key="train_epochs").value == 7


@pytest.mark.slow
def test_page_guesses_the_label_column_of_an_excel_csv_with_a_byte_order_mark(runs):
    rows = "".join(f"{DIGITS.target[i]},{','.join(str(int(v)) for v in DIGITS.data[i])}\n" for i in range(200))
    header = "label," + ",".join(f"p{j}" for j in range(64)) + "\n"
    at = open_upload_form()
    assert upload(at, "excel.csv", ("\ufeff" + header + rows).encode()) == []
    assert at.selectbox(key="train_label_col").value == "label"
    assert "160 training and 40 test rows of 64 features, 10 classes." in [c.value for c in at.caption]
