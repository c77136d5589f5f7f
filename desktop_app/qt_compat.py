"""Guard against a PySide6 6.12.0 defect on CPython 3.11: calls drop references to None and True.

Measured here: every call of a Qt method returning void (``widget.update()``, ``setObjectName``,
``painter.fillRect``...) lowers ``sys.getrefcount(None)`` by one, and every ``Signal.emit`` lowers
``sys.getrefcount(True)`` by one. On 3.11 these singletons start with a few thousand references
and the interpreter aborts ("none_dealloc" / "bool_dealloc") when one reaches zero: a few seconds
of camera preview. PySide6 6.11.3 and 6.10.3 do not do this, and on 3.12+ both are immortal.
When the defect is detected we give None, True and False a huge reference count, which is what
3.12 does anyway (they are static singletons that are never freed).
"""

from __future__ import annotations

import ctypes
import sys

IMMORTAL_BOOST = 1 << 40  # decrefs needed to reach zero: ~10^12, i.e. never


def singleton_refcount_leaks() -> bool:
    """True when this PySide6 build drops None (void calls) or True (Signal.emit) references."""
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(50):
        probe.setObjectName("probe")
        probe.ping.emit()
    none_lost = none_before - sys.getrefcount(None)
    true_lost = true_before - sys.getrefcount(True)
    return none_lost >= 50 or true_lost >= 50


def guard_none_refcount() -> bool:
    """Make None, True and False effectively immortal if needed; True when the guard was applied."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not singleton_refcount_leaks():
        return False
    for obj in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is PyObject's first field
        refcnt.value += IMMORTAL_BOOST
    return True
