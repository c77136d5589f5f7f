"""The one decode path: regular files only, bounded reads, bombs refused from the header, JPEGs
decoded at the reduced size the model needs (EXIF applied), worker count from file sizes."""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fashion_edge.runtime import decode
from fashion_edge.runtime.preprocess import ImageError, decode_image, fit_image, read_image
from tests.onnx_tiny import colour_image, make_tiny_models

REPO = Path(__file__).resolve().parent.parent


def jpeg_bytes(rgb: np.ndarray, quality: int = 92, orientation: int | None = None) -> bytes:
    im = Image.fromarray(rgb)
    buf = io.BytesIO()
    if orientation is None:
        im.save(buf, "JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def photo(h: int, w: int) -> np.ndarray:
    """A smooth synthetic photo: gradients and a dark disc (decodes the same at any DCT scale)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.dstack([255 * x / w, 255 * y / h, 128 + 60 * np.sin(x / w * 6)]).astype(np.uint8)
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 4, (20, 20, 20), -1)
    return img


def jpeg_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny valid JPEG whose SOF header is rewritten to claim width x height (a few hundred bytes)."""
    data = bytearray(jpeg_bytes(np.full((8, 8, 3), 200, np.uint8)))
    i = data.index(b"\xff\xc0")  # baseline SOF0: marker, length(2), precision(1), height(2), width(2)
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """A 16-bit RGBA PNG of zeros: ``rows`` real rows compressed (all of them by default)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    z = zlib.compressobj(9)
    row = bytes(1 + width * 8)
    idat = b"".join(z.compress(row) for _ in range(height if rows is None else rows)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def read_with_timeout(path: Path, seconds: float = 2.0) -> str:
    """The ImageError message of read_image(path); fails the test if it takes longer than ``seconds``."""
    out: list[str] = []

    def run() -> None:
        try:
            read_image(path)
            out.append("no error")
        except ImageError as e:
            out.append(str(e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"read_image({path.name}) still blocked after {seconds} s"
    return out[0]


# --- regular files only, bounded reads -----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_and_device_links_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "x.jpg")
    assert read_with_timeout(tmp_path / "x.jpg") == "not a regular file (a FIFO)"
    if Path("/dev/zero").exists():
        os.symlink("/dev/zero", tmp_path / "zero.jpg")
        assert read_with_timeout(tmp_path / "zero.jpg") == "not a regular file (a character device)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_swapped_in_after_stat_cannot_block(tmp_path, monkeypatch):
    regular = tmp_path / "ok.jpg"
    regular.write_bytes(jpeg_bytes(colour_image(0)))
    os.mkfifo(tmp_path / "x.jpg")
    real_stat = os.stat
    monkeypatch.setattr(decode.os, "stat", lambda p, *a, **k: real_stat(regular))  # stat saw a file
    assert read_with_timeout(tmp_path / "x.jpg") == "not a regular file (a FIFO)"


def test_reads_are_bounded(tmp_path, monkeypatch):
    big = tmp_path / "big.jpg"
    big.write_bytes(jpeg_bytes(photo(400, 300)))
    monkeypatch.setattr(decode, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ImageError, match=r"^file too large"):
        decode.read_file(big, max_bytes=1000)
    assert read_image(big.with_name("big.jpg"), (80, 60)).shape  # the default limit reads it


def test_plain_errors_keep_their_messages(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    good = jpeg_bytes(colour_image(0))
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "dir.jpg").mkdir()
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    want = {
        "zero.jpg": "empty file (0 bytes)",
        "text.jpg": "not a decodable image",
        "truncated.jpg": "not a decodable image",
        "dir.jpg": "is a folder, not an image",
        "dangling.jpg": "file not found",
        "missing.jpg": "file not found",
    }
    for name, msg in want.items():
        with pytest.raises(ImageError) as e:
            read_image(tmp_path / name)
        assert msg in str(e.value) and "\n" not in str(e.value), name


# --- decompression bombs: refused from the header ------------------------------------------------


def test_jpeg_bomb_is_refused_from_the_header():
    data = jpeg_bomb()
    assert len(data) < 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match=r"image too large \(900,000,000 pixels, limit 100,000,000\)"):
        decode_image(data, (80, 60))
    with pytest.raises(ImageError, match="image too large"):
        decode_image(data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: nothing decoded


def test_png_bombs_are_refused_from_the_header():
    with pytest.raises(ImageError, match=r"image too large \(400,000,000 pixels"):
        decode_image(png_bomb(20000, 20000, rows=10))
    # under the pixel limit, but 16-bit RGBA: the pixel buffer alone would be 8 x 40 MP = 320 MB
    with pytest.raises(ImageError, match=r"too large to decode \(8000x5000 PNG needs 305 MB"):
        decode_image(png_bomb(8000, 5000, rows=10))


def test_16bit_rgba_png_under_the_limits_decodes(tmp_path):
    rgba = np.zeros((600, 700, 4), np.uint16)
    rgba[..., 2] = 65535  # red (BGRA order for OpenCV)
    rgba[..., 3] = 65535
    rgba[:100, :, 3] = 0  # transparent strip -> white
    ok, buf = cv2.imencode(".png", rgba)
    img = decode_image(buf.tobytes())
    assert img.shape == (600, 700, 3) and img.dtype == np.uint8
    assert (img[200, 10] == [255, 0, 0]).all() and (img[10, 10] == [255, 255, 255]).all()


# --- JPEGs decoded at the size the model needs ----------------------------------------------------


def test_jpeg_scale_is_the_largest_that_keeps_margin_times_the_input():
    hdr = decode.Header("JPEG", 4000, 3000, 3)  # landscape 12 MP
    assert decode.jpeg_scale(hdr, (80, 60)) == 8  # 375 x 500 >= 160 x 120
    assert decode.jpeg_scale(hdr, (160, 120), margin=3.0) == 4  # 3000/8 = 375 < 480
    assert decode.jpeg_scale(decode.Header("JPEG", 60, 80, 3), (80, 60)) == 1  # catalogue size
    assert decode.jpeg_scale(decode.Header("PNG", 4000, 3000, 3), (80, 60)) == 1  # no DCT scaling
    assert decode.jpeg_scale(hdr, None) == 1
    tall = decode.Header("JPEG", 4000, 400, 3, transposed=True)  # EXIF-rotated: 4000 high, 400 wide
    assert decode.jpeg_scale(tall, (80, 60)) == 2  # 400/2 = 200 >= 120, 400/4 = 100 < 120


def test_reduced_decode_is_smaller_and_matches_the_full_decode():
    src = photo(1200, 1600)
    data = jpeg_bytes(src)
    full = decode_image(data)
    small = decode_image(data, (80, 60))
    assert full.shape == (1200, 1600, 3) and small.shape == (300, 400, 3)  # 1/4: 1/8 would leave 150 < 2 x 80
    a, b = fit_image(full, 80, 60), fit_image(small, 80, 60)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_catalogue_size_jpegs_decode_byte_identical_to_a_full_decode():
    data = jpeg_bytes(colour_image(1), quality=75)  # 80 x 60, like the catalogue
    ref = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decode_image(data, (80, 60)), ref)
    assert np.array_equal(decode_image(data), ref)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_is_applied_after_a_reduced_decode(orientation):
    src = np.zeros((800, 1600, 3), np.uint8)
    src[:, :800] = (255, 0, 0)  # left half red, right half green
    src[:, 800:] = (0, 255, 0)
    data = jpeg_bytes(src, orientation=orientation)
    full, small = decode_image(data), decode_image(data, (40, 30))
    assert small.shape[0] * 8 == full.shape[0] and small.shape[1] * 8 == full.shape[1]
    shrunk = cv2.resize(full, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - small.astype(int)).mean() < 3.0  # same orientation
    if orientation in (6, 8):
        assert full.shape[:2] == (1600, 800)


# --- workers ---------------------------------------------------------------------------------------


def test_workers_follow_file_sizes_and_are_clamped(tmp_path):
    small = [tmp_path / f"s{i}.jpg" for i in range(8)]
    big = [tmp_path / f"b{i}.jpg" for i in range(8)]
    for p in small:
        p.write_bytes(b"x" * 3_000)
    for p in big:
        p.write_bytes(b"x" * 600_000)
    assert decode.choose_workers(small) == decode.THUMBNAIL_WORKERS
    assert decode.choose_workers(big) == decode.PHOTO_WORKERS
    assert decode.choose_workers([]) == decode.THUMBNAIL_WORKERS
    assert decode.choose_workers(big, requested=1000) == decode.MAX_WORKERS == 4 * decode.CORES
    assert decode.choose_workers(big, requested=1) == 1


# --- end to end: fashion-label on a folder of attacks ---------------------------------------------


@pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs FIFOs, /dev/zero"
)
def test_fashion_label_survives_bombs_fifos_and_device_links_in_bounded_memory(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg_bytes(photo(1200, 900)))
    (folder / "bomb.jpg").write_bytes(jpeg_bomb())
    (folder / "bomb2.jpg").write_bytes(jpeg_bomb(12000, 9000))
    (folder / "bomb16.png").write_bytes(png_bomb(11000, 10000, rows=100))  # 110 MP 16-bit RGBA header
    os.mkfifo(folder / "x.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    model = make_tiny_models(tflite=False)["onnx_int8"]
    out = tmp_path / "labels.csv"
    # a wrapper process, so that RUSAGE_CHILDREN sees fashion-label alone
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(p.stderr)\n"
    )
    cmd = [sys.executable, "-c", wrapper, sys.executable, "-m", "fashion_edge.runtime.label_cli", str(folder),
           "--model", str(model), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    rc, maxrss_kib = (int(v) for v in proc.stdout.split())
    assert rc == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert maxrss_kib < 500 * 1024, f"peak RSS {maxrss_kib / 1024:.0f} MB"
    import csv

    with open(out, newline="", encoding="utf-8") as f:
        errors = {r["path"]: r["error"] for r in csv.DictReader(f)}
    assert errors["good.jpg"] == ""
    assert "image too large" in errors["bomb.jpg"] and "image too large" in errors["bomb2.jpg"]
    assert "image too large" in errors["bomb16.png"]
    assert errors["x.jpg"] == "not a regular file (a FIFO)"
    assert errors["zero.jpg"] == "not a regular file (a character device)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_app_thumbnails_use_the_same_decode(qapp, tmp_path):
    from fashion_edge.desktop_app.models.label_table import THUMB, image_pixmap

    src = np.zeros((1200, 1600, 3), np.uint8)  # landscape pixels, EXIF says rotate: portrait
    (tmp_path / "rot.jpg").write_bytes(jpeg_bytes(src, orientation=6))
    pix = image_pixmap(tmp_path / "rot.jpg", THUMB)
    assert pix.height() == THUMB.height() and pix.width() == 48  # 1600x1200 -> 64 high, 48 wide
    os.mkfifo(tmp_path / "x.jpg")
    done: list[bool] = []
    t = threading.Thread(
        target=lambda: done.append(image_pixmap(tmp_path / "x.jpg", THUMB).isNull()), daemon=True
    )
    t.start()
    t.join(2.0)
    assert done == [True]  # an empty thumbnail at once, never a blocked GUI thread


def test_a_reduced_decode_is_placed_exactly_where_the_full_decode_goes(tmp_path):
    from fashion_edge.runtime.metadata import read_metadata
    from fashion_edge.runtime.preprocess import load_for_model, prepare

    meta = read_metadata(make_tiny_models(tflite=False)["onnx_int8"])
    # 1000 x 1042 at 1/4 decodes to 250 x 261, whose own pad-fit is 57 rows high where the full
    # image's is 58: the content would shift by a row. The full-size geometry keeps it in place.
    for h, w in ((1000, 1042), (1000, 1317), (1042, 1000), (2861, 4193)):
        img = np.full((h, w, 3), 255, np.uint8)
        img[:, : w // 2] = (200, 30, 30)
        p = tmp_path / f"{h}x{w}.jpg"
        p.write_bytes(jpeg_bytes(img))
        full = prepare(read_image(p), meta)
        reduced = load_for_model(p, meta)
        white_full = (full == 255).all(axis=2)
        white_red = (reduced == 255).all(axis=2)
        pad_rows_full = np.flatnonzero(~white_full.all(axis=1))
        pad_rows_red = np.flatnonzero(~white_red.all(axis=1))
        assert (pad_rows_full.min(), pad_rows_full.max()) == (pad_rows_red.min(), pad_rows_red.max()), (h, w)
        assert np.abs(full.astype(int) - reduced.astype(int)).mean() < 2.0, (h, w)
