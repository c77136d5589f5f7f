"""Keeping native libraries' start-up logging off the terminal (the CLIs' ``--verbose`` turns it back on).

TensorFlow prints oneDNN/CUDA lines (``failed call to cuInit ... (303)`` on every CPU machine)
before its log level applies, LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate``
and OpenCV ``[ WARN ]`` lines when no camera answers. They are written by C++ straight to file
descriptor 2, so :func:`native_stderr_silenced` points that descriptor at /dev/null for the
duration; Python exceptions still reach the user (they are printed after it is restored).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "FASHION_EDGE_VERBOSE"  # set by a CLI's --verbose; read by the runtime (and child processes)
QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow C++: errors too (cuInit on CPU machines is an 'error')
    "OPENCV_LOG_LEVEL": "ERROR",  # OpenCV: no [ WARN ] lines (camera probing)
}


def verbose_requested() -> bool:
    """True when native log lines should reach the terminal (``FASHION_EDGE_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def quiet_environment(verbose: bool = False) -> None:
    """Set the native libraries' log levels before they are imported (keeps values the user set);
    with ``verbose``, ask the runtime (and child processes) to let them through instead."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        return
    opencv_chosen = "OPENCV_LOG_LEVEL" in os.environ
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    cv2 = sys.modules.get("cv2")  # already loaded (the runtime imports it): its level is set by now
    if cv2 is not None and not opencv_chosen:
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except AttributeError:
            pass


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Redirect file descriptor 2 to /dev/null inside the block (no-op when not ``enabled``)."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. a GUI launcher): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
