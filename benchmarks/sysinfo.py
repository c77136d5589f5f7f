"""The machine a benchmark ran on: CPU model and SIMD flags, cores, package versions, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "onnxruntime", "ai-edge-litert", "opencv-python-headless", "tensorflow", "tf-keras")
FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
    "asimddp",
    "i8mm",
)  # x86, then ARM
REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """CPU model name, which int8-relevant SIMD flags it has (Linux; blanks elsewhere) and the int8
    kernel path they select: without VNNI, x86 u8s8 kernels add pairs of products in int16, which
    saturates with 8-bit weights (our int8 ONNX uses 7-bit dense weights: exact on every path)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:  # ARM lists "Features"
            flags = set(value.split())
    has = {f: f in flags for f in FLAGS}
    path = (
        "AMX int8" if has["amx_int8"]
        else "VNNI (int32 dot products, no saturation)" if has["avx512_vnni"] or has["avx_vnni"]
        else "x86 AVX2 without VNNI (u8s8 int16 pair sums: 8-bit weights can saturate)" if has["avx2"]
        else "ARM int8 dot product" + (" + i8mm" if has["i8mm"] else "") if has["asimddp"]
        else "no int8 dot-product instructions seen"
    )  # fmt: skip
    return {"model": model, "flags": has, "int8_path": path}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None where it is absent."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(repo: Path = REPO_ROOT) -> str | None:
    """Short commit hash (with "+dirty" when the tree has changes), None outside a git checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def load_average() -> list[float] | None:
    """1/5/15-minute load: a busy machine explains noisy absolute times."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def environment() -> dict[str, Any]:
    """Everything about the machine that a reader of the results needs."""
    return {
        "cpu": cpu_info(),
        "cores": os.cpu_count(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "commit": git_commit(),
    }
