"""Read and decode image files safely, at the size the model needs: the one decode path.

``read_image(path, min_size=(h, w))`` opens regular files only (``stat`` first, then a
non-blocking open that is checked again), reads at most ``MAX_FILE_BYTES``, reads the header
(Pillow, no pixels decoded) to refuse decompression bombs, and then decodes with OpenCV. A JPEG
is decoded with libjpeg's DCT scaling (1/2, 1/4, 1/8) when the reduced image still covers
``MARGIN`` x ``min_size`` in both dimensions. Other formats are decoded at full size; HEIC/HEIF
(which OpenCV cannot read) through Pillow with ``pillow-heif``. EXIF orientation is applied for
every format that carries it (JPEG, PNG, WebP, AVIF, TIFF; HEIC is rotated by libheif). A file
larger than ``HEAD_BYTES`` must start like an image before the rest of it is read, and a JPEG
with more than ``MAX_JPEG_SCANS`` scans is refused before decoding. Training's cache, the
runtime, ``fashion-label`` and the app's thumbnails all read images through here.
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from fashion_edge.runtime.safe_file import UnsafeFileError, open_regular, read_bounded

try:  # HEIC/HEIF (iPhone photos): a base dependency; without it such files get a one-line reason
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover (pillow-heif is in the base dependencies)
    HEIF_SUPPORTED = False

MAX_PIXELS = 100_000_000  # refuse images whose header says more pixels than this (decompression bombs)
MAX_FILE_BYTES = 200 * 2**20  # never read more than this from one file (bounded reads)
# Refuse decodes whose pixel buffer (width x height x bytes per pixel, from the header) exceeds
# this: a 16-bit RGBA PNG over 16 MP, an 8-bit RGB image over 44 MP decoded at full size. A decode
# peaks at ~2.3x its buffer (conversions); measured: `fashion-label` on a folder with a 130 KB
# 16-bit RGBA PNG of 4000x4190 (just under) and three 12 MP JPEGs peaks at 458 MB RSS.
MAX_DECODE_BYTES = 128 * 2**20
SERIAL_DECODE_BYTES = 32 * 2**20  # decodes larger than this run one at a time (bounded peak memory)
# The reduced JPEG must cover MARGIN x the model's input in both dimensions. Measured with the
# shipped int8 model (benchmarks/decode_accuracy.py, each image re-encoded at 6 sizes, 320-1920 px),
# agreement with a full decode at margin 1 / 1.5 / 2 / 3: catalogue test images 100 % at every
# margin (n=1800); real-dev photos 95.3 / 96.7 / 97.9 / 98.9 %, where the model's own agreement
# under +-1 noise on the input is only 97.5-98 %. 2 keeps 12 MP photos at 1/8 for 80x60 and 160x120
# inputs; 3 would decode them at 1/4 for 160x120 (16 % slower decode).
MARGIN = 2.0
JPEG_SCALES = (8, 4, 2)  # libjpeg-turbo IDCT scaling, largest first
# A progressive JPEG is decoded once per scan over the whole image: 40,000 empty scans in a 1.2 MB
# file took 48 s of CPU. Normal progressive files have about 10 scans (libjpeg's default script),
# at most ~20; libjpeg's own ``-maxscans`` guards the same way.
MAX_JPEG_SCANS = 100
HEAD_BYTES = 64 * 2**10  # a file larger than this must start like an image before the rest is read
PILLOW_FORMATS = ("HEIF",)  # decoded by Pillow (OpenCV has no decoder); already rotated by libheif
ORIENTED_BY_OPENCV = ("JPEG", "TIFF")  # OpenCV applies their orientation itself (JPEG: not IMREAD_UNCHANGED)
_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_SERIAL = threading.Lock()

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own bomb limit: the same number
warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below with one line


class ImageError(ValueError):
    """An image that cannot be decoded; the message says why, without the path."""


@dataclass(frozen=True)
class Header:
    """What the file's header says, before any pixel is decoded."""

    format: str  # Pillow's name: JPEG, PNG, BMP, WEBP, TIFF, ...
    width: int  # as stored (before EXIF orientation)
    height: int
    bytes_per_pixel: int  # of a full decode by OpenCV (IMREAD_UNCHANGED; 3 for JPEG)
    progressive: bool = False
    transposed: bool = False  # EXIF orientation 5..8 swaps width and height
    orientation: int = 1  # EXIF orientation still to apply after OpenCV's decode (1: none)


_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")


def image_kind(head: bytes) -> str | None:
    """The image format the first bytes of a file announce (JPEG, PNG, GIF, BMP, WEBP, TIFF, AVIF,
    HEIF, PNM), or None: used to sniff names without an extension and large files before reading."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(size, len(head), 64), 4)]
        if any(b in _AVIF_BRANDS for b in brands):
            return "AVIF"
        if any(b in _HEIF_BRANDS for b in brands):
            return "HEIF"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3].isspace():
        return "PNM"
    return None


def sniff_image(path: str | Path) -> str | None:
    """``image_kind`` of a file's first 64 bytes; None for a non-image or anything unreadable
    (regular files only: a FIFO or device is never opened for reading)."""
    try:
        with open_regular(path) as f:
            return image_kind(f.read(64))
    except (UnsafeFileError, OSError):
        return None


def _check_head(head: bytes) -> None:
    """Before the rest of a large file is read: it must start like an image, and if its header
    already tells the size, not a decompression bomb."""
    if image_kind(head) is None:
        raise ImageError(
            "not an image (the file does not start like JPEG, PNG, WebP, GIF, HEIC, AVIF, TIFF or BMP)"
        )
    try:
        with Image.open(io.BytesIO(head)) as im:
            w, h = im.size
    except Image.DecompressionBombError:
        w, h = MAX_PIXELS + 1, 1
    except Exception:  # noqa: BLE001 (the header lies beyond the prefix: judged after the full read)
        return
    if w * h > MAX_PIXELS:
        raise ImageError(f"image too large ({w}x{h} pixels, limit {MAX_PIXELS:,})")


def read_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file (symlinks followed), at most ``max_bytes``; ImageError otherwise
    (``safe_file.read_bounded``: FIFOs, devices and sockets are refused without blocking). A file
    larger than ``HEAD_BYTES`` is refused after its first ``HEAD_BYTES`` if it does not start like
    an image or its header says it is a bomb (small files are read in one go, as before)."""
    try:
        return read_bounded(path, max_bytes, head=_check_head, head_bytes=HEAD_BYTES)
    except UnsafeFileError as e:
        text = str(e)
        raise ImageError("is a folder, not an image" if text == "is a folder" else text) from None


def read_header(data: bytes) -> Header:
    """Format and size from the header (no pixels decoded); ImageError for bombs and non-images."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    if image_kind(data[:64]) == "HEIF" and not HEIF_SUPPORTED:
        raise ImageError("HEIC/HEIF image: this install cannot decode it (pillow-heif is missing)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            fmt = im.format or ""
            if w * h > MAX_PIXELS:
                raise ImageError(f"image too large ({w}x{h} pixels, limit {MAX_PIXELS:,})")
            if fmt == "JPEG":
                transposed = _orientation(im) in (5, 6, 7, 8)
                return Header(fmt, w, h, 3, bool(im.info.get("progressive")), transposed)
            tile = im.tile[0][3] if im.tile and len(im.tile[0]) > 3 else None
            raw = str(tile if isinstance(tile, str) else im.mode)
            depth = 4 if im.mode in ("I", "F") else 2 if "16" in raw or "16" in im.mode else 1
            orient = 1 if fmt in ORIENTED_BY_OPENCV + PILLOW_FORMATS else _orientation(im)
            bpp = max(3, len(im.getbands())) * depth
            return Header(fmt, w, h, bpp, transposed=orient in (5, 6, 7, 8), orientation=orient)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own check (> 2 x MAX_IMAGE_PIXELS)
        n = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(n.group(1)):,} pixels" if n else f"more than {MAX_PIXELS:,} pixels"
        raise ImageError(f"image too large ({size}, limit {MAX_PIXELS:,})") from None
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError, EOFError, struct.error):
        raise ImageError("not a decodable image (corrupt, truncated or not an image)") from None


def _orientation(im: Image.Image) -> int:
    """EXIF orientation (1 = as stored); 1 when the EXIF block is unreadable (OpenCV ignores it too)."""
    try:
        o = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 (any corrupt EXIF: decode as stored)
        return 1
    return o if 1 <= o <= 8 else 1


def orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to a decoded HxW(xC) array (what ``ImageOps.exif_transpose`` does)."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = img.swapaxes(0, 1)
    elif orientation == 6:
        img = np.rot90(img, -1)
    elif orientation == 7:
        img = np.rot90(img, 2).swapaxes(0, 1)
    elif orientation == 8:
        img = np.rot90(img, 1)
    else:
        return img
    return np.ascontiguousarray(img)


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers (0xFFDA) in a JPEG: entropy-coded data never holds that byte pair
    (0xFF is stuffed as 0xFF00), so this counts the scans, plus any in an embedded thumbnail."""
    return data.count(b"\xff\xda")


def jpeg_scale(header: Header, min_size: tuple[int, int] | None, margin: float = MARGIN) -> int:
    """The largest DCT reduction (1, 2, 4 or 8) whose output still covers ``margin`` x ``min_size``."""
    if header.format != "JPEG" or not min_size:
        return 1
    h, w = (header.width, header.height) if header.transposed else (header.height, header.width)
    for s in JPEG_SCALES:
        if (h // s) >= margin * min_size[0] and (w // s) >= margin * min_size[1]:
            return s
    return 1


def decode_memory(header: Header, scale: int = 1) -> int:
    """Bytes the decoder needs: the pixel buffer (and a progressive JPEG's full-size coefficients)."""
    pixels = header.width * header.height
    if header.progressive:  # libjpeg keeps all DCT coefficients: 2 bytes x 3 components per pixel
        return pixels * 6 + pixels * 3 // scale**2
    return pixels * header.bytes_per_pixel // scale**2


def _to_rgb(img: np.ndarray) -> np.ndarray:
    """Any OpenCV decode (gray, BGR, BGRA, 16-bit, float) -> HxWx3 uint8 RGB, alpha on white."""
    if img.dtype == np.uint16:
        np.floor_divide(img, 257, out=img)
        img = img.astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        out = np.empty(img.shape[:2] + (3,), np.uint8)
        for y in range(0, img.shape[0], 512):  # in strips: float temporaries stay small
            part = img[y : y + 512]
            alpha = part[:, :, 3:4].astype(np.float32) / 255.0
            rgb = part[:, :, 2::-1].astype(np.float32)  # BGR -> RGB
            out[y : y + 512] = (rgb * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)  # onto white
        return out
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def decode_image(data: bytes, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode encoded image bytes into an HxWx3 uint8 RGB array.

    With ``min_size=(h, w)`` (the model's input) a JPEG is decoded at the largest DCT reduction
    that leaves at least ``MARGIN`` x that size; otherwise at full size. EXIF orientation is
    applied for every format; PNG/WebP/AVIF/HEIC/TIFF/GIF keep alpha (composited on white), 16-bit
    depth (scaled to 8-bit) and grayscale (expanded to 3 channels).
    """
    return decode_sized(data, min_size)[0]


def decode_sized(data: bytes, min_size: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """``decode_image`` plus the full-size (height, width) after EXIF orientation, so that a
    reduced decode can be fitted with exactly the geometry of a full one (``fit_image``)."""
    header = read_header(data)
    full = (header.width, header.height) if header.transposed else (header.height, header.width)
    if header.format == "JPEG" and (scans := jpeg_scans(data)) > MAX_JPEG_SCANS:
        raise ImageError(
            f"JPEG has too many scans ({scans:,}, limit {MAX_JPEG_SCANS}): refused, decoding it would take minutes"
        )
    scale = jpeg_scale(header, min_size)
    need = decode_memory(header, scale)
    if need > MAX_DECODE_BYTES:
        raise ImageError(
            f"image too large to decode ({header.width}x{header.height} {header.format} needs "
            f"{need / 2**20:.0f} MB, limit {MAX_DECODE_BYTES / 2**20:.0f} MB)"
        )
    if need > SERIAL_DECODE_BYTES:
        with _SERIAL:
            img = _decode(data, header, scale)
    else:
        img = _decode(data, header, scale)
    return img, (full if scale > 1 else (img.shape[0], img.shape[1]))


def _decode(data: bytes, header: Header, scale: int) -> np.ndarray:
    """OpenCV's decode (Pillow's for PILLOW_FORMATS) -> RGB uint8, EXIF orientation applied."""
    if header.format in PILLOW_FORMATS:
        return _pillow_decode(data)
    is_jpeg = header.format == "JPEG"
    flags = _REDUCED_FLAGS[scale] if scale > 1 else cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as e:
        raise ImageError(f"cannot decode image ({str(e).strip().splitlines()[-1]})") from None
    if img is None or img.size == 0:
        raise ImageError("not a decodable image (corrupt, truncated or not an image)")
    return orient(_to_rgb(img), header.orientation)


def _pillow_decode(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if "A" in im.getbands() or "transparency" in im.info:
                return _to_rgb(np.asarray(im.convert("RGBA"))[:, :, [2, 1, 0, 3]])
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise ImageError("not a decodable image (corrupt, truncated or not an image)") from None


def read_image(path: str | Path, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file (any path, unicode included) as HxWx3 uint8 RGB; ImageError on failure.

    ``min_size=(h, w)``: the model's input; a JPEG may then be decoded at a reduced size that is
    still at least ``MARGIN`` x this (see ``decode_image``).
    """
    return decode_image(read_file(path), min_size)


def read_sized(
    path: str | Path, min_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """``read_image`` plus the image's full-size (height, width) (see ``decode_sized``)."""
    return decode_sized(read_file(path), min_size)


# Decode workers, measured with benchmarks/photobench.py on 2 pinned cores (taskset) of a quiet host,
# int8 model, 2 inference threads: 200 12 MP JPEGs (~800 KB) 47-55 / 77-88 / 79-115 / 77-100 img/s
# with 1 / 2 / 3 / 4 workers (decode-bound: one per core plus one while the main thread infers);
# 2,000 60x80 thumbnails 740-1,110 img/s with any of 1-4 workers (bound by Python, not decoding),
# so thumbnails keep the old default of 2.
PHOTO_FILE_BYTES = 200_000  # median file size from which a folder counts as photos
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
PHOTO_WORKERS = CORES + 1
THUMBNAIL_WORKERS = 2
MAX_WORKERS = 4 * CORES  # an absurd --workers is clamped to this


def choose_workers(paths: Sequence[str | Path], requested: int | None = None, sample: int = 16) -> int:
    """Decode threads for a folder: ``requested`` clamped to 1..MAX_WORKERS, or else from the median
    size of the first ``sample`` files (photos want more workers than thumbnails)."""
    if requested is not None:
        return max(1, min(int(requested), MAX_WORKERS))
    sizes = []
    for p in paths[:sample]:
        try:
            sizes.append(os.stat(p).st_size)
        except OSError:
            continue
    if not sizes:
        return THUMBNAIL_WORKERS
    return PHOTO_WORKERS if float(np.median(sizes)) >= PHOTO_FILE_BYTES else THUMBNAIL_WORKERS
