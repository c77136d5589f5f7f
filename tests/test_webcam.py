"""fashion_edge.training.webcam: item mask, webcam-like look, batch augmentation, the labelled webcam set, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashion_edge.runtime.metadata import ModelMetadata, save_json
from fashion_edge.training import webcam
from fashion_edge.training.data import load_catalogue
from tests.conftest import requires_catalogue

H, W = 80, 60


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float((a & b).sum() / max(1, (a | b).sum()))


def _studio_shot(white_item: bool = False, jpeg: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A white 80x60 image with one item, and its true mask; JPEG round trip like the catalogue."""
    img = np.full((H, W, 3), 255, np.uint8)
    truth = np.zeros((H, W), np.uint8)
    if white_item:  # off-white shirt-like blob with a faint grey outline
        cv2.ellipse(truth, (30, 42), (20, 30), 0, 0, 360, 255, -1)
        img[truth > 0] = 246
        cv2.ellipse(img, (30, 42), (20, 30), 0, 0, 360, (225, 225, 225), 1)
    else:
        cv2.rectangle(truth, (14, 18), (44, 64), 255, -1)
        img[truth > 0] = (30, 90, 160)
        cv2.circle(img, (29, 40), 6, (242, 240, 236), -1)  # an off-white print: a hole to fill
    if not jpeg:
        return img, truth
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), truth


@pytest.mark.parametrize("white_item", [False, True])
@pytest.mark.parametrize("jpeg", [False, True])
def test_foreground_mask_finds_the_item(white_item: bool, jpeg: bool) -> None:
    img, truth = _studio_shot(white_item, jpeg)
    mask = webcam.foreground_mask(img)
    assert mask.shape == (H, W) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    item, found = truth > 0, mask > 0
    assert (item & found).sum() / item.sum() > 0.97  # the whole item, holes filled
    assert _iou(mask, truth) > (0.75 if jpeg else 0.9)  # JPEG smears colour a few px outwards
    assert mask[:8].max() == 0 and mask[:, :6].max() == 0  # the white backdrop is not item


def test_foreground_mask_keeps_both_shoes_and_drops_specks() -> None:
    img = np.full((H, W, 3), 255, np.uint8)
    cv2.ellipse(img, (16, 40), (10, 16), 0, 0, 360, (20, 20, 20), -1)
    cv2.ellipse(img, (44, 40), (10, 16), 0, 0, 360, (20, 20, 20), -1)
    img[5, 5] = (200, 200, 200)  # a dust speck
    mask = webcam.foreground_mask(img)
    n, _ = cv2.connectedComponents(mask)
    assert n - 1 == 2
    assert mask[5, 5] == 0


def test_foreground_mask_sees_through_a_handle_loop() -> None:
    img = np.full((H, W, 3), 255, np.uint8)
    cv2.rectangle(img, (8, 40), (52, 74), (90, 40, 30), -1)  # the bag
    cv2.ellipse(img, (30, 40), (16, 22), 0, 180, 360, (90, 40, 30), 3)  # its handle
    mask = webcam.foreground_mask(img)
    assert mask[30, 30] == 0  # backdrop inside the loop stays background
    assert mask[60, 30] == 255 and mask[19, 30] == 255  # bag and handle are item


def test_foreground_mask_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB"):
        webcam.foreground_mask(np.zeros((H, W), np.uint8))


def test_webcam_like_is_seeded_and_changes_the_scene() -> None:
    img, truth = _studio_shot()
    a = webcam.webcam_like(img, np.random.default_rng(7))
    b = webcam.webcam_like(img, np.random.default_rng(7))
    c = webcam.webcam_like(img, np.random.default_rng(8))
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 3
    # the white studio backdrop is replaced in (almost) every draw
    outs = [webcam.webcam_like(img, np.random.default_rng(s)) for s in range(20)]
    white_bg = [float((o[truth == 0].min(axis=1) > 240).mean()) for o in outs]
    assert np.median(white_bg) < 0.2


def test_webcam_like_strength_zero_keeps_geometry() -> None:
    img, truth = _studio_shot()
    out = webcam.webcam_like(img, np.random.default_rng(3), strength=0.0)
    blue = (out[:, :, 2].astype(int) - out[:, :, 0]) > 60  # the item is blue, backgrounds are not
    assert _iou(blue, truth) > 0.7


def test_webcam_like_other_shapes_and_bad_input() -> None:
    gray = np.full((28, 28, 1), 255, np.uint8)
    gray[8:20, 8:20] = 40
    out = webcam.webcam_like(gray, np.random.default_rng(0))
    assert out.shape == (28, 28, 1)
    big = np.full((300, 200, 3), 255, np.uint8)
    big[100:200, 50:150] = 60
    assert webcam.webcam_like(big, np.random.default_rng(0)).shape == (300, 200, 3)
    with pytest.raises(ValueError, match="uint8"):
        webcam.webcam_like(np.zeros((H, W, 3), np.float32), np.random.default_rng(0))


def test_augment_batch_changes_a_share_and_leaves_input_alone() -> None:
    img, _ = _studio_shot()
    x = np.stack([img] * 40)
    before = x.copy()
    none = webcam.augment_batch(x, np.random.default_rng(0), p=0.0)
    np.testing.assert_array_equal(none, x)
    half = webcam.augment_batch(x, np.random.default_rng(0), p=0.5)
    changed = np.array([not np.array_equal(half[i], x[i]) for i in range(len(x))])
    assert 8 <= changed.sum() <= 32
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(half, webcam.augment_batch(x, np.random.default_rng(0), p=0.5))
    aug = webcam.BatchAugmenter(seed=1, p=1.0)
    out = aug(x[:4])
    assert out.shape == (4, H, W, 3) and out.dtype == np.uint8
    assert all(not np.array_equal(out[i], x[i]) for i in range(4))


def test_background_bank_is_the_same_every_time() -> None:
    bank = webcam.background_bank()
    assert bank.shape == (webcam.BANK_TILES, *webcam.TILE_SHAPE, 3) and bank.dtype == np.uint8
    assert len({int(t.mean()) for t in bank}) > 10  # varied surfaces, not one colour
    webcam.background_bank.cache_clear()
    np.testing.assert_array_equal(webcam.background_bank(), bank)


# --- the labelled webcam set ----------------------------------------------------------------


def _run_dir(catalogue_root: Path, out: Path, n: int = 12) -> tuple[Path, list[dict[str, str]]]:
    """A run-like folder (metadata.json + splits.csv) over the tiny catalogue."""
    rows = load_catalogue(catalogue_root).rows
    classes = sorted({r["articleType"] for r in rows})
    picked = rows[:: max(1, len(rows) // n)][:n]
    out.mkdir(parents=True)
    save_json(ModelMetadata(classes=classes, recipe="tiny"), out / "metadata.json")
    with open(out / "splits.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "split"])
        w.writerows([r["id"], r["articleType"], "test"] for r in picked)
        w.writerow([rows[-1]["id"], rows[-1]["articleType"], "train"])
    return out, picked


def test_make_webcam_set_is_deterministic_and_keeps_labels(tiny_catalogue: Path, tmp_path: Path) -> None:
    run, picked = _run_dir(tiny_catalogue, tmp_path / "run")
    a = webcam.make_webcam_set(run, tmp_path / "a", seed=3, per_image=2, data=tiny_catalogue)
    b = webcam.make_webcam_set(run, tmp_path / "b", seed=3, per_image=2, data=tiny_catalogue)
    c = webcam.make_webcam_set(run, tmp_path / "c", seed=4, per_image=2, data=tiny_catalogue)
    assert (a / "labels.csv").read_bytes() == (b / "labels.csv").read_bytes()
    with open(a / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [r["id"] for r in picked for _ in range(2)]
    assert [r["label"] for r in rows] == [r["articleType"] for r in picked for _ in range(2)]
    assert {r["split"] for r in rows} == {"test"}
    assert rows[0]["file"] == f"images/{picked[0]['id']}_0.jpg"
    xa, labels, ids = webcam.load_webcam_set(a)
    xb, _, _ = webcam.load_webcam_set(b)
    xc, _, _ = webcam.load_webcam_set(c)
    assert xa.shape == (2 * len(picked), H, W, 3) and xa.dtype == np.uint8
    np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    assert not np.array_equal(xa[0], xa[1])  # two different copies of one item
    assert labels == [r["label"] for r in rows] and ids == [r["id"] for r in rows]
    sheet = cv2.imread(str(a / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > H and sheet.shape[1] > 2 * W


def test_load_webcam_set_bad_folder(tmp_path: Path) -> None:
    from fashion_edge.training.data import DataError

    with pytest.raises(DataError, match="labels.csv"):
        webcam.load_webcam_set(tmp_path)
    (tmp_path / "labels.csv").write_text("file,id,label,split\nimages/x.jpg,1,Tshirts,test\n")
    with pytest.raises(DataError, match="x.jpg"):
        webcam.load_webcam_set(tmp_path)


def test_cli_writes_a_set_and_reports_bad_input(
    tiny_catalogue: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, picked = _run_dir(tiny_catalogue, tmp_path / "run", n=4)
    out = tmp_path / "cam"
    assert webcam.main([str(run), "--out", str(out), "--data", str(tiny_catalogue), "--per-image", "1"]) == 0
    assert len(list((out / "images").glob("*.jpg"))) == len(picked)
    assert "wrote 4" in capsys.readouterr().out
    missing = tmp_path / "nope"
    assert webcam.main([str(missing), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fashion-webcamset: error:") and str(missing) in err[0]
    assert webcam.main([str(run), "--out", str(out), "--split", "val", "--data", str(tiny_catalogue)]) == 2
    assert "val" in capsys.readouterr().err
    with open(run / "splits.csv", "a", encoding="utf-8") as f:
        f.write(f"{picked[0]['id']},Sunglasses,test\n")
    assert webcam.main([str(run), "--out", str(out), "--data", str(tiny_catalogue)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Sunglasses" in err[0] and "splits.csv" in err[0]


@requires_catalogue
def test_mask_on_real_catalogue_items() -> None:
    from fashion_edge.training.data import load_catalogue_images

    cat = load_catalogue()
    rows = cat.rows[:: max(1, len(cat.rows) // 60)][:60]
    x = load_catalogue_images(cat.root, [r["id"] for r in rows])
    cover = np.array([(webcam.foreground_mask(img) > 0).mean() for img in x])
    # items fill part of the frame: neither nothing nor (on white backdrops) everything
    assert np.mean((cover > 0.03) & (cover < 0.97)) > 0.85
