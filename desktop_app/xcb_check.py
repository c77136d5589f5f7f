"""Start-up check of the system libraries that Qt's xcb (X11) platform plugin needs.

Without them Qt aborts with ``Could not load the Qt platform plugin "xcb"`` and a hint that names
the wrong library. :func:`problem` finds ``libqxcb.so`` inside the installed PySide6, lists its
missing shared libraries (``ldd``; where there is no ``ldd``, a ``ctypes`` load of each library
the plugin is known to need) and returns one line naming them and the Debian packages to install.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# soname -> Debian/Ubuntu package: what libqxcb.so (Qt 6) links against beyond Qt itself.
DEBIAN_PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
# Checked one by one when there is no ldd: the libraries a minimal Debian with X most often lacks.
KNOWN = [name for name in DEBIAN_PACKAGES if name.startswith(("libxcb", "libxkbcommon", "libX11"))]

Runner = Callable[[Sequence[str]], str]
Loader = Callable[[str], object]


def uses_xcb(env: dict[str, str] | None = None, platform: str = sys.platform) -> bool:
    """True where Qt will pick its xcb plugin: Linux/BSD, X11 display, no other platform chosen."""
    env = dict(os.environ) if env is None else env
    if not platform.startswith(("linux", "freebsd")):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"  # "xcb", "xcb:opts", "xcb;wayland" (first tried)
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Path | None:
    """``libqxcb.so`` of the installed PySide6 (None when PySide6 has no such plugin)."""
    import PySide6

    for base in map(Path, PySide6.__path__):
        for plugin in (
            base / "Qt" / "plugins" / "platforms" / "libqxcb.so",
            base / "plugins" / "platforms" / "libqxcb.so",
        ):
            if plugin.is_file():
                return plugin
    return None


def _ldd(args: Sequence[str]) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20, check=False).stdout


def missing_libraries(plugin: Path, run: Runner | None = None, load: Loader | None = None) -> list[str]:
    """Shared libraries the plugin needs that cannot be found, by soname."""
    run, load = run or _ldd, load or ctypes.CDLL
    try:
        out = run(["ldd", str(plugin)])
    except (OSError, subprocess.SubprocessError):
        out = None
    if out:
        return sorted(set(re.findall(r"^\s*(\S+)\s+=>\s+not found", out, flags=re.MULTILINE)))
    missing = []
    for name in KNOWN:
        try:
            load(name)
        except OSError:
            missing.append(name)
    return missing


def message(missing: Sequence[str]) -> str:
    """One line: what is missing and the apt-get line that installs it."""
    packages = sorted({DEBIAN_PACKAGES[n] for n in missing if n in DEBIAN_PACKAGES})
    unknown = [n for n in missing if n not in DEBIAN_PACKAGES]
    fix = f"sudo apt-get install {' '.join(packages)}" if packages else ""
    if unknown:
        fix += ("; " if fix else "") + f"also install the packages providing {', '.join(unknown)}"
    return (
        f"fashion-app: Qt's xcb (X11) platform plugin cannot load: missing {', '.join(missing)}; "
        f"fix (Debian/Ubuntu): {fix}"
    )


def display_problem(display: str | None = None) -> str | None:
    """One line when no X server answers at ``display`` (default ``$DISPLAY``), else None.

    Qt aborts there too, with the same misleading ``xcb-cursor0`` hint."""
    display = os.environ.get("DISPLAY", "") if display is None else display
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return None  # reported by missing_libraries
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode() or None, None)
    failed = xcb.xcb_connection_has_error(conn)
    xcb.xcb_disconnect(conn)
    if not failed:
        return None
    return (
        f"fashion-app: cannot connect to the X display {display!r} (is an X server running there? over ssh, "
        "use ssh -X); for a headless check set QT_QPA_PLATFORM=offscreen"
    )


def problem(run: Runner | None = None, load: Loader | None = None) -> str | None:
    """The one-line message when the xcb plugin cannot load or no X server answers, else None
    (also when this PySide6 has no xcb plugin)."""
    plugin = xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin, run, load)
    return message(missing) if missing else display_problem()
