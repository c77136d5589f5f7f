"""Labelling batches of files: the pure ``label_paths`` core and the threaded local engine."""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fashion_edge.runtime.journal import LabelRecord, one_line, path_key
from fashion_edge.runtime.journal_guard import model_fingerprint
from fashion_edge.runtime.preprocess import ImageError

WAIT_S = 0.1  # how often a waiting run looks at the cancel flag

Batch = Sequence[tuple[str, Path]]  # (journal key, file) pairs
Engine = Callable[[Sequence[Batch], threading.Event], Iterator[list[LabelRecord]]]


# --- the pure core -------------------------------------------------------------------------------


def _decode(clf: Any, path: Path) -> np.ndarray | str:
    """Prepared model input, or the error message for this file."""
    try:
        # reduced JPEG decode: no larger than the model needs, placed as the full decode would be
        return clf.prepare(path)
    except ImageError as e:
        return one_line(str(e))
    except (MemoryError, OSError, ValueError) as e:  # e.g. cv2 failing on an absurd image
        return one_line(f"cannot process image ({e})")


def records_from(
    clf: Any,
    keys: Sequence[str],
    decoded: Sequence[np.ndarray | str],
    top_k: int = 3,
    review_below: float | None = None,
    model_id: str = "",
) -> list[LabelRecord]:
    """Infer the decoded images of a batch in one call and build one record per key."""
    good = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
    preds = {}
    if good:
        batch = np.stack([decoded[i] for i in good])
        preds = dict(zip(good, clf.predict_prepared(batch, top_k, review_below), strict=True))
    out = []
    for i, key in enumerate(keys):
        if i in preds:
            p = preds[i]
            out.append(LabelRecord(key, p.label, p.confidence, p.top_k, p.needs_review, model=model_id))
        else:
            out.append(LabelRecord(key, error=str(decoded[i]), model=model_id))
    return out


def label_paths(
    clf: Any,
    paths: Sequence[str | Path],
    root: str | Path,
    top_k: int = 3,
    review_below: float | None = None,
    executor: cf.Executor | None = None,
) -> list[LabelRecord]:
    """Pure: a batch of image paths -> one record each (errors as records), in the same order."""
    root_p = Path(root)
    ps = [Path(p) for p in paths]
    decoded = list(executor.map(lambda p: _decode(clf, p), ps) if executor else (_decode(clf, p) for p in ps))
    model_id = getattr(clf, "model_id", None) or model_fingerprint(getattr(clf, "path", None))
    return records_from(clf, [path_key(p, root_p) for p in ps], decoded, top_k, review_below, model_id)


# --- the local decode+infer engine ---------------------------------------------------------------


class _DaemonPool:
    """Decoding threads that never keep the process alive: a file that blocks a read (a stuck
    network share) cannot stop Ctrl-C or the app from closing."""

    def __init__(self, n: int) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"decode-{i}") for i in range(n)
        ]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        f: cf.Future = cf.Future()
        self._q.put((f, fn, args))
        return f

    def _work(self) -> None:
        while (item := self._q.get()) is not None:
            f, fn, args = item
            if not f.set_running_or_notify_cancel():
                continue
            try:
                f.set_result(fn(*args))
            except BaseException as e:  # delivered to the waiting run
                f.set_exception(e)

    def shutdown(self, wait_s: float = 2.0) -> None:
        """Stop the threads; wait up to ``wait_s`` for files being decoded (a thread stuck on a
        file is left behind: it cannot keep the process alive)."""
        for _ in self._threads:
            self._q.put(None)
        end = time.monotonic() + wait_s
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))


def chunks(seq: Sequence[Any], n: int) -> list[Sequence[Any]]:
    return [seq[i : i + n] for i in range(0, len(seq), n)]


def local_engine(clf: Any, top_k: int, review_below: float | None, workers: int) -> Engine:
    """Decode in ``workers`` threads two batches ahead while the previous batch is inferred."""
    model_id = getattr(clf, "model_id", None) or model_fingerprint(getattr(clf, "path", None))

    def run(batches: Sequence[Batch], cancel: threading.Event) -> Iterator[list[LabelRecord]]:
        pool = _DaemonPool(workers)

        def submit(batch: Batch) -> list[cf.Future]:
            parts = chunks([p for _, p in batch], -(-len(batch) // workers))
            return [pool.submit(lambda ps: [_decode(clf, p) for p in ps], part) for part in parts]

        pending: deque[tuple[Batch, list[cf.Future]]] = deque()
        it = iter(batches)
        try:
            for batch in it:
                pending.append((batch, submit(batch)))
                if len(pending) >= 2:
                    break
            while pending:
                batch, futs = pending.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, submit(nxt)))
                while cf.wait(futs, timeout=WAIT_S).not_done:
                    if cancel.is_set():
                        return
                decoded = [d for f in futs for d in f.result()]
                yield records_from(clf, [k for k, _ in batch], decoded, top_k, review_below, model_id)
        finally:
            for _, futs in pending:
                for f in futs:
                    f.cancel()
            pool.shutdown()

    return run
