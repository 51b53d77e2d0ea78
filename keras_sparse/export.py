"""One-call export of a Keras model to TFLite / LiteRT.

The model goes through a TensorFlow SavedModel (`model.export`), whose serving
signature runs the inference path (k_inference winners, no state update), and
is converted with TFLite builtin ops only: a model that would need Flex
(Select TF) ops fails here, loudly, rather than on the device.
"""

import os
import tempfile


def to_tflite(model, path, sparse_encoding=False):
    """Converts `model` to a `.tflite` file at `path` and returns `path`.

    Args:
        model: a built Keras model (TensorFlow backend).
        path: where to write the `.tflite` flatbuffer.
        sparse_encoding: if True, store mostly-zero constant kernels in
            TFLite's sparse tensor encoding (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`):
            a smaller file, identical outputs; the runtime densifies them at
            load time, so it runs no faster.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved_model_dir:
        model.export(saved_model_dir, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if sparse_encoding:
            converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def tflite_op_names(path):
    """Sorted names of the distinct operators in a `.tflite` file."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path))._get_ops_details()
    return sorted({op["op_name"] for op in details})
