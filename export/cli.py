"""``fashion-export``: turn a trained run into verified, self-describing TFLite and ONNX files.

    fashion-export --int8 runs/articletype8 --out models/articletype8
    fashion-export --verify models/articletype8        # re-run the parity gate, no TensorFlow

TensorFlow is imported only when converting, so ``--help`` and ``--verify`` stay fast; a base
install (no ``[train]`` extra) gets one line naming what to install. Exit status: 0 done, 1 the
parity gate failed, 2 usage or input problems (one line, prefixed ``fashion-export: error:``),
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2): needed by tfmot

from fashion_edge.export.formats import FAMILIES  # noqa: E402

PROG = "fashion-export"


def _families(text: str) -> tuple[str, ...]:
    names = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in FAMILIES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(bad) or text!r} (choose from {','.join(FAMILIES)})"
        )
    return names


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def _fraction(text: str) -> float:
    v = float(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export a fashion-train run to float/int8 TFLite and ONNX, each file self-describing, "
        "each evaluated on the test split through the product runtime (the parity gate).",
    )
    p.add_argument(
        "run", type=Path, help="run folder from fashion-train (or, with --verify, an exported folder)"
    )
    p.add_argument("--out", type=Path, help="output folder (default: RUN/export)")
    p.add_argument(
        "--int8", action="store_true", help="also write full-integer int8 files (PTQ, or QAT with --qat)"
    )
    p.add_argument("--int8-io", action="store_true",
                   help="also write model_int8_uint8io.tflite with uint8 input/output (raw pixels in; microcontrollers, "
                   "MediaPipe); the default int8 file keeps float32 I/O so it is a drop-in for the runtime and app")  # fmt: skip
    p.add_argument(
        "--qat", action="store_true", help="quantization-aware fine-tuning before the TFLite int8 export"
    )
    p.add_argument("--qat-epochs", type=_positive_int, default=2, help="QAT fine-tuning epochs (default 2)")
    p.add_argument(
        "--float16", action="store_true", help="also write model_float16.tflite (half-size weights)"
    )
    p.add_argument(
        "--formats", type=_families, default=FAMILIES, help="comma list of tflite,onnx (default both)"
    )
    p.add_argument("--max-drop", type=float, default=1.0, help="gate: max top-1 loss in points (default 1.0)")
    p.add_argument("--max-class-drop", type=float, default=3.0,
                   help="gate: max recall loss of any class in points (default 3.0)")  # fmt: skip
    p.add_argument("--review-precision", type=_fraction, default=0.98,
                   help="review threshold: predictions above it must be right this often on val (default 0.98)")  # fmt: skip
    p.add_argument("--calib-n", type=_positive_int, default=300, help="calibration images (default 300)")
    p.add_argument("--data", type=Path, help="catalogue folder or tarball (default: the shared data)")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for TensorFlow and the runtime")
    p.add_argument(
        "--verify", action="store_true", help="re-run the gate on an exported folder, write nothing"
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up log lines")
    return p


def converter_modules(args: argparse.Namespace) -> list[str]:
    """The ``[train]`` modules this export needs (none for ``--verify``)."""
    if args.verify:
        return []
    names = ["tensorflow", "tf_keras"]
    names += ["tf2onnx", "onnx"] if "onnx" in args.formats else []
    names += ["tensorflow_model_optimization"] if args.qat else []
    return names


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 gate failed, 2 usage or bad input)."""
    args = build_parser().parse_args(argv)
    from fashion_edge.training.cli import import_tensorflow, needs_train_extra

    if line := needs_train_extra(PROG, converter_modules(args)):
        print(line, file=sys.stderr)
        return 2
    if not args.verify:
        import_tensorflow(args.verbose)
    from fashion_edge.export.gate import GateError
    from fashion_edge.export.pipeline import ExportError, ExportOptions, export_run, verify_folder

    if args.int8_io and not args.int8:
        args.int8 = True  # integer-I/O files are int8 files
    command = "fashion-export " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        if args.verify:
            results, failures = verify_folder(
                args.run, args.data, args.max_drop, args.max_class_drop, args.threads
            )
            from fashion_edge.export.gate import cpu_path

            cpu = cpu_path()
            print(f"CPU: {cpu['model']}; int8 path: {cpu['int8_path']}")
            for r in results:
                rng = f", int8 weights {r.int8_weight_range}" if r.int8_weight_range else ""
                print(
                    f"{r.file}: top-1 {r.scores.top1:.2f}% ({r.top1_delta:+.2f}), agreement {r.agreement:.2f}%{rng}"
                )
            if failures:
                print(f"{PROG}: export gate failed: " + "; ".join(failures), file=sys.stderr)
                return 1
            print(f"gate passed: {len(results)} file(s) in {args.run}")
            return 0
        opts = ExportOptions(
            run=args.run, out=args.out, families=args.formats, int8=args.int8, int8_io=args.int8_io,
            float16=args.float16, qat=args.qat, qat_epochs=args.qat_epochs, max_drop=args.max_drop,
            max_class_drop=args.max_class_drop, review_precision=args.review_precision, calib_n=args.calib_n,
            data=args.data, threads=args.threads, command=command,
        )  # fmt: skip
        rep = export_run(opts)
    except GateError as e:  # the files were made but fail the parity gate
        print(f"{PROG}: {_first_line(e)}", file=sys.stderr)
        return 1
    except (ExportError, ValueError, OSError) as e:
        print(f"{PROG}: error: {_first_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    for f in rep["files"]:
        print(f"{f['file']}: {f['size_bytes'] / 1e6:.2f} MB, top-1 {f['scores']['top1']:.2f}% "
              f"({f['top1_delta']:+.2f}), agreement {f['agreement']:.2f}%")  # fmt: skip
    print(f"wrote {rep['out']} (gate passed; see export_report.md)")
    return 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
