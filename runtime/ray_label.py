"""``fashion-label FOLDER --ray [ADDRESS]``: the same labeling run with Ray Data doing the work.

``run_labeling`` keeps everything that makes a run safe (lock, journal, resume, sorting) on the
driver; this engine sends the files still to label through
``ray.data.from_items(...).map_batches(ClassifierActor, ...)``: each actor loads the model once
and runs the pure ``label_paths`` on its batches; the driver appends the rows it gets back to
the journal as they arrive. Without an address a local Ray instance is started on this machine.

A cluster needs: the ``[scale]`` extra (same ray version) on every node, the same model file at
the same path on every node (its fingerprint is checked by the actor), and the image folder at
the same path on every node (a shared or network file system); only the driver writes the journal.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.journal import LabelingError, LabelRecord
from fashion_edge.runtime.journal_guard import model_fingerprint

Batch = Sequence[tuple[str, Path]]


class ClassifierActor:
    """One classifier per Ray actor: a batch {"key", "path"} -> {"record"} (journal JSON rows);
    ``adapter``: the driver's fitted or loaded adapter (runtime.adapter), applied on every node."""

    def __init__(
        self, model: str, root: str, fingerprint: str, top_k: int, review_below: float | None,
        adapter: Any = None,
    ) -> None:  # fmt: skip
        from fashion_edge.runtime.adapter import adapted
        from fashion_edge.runtime.classifier import load

        if model_fingerprint(model) != fingerprint:
            raise RuntimeError(f"{model}: not the driver's model file on this node (fingerprint differs)")
        self.clf = load(model, threads=1)
        if adapter is not None:
            self.clf = adapted(self.clf, adapter)
        self.root, self.top_k, self.review_below = Path(root), top_k, review_below

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from fashion_edge.runtime.labeling import label_paths

        paths = [Path(os.fsdecode(bytes(p))) for p in batch["path"]]
        recs = label_paths(self.clf, paths, self.root, self.top_k, self.review_below)
        for rec, key in zip(recs, batch["key"], strict=True):
            rec.path = str(key)  # the driver's key, whatever the node's mount looks like
        return {"record": np.array([r.to_json() for r in recs], dtype=object)}


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]


def ray_engine(
    model: str | Path,
    root: str | Path,
    top_k: int = 3,
    review_below: float | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    batch_size: int = 64,
    adapter: Any = None,
) -> Any:
    """An engine for ``run_labeling(..., engine=...)``; ``address`` None or "local": a local Ray
    with ``num_cpus`` CPUs (default: all), one actor per CPU; ``adapter``: label with it (the
    driver's classifier must be ``adapted(load(model), adapter)`` so resumed rows match)."""
    import ray

    model_p = Path(model).resolve()

    def run(batches: Sequence[Batch], cancel: threading.Event) -> Iterator[list[LabelRecord]]:
        items = [{"key": k, "path": os.fsencode(p.resolve())} for b in batches for k, p in b]
        if not items:
            return
        started = not ray.is_initialized()
        if started:
            local = address in (None, "", "local")
            try:
                ray.init(
                    address=None if local else address,
                    num_cpus=num_cpus if local else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    configure_logging=True,
                )
            except Exception as e:  # ConnectionError, a bad address...: one line
                raise LabelingError(
                    f"ray: cannot start or join Ray at {address or 'local'} ({_first_line(e)})"
                ) from None
        try:
            from ray.data._internal.logging import configure_logging

            configure_logging()  # now, so that the levels below are not reset when the dataset runs
            for name in ("ray", "ray.data"):  # fashion-label shows its own progress and one-line errors
                logging.getLogger(name).setLevel(logging.ERROR)
                for h in logging.getLogger(name).handlers:
                    h.setLevel(logging.ERROR)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
            ds = ray.data.from_items(
                items, override_num_blocks=max(actors, len(items) // (batch_size * 4) or 1)
            )
            with warnings.catch_warnings():  # Ray 2.60 (pinned) flags extra remote args as deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                ds = ds.map_batches(
                    ClassifierActor,
                    fn_constructor_args=(str(model_p), str(Path(root).resolve()), model_fingerprint(model_p), top_k,
                                         review_below, adapter),
                    batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                    num_cpus=1,
                    # a failed actor fails the run with one line (the journal resumes); restartable actors
                    # with stored constructor arguments (an adapter) make Ray's C++ core print a warning
                    max_restarts=0,
                )  # fmt: skip
            batches_out = iter(
                ds.iter_batches(batch_size=batch_size, batch_format="numpy", prefetch_batches=2)
            )
            while not cancel.is_set():
                try:
                    out = next(batches_out, None)
                except Exception as e:  # RayTaskError of an actor (e.g. another model file on a node)
                    raise LabelingError(f"ray: labeling failed ({_first_line(e)})") from None
                if out is None:
                    return
                yield [LabelRecord.from_json(str(line)) for line in out["record"]]
        finally:
            if started:
                ray.shutdown()

    return run
