"""``fashion-app``: sort items from the webcam or a folder of photos, offline."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

T_IMPORT = time.perf_counter()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="fashion-app", description=__doc__)
    ap.add_argument(
        "--model",
        type=Path,
        help="model file (.onnx/.tflite); default: the last one used, else the shipped int8 model",
    )
    ap.add_argument("--folder", type=Path, help="open this folder in folder mode")
    ap.add_argument("--camera", type=int, help="camera index to use (default: the last one used)")
    ap.add_argument(
        "--fake-camera",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="play these images as the camera (demo, testing)",
    )
    ap.add_argument("--settings", type=Path, help="keep settings in this .ini file instead of the user's")
    ap.add_argument("--verbose", action="store_true", help="show OpenCV/LiteRT log lines (camera probing)")
    ap.add_argument("--exit-after-first-prediction", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def no_display() -> bool:
    """True on Linux/BSD without X11 or Wayland and no platform chosen (Qt would abort)."""
    if not sys.platform.startswith(("linux", "freebsd")) or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def load_first_model(holder: object, candidates: Sequence[Path | None]) -> list[str]:
    """Load the first candidate that works; returns the error lines of those that did not."""
    from fashion_edge.runtime import ModelLoadError

    errors = []
    for path in candidates:
        if path is None:
            continue
        try:
            holder.load(path)  # type: ignore[attr-defined]
            return errors
        except ModelLoadError as e:
            errors.append(str(e))
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from fashion_edge.runtime.quiet import quiet_environment

    quiet_environment(args.verbose)  # before OpenCV loads: no "[ WARN ]" lines when no camera answers
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from fashion_edge.desktop_app.camera import FakeCamera
    from fashion_edge.desktop_app.model_holder import ModelHolder
    from fashion_edge.desktop_app.settings import APPLICATION, ORGANIZATION, AppSettings
    from fashion_edge.desktop_app.views.main_window import FOLDER_TAB, MainWindow
    from fashion_edge.runtime import default_model_path

    if no_display():
        print(
            "fashion-app: no display found (DISPLAY/WAYLAND_DISPLAY unset); "
            "run it on a desktop, or set QT_QPA_PLATFORM=offscreen for a headless check",
            file=sys.stderr,
        )
        return 2
    from fashion_edge.desktop_app import xcb_check

    if xcb_check.uses_xcb() and (line := xcb_check.problem()):
        print(line, file=sys.stderr)  # instead of Qt's abort, which names the wrong library
        return 2
    for p in args.fake_camera or []:
        if not p.is_file():
            print(f"fashion-app: {p}: image not found", file=sys.stderr)
            return 2
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = AppSettings.at(args.settings) if args.settings else AppSettings()
    holder = ModelHolder()
    remembered = settings.model_path
    candidates = [args.model] if args.model else [remembered, default_model_path()]
    errors = load_first_model(holder, candidates)
    if args.model and errors:
        errors += load_first_model(holder, [remembered, default_model_path()])
    clf = holder.classifier
    if (
        clf is not None
        and settings.threshold is not None
        and remembered
        and clf.path.resolve() == remembered.resolve()
    ):
        holder.set_threshold(settings.threshold)

    if args.fake_camera:
        frames = list(args.fake_camera)
        factory, cameras = (lambda _i: FakeCamera(frames, fps=30.0)), [(0, "Test pictures (--fake-camera)")]
    else:
        factory, cameras = None, None
    kwargs = {"camera_factory": factory} if factory else {}
    window = MainWindow(settings, holder, cameras=cameras, **kwargs)
    if args.camera is not None:
        window.camera.select_camera(args.camera)
    window.show()

    if args.exit_after_first_prediction:

        def first(result: object) -> None:
            print(
                f"first-prediction {result.prediction.label} {time.perf_counter() - T_IMPORT:.3f}", flush=True
            )  # type: ignore[attr-defined]
            window.close()
            app.quit()

        window.camera.controller.frame_ready.connect(first)
    if errors:
        QTimer.singleShot(0, lambda: window.dialogs.error(window, "Model", "\n".join(errors)))
    if args.folder:
        QTimer.singleShot(0, lambda: window.open_folder(args.folder))
        window.tabs.setCurrentIndex(FOLDER_TAB)
    elif holder.classifier is not None:
        QTimer.singleShot(0, window.camera.start)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
