"""fashion-app's start-up check of Qt's xcb plugin: one line naming the missing libraries and the
apt-get packages, exit 2, instead of Qt's abort."""

from __future__ import annotations

import subprocess

import pytest

from fashion_edge.desktop_app import main as app_main
from fashion_edge.desktop_app import xcb_check

LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""


def test_ldd_not_found_lines_are_the_missing_libraries(tmp_path) -> None:
    assert xcb_check.missing_libraries(tmp_path / "libqxcb.so", run=lambda _a: LDD_MISSING) == [
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
    ]
    assert (
        xcb_check.missing_libraries(
            tmp_path / "libqxcb.so", run=lambda _a: LDD_MISSING.replace("not found", "/lib/x.so (0x1)")
        )
        == []
    )


def test_without_ldd_each_known_library_is_loaded(tmp_path) -> None:
    def no_ldd(_args):
        raise FileNotFoundError("ldd")

    def loader(name: str) -> object:
        if name in ("libxcb-cursor.so.0", "libxkbcommon-x11.so.0"):
            raise OSError(f"{name}: cannot open shared object file")
        return object()

    missing = xcb_check.missing_libraries(tmp_path / "libqxcb.so", run=no_ldd, load=loader)
    assert missing == ["libxcb-cursor.so.0", "libxkbcommon-x11.so.0"]
    line = xcb_check.message(missing)
    assert "\n" not in line and line.startswith("fashion-app: ")
    assert line.endswith("sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0")


def test_message_names_packages_and_unknown_libraries() -> None:
    line = xcb_check.message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libfoo.so.9"])
    assert "apt-get install libxcb-icccm4 libxcb-keysyms1" in line and "libfoo.so.9" in line


def test_problem_with_the_installed_pyside6_plugin(monkeypatch) -> None:
    monkeypatch.setattr(xcb_check, "display_problem", lambda: None)
    plugin = xcb_check.xcb_plugin()
    if plugin is None:
        pytest.skip("this PySide6 has no xcb plugin")
    assert plugin.name == "libqxcb.so"
    assert xcb_check.problem(run=lambda _a: LDD_MISSING).endswith("libxcb-icccm4 libxcb-keysyms1")
    assert xcb_check.problem(run=lambda _a: "\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n") is None


def test_real_ldd_runs_on_the_plugin() -> None:
    plugin = xcb_check.xcb_plugin()
    if plugin is None or subprocess.run(["which", "ldd"], capture_output=True).returncode:
        pytest.skip("no xcb plugin or no ldd")
    missing = xcb_check.missing_libraries(plugin)
    assert all(name.startswith("lib") and ".so" in name for name in missing)


@pytest.mark.parametrize(
    "env, xcb",
    [
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb;wayland", "DISPLAY": ":0"}, True),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}, False),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False),
        ({}, False),
    ],
)
def test_uses_xcb(env, xcb) -> None:
    assert xcb_check.uses_xcb(env, platform="linux") is xcb
    assert xcb_check.uses_xcb(env, platform="darwin") is False


def test_app_exits_2_with_one_line_before_creating_qt(monkeypatch, capsys) -> None:
    monkeypatch.setattr(xcb_check, "uses_xcb", lambda: True)
    monkeypatch.setattr(xcb_check, "xcb_plugin", lambda: xcb_check.Path("/x/libqxcb.so"))
    monkeypatch.setattr(xcb_check, "_ldd", lambda _a: LDD_MISSING)
    assert app_main.main(["--settings", "/nonexistent/settings.ini"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install libxcb-icccm4 libxcb-keysyms1" in err[0]


def test_no_x_server_is_one_line(monkeypatch) -> None:
    try:
        xcb_check.ctypes.CDLL("libxcb.so.1")
    except OSError:
        pytest.skip("no libxcb on this machine")
    line = xcb_check.display_problem("/nonexistent/x-socket:0")  # no X server answers there
    assert line and line.startswith("fashion-app: cannot connect to the X display") and "\n" not in line
    monkeypatch.setattr(xcb_check, "xcb_plugin", lambda: xcb_check.Path("/x/libqxcb.so"))
    monkeypatch.setattr(xcb_check, "display_problem", lambda: "no display")
    assert xcb_check.problem(run=lambda _a: "\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n") == "no display"
