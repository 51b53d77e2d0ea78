"""One-call export of a Keras model to TFLite / LiteRT and TFLite Micro.
(Running the files: `keras_sparse.tflite_model`, whose `TFLiteModel`,
`run_tflite` and `tflite_op_names` are importable from here too.)

The model goes through a TensorFlow SavedModel (`model.export`), whose serving
signature runs the inference path (k_inference winners, no state update), and
is converted with TFLite builtin ops only: a model that would need Flex
(Select TF) ops, or ops TFLite Micro lacks (`target="micro"`), fails here,
loudly, rather than on the device, and leaves no file behind.

What each `target` allows (its `quantize` modes, sparse encoding, its ops)
and uses (the k-winners threshold kernel, the runtime of its files) is one
entry of `keras_sparse.targets.TARGET_RULES`, re-exported here.

Quantization (`quantize=`):

- `None`: float32. Every k-winners layer is exported in its inference form
  (`keras_sparse.micro.SearchKWinners`: the boost factors folded into one
  constant, the output `where(boosted < threshold, 0, x)`), its threshold
  found by `keras_sparse.selection`'s portable kernel on LiteRT (`TOPK_V2`;
  `"sampled_top_k"` for rows of 1,024 values or more) or by the threshold
  search on TFLite Micro (`target="micro"`).
- `"dynamic"`: int8 weights, float32 activations (LiteRT only).
- `"int8"`: int8 weights and activations, int8 input and output, calibrated
  on `representative_data`. Every k-winners layer is exported in its
  inference form (as for float32) and kept in float32 between a
  `DEQUANTIZE` of its int8 input and a `QUANTIZE` of its output: the winners
  are the k largest of `q_x * exp(-b * duty_cycles)`, `q_x` the model's own
  (dequantized) int8 input of the layer, exactly, ties included as in the
  float layer. (Left to the quantizer, the boosted values would be rounded
  to 256 levels of their own before the selection, adding ties.)
"""

import os
import tempfile

import numpy as np

from keras_sparse.targets import (  # noqa: F401  (public here too)
    MICRO_OPS, QUANTIZE_MODES, TARGET_RULES, TARGETS, check_combination, check_ops, get_target)
from keras_sparse.tflite_model import (  # noqa: F401  (public here too)
    RUNTIMES, TFLiteModel, _tensor_names, run_tflite, tflite_op_names)


def to_tflite(model, path, quantize=None, representative_data=None, target="litert",
              sparse_encoding="auto"):
    """Converts `model` to a `.tflite` file at `path` and returns `path`.

    Args:
        model: a built Keras model (TensorFlow backend).
        path: where to write the `.tflite` flatbuffer (written only if the
            whole conversion succeeds).
        quantize: `None` (float32), `"dynamic"` (int8 weights) or `"int8"`
            (int8 weights, activations, input and output); see the module doc.
        representative_data: for `quantize="int8"` only (and required there):
            model inputs, an array `(N, *model.input_shape[1:])` with N >= 1,
            finite; e.g. a few hundred training samples. The activation
            ranges are calibrated on them one sample at a time.
        target: `"litert"` (LiteRT / TFLite on phones) or `"micro"` (TFLite
            for Microcontrollers: k-winners by `keras_sparse.micro`'s search,
            no `TOPK_V2`/`TILE`; only ops in `MICRO_OPS`; float32 or int8).
            Each is an entry of `TARGET_RULES`.
        sparse_encoding: `True` stores mostly-zero constant kernels in
            TFLite's sparse tensor encoding (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`):
            the same outputs, a smaller file.

            - float32: a kernel of whole 1x4 blocks (e.g. a
              `SparseDense(..., block=(1, 4))`) stays sparse and
              `FULLY_CONNECTED` runs its block-sparse kernel (faster at
              high sparsity); any other sparse kernel gets a `DENSIFY` op,
              which expands it at load time, so it runs no faster.
            - `"int8"`: only kernels of whole 1x16 blocks may be encoded
              (LiteRT's XNNPACK delegate cannot prepare an int8 `DENSIFY`);
              a model with another sparse kernel is refused.
            - `"dynamic"`: refused. LiteRT 2.3's default (XNNPACK) runtime
              computes a block-sparse dynamic-range `FULLY_CONNECTED`
              wrongly (errors of ~10 where the reference kernel is within
              0.04) and cannot prepare one behind a `DENSIFY`.
            - `target="micro"`: refused; TFLite Micro has no sparse tensors.

            `"auto"` (the default): encode when the model has a block-sparse
            layer and the combination is allowed, and (int8) every encoded
            kernel stays block-sparse; otherwise store the kernels dense.

    Raises `ValueError` naming the argument, its value and the valid range
    for a `model` that is not a built Keras model, a `path` that is not a
    file path, an unknown `quantize` or `target`, missing or malformed
    `representative_data`, a combination the target's `TARGET_RULES` entry
    does not allow (`"dynamic"` on `"micro"`, `sparse_encoding=True` where
    it has no sparse tensors), and for a model whose converted ops the target
    lacks (Flex ops; ops outside `MICRO_OPS`).
    """
    import keras

    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built Keras model. Received: model={model!r}")
    if (not isinstance(path, (str, os.PathLike)) or not os.fspath(path) or os.path.isdir(path)
            or os.fspath(path).endswith(("/", os.sep))):
        raise ValueError(f"`path` must be the path of the .tflite file to write. Received: path={path!r}")
    _check_inference_graph(model)
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"`quantize` must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}")
    spec = get_target(target)
    auto = isinstance(sparse_encoding, str) and sparse_encoding == "auto"
    if not (auto or isinstance(sparse_encoding, bool)):
        raise ValueError(
            f"`sparse_encoding` must be True, False or 'auto'. Received: sparse_encoding={sparse_encoding!r}"
        )
    possible = check_combination(spec, quantize, sparse_encoding)
    if auto and not (possible and has_block_sparse_weights(model)):
        sparse_encoding = False
    if quantize == "int8":
        representative_data = _check_representative_data(model, representative_data)
    elif representative_data is not None:
        raise ValueError(
            "`representative_data` calibrates quantize='int8' only. Received representative_data "
            f"with quantize={quantize!r}"
        )

    flatbuffer = _convert(model, quantize, representative_data, spec, sparse_encoding)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".tflite.partial", delete=False) as f:
        f.write(flatbuffer)
    try:
        os.replace(f.name, path)
    except OSError:
        os.remove(f.name)  # never leave the partial file behind
        raise
    return path


def _check_inference_graph(model):
    """Raises `ValueError` for a k-winners layer called with `training=True`
    written into the graph: its training path (the state update) cannot be
    exported, and the converter's error is a dump of MLIR."""
    from keras_sparse.kwinners import kwinners_layers

    for layer in kwinners_layers(model):
        for node in layer._inbound_nodes:
            if node.arguments.kwargs.get("training") is True:
                raise ValueError(
                    f"Layer '{layer.name}' is called with training=True in the model's graph: "
                    "the export runs the inference path only. Call it without `training` "
                    "(Keras passes it) and rebuild the model."
                )


def has_block_sparse_weights(model):
    """Whether a layer of `model` (nested models included) has a sparse-weights
    kernel of whole blocks (`SparseWeights(block=...)`)."""
    from keras_sparse.constraints import sparse_weight_layers

    return any(layer.kernel_constraint.block is not None for layer in sparse_weight_layers(model))


def _check_representative_data(model, data):
    expected = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
    if expected is None:
        raise ValueError(f"quantize='int8' supports models with one input; this one has {len(model.inputs)}.")
    if data is None:
        raise ValueError(
            "quantize='int8' needs `representative_data`: an array of model inputs of shape "
            f"(N, {', '.join(map(str, expected))}) to calibrate the activation ranges. "
            "Received: representative_data=None"
        )
    try:
        array = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`representative_data` must be an array of model inputs. Received: {error}") from None
    if array.ndim != len(expected) + 1 or len(array) == 0 or any(
        e is not None and e != a for e, a in zip(expected, array.shape[1:])
    ):
        raise ValueError(
            f"`representative_data` must have shape (N >= 1, {', '.join(map(str, expected))}). "
            f"Received shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("`representative_data` must be finite (found NaN or inf).")
    return array


def _convert(model, quantize, representative_data, target, sparse_encoding):
    """The flatbuffer (bytes) for `target` (a `keras_sparse.targets.Target`);
    `ValueError` for ops the target lacks."""
    import tensorflow as tf

    from keras_sparse import micro
    from keras_sparse.kwinners import kwinners_layers

    if kwinners_layers(model):  # their export form: constant boost factors, the target's kernel
        model = micro.with_search_kwinners(model, target.kwinners_kernel, finite_inputs=quantize == "int8")
    with tempfile.TemporaryDirectory() as saved_model_dir:
        model.export(saved_model_dir, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        optimizations = []
        if quantize is not None:
            optimizations.append(tf.lite.Optimize.DEFAULT)
        if sparse_encoding and quantize is None:
            optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
        converter.optimizations = optimizations
        if quantize == "int8":
            converter.representative_dataset = lambda: ([x[None]] for x in representative_data)
            converter._experimental_calibrate_only = True  # quantized below
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # ConverterError: e.g. ops without a TFLite builtin
            raise ValueError(f"The model cannot be converted to TFLite builtin ops: {error}") from None
    if quantize == "int8":
        flatbuffer = _quantize_int8(flatbuffer)
        if sparse_encoding:
            flatbuffer = _sparsify_int8(flatbuffer, required=sparse_encoding is True)
    check_ops(target, tflite_op_names(flatbuffer))
    return flatbuffer


def _sparsify_int8(quantized, required):
    """Sparse-encodes the kernels of an int8 flatbuffer, after quantizing, as
    the converter does (its quantizer drops the sparse float tensors of a model
    calibrated with `EXPERIMENTAL_SPARSITY`, leaving an empty model). A kernel
    that is not made of 1x16 blocks would get a `DENSIFY`, which LiteRT's
    XNNPACK delegate cannot prepare in int8: then `ValueError` if `required`,
    else `quantized` unchanged."""
    from tensorflow.lite.python import convert

    sparse = convert.mlir_sparsify(quantized)
    if "DENSIFY" not in tflite_op_names(sparse):
        return sparse
    if required:
        raise ValueError(
            "sparse_encoding=True with quantize='int8' needs every sparse kernel made of 1x16 "
            "blocks (e.g. SparseDense(..., block=(1, 16))); this model's other sparse kernels "
            "would need a DENSIFY op, which LiteRT's default runtime cannot prepare in int8. "
            "Use sparse_encoding=False or 'auto'."
        )
    return quantized


def _quantize_int8(calibrated):
    """Full int8 quantization of a calibrated flatbuffer, with the ops of the
    k-winners search layers kept float32 (see the module doc).

    Uses the converter's own quantizer entry point with a node denylist, as
    `tf.lite.experimental.QuantizationDebugger` does.
    """
    import tensorflow as tf
    from tensorflow.lite.python import convert

    from keras_sparse.micro import SEARCH_LAYER_SUFFIX

    names = _tensor_names(calibrated)
    denylist = sorted({part for name in names if SEARCH_LAYER_SUFFIX in name for part in name.split(";")})
    return convert.mlir_quantize(
        calibrated, fully_quantize=True, input_data_type=tf.int8, output_data_type=tf.int8,
        denylisted_nodes=denylist or None,
        # The quantizer treats TOPK_V2 as scale-preserving and quantizes it
        # even inside the denylisted nodes: the threshold would come from
        # int8-rounded values. Keep every TOPK_V2 float.
        denylisted_ops=["TOPK_V2"] if denylist else None,
    )
