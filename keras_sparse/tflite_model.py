"""Running and reading `.tflite` files: `TFLiteModel` (a Keras-like
`predict` on LiteRT or TFLite Micro), `run_tflite`, `tflite_op_names`.

Each runtime is one class of `RUNTIMES` (`LiteRTRuntime`, `MicroRuntime`)
behind the one `TFLiteModel`; a new export target's runtime is one more.
Every file is checked structurally (`keras_sparse._tflite_check`) before an
interpreter or a flatbuffer reader sees it. `keras_sparse.export` writes the
files (and re-exports these names).
"""

import os
import struct
import threading

import numpy as np

from keras_sparse._tflite_check import check_tflite
from keras_sparse._validation import check_int


def _read_model(flatbuffer_or_path):
    from tensorflow.lite.python import schema_py_generated as schema

    if isinstance(flatbuffer_or_path, (bytes, bytearray)):
        data = flatbuffer_or_path
    else:
        with open(flatbuffer_or_path, "rb") as f:
            data = f.read()
    check_tflite(data)
    return schema, schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _tensor_names(flatbuffer):
    _, model = _read_model(flatbuffer)
    return [t.name.decode() for g in model.subgraphs for t in g.tensors]


class LiteRTRuntime:
    """LiteRT (`ai_edge_litert`): a whole batch per invocation, the batch
    (and an unknown length) resized as it changes; its default (XNNPACK)
    kernels, or TFLite's reference kernels with `op_resolver="reference"`.

    A runtime (one per entry of `RUNTIMES`) opens a checked flatbuffer,
    describes its one input and output (`input_dtype`, `input_quantization`
    `(scale, zero_point)`, `input_shape` without the batch, None where
    unknown; the same for the output) and `run`s a batch of inputs of the
    input dtype, raising `ValueError` where the interpreter refuses.
    `static_shapes`: whether it runs the stored shapes (the structural check
    then checks them, `check_tflite(micro=True)`).
    """

    name = "LiteRT"
    static_shapes = False

    def __init__(self, flatbuffer, path, op_resolver="default"):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = path
        resolver = {"default": OpResolverType.AUTO, "reference": OpResolverType.BUILTIN_REF}[op_resolver]
        try:
            self._interpreter = Interpreter(model_content=flatbuffer, experimental_op_resolver_type=resolver)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"LiteRT cannot run {path!r}: {error}") from None
        inp, out = self._interpreter.get_input_details()[0], self._interpreter.get_output_details()[0]
        self.input_dtype, self.input_quantization = inp["dtype"], inp["quantization"]
        self.output_dtype, self.output_quantization = out["dtype"], out["quantization"]
        self.input_shape, self.output_shape = (
            tuple(None if d < 0 else int(d) for d in details["shape_signature"][1:]) for details in (inp, out))
        self._shape = None

    def run(self, inputs, batch_size):
        try:
            return np.concatenate([self._invoke(inputs[i:i + batch_size])
                                   for i in range(0, len(inputs), batch_size)])
        except RuntimeError as error:  # an operator refused its shapes
            self._shape = None
            raise ValueError(f"LiteRT cannot run {self.path!r} on inputs of shape "
                             f"{inputs.shape}: {error}") from None

    def _invoke(self, batch):
        interpreter = self._interpreter
        index = interpreter.get_input_details()[0]["index"]
        if self._shape != batch.shape:  # the batch, or an unknown length, changed
            interpreter.resize_tensor_input(index, list(batch.shape))
            interpreter.allocate_tensors()
            self._shape = batch.shape
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


class MicroRuntime:
    """TFLite Micro (`tflite_micro`, the host build of the microcontroller
    interpreter): one sample per invocation, on the stored shapes. The
    interface is `LiteRTRuntime`'s; `op_resolver` does not apply."""

    name = "TFLite Micro"
    static_shapes = True

    def __init__(self, flatbuffer, path, op_resolver="default"):
        from tflite_micro.python.tflite_micro import runtime as micro_runtime

        self.path = path
        try:
            self._interpreter = micro_runtime.Interpreter.from_bytes(flatbuffer)
        except (RuntimeError, struct.error, IndexError, TypeError, ValueError, UnicodeDecodeError) as error:
            # RuntimeError: the interpreter refused the model; the others:
            # its Python wrapper unpacking a part the check does not
            # interpret (the contents of an operator's options).
            raise ValueError(f"TFLite Micro cannot run {path!r}: {error}") from None
        details = self._interpreter.get_input_details(0), self._interpreter.get_output_details(0)
        (self.input_dtype, self.input_quantization), (self.output_dtype, self.output_quantization) = [
            (d["dtype"], _scale_zero_point(d["quantization_parameters"])) for d in details
        ]
        self.input_shape, self.output_shape = (tuple(int(n) for n in d["shape"][1:]) for d in details)

    def run(self, inputs, batch_size):
        outputs = []
        for sample in inputs:
            self._interpreter.set_input(sample[None], 0)
            try:
                self._interpreter.invoke()
            except RuntimeError as error:
                raise ValueError(f"TFLite Micro cannot run {self.path!r}: {error}") from None
            outputs.append(self._interpreter.get_output(0)[0].copy())
        return np.stack(outputs)


# The runtimes `TFLiteModel` can run a file on, by the name of
# `TFLiteModel(runtime=...)` (each export target names its runtime in
# `keras_sparse.targets.TARGET_RULES`).
RUNTIMES = {"litert": LiteRTRuntime, "micro": MicroRuntime}
OP_RESOLVERS = ("default", "reference")


class TFLiteModel:
    """A `.tflite` file behind a Keras-like `predict`, on LiteRT or TFLite Micro.

    Float32 inputs and outputs either way: for an int8 model the inputs are
    quantized with the input tensor's scale and zero point
    (`q = clip(round(x / scale) + zero_point, -128, 127)`) and the outputs
    dequantized (`(q - zero_point) * scale`); `predict_raw` gives the int8
    outputs themselves. int8 has no NaN: `predict` returns NaN outputs for a
    sample holding a NaN (as the float model does), `predict_raw` refuses it.
    The runtime (one class of `RUNTIMES`) runs the file: LiteRT a whole batch
    per invocation (its default XNNPACK delegate, or `op_resolver="reference"`
    for TFLite's reference kernels); TFLite Micro, the host build of the
    microcontroller interpreter, one sample per invocation.

    The file is checked structurally first (indices and buffer sizes, see
    `keras_sparse._tflite_check`): a truncated, random or crafted file raises
    `ValueError` before an interpreter, which trusts its model, reads it. It
    must have one input and one output (TFLite orders several by name, not as
    the Keras model did: use `ai_edge_litert.interpreter.Interpreter` for
    those).

    Thread safety: one instance may be shared by threads; its calls run one
    at a time (a lock around the one interpreter). For calls in parallel,
    give each thread its own `TFLiteModel`.

    Args:
        path: the `.tflite` file.
        runtime: one of `RUNTIMES`: `"litert"` or `"micro"`.
        op_resolver: LiteRT only: `"default"` or `"reference"`.
    """

    def __init__(self, path, runtime="litert", op_resolver="default"):
        if not isinstance(runtime, str) or runtime not in RUNTIMES:
            raise ValueError(f"`runtime` must be one of {tuple(RUNTIMES)}. Received: runtime={runtime!r}")
        if op_resolver not in OP_RESOLVERS:
            raise ValueError(f"`op_resolver` must be one of {OP_RESOLVERS}. Received: op_resolver={op_resolver!r}")
        if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
            raise ValueError(f"`path` must be an existing .tflite file. Received: path={path!r}")
        self.path, self.runtime = os.fspath(path), runtime
        with open(path, "rb") as f:
            self._flatbuffer = f.read()
        runtime_class = RUNTIMES[runtime]
        check_tflite(self._flatbuffer, f"`path` {self.path!r}", micro=runtime_class.static_shapes)
        self._check_one_input_and_output()
        self._lock = threading.Lock()
        self._runtime = runtime_class(self._flatbuffer, self.path, op_resolver)
        for attribute in ("input_dtype", "input_quantization", "input_shape",
                          "output_dtype", "output_quantization", "output_shape"):
            setattr(self, attribute, getattr(self._runtime, attribute))

    def _check_one_input_and_output(self):
        from tensorflow.lite.python import schema_py_generated as schema

        subgraph = schema.Model.GetRootAs(self._flatbuffer, 0).Subgraphs(0)
        if subgraph.InputsLength() != 1 or subgraph.OutputsLength() != 1:
            names = [[subgraph.Tensors(i).Name().decode(errors="replace") for i in indices]
                     for indices in (subgraph.InputsAsNumpy(), subgraph.OutputsAsNumpy())]
            raise ValueError(
                f"TFLiteModel runs models of one input and one output; {self.path!r} has "
                f"{len(names[0])} inputs {names[0]} and {len(names[1])} outputs {names[1]} "
                "(TFLite orders them by name). Use ai_edge_litert.interpreter.Interpreter "
                "and its signature runner for it."
            )

    def _check_inputs(self, inputs):
        inputs = np.asarray(inputs, np.float32)
        expected = self.input_shape
        if inputs.ndim != len(expected) + 1 or any(
                d is not None and d != got for d, got in zip(expected, inputs.shape[1:])):
            raise ValueError(
                f"`inputs` must have shape (batch, {', '.join('None' if d is None else str(d) for d in expected)})"
                f" for {self.path!r}. Received inputs of shape {inputs.shape}"
            )
        return inputs

    def quantize_inputs(self, inputs):
        """`inputs` as the model's input dtype (quantized for an int8 model;
        NaN, which int8 cannot hold, raises `ValueError`)."""
        inputs = np.asarray(inputs, np.float32)
        if self.input_dtype != np.int8:
            return inputs
        if np.isnan(inputs).any():
            samples = np.flatnonzero(np.isnan(inputs).any(axis=tuple(range(1, inputs.ndim))))
            raise ValueError(f"`inputs` hold NaN (samples {samples[:5].tolist()}), which an int8 model "
                             "cannot represent; `predict` returns NaN outputs for them.")
        scale, zero_point = self.input_quantization
        return np.clip(np.round(inputs / scale) + zero_point, -128, 127).astype(np.int8)

    def dequantize_outputs(self, outputs):
        if self.output_dtype != np.int8:
            return outputs
        scale, zero_point = self.output_quantization
        return ((outputs.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)

    def predict_raw(self, inputs, batch_size=256):
        """The model's own outputs (int8 for an int8 model) for float32 `inputs`
        `(batch, *input_shape)`; an empty batch gives an empty output."""
        check_int("batch_size", batch_size, 1)
        inputs = self.quantize_inputs(self._check_inputs(inputs))
        if len(inputs) == 0:
            return np.zeros((0, *(d or 0 for d in self.output_shape)), self.output_dtype)
        with self._lock:
            return self._runtime.run(inputs, batch_size)

    def predict(self, inputs, batch_size=256, verbose=0):
        """Float32 outputs for float32 `inputs` (as `keras.Model.predict`);
        for an int8 model, NaN outputs for a sample holding a NaN."""
        inputs = self._check_inputs(inputs)
        nan = np.zeros(len(inputs), bool)
        if self.input_dtype == np.int8:
            nan = np.isnan(inputs).any(axis=tuple(range(1, inputs.ndim)))
            inputs = np.where(np.isnan(inputs), np.float32(0), inputs)
        outputs = self.dequantize_outputs(self.predict_raw(inputs, batch_size))
        if nan.any():
            outputs = outputs.astype(np.float32)
            outputs[nan] = np.nan
        return outputs


def _scale_zero_point(parameters):
    scales, zero_points = parameters["scales"], parameters["zero_points"]
    if len(scales) == 0:
        return (0.0, 0)
    return float(scales[0]), int(zero_points[0])


def run_tflite(path, inputs, runtime="litert"):
    """Runs a `.tflite` file on a batch and returns the first output as float32.

    LiteRT resizes the model's (single) input to `inputs.shape` and invokes
    once; TFLite Micro (`runtime="micro"`) invokes once per sample. int8
    models are fed quantized inputs and their outputs dequantized
    (`TFLiteModel`).
    """
    inputs = np.asarray(inputs, np.float32)
    return TFLiteModel(path, runtime).predict(inputs, batch_size=max(len(inputs), 1))


def tflite_op_names(path):
    """Sorted names of the distinct operators in a `.tflite` file (or its bytes).

    Builtin operators by their `BuiltinOperator` name (`"TOPK_V2"`); anything
    else as `"CUSTOM:<code>"` (Flex / Select TF ops are `"CUSTOM:Flex..."`).
    """
    schema, model = _read_model(path)
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
