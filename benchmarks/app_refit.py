"""fashion-app's refit from staff corrections: worker wall time and the UI's longest event-loop gap.

    python -m fashion_edge.benchmarks.app_refit [--model M] [--corrections DIR] [--n 200] [--folder-items 200]

Builds the real window offscreen, records N corrected photos from DIR/<class>/ (default:
../shared/data/real-dev/learn, a stand-in for a site's corrections) the way the app records them,
then presses *Learn from my corrections* and waits. A 5 ms UI timer runs meanwhile; the longest
gap between its ticks is how long the UI was unresponsive. The first correction starts the app's
warm-up (SciPy and the catalogue check set, read from the user's cache once the model was used:
``runtime.check_set_cache``); a person takes minutes over N corrections, so the benchmark waits for
it (its row: recording + warm-up) before the first refit. Three refits: cold
(all N images run through the model), warm after one more correction (1 image embedded, cached
embeddings and catalogue reused), and a second warm one.

With ``--folder-items K`` (default 200) a folder of K other photos (copied from ``--folder-from``,
default real-dev/eval, into a temp folder) is open while it learns: each installed refit predicts it again in the background,
and the table reports "re-predict" rows: seconds from the refit's end to the table's "N suggestions
updated", and the longest UI gap meanwhile.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from fashion_edge.training.data import SHARED_DATA  # noqa: E402

REAL_DEV = SHARED_DATA / "real-dev" / "learn"
REAL_EVAL = SHARED_DATA / "real-dev" / "eval"


def corrections(folder: Path, n: int) -> list[tuple[Path, str]]:
    """n photos round-robin over DIR/<class>/ (sorted names, so runs are repeatable)."""
    from fashion_edge.runtime.preprocess import list_images

    by_class = {d.name: list_images(d) for d in sorted(folder.iterdir()) if d.is_dir()}
    out: list[tuple[Path, str]] = []
    i = 0
    while len(out) < n and any(i < len(v) for v in by_class.values()):
        for name, files in by_class.items():
            if i < len(files) and len(out) < n:
                out.append((files[i], name))
        i += 1
    return out


def refit(app, window, timer_ms: int = 5, idle_s: float = 0.0) -> dict[str, float]:
    """One refit (or, with ``idle_s``, the same wait with no refit: the machine's own baseline)."""
    from PySide6.QtCore import QTimer

    ctl = window.learning
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(timer_ms)
    t0 = time.perf_counter()
    job = None if idle_s else ctl.learn()
    if job is None and not idle_s:
        raise SystemExit(f"app_refit: {ctl.panel.summary.text()}")

    def busy() -> bool:
        if job is None:
            return time.perf_counter() - t0 < idle_s
        return not (job.done.is_set() and not ctl.panel.running)

    while busy():
        app.processEvents()
        time.sleep(0.001)
    t1 = time.perf_counter()
    timer.stop()
    return {"wall_s": job.wall_s if job else 0.0, **_gaps(ticks, t0, t1)}


def _gaps(ticks: list[float], t0: float, t1: float) -> dict[str, float]:
    stamps = [t0, *[t for t in ticks if t0 <= t <= t1], t1]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return {"ui_s": t1 - t0, "max_gap_ms": 1000 * max(gaps), "ticks": len(stamps) - 2}


def repredict(app, window, got: list, timer_ms: int = 5, timeout_s: float = 120.0) -> dict[str, float]:
    """Wait for the open folder's re-prediction after a refit (``got`` fills on ``relabelled``)."""
    from PySide6.QtCore import QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(timer_ms)
    t0 = time.perf_counter()
    while not got and time.perf_counter() - t0 < timeout_s:
        app.processEvents()
        time.sleep(0.001)
    t1 = time.perf_counter()
    timer.stop()
    return {"wall_s": t1 - t0, **_gaps(ticks, t0, t1), "changes": got[0].line() if got else "timed out"}


def copy_folder(src: Path, dest: Path, n: int) -> Path:
    """n photos of src/<class>/ copied flat into dest (the app writes its journal there)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for i, (path, _label) in enumerate(corrections(src, n)):
        shutil.copy2(path, dest / f"{i:04d}_{path.name}")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="model file (default: the shipped int8 model)")
    ap.add_argument(
        "--corrections", type=Path, default=REAL_DEV, help="DIR/<class>/ photos (default: %(default)s)"
    )
    ap.add_argument("--n", type=int, default=200, help="corrections to learn from")
    ap.add_argument("--folder-items", type=int, default=200,
                    help="photos in a folder open while it learns (0: none)")  # fmt: skip
    ap.add_argument("--forget-outputs", action="store_true",
                    help="drop the folder's kept model outputs before each refit (a folder reopened later)")  # fmt: skip
    ap.add_argument("--folder-from", type=Path, default=REAL_EVAL,
                    help="DIR/<class>/ photos copied into that folder (default: %(default)s)")  # fmt: skip
    args = ap.parse_args(argv)

    from PySide6.QtCore import QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    from fashion_edge import runtime
    from fashion_edge.desktop_app.model_holder import ModelHolder
    from fashion_edge.desktop_app.settings import AppSettings
    from fashion_edge.desktop_app.views.learning_controller import REFIT_EVERY_KEY
    from fashion_edge.desktop_app.views.main_window import MainWindow

    if not args.corrections.is_dir():
        print(f"app_refit: {args.corrections}: corrections folder not found", file=sys.stderr)
        return 2
    try:
        clf = runtime.load(args.model)
    except runtime.ModelLoadError as e:
        print(f"app_refit: {e}", file=sys.stderr)
        return 2
    items = corrections(args.corrections, args.n + 1)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="fashion-refit-") as tmp:
        settings = AppSettings.at(Path(tmp) / "settings.ini")
        settings.q.setValue(REFIT_EVERY_KEY, 0)  # refits only when asked, so each one is timed alone
        holder = ModelHolder()
        holder.set_classifier(clf)
        window = MainWindow(settings, holder, pool=QThreadPool(), cameras=[])
        window.show()
        got: list = []
        if args.folder_items:
            folder = copy_folder(args.folder_from, Path(tmp) / "folder", args.folder_items)
            done: list = []
            window.session.finished.connect(done.append)
            window.open_folder(folder)
            while not done:
                app.processEvents()
                time.sleep(0.001)
            window.session.relabelled.connect(got.append)
        ticks: list[float] = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(5)
        t0 = time.perf_counter()
        for path, label in items[:-1]:
            window.learning.record(path, label, "folder")
        warm = window.learning.warm_job  # started by the first correction; a person takes minutes
        while warm is not None and not warm.done.is_set():  # for N corrections, so it is done by then
            app.processEvents()
            time.sleep(0.001)
        t1 = time.perf_counter()
        timer.stop()
        runs = [("corrections recorded + warm-up", {"wall_s": t1 - t0, **_gaps(ticks, t0, t1)})]
        forget = window.session.features.clear if args.forget_outputs else (lambda: None)
        forget()
        runs.append(("cold (first of the session)", refit(app, window)))
        if args.folder_items:
            runs.append((f"re-predict {args.folder_items} items", repredict(app, window, got)))
        runs.append(("no refit (baseline)", refit(app, window, idle_s=runs[1][1]["ui_s"])))
        window.learning.record(*items[-1], "folder")
        forget()
        runs.append(("warm, 1 new", refit(app, window)))
        if args.folder_items:
            got.clear()
            runs.append((f"re-predict {args.folder_items} items", repredict(app, window, got)))
        runs.append(("warm again", refit(app, window)))
        ad = holder.adapter
        print(
            f"model {clf.path} ({clf.format} {clf.precision}); {len(items) - 1} corrections from {args.corrections}"
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"cores: {os.cpu_count()}, load average {load:.1f} (compare rows of one invocation only)")
        print("| refit | worker wall s | UI wait s | max event-loop gap ms | timer ticks |")
        print("|---|---|---|---|---|")
        for name, r in runs:
            print(f"| {name} | {r['wall_s']:.2f} | {r['ui_s']:.2f} | {r['max_gap_ms']:.0f} | {r['ticks']} |")
        for name, r in runs:
            if "changes" in r:
                print(f"{name}: {r['changes']}")
        if ad is not None:
            print(window.learning.panel.summary.text())
        else:
            print(
                f"no adapter installed: {window.learning.panel.alert.text() or window.learning.panel.summary.text()}"
            )
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
