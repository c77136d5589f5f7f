"""``fashion-label FOLDER``: label every image of a folder offline into a resumable CSV/JSONL journal.

The journal is ``FOLDER/fashion-labels.csv`` unless ``--out`` says otherwise (the app uses the
same file). Exit status: 0 every file labelled, 1 some files could not be read (rows with an
error) or some sub-folders could not be listed, 2 usage, model or journal problems,
130 interrupted (one Ctrl-C; run the same command to resume).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from fashion_edge.runtime.adapter import AdapterError
from fashion_edge.runtime.adapter_cli import add_adapter_args, apply_adapter, check_adapter_args
from fashion_edge.runtime.classifier import ModelLoadError, default_model_path, load
from fashion_edge.runtime.labeling import JOURNAL_NAME, LabelingError, LabelSummary, run_labeling
from fashion_edge.runtime.quiet import quiet_environment

PROG = "fashion-label"
MAX_BATCH = 1024  # images per inference batch: more only holds more decoded images in memory


def build_parser() -> argparse.ArgumentParser:
    """Every option of ``fashion-label`` (the one place arguments are defined)."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Label the images of FOLDER with a fashion-edge model (offline). "
        "Results are appended to the journal as they are made; run the same command again to resume.",
    )
    p.add_argument("folder", type=Path, help="folder of images (JPEG, PNG, HEIC, AVIF, WebP, GIF, TIFF, BMP)")
    p.add_argument("--model", type=Path, default=None, help=f"model file (default: {default_model_path()})")
    p.add_argument(
        "--out", type=Path, default=None, metavar="JOURNAL",
        help=f"journal: .csv or .jsonl (default: FOLDER/{JOURNAL_NAME})",
    )  # fmt: skip
    p.add_argument("--top-k", type=int, default=3, help="how many classes to keep per image (default: 3)")
    p.add_argument("--recursive", action="store_true", help="also label images in sub-folders")
    p.add_argument(
        "--review-below", type=float, default=None, metavar="P",
        help="flag images whose confidence is below P (default: the model's calibrated threshold)",
    )  # fmt: skip
    p.add_argument(
        "--sort-into", type=Path, default=None, metavar="DIR", help="put each file into DIR/<label>/"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--copy", dest="move", action="store_false", help="copy files when sorting (default)")
    mode.add_argument("--move", dest="move", action="store_true", help="move files when sorting")
    p.set_defaults(move=False)
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: runtime's choice)")
    p.add_argument(
        "--workers", type=int, default=None,
        help="image decoding threads (default: from the file sizes: more for photos than thumbnails)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=64, help="images per inference batch (default: 64)")
    p.add_argument(
        "--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
        help="label with Ray Data actors (needs the [scale] extra): a local Ray, or the cluster at ADDRESS",
    )  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="let LiteRT/ONNX Runtime print their own log lines")
    add_adapter_args(p)
    return p


def check_args(args: argparse.Namespace) -> str | None:
    """The first usage problem as one line, or None. Clamps thread counts to the machine."""
    if (
        args.top_k < 1
        or args.batch_size < 1
        or (args.workers is not None and args.workers < 1)
        or (args.threads is not None and args.threads < 1)
    ):
        return "--top-k, --batch-size, --workers and --threads must be at least 1"
    if args.batch_size > MAX_BATCH:
        return f"--batch-size must be at most {MAX_BATCH}"
    if args.review_below is not None and not 0.0 <= args.review_below <= 1.0:
        return "--review-below must be between 0 and 1"
    if args.out is not None and args.out.suffix.lower() not in (".csv", ".jsonl"):
        return f"{args.out}: --out must end in .csv or .jsonl"
    if check_adapter_args(args):
        return check_adapter_args(args)
    cores = os.cpu_count() or 1
    if args.threads is not None and args.threads > cores:  # more threads than cores only thrash
        print(
            f"{PROG}: note: --threads {args.threads} is more than the {cores} cores; using {cores}",
            file=sys.stderr,
        )
        args.threads = cores
    args.workers = None if args.workers is None else min(args.workers, 4 * cores)
    return None


def _progress_bar() -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr, shown from the first progress report (not before a refusal)."""
    from tqdm import tqdm

    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(unit="img", file=sys.stderr, dynamic_ncols=True, total=total, initial=done))
        bar = bars[0]
        if bar.total != total:
            bar.total = total
            bar.n = done
            bar.last_print_n = done
            bar.refresh()
        else:
            bar.update(done - bar.n)

    def close() -> None:
        for bar in bars:
            bar.close()

    return update, close


def _check_ray(args: argparse.Namespace) -> None:
    """With --ray, Ray must import: checked before the model loads and an adapter is fitted."""
    if args.ray is None:
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise LabelingError("--ray needs Ray: pip install 'fashion-edge[scale]'") from None


def _engine(args: argparse.Namespace, clf: Any) -> Any:
    if args.ray is None:
        return None
    from fashion_edge.runtime.ray_label import ray_engine

    return ray_engine(
        clf.path, args.folder, args.top_k, args.review_below, args.ray, batch_size=args.batch_size,
        adapter=getattr(clf, "adapter", None),
    )  # fmt: skip


def _on_ctrl_c(cancel: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():  # a second Ctrl-C: everything written so far is already in the journal
            print(f"\n{PROG}: aborted; run the same command again to continue", file=sys.stderr, flush=True)
            os._exit(130)
        cancel.set()
        print("\nstopping: writing what is labelled so far (Ctrl-C again to abort)...", file=sys.stderr)

    return handler


def report(args: argparse.Namespace, summary: LabelSummary) -> int:
    print(summary.line())
    if summary.this_run:
        print(f"{summary.this_run} images this run in {summary.seconds:.1f} s ({summary.rate:.0f} images/s)")
    if args.sort_into is not None:
        print(f"{'moved' if args.move else 'copied'} {summary.sorted_files} files into {args.sort_into}")
    if summary.cancelled:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    if summary.total == 0:
        print(f"{PROG}: warning: {args.folder}: no images found", file=sys.stderr)
    return 1 if summary.errors or summary.unreadable else 0


def run(args: argparse.Namespace, cancel: threading.Event) -> int:
    problem = check_args(args)
    if problem:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    close: Callable[[], None] = lambda: None  # noqa: E731
    try:
        quiet_environment(args.verbose)  # LiteRT's "INFO: Created ... XNNPACK delegate" only with --verbose
        _check_ray(args)
        clf = load(args.model, threads=args.threads)
        clf = apply_adapter(args, clf, PROG)
        if cancel.is_set():  # Ctrl-C while the model loaded or the adapter was fitted: stop here
            print(f"{PROG}: interrupted before labelling: nothing labelled or sorted", file=sys.stderr)
            return 130
        engine = _engine(args, clf)
        update, close = _progress_bar()
        summary = run_labeling(
            args.folder, clf, args.out,
            recursive=args.recursive, top_k=args.top_k, review_below=args.review_below,
            batch_size=args.batch_size, workers=args.workers, progress=update, cancel=cancel,
            sort_dest=args.sort_into, move=args.move, engine=engine,
        )  # fmt: skip
    except (ModelLoadError, LabelingError, AdapterError) as e:
        close()
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        close()
        print(f"{PROG}: error: {e.filename or args.out or args.folder}: {e.strerror or e}", file=sys.stderr)
        return 2
    close()
    return report(args, summary)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cancel = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, _on_ctrl_c(cancel)) if in_main else None
    try:
        return run(args, cancel)
    except KeyboardInterrupt:  # e.g. while the model loads, before the handler could help
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


if __name__ == "__main__":
    sys.exit(main())
