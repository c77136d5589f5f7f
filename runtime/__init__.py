"""fashion-edge runtime: load a model file and classify images (numpy, OpenCV, ONNX Runtime, LiteRT).

    from fashion_edge.runtime import load
    clf = load("models/articletype8-lite0/model_int8.tflite")
    clf.predict(["shirt.jpg"], top_k=3)

No TensorFlow is imported here or below.
"""

from fashion_edge.runtime.classifier import Classifier, ModelLoadError, Prediction, default_model_path, load
from fashion_edge.runtime.metadata import ModelMetadata
from fashion_edge.runtime.preprocess import ImageError

__all__ = [
    "Classifier",
    "ImageError",
    "ModelLoadError",
    "ModelMetadata",
    "Prediction",
    "default_model_path",
    "load",
]
