"""The commands behave alike: arguments parsed before heavy imports, exit 2 and one line prefixed
with the command's name for usage errors, one install line in a base install, native log noise
kept off the terminal unless --verbose."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_edge.runtime.quiet import native_stderr_silenced
from fashion_edge.training import models

HEAVY = ("tensorflow", "sklearn", "matplotlib", "onnxruntime")


def _modules_after(code: str) -> set[str]:
    """Which HEAVY modules a fresh interpreter has imported after running ``code``."""
    probe = (
        f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120).stdout
    line = next(x for x in out.splitlines() if x.startswith("HEAVY:"))
    return set(filter(None, line.removeprefix("HEAVY:").split(",")))


@pytest.mark.parametrize(
    "code",
    [
        "from fashion_edge.training.cli import main; main(['--help'])",
        "from fashion_edge.training.cli import main; main(['--bogus'])",
        "from fashion_edge.training.cli import main; main(['--models'])",
        "from fashion_edge.export.cli import main; main(['--help'])",
        "from fashion_edge.benchmarks.bench import main; main(['--bogus'])",
    ],
)
def test_help_and_bad_options_do_not_import_heavy_libraries(code) -> None:
    assert _modules_after(code) == set()


def _without(monkeypatch, *names: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in names else real(n, *a))


def test_train_in_a_base_install_names_the_extra(monkeypatch, capsys) -> None:
    from fashion_edge.training.cli import main

    _without(monkeypatch, "tensorflow", "tf_keras")
    assert main(["--recipe", "articletype8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "fashion-train: error: needs tensorflow, tf_keras (not in the base install): pip install 'fashion-edge[train]'"
    ]


def test_export_in_a_base_install_names_the_extra(monkeypatch, capsys, tmp_path) -> None:
    from fashion_edge.export.cli import main

    _without(monkeypatch, "tensorflow", "tf_keras", "tf2onnx", "onnx")
    assert main([str(tmp_path), "--int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "fashion-export: error: needs tensorflow, tf_keras, tf2onnx, onnx"
    )
    assert err[0].endswith("pip install 'fashion-edge[train]'")


def test_export_usage_errors_exit_2_with_prefix(capsys) -> None:
    from fashion_edge.export.cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", "--formats", "jpeg"])
    assert e.value.code == 2 and "fashion-export: error:" in capsys.readouterr().err


def test_webcamset_bad_input_exits_2_with_prefix(tmp_path, capsys) -> None:
    from fashion_edge.training.webcam import main

    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fashion-webcamset: error: ")


def test_model_listing_needs_no_tensorflow_with_the_cache() -> None:
    assert not models.listing_needs_tensorflow()
    assert _modules_after("from fashion_edge.training.cli import main; main(['--models'])") == set()


@pytest.mark.slow
def test_parameter_cache_matches_the_builders() -> None:
    """The cached counts behind ``fashion-train --models`` equal a fresh build of every model
    (regenerate with ``python -m fashion_edge.training.models``)."""
    cached = models.cached_params()
    assert set(cached) == set(models.REGISTRY), "registry changed: python -m fashion_edge.training.models"
    for name, spec in models.REGISTRY.items():
        shape, k = models._listed(spec)
        assert models.count_params(name, tuple(shape), k) == cached[name], name


def test_native_stderr_is_silenced_and_restored(capfd) -> None:
    with native_stderr_silenced():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"after\n")
    with native_stderr_silenced(enabled=False):
        os.write(2, b"verbose\n")
    assert capfd.readouterr().err == "after\nverbose\n"


def test_webcam_like_images_refuse_to_run_without_scikit_image(monkeypatch) -> None:
    """No silent fallback texture: a seeded webcam-like set must be the same on every install."""
    from fashion_edge.training import webcam

    webcam.sample_textures.cache_clear()
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage -> ImportError
    try:
        with pytest.raises(webcam.WebcamDependencyError, match=r"pip install 'fashion-edge\[train\]'"):
            webcam.sample_textures()
    finally:
        webcam.sample_textures.cache_clear()


def test_opencv_camera_warnings_are_silenced_unless_verbose(monkeypatch, capfd) -> None:
    import cv2

    from fashion_edge.runtime.quiet import quiet_environment

    logging = cv2.utils.logging
    before = logging.getLogLevel()
    for key in ("OPENCV_LOG_LEVEL", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    try:
        logging.setLogLevel(logging.LOG_LEVEL_WARNING)
        quiet_environment(verbose=True)
        assert logging.getLogLevel() == logging.LOG_LEVEL_WARNING and "OPENCV_LOG_LEVEL" not in os.environ
        quiet_environment()
        assert logging.getLogLevel() == logging.LOG_LEVEL_ERROR
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
        cv2.VideoCapture(98).release()  # no such camera: OpenCV would print "[ WARN ]" lines
        assert "WARN" not in capfd.readouterr().err
    finally:
        logging.setLogLevel(before)


@pytest.mark.slow
def test_tensorflow_start_up_lines_only_with_verbose() -> None:
    pytest.importorskip("tensorflow", reason="needs the [train] extra")
    code = "import sys; from fashion_edge.training.cli import import_tensorflow; import_tensorflow(sys.argv[1] == 'v')"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL")}
    run = [subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, env=env, timeout=300)
           for flag in ("q", "v")]  # fmt: skip
    assert run[0].returncode == 0 and run[0].stderr == ""
    assert run[1].returncode == 0 and ("oneDNN" in run[1].stderr or "cuda" in run[1].stderr.lower())


def test_litert_delegate_line_only_when_verbose() -> None:
    model = Path(__file__).resolve().parent.parent / "models" / "articletype8" / "model_int8.tflite"
    if not model.exists():
        pytest.skip(f"{model} not shipped")
    code = f"from fashion_edge.runtime import load; load({str(model)!r})"
    env = {k: v for k, v in os.environ.items() if k != "FASHION_EDGE_VERBOSE"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "FASHION_EDGE_VERBOSE": "1"})  # fmt: skip
    assert quiet.returncode == 0 and "XNNPACK" not in quiet.stderr
    assert loud.returncode == 0 and "XNNPACK" in loud.stderr
