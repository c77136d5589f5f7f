"""What the app remembers between runs (QSettings "fashion-edge"/"fashion-app")."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "fashion-edge"
APPLICATION = "fashion-app"


class AppSettings:
    """Typed accessors over a QSettings; tests pass their own ini-file QSettings."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(ORGANIZATION, APPLICATION)

    @classmethod
    def at(cls, ini_path: str | Path) -> AppSettings:
        """Settings stored in one ini file (tests, portable installs)."""
        return cls(QSettings(str(ini_path), QSettings.Format.IniFormat))

    def _path(self, key: str) -> Path | None:
        value = self.q.value(key, "")
        return Path(str(value)) if value else None

    def _set(self, key: str, value: object) -> None:
        self.q.setValue(key, "" if value is None else value)
        self.q.sync()

    @property
    def last_folder(self) -> Path | None:
        return self._path("folder/last")

    @last_folder.setter
    def last_folder(self, path: Path | None) -> None:
        self._set("folder/last", str(path) if path else None)

    @property
    def model_path(self) -> Path | None:
        return self._path("model/path")

    @model_path.setter
    def model_path(self, path: Path | None) -> None:
        self._set("model/path", str(path) if path else None)

    @property
    def capture_folder(self) -> Path | None:
        return self._path("camera/capture_folder")

    @capture_folder.setter
    def capture_folder(self, path: Path | None) -> None:
        self._set("camera/capture_folder", str(path) if path else None)

    @property
    def camera_index(self) -> int:
        try:
            return int(self.q.value("camera/index", 0))
        except (TypeError, ValueError):
            return 0

    @camera_index.setter
    def camera_index(self, index: int) -> None:
        self._set("camera/index", int(index))

    @property
    def threshold(self) -> float | None:
        """The user's review threshold; None = use the model's own (metadata review_threshold)."""
        value = self.q.value("model/threshold", "")
        try:
            return float(value) if value not in ("", None) else None
        except (TypeError, ValueError):
            return None

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        self._set("model/threshold", None if value is None else float(value))
