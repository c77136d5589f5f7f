"""Issue 22, reading half: every hostile input is refused in one line or read right, never a hang,
a memory blow-up or a traceback. Each test is the attack itself: a real FIFO, a real /dev/zero link,
real rotated files, a real many-scan JPEG, a real zip-bomb adapter, run through the entry points."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import resource
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from fashion_edge.runtime import ModelLoadError, decode, load
from fashion_edge.runtime.adapter import fit_adapter, load_adapter, save_adapter
from fashion_edge.runtime.adapter_gate import examples_from_folder
from fashion_edge.runtime.label_cli import main
from fashion_edge.runtime.metadata import ModelMetadata, read_metadata
from fashion_edge.runtime.preprocess import ImageError, is_image_file, list_images, read_image
from tests.adapter_tiny import COLOURS, coloured, make_embedding_model
from tests.onnx_tiny import colour_image, make_tiny_models
from tests.test_decode import png_chunk

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
needs_dev_zero = pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_tiny_models(tmp_path_factory.mktemp("tiny"), tflite=False)["onnx_int8"]


@pytest.fixture(scope="module")
def emb_model(tmp_path_factory) -> Path:
    return make_embedding_model(tmp_path_factory.mktemp("emb") / "model.onnx")


def label(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, "PNG")
    return path


def learn_folder(root: Path) -> Path:
    for cls, colour in (("Tshirts", "red"), ("Watches", "green"), ("Jeans", "yellow")):
        for i in range(3):
            write_png(root / cls / f"{i}.png", coloured(COLOURS[colour], i))
    return root


# --- 5. EXIF orientation for every format that carries it ------------------------------------------


def upright() -> np.ndarray:
    """A 60x80 image with no symmetry: any wrong rotation or flip changes it."""
    y, x = np.mgrid[0:60, 0:80]
    return np.dstack([x * 3, y * 4, np.full_like(x, 128)]).astype(np.uint8)


def saved_rotated(fmt: str, orientation: int = 6, **kw) -> bytes:
    """``upright()`` stored sideways (as a phone does) with EXIF orientation 6: rotate 90 CW to view."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(upright(), 1))).save(buf, fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "suffix", "kw", "tolerance"),
    [
        ("PNG", ".png", {}, 0.0),
        ("WEBP", ".webp", {"lossless": True}, 0.0),
        ("WEBP", ".webp", {"quality": 95}, 3.0),
        ("TIFF", ".tif", {}, 0.0),
        ("AVIF", ".avif", {"quality": 95}, 3.0),
        ("HEIF", ".heic", {"quality": 95}, 3.0),
        ("JPEG", ".jpg", {"quality": 95}, 3.0),
    ],
)
def test_a_photo_saved_rotated_decodes_upright_in_every_format(tmp_path, fmt, suffix, kw, tolerance):
    path = tmp_path / f"rotated{suffix}"
    path.write_bytes(saved_rotated(fmt, **kw))
    img = read_image(path)
    assert img.shape == upright().shape
    assert np.abs(img.astype(int) - upright()).mean() <= tolerance


def test_every_exif_orientation_matches_pillow_on_png(tmp_path):
    src = np.random.default_rng(0).integers(0, 255, (6, 9, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.png"
        Image.fromarray(src).save(path, exif=exif.tobytes())
        want = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        assert np.array_equal(read_image(path), want), orientation


def test_a_rotated_png_gives_the_model_the_same_input_as_the_upright_one(model, tmp_path):
    clf = load(model)
    src = np.full((80, 60, 3), 255, np.uint8)
    src[:50, :, 0] = 40  # a cyan top half: wrong if the image is not turned upright
    write_png(tmp_path / "upright.png", src)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(src, 1))).save(tmp_path / "turned.png", exif=exif.tobytes())
    assert np.array_equal(clf.prepare(tmp_path / "turned.png"), clf.prepare(tmp_path / "upright.png"))


# --- 6. HEIC, AVIF, JFIF, GIF and names without an extension --------------------------------------


def test_heic_avif_jfif_and_gif_are_labelled_not_skipped(model, tmp_path, capsys):
    folder = tmp_path / "inbox"
    folder.mkdir()
    img = Image.fromarray(colour_image(1))  # a "Watches" colour
    img.save(folder / "IMG_0001.HEIC", "HEIF", quality=95)
    img.save(folder / "b.avif", "AVIF", quality=95)
    img.save(folder / "c.jfif", "JPEG", quality=95)
    img.save(folder / "d.gif", "GIF")
    out = tmp_path / "labels.csv"
    code, text, err = label([str(folder), "--model", str(model), "--out", str(out)], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert sorted(r["path"] for r in rows) == ["IMG_0001.HEIC", "b.avif", "c.jfif", "d.gif"]
    assert {r["label"] for r in rows} == {"Watches"} and not any(r["error"] for r in rows)
    assert "labelled 4 images" in text


def test_a_heic_without_its_decoder_gets_one_clear_reason(tmp_path, monkeypatch):
    path = tmp_path / "IMG_0002.HEIC"
    Image.fromarray(colour_image(0)).save(path, "HEIF")
    monkeypatch.setattr(decode, "HEIF_SUPPORTED", False)
    with pytest.raises(ImageError, match=r"^HEIC/HEIF image: .*pillow-heif"):
        read_image(path)


@needs_fifo
@pytest.mark.timeout(20)
def test_names_without_an_extension_are_images_when_their_bytes_are(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    write_png(folder / "photo", colour_image(0))  # a PNG without a suffix
    Image.fromarray(colour_image(2)).save(folder / "IMG_9", "JPEG")
    (folder / "README").write_text("not an image")
    os.mkfifo(folder / "pipe")  # sniffing never opens it for reading
    assert [p.name for p in list_images(folder)] == ["IMG_9", "photo"]
    assert not is_image_file(folder / "README") and not is_image_file(folder / "pipe")
    assert is_image_file(folder / "x.HEIC") and is_image_file(folder / "x.jfif")  # by suffix only
    assert read_image(folder / "photo").shape == (80, 60, 3)


# --- 8/9. FIFOs and /dev/zero as the model, the adapter or a learn-from photo ----------------------


@needs_fifo
@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["model.onnx", "model.tflite"])
def test_a_fifo_as_the_model_is_refused_without_blocking(tmp_path, capsys, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    (tmp_path / "in").mkdir()
    code, _, err = label([str(tmp_path / "in"), "--model", str(fifo)], capsys)
    assert code == 2 and one_line(err).endswith(f"{fifo}: not a regular file (a FIFO)")
    with pytest.raises(ModelLoadError, match="not a regular file"):
        load(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_metadata(fifo)


@needs_dev_zero
@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["model.onnx", "model.tflite"])
def test_dev_zero_linked_as_the_model_is_refused_without_reading(tmp_path, name):
    """In a child process with 3 GB of address space: reading /dev/zero fails there, not here."""
    link = tmp_path / name
    os.symlink("/dev/zero", link)
    (tmp_path / "in").mkdir()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    res = subprocess.run(
        [sys.executable, "-m", "fashion_edge.runtime.label_cli", str(tmp_path / "in"), "--model", str(link)],
        capture_output=True, text=True, timeout=20, preexec_fn=limit, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 2 and one_line(res.stderr).endswith("not a regular file (a character device)")


def test_a_model_over_the_size_limit_is_refused_before_it_is_read(model, monkeypatch):
    from fashion_edge.runtime import backends

    monkeypatch.setattr(backends, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(ModelLoadError, match=r"model_int8.onnx: file too large"):
        load(model)


@needs_fifo
@needs_dev_zero
@pytest.mark.timeout(20)
def test_a_fifo_or_dev_zero_as_the_adapter_is_refused(emb_model, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    os.mkfifo(tmp_path / "fifo.npz")
    os.symlink("/dev/zero", tmp_path / "zero.npz")
    for name, why in (("fifo.npz", "a FIFO"), ("zero.npz", "a character device")):
        code, _, err = label([str(tmp_path / "in"), "--model", str(emb_model), "--adapter", str(tmp_path / name)],
                             capsys)  # fmt: skip
        assert code == 2 and one_line(err).endswith(f"{name}: not a regular file ({why})")


@needs_fifo
@needs_dev_zero
@pytest.mark.timeout(60)
def test_fifos_and_dev_zero_among_learn_from_photos_are_left_out(emb_model, tmp_path, capsys):
    learn = learn_folder(tmp_path / "learn")
    os.mkfifo(learn / "Jeans" / "pipe.jpg")
    os.symlink("/dev/zero", learn / "Jeans" / "zero.png")
    os.symlink("/etc/passwd", learn / "Jeans" / "passwd.jpg")
    todo = tmp_path / "todo"
    write_png(todo / "y.png", coloured(COLOURS["yellow"], 99))
    code, _, err = label([str(todo), "--model", str(emb_model), "--out", str(tmp_path / "l.csv"),
                          "--learn-from", str(learn)], capsys)  # fmt: skip
    assert code == 0, err
    assert "adapter learned from 9 items" in err


# --- 10. a progressive JPEG with thousands of empty scans ---------------------------------------------


def many_scan_jpeg(scans: int) -> bytes:
    """A flat 1024x1024 progressive JPEG with its last (tiny, empty) scan repeated: every repeat
    costs libjpeg a pass over the whole image (2,000 repeats: 2 s; 40,000: 48 s)."""
    buf = io.BytesIO()
    Image.fromarray(np.full((1024, 1024, 3), 200, np.uint8)).save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * scans + b"\xff\xd9"


@pytest.mark.timeout(20)
def test_a_jpeg_with_40000_empty_scans_is_refused_before_decoding(model, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "scans.jpg").write_bytes(many_scan_jpeg(40_000))
    write_png(folder / "ok.png", colour_image(0))
    t0 = time.process_time()
    code, text, _ = label([str(folder), "--model", str(model), "--out", str(tmp_path / "l.csv")], capsys)
    assert time.process_time() - t0 < 10  # 48 s of CPU before the limit
    assert code == 1 and "labelled 2 images (1 errors" in text
    rows = {r["path"]: r for r in csv.DictReader(open(tmp_path / "l.csv", encoding="utf-8"))}
    assert rows["scans.jpg"]["error"].startswith("JPEG has too many scans (40,")
    assert rows["ok.png"]["label"] == "Tshirts"

    few = many_scan_jpeg(150)  # the same file is valid: with a higher limit it decodes
    with pytest.raises(ImageError, match="too many scans"):
        decode.decode_image(few)
    monkeypatch.setattr(decode, "MAX_JPEG_SCANS", 1000)
    assert decode.decode_image(few).shape == (1024, 1024, 3)


def test_normal_progressive_jpegs_stay_well_under_the_scan_limit():
    buf = io.BytesIO()
    Image.fromarray(colour_image(0, 400, 300)).save(buf, "JPEG", progressive=True)
    assert decode.jpeg_scans(buf.getvalue()) <= 20 < decode.MAX_JPEG_SCANS
    assert decode.decode_image(buf.getvalue()).shape == (400, 300, 3)


# --- 11. bounded loading ---------------------------------------------------------------------------


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic string included


def adapter_file(emb_model: Path, tmp_path: Path) -> Path:
    clf = load(emb_model)
    ex = [
        (coloured(COLOURS[c], i), n) for c, n in (("red", "Tshirts"), ("yellow", "Jeans")) for i in range(3)
    ]
    path = tmp_path / "adapter.npz"
    save_adapter(fit_adapter(clf, ex, catalogue=None), path)
    return path


def rewrite_npz(src: Path, dst: Path, members: dict[str, bytes]) -> Path:
    """``src`` with some members replaced (raw npy bytes), deflated like np.savez_compressed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, members.get(name, zin.read(name)))
    return dst


def test_a_zip_bomb_adapter_is_refused_from_its_headers(emb_model, tmp_path, capsys):
    good = adapter_file(emb_model, tmp_path)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in ("b.npy", "info.npy"):
            zout.writestr(name, zin.read(name))
        with zout.open("W.npy", "w", force_zip64=True) as f:  # 200 MB of zeros: a 200 KB file
            f.write(npy_header((5000, 5000)))
            chunk = bytes(8 * 2**20)
            for _ in range(25):
                f.write(chunk)
    assert bomb.stat().st_size < 2**20
    clf = load(emb_model)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb.npz: member W.npy inflates to 209,715,328 bytes"):
            load_adapter(bomb, clf)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20

    liar = rewrite_npz(good, tmp_path / "liar.npz", {"W.npy": npy_header((60000, 60000)) + bytes(64)})
    code, _, err = label([str(tmp_path), "--model", str(emb_model), "--adapter", str(liar)], capsys)
    assert code == 2 and one_line(err).endswith("liar.npz: member W.npy would take 28,800,000,000 bytes "
                                                "(limit 67,108,864)")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda info: [info], "its record is not an object"),
        (lambda info: {**info, "new_classes": 5}, "'new_classes' is not a list of names"),
        (lambda info: {**info, "alpha": "strong"}, "'alpha' is not a finite number"),
        (lambda info: {**info, "review_threshold": "0.5"}, "'review_threshold' is not a number in [0, 1]"),
        (lambda info: {**info, "classes": [*info["classes"][:-1], "../etc"]}, "contains '/'"),
        (lambda info: {**info, "counts": [1, 2]}, "'counts' is not an object of counts"),
        (lambda info: {**info, "notes": "x" * 10}, "'notes' is not a list of names"),
    ],
)
def test_an_adapter_with_wrong_field_types_is_one_line(emb_model, tmp_path, capsys, change, message):
    good = adapter_file(emb_model, tmp_path)
    with np.load(good) as z:
        info = json.loads(str(z["info"]))
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(change(info))))
    bad = rewrite_npz(good, tmp_path / "bad.npz", {"info.npy": buf.getvalue()})
    code, _, err = label([str(tmp_path), "--model", str(emb_model), "--adapter", str(bad)], capsys)
    assert code == 2 and "bad.npz: " in one_line(err) and message in err


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_an_adapter_with_nan_or_inf_parameters_is_one_line(emb_model, tmp_path, capsys, value):
    good = adapter_file(emb_model, tmp_path)
    with np.load(good) as z:
        w = z["W"].copy()
    w[0, 0] = value
    buf = io.BytesIO()
    np.save(buf, w)
    bad = rewrite_npz(good, tmp_path / "nan.npz", {"W.npy": buf.getvalue()})
    code, _, err = label([str(tmp_path), "--model", str(emb_model), "--adapter", str(bad)], capsys)
    assert code == 2 and one_line(err).endswith(
        "nan.npz: adapter parameters are not all finite numbers (damaged file)"
    )


def test_a_deeply_nested_adapter_record_is_one_line(emb_model, tmp_path, capsys):
    good = adapter_file(emb_model, tmp_path)
    buf = io.BytesIO()
    np.save(buf, np.array("[" * 100_000 + "]" * 100_000))
    bad = rewrite_npz(good, tmp_path / "deep.npz", {"info.npy": buf.getvalue()})
    code, _, err = label([str(tmp_path), "--model", str(emb_model), "--adapter", str(bad)], capsys)
    assert code == 2 and one_line(err).endswith("deep.npz: adapter record is nested too deeply")


def test_a_large_non_image_is_refused_after_reading_only_its_head(tmp_path, monkeypatch):
    from fashion_edge.runtime import safe_file

    path = tmp_path / "video.jpg"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(8 * 2**20))
    real_open = safe_file.open_regular
    read: list[int] = []

    class Counting:  # the opened file, counting the bytes read from it
        def __init__(self, f: io.BufferedReader) -> None:
            self.f = f

        def read(self, n: int = -1) -> bytes:
            data = self.f.read(n)
            read.append(len(data))
            return data

        def fileno(self) -> int:
            return self.f.fileno()

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

    monkeypatch.setattr(safe_file, "open_regular", lambda p, m=None: Counting(real_open(p, m)))
    with pytest.raises(ImageError, match="^not an image"):
        read_image(path)
    assert sum(read) == decode.HEAD_BYTES

    bomb = tmp_path / "bomb.png"  # a PNG header claiming 50,000 x 50,000, padded past the head
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", bytes(2**20)))
    read.clear()
    with pytest.raises(ImageError, match="^image too large"):
        read_image(bomb)
    assert sum(read) == decode.HEAD_BYTES


def test_an_absurd_batch_size_is_refused_in_one_line(model, tmp_path, capsys):
    code, _, err = label([str(tmp_path), "--model", str(model), "--batch-size", "1000000000"], capsys)
    assert code == 2 and one_line(err) == "fashion-label: error: --batch-size must be at most 1024"


# --- 12. one line, not a traceback -----------------------------------------------------------------


def test_ray_missing_is_one_line_before_any_adapter_fit(emb_model, tmp_path, capsys, monkeypatch):
    import fashion_edge.runtime.adapter as adapter_module

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed

    def no_fit(*a, **k):
        raise AssertionError("the adapter was fitted before --ray was checked")

    monkeypatch.setattr(adapter_module, "fit_adapter", no_fit)
    learn = learn_folder(tmp_path / "learn")
    code, _, err = label(
        [str(tmp_path), "--model", str(emb_model), "--learn-from", str(learn), "--ray"], capsys
    )
    assert (
        code == 2
        and one_line(err) == "fashion-label: error: --ray needs Ray: pip install 'fashion-edge[scale]'"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pad_value": 1000}, "pad_value 1000 is not a whole number in 0..255"),
        ({"height": 80.0}, "height 80.0 is not a whole number"),
        ({"color_order": 5}, "color_order 5 is not RGB, BGR or GRAY"),
        ({"channels": 4}, "channels 4 is not 1 or 3"),
        ({"outputs": "scores"}, "outputs 'scores' is unknown"),
        ({"input_range": 255}, "input_range 255 is not two numbers"),
        ({"embedding_size": "6"}, "embedding_size '6' is not a positive whole number"),
    ],
)
def test_model_metadata_that_would_crash_mid_run_is_refused_at_load(model, tmp_path, capsys, change, message):
    meta = load(model).meta.to_dict()
    bad = tmp_path / "bad.onnx"
    with pytest.raises(ValueError):  # ModelMetadata itself refuses it: write the JSON by hand
        ModelMetadata.from_dict({**meta, **change})
    import onnx
    from onnx import helper

    m = onnx.load(str(model))
    del m.metadata_props[:]
    helper.set_model_props(m, {"fashion_edge": json.dumps({**meta, **change})})
    onnx.save(m, str(bad))
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", colour_image(0))
    code, _, err = label(
        [str(tmp_path / "in"), "--model", str(bad), "--out", str(tmp_path / "l.csv")], capsys
    )
    assert (
        code == 2 and one_line(err).startswith(f"fashion-label: error: {bad}: metadata ") and message in err
    )


# --- 13. checks at the right time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("Needs_Review", "'Needs_Review' cannot be a class (it is reserved)"),
        ("new\nline", "cannot be a class (it contains a control character)"),
        ("=cmd", "cannot be a class (it starts like a spreadsheet formula)"),
        ("hat", "'hat' differs only in case from 'Hat' (another folder)"),
        ("watches", "'watches' differs only in case from 'Watches' (a class of the model)"),
    ],
)
def test_learn_from_refuses_bad_class_folders_before_the_fit(emb_model, tmp_path, capsys, monkeypatch, folder,
                                                             message):  # fmt: skip
    import fashion_edge.runtime.adapter as adapter_module

    monkeypatch.setattr(adapter_module, "fit_adapter", lambda *a, **k: pytest.fail("fitted before the check"))
    learn = learn_folder(tmp_path / "learn")
    write_png(learn / "Hat" / "0.png", coloured(COLOURS["blue"], 1))
    write_png(learn / folder / "0.png", coloured(COLOURS["blue"], 2))
    code, _, err = label([str(tmp_path), "--model", str(emb_model), "--learn-from", str(learn)], capsys)
    line = err.strip()
    assert code == 2 and message in line and str(learn) in line and str(emb_model) not in line
    assert line.count("\n") == (1 if "\n" in folder else 0)  # only the folder's own newline


@needs_fifo
@needs_dev_zero
@pytest.mark.timeout(20)
def test_save_adapter_refuses_a_fifo_or_device_before_the_fit(emb_model, tmp_path, capsys, monkeypatch):
    import fashion_edge.runtime.adapter as adapter_module

    monkeypatch.setattr(adapter_module, "fit_adapter", lambda *a, **k: pytest.fail("fitted before the check"))
    learn = learn_folder(tmp_path / "learn")
    os.mkfifo(tmp_path / "fifo.npz")
    os.symlink("/dev/null", tmp_path / "null.npz")
    for name, why in (("fifo.npz", "a FIFO"), ("null.npz", "a character device")):
        target = tmp_path / name
        code, _, err = label([str(tmp_path), "--model", str(emb_model), "--learn-from", str(learn),
                              "--save-adapter", str(target)], capsys)  # fmt: skip
        assert code == 2 and one_line(err).endswith(
            f"{name}: cannot save the adapter there (not a regular file ({why}))"
        )
    assert not (tmp_path / "fifo.npz").is_file() and (tmp_path / "null.npz").is_symlink()


def test_examples_from_folder_checks_names_before_reading_images(tmp_path, monkeypatch):
    import fashion_edge.runtime.adapter_gate as gate

    learn = learn_folder(tmp_path / "learn")
    write_png(learn / "=cmd" / "0.png", colour_image(0))
    monkeypatch.setattr(gate, "read_image", lambda p: pytest.fail("an image was read before the names"))
    with pytest.raises(ValueError, match="=cmd: folder name '=cmd' cannot be a class"):
        examples_from_folder(learn)


def test_a_sorted_folder_is_learned_from_without_its_review_pile(emb_model, tmp_path, capsys):
    """Sort, tidy by hand, learn from sorted/: the tool's own needs_review/ holds no confirmed label."""
    learn = learn_folder(tmp_path / "sorted")
    write_png(learn / "needs_review" / "0.png", colour_image(0))
    pairs = examples_from_folder(learn)
    assert pairs and "needs_review" not in {label for _, label in pairs}
    todo = tmp_path / "todo"
    write_png(todo / "a.png", coloured(COLOURS["yellow"], 7))
    code, _, err = label([str(todo), "--model", str(emb_model), "--learn-from", str(learn)], capsys)
    assert code == 0, err


# --- second hostile round (2026-12-06) ------------------------------------------------------------


def test_a_sub_folder_that_cannot_be_read_is_named_not_passed_over(model, tmp_path, monkeypatch, capsys):
    """--recursive over a folder with a sub-folder the user may not list (root ignores modes, so
    the refusal is simulated at os.scandir): its photos were left out of every count, exit 0."""
    src = tmp_path / "src"
    for sub in ("", "locked/"):
        for i in range(2):
            write_png(src / f"{sub}IMG_{i}.png", colour_image(i))
    real = os.scandir

    def denied(path="."):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", denied)
    code, out, _ = label([str(src), "--recursive", "--model", str(model)], capsys)
    assert code == 1
    assert "labelled 2 images" in out and "[1 folders could not be read: locked/ (Permission denied)]" in out


@needs_fifo
@pytest.mark.timeout(20)
def test_a_fifo_as_the_model_s_splits_file_is_refused_without_blocking(tmp_path):
    """The adapter gate read ``splits.csv`` beside the model with a plain open(): a FIFO put
    there after its is_file() check blocked --learn-from forever."""
    from fashion_edge.runtime.adapter_gate import catalogue_test_rows
    from fashion_edge.runtime.adapter_record import AdapterError

    os.mkfifo(tmp_path / "splits.csv")
    with pytest.raises(
        AdapterError, match=r"splits.csv: cannot read the model's splits \(not a regular file \(a FIFO\)\)"
    ):
        catalogue_test_rows(tmp_path / "splits.csv", ["Watches"])
    (tmp_path / "real.csv").write_text("id,label,split\n1,Watches,test\n2,Watches,train\n", encoding="utf-8")
    assert [r["id"] for r in catalogue_test_rows(tmp_path / "real.csv", ["Watches"])] == ["1"]


def test_ctrl_c_during_the_adapter_fit_stops_before_anything_is_labelled_or_moved(
    emb_model, tmp_path, monkeypatch, capsys
):
    """Ctrl-C while --learn-from fits: the fit went on, and then the folder was labelled and its
    files moved anyway (all of a small folder, exit 0)."""
    import signal

    from fashion_edge.runtime import adapter

    learn, src = learn_folder(tmp_path / "learn"), tmp_path / "src"
    for i in range(3):
        write_png(src / f"IMG_{i}.png", colour_image(i))
    real_fit = adapter.fit_adapter

    def ctrl_c_while_fitting(*args, **kw):
        os.kill(os.getpid(), signal.SIGINT)  # the CLI's handler takes it (sets cancel)
        return real_fit(*args, **kw)

    monkeypatch.setattr(adapter, "fit_adapter", ctrl_c_while_fitting)
    args = [str(src), "--model", str(emb_model), "--learn-from", str(learn), "--force-adapter"]
    code, out, err = label([*args, "--sort-into", str(tmp_path / "sorted"), "--move"], capsys)
    assert code == 130 and "interrupted before labelling: nothing labelled or sorted" in err
    assert sorted(p.name for p in src.iterdir()) == ["IMG_0.png", "IMG_1.png", "IMG_2.png"]
    assert not (tmp_path / "sorted").exists() and out == ""
