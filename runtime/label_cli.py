"""``fashion-label FOLDER``: label every image of a folder offline into a resumable CSV/JSONL journal.

Exit status: 0 every file labelled, 1 some files could not be read (rows with an error),
2 usage, model or journal problems, 130 interrupted (Ctrl-C; run the same command to resume).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from fashion_edge.runtime.classifier import ModelLoadError, default_model_path, load
from fashion_edge.runtime.labeling import LabelingError, run_labeling


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fashion-label",
        description="Label the images of FOLDER with a fashion-edge model (offline). "
        "Results are appended to --out as they are made; run the same command again to resume.",
    )
    p.add_argument("folder", type=Path, help="folder of images (JPEG, PNG, BMP, WebP, TIFF)")
    p.add_argument("--model", type=Path, default=None, help=f"model file (default: {default_model_path()})")
    p.add_argument(
        "--out", type=Path, default=Path("labels.csv"), help="journal: .csv or .jsonl (default: labels.csv)"
    )
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
    p.add_argument("--workers", type=int, default=2, help="image decoding threads (default: 2)")
    p.add_argument("--batch-size", type=int, default=64, help="images per inference batch (default: 64)")
    return p


def _progress_bar(quiet: bool):  # -> (callback, close)
    from tqdm import tqdm

    bar = tqdm(unit="img", file=sys.stderr, disable=True if quiet else None, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.n = done
            bar.last_print_n = done
            bar.refresh()
        else:
            bar.update(done - bar.n)

    return update, bar.close


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = sys.stderr
    if args.top_k < 1 or args.batch_size < 1 or args.workers < 1:
        print("fashion-label: error: --top-k, --batch-size and --workers must be at least 1", file=err)
        return 2
    if args.review_below is not None and not 0.0 <= args.review_below <= 1.0:
        print("fashion-label: error: --review-below must be between 0 and 1", file=err)
        return 2
    if args.out.suffix.lower() not in (".csv", ".jsonl"):
        print(f"fashion-label: error: {args.out}: --out must end in .csv or .jsonl", file=err)
        return 2
    try:
        clf = load(args.model, threads=args.threads)
    except ModelLoadError as e:
        print(f"fashion-label: error: {e}", file=err)
        return 2

    cancel = threading.Event()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        print("\nstopping after the current batch (Ctrl-C again to abort)...", file=err)

    old = (
        signal.signal(signal.SIGINT, on_sigint)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    update, close = _progress_bar(quiet=False)
    try:
        summary = run_labeling(
            args.folder, clf, args.out,
            recursive=args.recursive, top_k=args.top_k, review_below=args.review_below,
            batch_size=args.batch_size, workers=args.workers, progress=update, cancel=cancel,
            sort_dest=args.sort_into, move=args.move,
        )  # fmt: skip
    except LabelingError as e:
        close()
        print(f"fashion-label: error: {e}", file=err)
        return 2
    except OSError as e:
        close()
        print(f"fashion-label: error: {e.filename or args.out}: {e.strerror or e}", file=err)
        return 2
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    close()
    print(summary.line())
    if summary.this_run:
        print(f"{summary.this_run} images this run in {summary.seconds:.1f} s ({summary.rate:.0f} images/s)")
    if args.sort_into is not None:
        print(f"{'moved' if args.move else 'copied'} {summary.sorted_files} files into {args.sort_into}")
    if summary.cancelled:
        print("interrupted: run the same command again to continue", file=err)
        return 130
    if summary.total == 0:
        print(f"fashion-label: warning: {args.folder}: no images found", file=err)
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
