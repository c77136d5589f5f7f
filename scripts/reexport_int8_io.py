"""Re-convert only the integer-I/O TFLite file of an exported model folder (issue 24: uint8 I/O).

    python scripts/reexport_int8_io.py models/articletype8 [--run RUN] [--data CATALOGUE] [--threads N]

Runs the export's own steps for the one ``--int8-io`` row of the formats table: the Keras model of
``RUN`` (default ``MODEL_DIR/run``), the same stratified calibration images (as many as the
folder's export_report.json records), the folder's calibrated record (metadata.json: temperature,
review threshold), the parity gate on the test split through the runtime against the reference
predictions in export_report.json. It writes the new file into the folder, removes the file it
replaces (``model_int8_int8io.tflite``) and updates that file's row, goals and gate in
export_report.json/.md. The other files are not touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fashion_edge.export.calibration import representative_set
from fashion_edge.export.embedding import cached
from fashion_edge.export.formats import FORMATS, ExportContext
from fashion_edge.export.gate import FileResult, Scores, apply_gate, goals
from fashion_edge.export.pipeline import (
    _data_source,
    _keras_embeddings,
    _load_keras,
    _split,
    _write_one,
    check_run,
)
from fashion_edge.export.report import write_report
from fashion_edge.runtime.metadata import load_json

OLD_NAME = "model_int8_int8io.tflite"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--run", type=Path, help="training run with model.keras (default MODEL_DIR/run)")
    p.add_argument("--data", type=Path, help="catalogue folder (default: as the export found it)")
    p.add_argument("--threads", type=int)
    a = p.parse_args(argv)
    out, run = a.model_dir, a.run or a.model_dir / "run"
    command = "python scripts/reexport_int8_io.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    fmt = next(f for f in FORMATS if f.needs == "int8_io")
    rep = json.loads((out / "export_report.json").read_text(encoding="utf-8"))
    if rep["quantization"]["method"] != "PTQ":
        sys.exit(f"{out}: exported with {rep['quantization']['method']}; this script redoes PTQ only")
    base = load_json(out / "metadata.json")
    base = base.replace(
        provenance={**base.provenance, "exported": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "export_command": command},
    )  # fmt: skip
    run_meta = check_run(run)
    data = _data_source(a.data, base)
    model = _load_keras(run, run_meta, a.threads)
    calib = representative_set(run, rep["quantization"]["calibration_images"], data)
    test_x, test_y, ids = _split(run, "test", data)
    if ids != rep["reference"]["test_ids"]:
        sys.exit(f"{run / 'splits.csv'}: test rows differ from those in {out / 'export_report.json'}")
    ref_pred = np.asarray(rep["reference"]["pred"])
    ref = Scores(**rep["reference"]["scores"])
    empty = np.zeros((0, *run_meta.input_shape), np.uint8)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        ctx = ExportContext(model, base, calib, empty, np.zeros(0, np.int64), work, None, a.threads)
        ref_emb = _keras_embeddings(cached(ctx, "float", model), test_x)
        res = _write_one(fmt, ctx, out, test_x, test_y, ref_pred, ref, a.threads, ref_emb)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.notes["exported_by"] = command
    apply_gate([res], rep["classes"], rep["gate"]["max_drop"], rep["gate"]["max_class_drop"])
    kept = [FileResult(**{**d, "scores": Scores(**d["scores"])}) for d in rep["files"]
            if d["file"] not in (OLD_NAME, fmt.filename)]  # fmt: skip
    order = [f.filename for f in FORMATS]
    results = sorted([*kept, res], key=lambda r: order.index(r.file))
    rep["files"] = [r.to_dict() for r in results]
    rep["goals"] = goals(results)
    failures = [f for r in results for f in r.failures]
    rep["gate"].update(failures=failures, passed=not failures)
    write_report(out, rep)
    if fmt.filename != OLD_NAME:
        (out / OLD_NAME).unlink(missing_ok=True)
    print(f"{out / fmt.filename}: top-1 {res.scores.top1:.2f} % ({res.top1_delta:+.2f}), "
          f"agreement {res.agreement:.2f} %, {res.size_bytes} bytes; gate {'passed' if not failures else failures}")  # fmt: skip
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
