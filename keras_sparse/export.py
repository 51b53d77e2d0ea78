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

    Raises `ValueError` for a `model` that is not a built Keras model, a
    `path` that is not a file path, or a `sparse_encoding` that is not a bool.
    """
    import keras
    import tensorflow as tf

    from keras_sparse._validation import check_bool

    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built Keras model. Received: model={model!r}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path) or os.path.isdir(path):
        raise ValueError(f"`path` must be the path of the .tflite file to write. Received: path={path!r}")
    check_bool("sparse_encoding", sparse_encoding)

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


def run_tflite(path, inputs):
    """Runs a `.tflite` file on a batch with the LiteRT interpreter.

    Resizes the model's (single) input to `inputs.shape`, invokes once and
    returns the first output as a NumPy array.
    """
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    inputs = np.asarray(inputs, np.float32)
    interpreter = Interpreter(model_path=str(path))
    input_index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, list(inputs.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(input_index, inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def tflite_op_names(path):
    """Sorted names of the distinct operators in a `.tflite` file.

    Builtin operators by their `BuiltinOperator` name (`"TOPK_V2"`); anything
    else as `"CUSTOM:<code>"` (Flex / Select TF ops are `"CUSTOM:Flex..."`).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
    builtin_names = {
        code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
    }
    names = set()
    for op_code in model.operatorCodes:
        code = max(op_code.builtinCode, op_code.deprecatedBuiltinCode)
        if code == schema.BuiltinOperator.CUSTOM:
            names.add("CUSTOM:" + op_code.customCode.decode())
        else:
            names.add(builtin_names[code])
    return sorted(names)
