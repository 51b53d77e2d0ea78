"""Keras' own export formats on the shipped models: `model.export(path,
format=...)` for `tf_saved_model`, `litert`, `onnx` and `openvino`, each run
in its own runtime (TensorFlow, LiteRT, ONNX Runtime, OpenVINO) on real MNIST
and FSDD test inputs, agrees with Keras within 1e-5 and gives the same
classes."""

import numpy as np
import pytest

from tests.conftest import REPO

SAVED = REPO / "saved_models"
MODELS = ["mnist_sparse_cnn2", "fsdd_sparse_cnn2"]
FORMATS = {"tf_saved_model": "saved_model", "litert": "model.tflite", "onnx": "model.onnx",
           "openvino": "model.xml"}


def _run_tf_saved_model(path, x):
    import tensorflow as tf

    reloaded = tf.saved_model.load(str(path))  # alive while serving
    return reloaded.serve(tf.constant(x)).numpy()


def _run_litert(path, x):
    import keras_sparse as ks

    ops = ks.export.tflite_op_names(path)
    assert "TOPK_V2" in ops and not [op for op in ops if op.startswith(("CUSTOM", "FLEX"))], ops
    return ks.export.run_tflite(path, x)


def _run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    return output


def _run_openvino(path, x):
    import openvino

    # OpenVINO's CPU plugin computes in bfloat16 by default where the CPU has
    # it (AVX512_BF16, AMX): logits then differ by ~0.5. Ask for float32.
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[0]


RUNTIMES = {"tf_saved_model": _run_tf_saved_model, "litert": _run_litert, "onnx": _run_onnx,
            "openvino": _run_openvino}


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("export_format", sorted(FORMATS))
@pytest.mark.parametrize("name", MODELS)
def test_keras_export_of_a_freshly_loaded_shipped_model_matches_keras(name, export_format, mnist, fsdd, tmp_path):
    """Exported straight after `load_model`, before any call: Keras' ONNX
    export needs `input_signature=model.inputs` then (without it, it refuses
    a model that was never called, even a functional one)."""
    import keras

    import keras_sparse  # noqa: F401
    from keras_sparse import datasets

    model = keras.models.load_model(SAVED / f"{name}.keras")
    path = tmp_path / FORMATS[export_format]
    model.export(str(path), format=export_format, input_signature=model.inputs, verbose=False)
    if name.startswith("mnist"):
        x = datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:64]))
    else:
        x = fsdd["test"][0][:64]  # raw 16 kHz clips: the log-mel front end is in the model
    got = RUNTIMES[export_format](path, x)
    want = model.predict(x, verbose=0)
    assert got.shape == want.shape == (64, 10)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))


_TORCH_EXPORT = r"""
import sys
sys.modules["tensorflow"] = None
import numpy as np
import torch
import keras
import keras_sparse as ks
from keras_sparse import datasets

model = keras.models.load_model(sys.argv[1])
with np.load(sys.argv[2]) as data:
    x = datasets.normalize(datasets.to_unit_interval(data["x_test"][:64]))
batch = torch.export.Dim("batch", min=1, max=1024)
model.export(sys.argv[3], format="torch", dynamic_shapes={0: batch}, verbose=False)
program = torch.export.load(sys.argv[3]).module()
for n in (64, 3):
    got = program(torch.from_numpy(x[:n])).detach().numpy()
    want = keras.ops.convert_to_numpy(model(x[:n]))
    assert got.shape == (n, 10), got.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
print("ok")
"""


@pytest.mark.tensorflow_only
def test_torch_export_on_the_pytorch_backend_matches_keras(tmp_path):
    """`format="torch"` (a `torch.export` `.pt2`) needs the PyTorch backend, and
    `dynamic_shapes` for any batch but 1: the shipped MNIST model exported that
    way agrees with Keras on batches of 64 and 3 real test images."""
    import os
    import subprocess
    import sys

    from tests.conftest import mnist_dir

    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", _TORCH_EXPORT, str(SAVED / "mnist_sparse_cnn2.keras"),
         str(mnist_dir() / "mnist.npz"), str(tmp_path / "model.pt2")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.mark.tensorflow_only
def test_masked_sequence_model_exports_to_onnx(tmp_path):
    """A padded sequence (`Embedding(mask_zero=True)` -> `KWinners` ->
    `GlobalAveragePooling1D`, which averages the real steps only) through ONNX
    Runtime: the same numbers as Keras, padded steps included."""
    import keras

    import keras_sparse as ks

    tokens = keras.Input((6,), dtype="int32")
    embedded = keras.layers.Embedding(20, 12, mask_zero=True)(tokens)
    model = keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(ks.KWinners(0.25)(embedded)))
    x = np.random.default_rng(0).integers(1, 20, (8, 6)).astype(np.int32)
    x[:, 4:] = 0
    x[0, 1:] = 0
    path = tmp_path / "model.onnx"
    model.export(str(path), format="onnx", input_signature=model.inputs, verbose=False)
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(_run_onnx(path, x), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(want, model.predict(x[:, :4], verbose=0), rtol=0, atol=1e-6)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("export_format", ["litert", "onnx"])
@pytest.mark.parametrize("make_layer, input_shape", __import__("tests.test_layers", fromlist=["LAYERS"]).LAYERS)
def test_keras_export_of_every_harness_layer_matches_keras(make_layer, input_shape, export_format, tmp_path):
    """Every layer of the shared harness, trained one epoch inside a small
    model, through Keras' `litert` and `onnx` exports (SavedModel: the
    harness's own test), against `predict` within 1e-5."""
    from tests.test_layers import _data, _fit, _model

    x, y = _data(input_shape, n=32)
    model = _model(make_layer, input_shape)
    _fit(model, x, y)
    path = tmp_path / FORMATS[export_format]
    model.export(str(path), format=export_format, input_signature=model.inputs, verbose=False)
    got = (_run_onnx(path, x) if export_format == "onnx"
           else __import__("keras_sparse").export.run_tflite(path, x))
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=0, atol=1e-5)
