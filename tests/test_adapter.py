"""runtime.adapter: learn from corrections on the embedding output, new classes, gate, safe files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from fashion_edge.runtime import load
from fashion_edge.runtime.adapter import (
    AdapterError,
    adapted,
    fit_adapter,
    load_adapter,
    save_adapter,
)
from fashion_edge.runtime.adapter_gate import CatalogueSet, examples_from_folder
from tests.adapter_tiny import COLOURS, coloured, make_embedding_model

REPO = Path(__file__).resolve().parent.parent
NAMES = {"red": "Tshirts", "green": "Watches", "blue": "Casual Shoes", "yellow": "Jeans"}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_embedding_model(tmp_path_factory.mktemp("adapter") / "model.onnx")


@pytest.fixture(scope="module")
def clf(model):
    return load(model)


def examples(n: int = 8, colours=tuple(COLOURS), seed: int = 0) -> list[tuple[np.ndarray, str]]:
    return [
        (coloured(COLOURS[c], seed + 100 * j + i), NAMES[c]) for j, c in enumerate(colours) for i in range(n)
    ]


def test_embedding_is_a_second_output_of_the_same_file(clf):
    x = np.stack([clf.prepare(coloured(COLOURS[c], 1)) for c in ("red", "green", "blue")])
    logits, emb = clf.logits_and_embedding(x)
    assert emb.shape == (3, 6) and clf.embed(x).shape == (3, 6)
    np.testing.assert_allclose(logits, clf.logits(x), rtol=1e-6)
    assert [clf.classes[i] for i in logits.argmax(1)] == ["Tshirts", "Watches", "Casual Shoes"]


def test_old_export_without_embedding_gets_one_clear_line(tmp_path):
    old = load(make_embedding_model(tmp_path / "old.onnx", embedding=False))
    with pytest.raises(AdapterError, match=r"old\.onnx: model has no embedding output; re-export it"):
        fit_adapter(old, examples(3), catalogue=None)


def test_new_class_from_examples_and_heldout_accuracy(clf):
    ad = fit_adapter(clf, examples(10), catalogue=None)
    assert ad.classes == ["Tshirts", "Watches", "Casual Shoes", "Jeans"] and ad.new_classes == ["Jeans"]
    assert ad.n_examples == 40 and ad.counts["Jeans"] == 10 and ad.heldout_n == 40
    # yellow is between red and green for the model: it cannot be right before, the adapter is
    assert ad.heldout_acc_before <= 0.75 and ad.heldout_acc == 1.0
    a = adapted(clf, ad)
    test = [coloured(COLOURS[c], 5000 + i) for c in COLOURS for i in range(5)]
    labels = [p.label for p in a.predict(test)]
    assert labels == [NAMES[c] for c in COLOURS for _ in range(5)]
    assert a.classes[-1] == "Jeans" and a.probabilities(np.stack([a.prepare(t) for t in test])).shape == (
        20,
        4,
    )
    assert "learned from 40 items" in ad.summary() and "(was " in ad.summary()


def test_conflicting_corrections_last_label_wins(clf):
    ex = examples(6, ("red", "green", "blue"))
    img = coloured(COLOURS["red"], 777)
    ex = [(img, "Watches"), *ex, (img.copy(), "Tshirts")]
    ad = fit_adapter(clf, ex, catalogue=None)
    assert ad.conflicts == 1 and ad.n_examples == 19 and ad.counts["Tshirts"] == 7


def test_too_few_examples(clf):
    with pytest.raises(AdapterError, match="only 1 example"):
        fit_adapter(clf, [(coloured(COLOURS["red"], 1), "Tshirts")], catalogue=None)
    ad = fit_adapter(clf, [(coloured(COLOURS["red"], 1), "Tshirts"), (coloured(COLOURS["blue"], 2), "Casual Shoes")],
                     catalogue=None)  # fmt: skip
    assert ad.heldout_acc is None and "too few examples" in ad.summary()


def test_one_class_only_needs_anchors(clf):
    only = [(coloured(COLOURS["yellow"], i), "Jeans") for i in range(6)]
    with pytest.raises(AdapterError, match="all 6 corrections are 'Jeans': add photos of other classes"):
        fit_adapter(clf, only, catalogue=None)
    imgs = [coloured(COLOURS[c], 4000 + i) for c in ("red", "green", "blue") for i in range(10)]
    z, e = clf.logits_and_embedding(np.stack([clf.prepare(im) for im in imgs]))
    y = np.repeat([0, 1, 2], 10)
    anchors = CatalogueSet(y[1::2], z[1::2], e[1::2], [str(i) for i in range(15)])
    cat = CatalogueSet(y[::2], z[::2], e[::2], [str(i) for i in range(15)], anchors)
    ad = fit_adapter(clf, only, catalogue=cat)  # the catalogue anchors stand in for the other classes
    assert ad.accepted and ad.catalogue_acc == 1.0 and "anchored on 15 catalogue images" in " ".join(ad.notes)
    labels = [p.label for p in adapted(clf, ad).predict([coloured(COLOURS[c], 77) for c in COLOURS])]
    assert labels == ["Tshirts", "Watches", "Casual Shoes", "Jeans"]


def test_cached_embeddings_give_the_same_fit(clf):
    ex = examples(5)
    x = np.stack([clf.prepare(im) for im, _ in ex])
    z, e = clf.logits_and_embedding(x)
    a1 = fit_adapter(clf, ex, catalogue=None)
    a2 = fit_adapter(clf, ex, embeddings=e, logits=z, catalogue=None)
    np.testing.assert_allclose(a1.W, a2.W, atol=1e-6)


def test_safety_gate_refuses_a_catalogue_drop_unless_forced(clf):
    # teach the model that red items are Watches; the catalogue says red items are T-shirts
    ex = [(coloured(COLOURS["red"], i), "Watches") for i in range(10)]
    ex += [(coloured(COLOURS["green"], 50 + i), "Watches") for i in range(5)]
    ex += [(coloured(COLOURS["blue"], 90 + i), "Casual Shoes") for i in range(5)]
    cat_imgs = [coloured(COLOURS[c], 3000 + i) for c in ("red", "green", "blue") for i in range(20)]
    z, e = clf.logits_and_embedding(np.stack([clf.prepare(im) for im in cat_imgs]))
    cat = CatalogueSet(np.repeat([0, 1, 2], 20), z, e, [str(i) for i in range(60)])
    ad = fit_adapter(clf, ex, catalogue=cat)
    assert ad.catalogue_acc_before == 1.0 and ad.catalogue_acc < 0.98
    assert not ad.accepted and "catalogue accuracy drops" in ad.refusal
    forced = fit_adapter(clf, ex, catalogue=cat, force=True)
    assert forced.accepted and forced.refusal and forced.forced
    ok = fit_adapter(clf, examples(5, ("red", "green", "blue")), catalogue=cat)
    assert ok.accepted and ok.refusal is None and ok.catalogue_acc >= 0.98


def test_gate_refusal_raises_the_penalty_before_it_gives_up(clf, monkeypatch):
    """A refused fit is refitted with each stronger penalty of the grid in turn; the first that
    passes is used and says so; when every one is refused, the best fit is returned unaccepted."""
    import fashion_edge.runtime.adapter as A

    monkeypatch.setattr(A, "L2_GRID", (1e-4, 1e-2, 1.0))  # the data pick a weak one; the gate wants 1.0
    cat = CatalogueSet(np.zeros(3, int), np.zeros((3, 9)), np.zeros((3, 6)), ["a", "b", "c"])
    asked: list[float] = []

    def gate(passes_from: float):
        def _gate(ad, _cat, _clf) -> bool:
            asked.append(ad.l2)
            if ad.l2 < passes_from:
                ad.refusal = "catalogue accuracy drops (stub)"
                return False
            return True

        return _gate

    monkeypatch.setattr(A, "_gate", gate(passes_from=max(A.L2_GRID)))
    ad = fit_adapter(clf, examples(10), catalogue=cat, l2=min(A.L2_GRID))
    assert asked == [min(A.L2_GRID)] and not ad.accepted  # a fixed penalty is never raised

    asked.clear()
    ad = fit_adapter(clf, examples(10), catalogue=cat, l2="auto")
    chosen = asked[0]
    assert chosen < max(A.L2_GRID), "these examples should pick a weaker penalty than the strongest"
    assert asked == [chosen] + sorted(g for g in A.L2_GRID if g > chosen)
    assert ad.accepted and ad.l2 == max(A.L2_GRID) and f"l2 raised to {ad.l2:g}" in " ".join(ad.notes)

    asked.clear()
    monkeypatch.setattr(A, "_gate", gate(passes_from=float("inf")))  # nothing passes
    ad = fit_adapter(clf, examples(10), catalogue=cat, l2="auto")
    assert not ad.accepted and ad.l2 == asked[0] and ad.refusal


def test_save_load_round_trip_and_refusals(clf, model, tmp_path):
    ad = fit_adapter(clf, examples(5), catalogue=None)
    path = tmp_path / "data" / "adapter.npz"
    save_adapter(ad, path)
    back = load_adapter(path, clf)
    assert back.classes == ad.classes and back.heldout_acc == ad.heldout_acc and back.alpha == ad.alpha
    np.testing.assert_array_equal(back.W, ad.W)
    assert [p.label for p in adapted(clf, back).predict([coloured(COLOURS["yellow"], 9)])] == ["Jeans"]

    other = load(make_embedding_model(tmp_path / "other.onnx", classes=("A", "B", "C", "D")))
    with pytest.raises(AdapterError, match="adapter.npz: adapter was fitted on another model"):
        load_adapter(path, other)
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(AdapterError, match="corrupt.npz: "):
        load_adapter(bad, clf)
    bad.write_bytes(b"not an adapter at all")
    with pytest.raises(AdapterError, match="corrupt.npz: "):
        load_adapter(bad, clf)
    with pytest.raises(AdapterError, match="missing.npz: adapter file not found"):
        load_adapter(tmp_path / "missing.npz", clf)


def test_crash_between_temp_write_and_replace_keeps_the_old_adapter(clf, tmp_path, monkeypatch):
    path = tmp_path / "adapter.npz"
    old = fit_adapter(clf, examples(4, ("red", "green", "blue")), catalogue=None)
    save_adapter(old, path)
    new = fit_adapter(clf, examples(4), catalogue=None)

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("fashion_edge.runtime.adapter_record.os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_adapter(new, path)
    monkeypatch.undo()
    assert load_adapter(path, clf).classes == old.classes
    assert [p.name for p in tmp_path.iterdir()] == ["adapter.npz"]


def test_kill_9_during_the_write_leaves_the_old_adapter(clf, model, tmp_path):
    path = tmp_path / "adapter.npz"
    save_adapter(fit_adapter(clf, examples(4, ("red", "green", "blue")), catalogue=None), path)
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from fashion_edge.runtime import load
        from fashion_edge.runtime import adapter as A, adapter_record as R
        from tests.test_adapter import examples
        clf = load({str(model)!r})
        ad = A.fit_adapter(clf, examples(4), catalogue=None)
        def hang(fd):
            print("writing", flush=True)
            time.sleep(60)
        R.os.fsync = hang
        A.save_adapter(ad, Path({str(path)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.kill()  # SIGKILL, mid-write
    finally:
        proc.wait(30)
    assert load_adapter(path, clf).classes == ["Tshirts", "Watches", "Casual Shoes"]


def _write(folder: Path, colour: str, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(coloured(COLOURS[colour], i), cv2.COLOR_RGB2BGR))


def test_corrections_folder_and_its_bad_inputs(clf, tmp_path):
    root = tmp_path / "captures"
    _write(root / "Tshirts", "red", 3)
    _write(root / "Jeans", "yellow", 3)
    ex = examples_from_folder(root)
    assert sorted({lab for _, lab in ex}) == ["Jeans", "Tshirts"] and len(ex) == 6
    ad = fit_adapter(clf, ex, catalogue=None)
    assert ad.new_classes == ["Jeans"]

    (root / "Watches").mkdir()
    with pytest.raises(AdapterError, match=r"Watches: empty class folder"):
        examples_from_folder(root)
    (root / "Watches" / "a.jpg").write_bytes(b"garbage")
    (root / "Watches" / "b.png").write_bytes(b"")
    with pytest.raises(AdapterError, match=r"Watches: none of its 2 image files can be read"):
        examples_from_folder(root)
    with pytest.raises(AdapterError, match="nowhere: corrections folder not found"):
        examples_from_folder(tmp_path / "nowhere")


def test_fitting_never_imports_tensorflow(model):
    code = textwrap.dedent(f"""
        import sys
        from fashion_edge.runtime import load
        from fashion_edge.runtime.adapter import fit_adapter, adapted
        from tests.test_adapter import examples
        clf = load({str(model)!r})
        adapted(clf, fit_adapter(clf, examples(3))).predict([examples(1)[0][0]])
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))
        assert not bad, bad
        print('ok')
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


# --- fashion-label --learn-from / --save-adapter / --adapter -------------------------------------


def _label(args: list[str], capsys) -> tuple[int, str, str]:
    from fashion_edge.runtime.label_cli import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_fashion_label_learns_a_new_class_from_a_folder_and_reuses_the_fit(model, tmp_path, capsys):
    import csv

    learn, todo = tmp_path / "learn", tmp_path / "todo"
    _write(learn / "Tshirts", "red", 4)
    _write(learn / "Watches", "green", 4)
    _write(learn / "Jeans", "yellow", 4)
    todo.mkdir()
    for i in range(3):
        img = coloured(COLOURS["yellow"], 900 + i)
        cv2.imwrite(str(todo / f"y{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    ad_file = tmp_path / "data" / "adapter.npz"
    out1 = tmp_path / "a.csv"
    code, _, err = _label([str(todo), "--model", str(model), "--out", str(out1), "--learn-from", str(learn),
                           "--save-adapter", str(ad_file)], capsys)  # fmt: skip
    assert code == 0, err
    assert "adapter learned from 12 items" in err and ad_file.is_file()
    assert {r["label"] for r in csv.DictReader(open(out1, encoding="utf-8"))} == {"Jeans"}

    out2 = tmp_path / "b.csv"
    code, _, err = _label(
        [str(todo), "--model", str(model), "--out", str(out2), "--adapter", str(ad_file)], capsys
    )
    assert code == 0, err
    assert {r["label"] for r in csv.DictReader(open(out2, encoding="utf-8"))} == {"Jeans"}

    ad_file.write_bytes(b"garbage")
    code, _, err = _label([str(todo), "--model", str(model), "--out", str(tmp_path / "c.csv"), "--adapter",
                           str(ad_file)], capsys)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and "adapter.npz: " in err

    (learn / "Empty").mkdir()
    code, _, err = _label([str(todo), "--model", str(model), "--out", str(tmp_path / "d.csv"), "--learn-from",
                           str(learn)], capsys)  # fmt: skip
    assert code == 2 and err.strip().endswith("Empty: empty class folder (no image files)")
    assert len(err.strip().splitlines()) == 1

    code, _, err = _label([str(todo), "--model", str(model), "--save-adapter", str(ad_file)], capsys)
    assert code == 2 and "--save-adapter needs --learn-from DIR" in err


def test_review_threshold_needs_enough_held_out_evidence():
    from fashion_edge.runtime.adapter_head import calibrate_threshold

    rng = np.random.default_rng(0)
    conf = np.sort(rng.uniform(0.3, 1.0, 200))[::-1]
    right = np.ones(200, bool)
    right[150:] = rng.random(50) < 0.5  # confident items right, unsure ones a coin flip
    none = np.zeros(200, bool)
    thr, note = calibrate_threshold(conf, right, none, 0.97, 20, 0.95)
    assert conf[149] >= thr > conf[155] and "held-out items at/above" in note
    # 25 items, all right: too little evidence for 97 % -> conservative, above every held-out item
    thr, note = calibrate_threshold(conf[:25], right[:25], none[:25], 0.97, 20, 0.5)
    assert thr > conf[0] and "conservative" in note
    thr, note = calibrate_threshold(conf[:10], right[:10], none[:10], 0.97, 20, 0.95)
    assert thr == 0.95 and "10 held-out items" in note
    # items the review rule always reviews (the unknown class) do not count as evidence
    thr, _ = calibrate_threshold(conf, right, np.ones(200, bool), 0.97, 20, 0.95)
    assert thr == 0.95


def test_resume_relabels_rows_of_the_plain_model_when_an_adapter_is_used(model, tmp_path, capsys):
    import csv

    learn, todo = tmp_path / "learn", tmp_path / "todo"
    _write(learn / "Tshirts", "red", 4)
    _write(learn / "Jeans", "yellow", 4)
    todo.mkdir()
    for i in range(3):
        cv2.imwrite(
            str(todo / f"y{i}.png"), cv2.cvtColor(coloured(COLOURS["yellow"], 900 + i), cv2.COLOR_RGB2BGR)
        )
    out = tmp_path / "labels.csv"
    assert _label([str(todo), "--model", str(model), "--out", str(out)], capsys)[0] == 0
    assert "Jeans" not in {r["label"] for r in csv.DictReader(open(out, encoding="utf-8"))}
    code, stdout, err = _label(
        [str(todo), "--model", str(model), "--out", str(out), "--learn-from", str(learn)], capsys
    )
    assert code == 0, err
    rows = {r["path"]: r for r in csv.DictReader(open(out, encoding="utf-8"))}
    assert {r["label"] for r in rows.values()} == {"Jeans"} and "labelled again" in stdout


def test_adapted_items_are_reviewed_until_held_out_corrections_prove_a_threshold(clf):
    few = fit_adapter(clf, examples(5), catalogue=None)  # 20 held out: too little evidence for 97 %
    test = [coloured(COLOURS[c], 7000 + i) for c in COLOURS for i in range(5)]
    assert few.review_threshold == 1.0
    few_preds, base_preds = adapted(clf, few).predict(test), clf.predict(test)
    # a new class (Jeans) taught from 5 examples each: the plain model's sure answers prove nothing
    # about what the site will show, so nothing is auto-accepted yet (tests/test_adapter_fallback.py)
    assert few.new_classes == ["Jeans"] and few.fallback_classes == []
    assert all(p.needs_review for p in few_preds)
    assert any(not b.needs_review for b in base_preds), (
        "the tiny model must auto-accept something to test this"
    )
    many = fit_adapter(clf, examples(30), catalogue=None)  # 120 held out, all right
    assert many.review_threshold < 1.0 and "held-out items at/above" in many.threshold_note
    preds = adapted(clf, many).predict(test)
    assert sum(not p.needs_review for p in preds) >= 15 and all(
        p.label == NAMES[c] for p, c in zip(preds, [c for c in COLOURS for _ in range(5)], strict=True)
    )


def test_ray_actors_label_with_the_drivers_adapter(clf, model, tmp_path):
    """``fashion-label --ray`` with an adapter: each actor applies the driver's adapter, so its rows
    (labels, new classes, the adapted model id) equal the single-process rows."""
    import os

    from fashion_edge.runtime.journal import LabelRecord
    from fashion_edge.runtime.journal_guard import model_fingerprint
    from fashion_edge.runtime.labeling import label_paths
    from fashion_edge.runtime.ray_label import ClassifierActor

    ad = fit_adapter(clf, examples(8), catalogue=None)
    paths = []
    for i, c in enumerate(("red", "yellow", "blue")):
        paths.append(tmp_path / f"{c}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(coloured(COLOURS[c], 500 + i), cv2.COLOR_RGB2BGR))
    local = label_paths(adapted(clf, ad), paths, tmp_path, 3, None)
    actor = ClassifierActor(str(model), str(tmp_path), model_fingerprint(model), 3, None, ad)
    out = actor({"key": np.array([p.name for p in paths]),
                 "path": np.array([os.fsencode(p) for p in paths], dtype=object)})  # fmt: skip
    remote = [LabelRecord.from_json(str(r)) for r in out["record"]]
    assert [r.to_json() for r in remote] == [r.to_json() for r in local]
    assert "Jeans" in [r.label for r in remote] and remote[0].model == adapted(clf, ad).model_id
    plain = ClassifierActor(str(model), str(tmp_path), model_fingerprint(model), 3, None)
    assert plain.clf.classes == clf.classes  # no adapter: the model as it is
