"""Frame sources for camera mode: a real OpenCV camera, and a fake one that plays images.

Every source returns RGB uint8 frames and raises :class:`CameraError` with a message a warehouse
user can act on ("no camera", "busy", "unplugged") instead of returning ``None``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fashion_edge.runtime.preprocess import ImageError, read_image


class CameraError(RuntimeError):
    """A camera that cannot be opened or stopped delivering frames."""


class CameraSource(Protocol):
    """What the camera worker needs from a source. ``read`` blocks until the next frame."""

    name: str

    def open(self) -> None: ...

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...


def list_cameras(max_index: int = 4) -> list[tuple[int, str]]:
    """(index, name) of video devices, without opening them (Linux names from sysfs)."""
    sysfs = Path("/sys/class/video4linux")
    found: list[tuple[int, str]] = []
    if sysfs.is_dir():
        for dev in sorted(sysfs.glob("video*"), key=lambda p: int(p.name[5:] or 0)):
            try:
                idx = int(dev.name[5:])
                name = (dev / "name").read_text(encoding="utf-8", errors="replace").strip()
            except (ValueError, OSError):
                continue
            found.append((idx, f"{name} (#{idx})"))
    if not found:
        found = [(i, f"Camera {i}") for i in range(max_index)]
    return found


class OpenCVCamera:
    """A webcam through ``cv2.VideoCapture``; frames come back RGB."""

    def __init__(self, index: int = 0, width: int = 640, height: int = 480) -> None:
        self.index = index
        self.name = f"Camera {index}"
        self._size = (width, height)
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"{self.name} could not be opened: not connected, or in use by another program."
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        ok, frame = cap.read()
        if not ok or frame is None:
            cap.release()
            raise CameraError(f"{self.name} opened but sends no picture (busy or unsupported).")
        self._cap = cap

    def read(self) -> np.ndarray:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open.")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise CameraError(f"{self.name} stopped sending frames (unplugged?).")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FakeCamera:
    """Plays a list of frames (RGB arrays or image paths) in a loop, for tests, demos and benchmarks.

    ``fps`` paces frames like a real camera (None: as fast as asked); ``fail_after`` raises
    CameraError after that many frames (an unplugged camera); ``fail_open`` makes ``open`` fail.
    """

    def __init__(
        self,
        frames: Sequence[np.ndarray | str | Path],
        fps: float | None = 30.0,
        fail_after: int | None = None,
        fail_open: str | None = None,
        name: str = "Test pictures",
    ) -> None:
        if not frames:
            raise ValueError("FakeCamera needs at least one frame")
        self.name = name
        self._items = list(frames)
        self._frames: list[np.ndarray] = []
        self._fps = fps
        self._fail_after = fail_after
        self._fail_open = fail_open
        self._count = 0
        self._next_t = 0.0
        self.is_open = False

    def open(self) -> None:
        if self._fail_open:
            raise CameraError(self._fail_open)
        frames = []
        for item in self._items:
            if isinstance(item, np.ndarray):
                frames.append(item)
                continue
            try:
                frames.append(read_image(item))
            except ImageError as e:
                raise CameraError(f"{item}: {e}") from None
        self._frames = frames
        self._count = 0
        self._next_t = time.perf_counter()
        self.is_open = True

    def read(self) -> np.ndarray:
        if not self.is_open:
            raise CameraError(f"{self.name} is not open.")
        if self._fail_after is not None and self._count >= self._fail_after:
            self.is_open = False
            raise CameraError(f"{self.name} stopped sending frames (unplugged?).")
        if self._fps:
            self._next_t += 1.0 / self._fps
            delay = self._next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next_t = time.perf_counter()
        frame = self._frames[self._count % len(self._frames)]
        self._count += 1
        return frame

    def close(self) -> None:
        self.is_open = False


def on_background(
    item: np.ndarray, height: int = 480, width: int = 640, grey: int = 200, fill: float = 0.8
) -> np.ndarray:
    """Place an item photo at the centre of a plain background, like an item held up to a webcam.

    ``fill`` is the share of the frame height (or width) the item takes.
    """
    frame = np.full((height, width, 3), grey, np.uint8)
    scale = min(height * fill / item.shape[0], width * fill / item.shape[1])
    h, w = int(item.shape[0] * scale), int(item.shape[1] * scale)
    resized = cv2.resize(item, (w, h), interpolation=cv2.INTER_LINEAR)
    y0, x0 = (height - h) // 2, (width - w) // 2
    frame[y0 : y0 + h, x0 : x0 + w] = resized
    return frame
