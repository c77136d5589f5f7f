"""fashion-app: the PySide6 desktop app (views/, models/, workers/) on the runtime facade."""

from fashion_edge.desktop_app.qt_compat import guard_none_refcount

NONE_GUARD_APPLIED = guard_none_refcount()
