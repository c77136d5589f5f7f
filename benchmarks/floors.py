"""``--floor top1=0.93`` / ``--ceiling p50_ms=0.5``: thresholds that make the benchmark exit non-zero."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# metric -> where it lives; "row" metrics are checked on every model that has them
ROW_METRICS = (
    "top1",
    "macro_f1",
    "agreement",
    "webcam_top1",
    "img_s",
    "p50_ms",
    "p99_ms",
    "rss_mb",
    "size_mb",
)
RUN_METRICS = ("speedup", "label_img_s")
FRACTIONS = ("top1", "macro_f1", "agreement", "webcam_top1")


class FloorError(ValueError):
    """A threshold option that cannot be understood."""


def parse(specs: Sequence[str], kind: str) -> list[tuple[str, float]]:
    """``["top1=0.93", ...]`` -> ``[("top1", 0.93), ...]``; FloorError names the bad option."""
    out = []
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in ROW_METRICS + RUN_METRICS:
            known = ", ".join(ROW_METRICS + RUN_METRICS)
            raise FloorError(f"--{kind} {spec!r}: expected METRIC=VALUE with METRIC one of {known}")
        try:
            bound = float(value)
        except ValueError:
            raise FloorError(f"--{kind} {spec!r}: {value!r} is not a number") from None
        if key in FRACTIONS and not 0 <= bound <= 1:
            raise FloorError(f"--{kind} {spec!r}: {key} is a fraction between 0 and 1 (e.g. 0.93)")
        out.append((key, bound))
    return out


def row_value(row: dict[str, Any], metric: str) -> float | None:
    if metric in ("top1", "macro_f1", "agreement"):
        return (row.get("accuracy") or {}).get(metric)
    if metric in ("p50_ms", "p99_ms"):
        return (row.get("headline") or {}).get(metric)
    if metric == "img_s":
        return row.get("best_img_s")
    return row.get(metric)


def check(
    result: dict[str, Any], floors: list[tuple[str, float]], ceilings: list[tuple[str, float]]
) -> list[dict[str, Any]]:
    """One verdict per (threshold, subject); a subject without the figure fails (it was asked for)."""
    verdicts = []
    for kind, items in (("floor", floors), ("ceiling", ceilings)):
        for metric, bound in items:
            subjects: list[tuple[str, float | None]] = []
            if metric == "speedup":
                subjects = [(f"{s['format_label']} b{s['batch']} t{s['threads']}", s["speedup"])
                            for s in result["speedups"]]  # fmt: skip
            elif metric == "label_img_s":
                subjects = [("labeling", (result.get("labeling") or {}).get("img_s"))]
            else:
                subjects = [(r["name"], row_value(r, metric)) for r in result["rows"]]
                if metric == "agreement":  # the reference agrees with itself by definition
                    subjects = [s for s, r in zip(subjects, result["rows"], strict=True)
                                if r["file"] != result.get("reference_file")]  # fmt: skip
            if not subjects:
                subjects = [("(nothing measured)", None)]
            for subject, value in subjects:
                ok = value is not None and (value >= bound if kind == "floor" else value <= bound)
                verdicts.append(
                    {
                        "metric": metric,
                        "kind": kind,
                        "bound": bound,
                        "subject": subject,
                        "value": value,
                        "ok": ok,
                    }
                )
    return verdicts
