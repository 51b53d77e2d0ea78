"""`TFLiteModel` on untrusted files and awkward calls: a structural check
refuses what would make TFLite Micro read out of bounds (fuzzed in
subprocesses, so a crash fails the test instead of killing it), one input
and one output, int8 and NaN, empty batches, wrong shapes, threads."""

import json
import pathlib
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest

import keras
from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite
from tests.scripts import fuzz_tflite

REPO = pathlib.Path(__file__).resolve().parents[1]
INT8 = REPO / "saved_models" / "mnist_dense_cnn2_int8.tflite"
FLOAT = REPO / "saved_models" / "mnist_dense_cnn2.tflite"


@pytest.mark.parametrize("runtime, cases", [("micro", 150), ("litert", 120)])
def test_fuzzed_files_raise_value_error_never_crash(runtime, cases):
    """Bit flips, out-of-range buffer and tensor indices, operators rewired
    to another tensor in range, constant tensors
    larger than their buffers, truncated and random files: every case either
    runs or raises `ValueError`; the process is never killed by a signal."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "scripts" / "fuzz_tflite.py"), runtime, str(cases), "0",
         str(INT8), str(FLOAT)], capture_output=True, text=True, timeout=300, cwd=REPO)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, f"case {lines[-1] if lines else None} ended with {result.returncode}: " \
                                   f"{result.stderr[-2000:]}"
    outcomes = [line["outcome"] for line in lines if "outcome" in line]
    assert len(outcomes) == cases and set(outcomes) <= {"ok", "ValueError"}
    refused = {line["kind"] for line in lines if line.get("outcome") == "ValueError"}
    # every targeted mutation is caught (a bit flip or an in-range rewiring may leave a runnable model)
    assert set(fuzz_tflite.KINDS) - {"bit_flips", "operator_rewire"} <= refused


def _patched(tmp_path, mutate):
    """A copy of the int8 MNIST file with `mutate(data, fields)` applied."""
    data = bytearray(INT8.read_bytes())
    mutate(data, fuzz_tflite._tensor_fields(bytes(data)))
    path = tmp_path / "crafted.tflite"
    path.write_bytes(bytes(data))
    return path


def _options_vtable(data):
    """Byte position of the vtable of operator 0's builtin options (TFLite
    Micro's Python wrapper read a field placed past the file with it:
    `struct.error`)."""
    from tensorflow.lite.python import schema_py_generated as schema

    operator = schema.Model.GetRootAs(bytes(data), 0).Subgraphs(0).Operators(0)
    options = operator._tab.Indirect(operator._tab.Pos + operator._tab.Offset(12))
    return options - struct.unpack_from("<i", data, options)[0]


CRAFTED = [
    ("buffer_index", lambda d, f: struct.pack_into("<I", d, f[0][3], 10**6),
     r"tensors\[3\].buffer = 1000000 is not in \[0, \d+\) \(the model's buffers\)"),
    ("operator_index", lambda d, f: struct.pack_into("<i", d, f[2][0], 5000),
     r"operators\[0\].inputs\[0\] = 5000 is not in \[-1, \d+\)"),
    ("constant_larger_than_its_buffer", lambda d, f: struct.pack_into(
        "<i", d, f[3][0], struct.unpack_from("<i", d, f[3][0])[0] * 4), r"needs \d+ bytes, its buffer \d+ holds \d+"),
    ("options_field_past_its_table", lambda d, f: struct.pack_into("<H", d, _options_vtable(d) + 4, 0xFFF0),
     r"operators\[0\].builtin_options has a field at offset 65520 past its size \d+"),
    ("truncated", lambda d, f: d.__delitem__(slice(len(d) // 3, None)), r"lies outside the file"),
    ("random", lambda d, f: d.__setitem__(slice(None), np.random.default_rng(0).bytes(len(d))),
     r"no TFL3 identifier"),
]


def test_micro_refuses_a_computed_tensor_larger_than_its_operator_writes(tmp_path):
    """A fully connected output stored as (1, 1000000) for 1000 values: the
    next layer, reading 1000 rows, wrote 1000 x 10 values into its (1, 10)
    output (SIGSEGV on TFLite Micro, which runs the stored shapes; LiteRT
    ran it)."""
    def widen(data, fields):
        from tensorflow.lite.python import schema_py_generated as schema

        tensor = schema.Model.GetRootAs(bytes(data), 0).Subgraphs(0).Tensors(20)
        assert tensor.ShapeAsNumpy().tolist() == [1, 1000]
        struct.pack_into("<i", data, tensor._tab.Vector(tensor._tab.Offset(4)) + 4, 1000000)

    path = _patched(tmp_path, widen)
    with pytest.raises(ValueError, match=r"operators\[8\]: input \[1, 480\] and weights \[1000, 480\] give 1000 "
                                         r"outputs, the output \[1, 1000000\] holds 1000000"):
        TFLiteModel(path, "micro")


@pytest.mark.parametrize("runtime", ["micro", "litert"])
@pytest.mark.parametrize("name, mutate, message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_files_are_refused_before_the_interpreter(name, mutate, message, runtime, tmp_path):
    """TFLite Micro took these (SIGSEGV, or a silent read past the buffer);
    `tflite_op_names` raised `struct.error` on a truncated file."""
    path = _patched(tmp_path, mutate)
    with pytest.raises(ValueError, match=r"is not a valid .tflite file.*" + message):
        TFLiteModel(path, runtime)
    with pytest.raises(ValueError, match="is not a valid .tflite file"):
        tflite_op_names(path)


def test_several_inputs_or_outputs_are_refused(tmp_path):
    """TFLite orders inputs and outputs by name: one array set one input and
    the alphabetically first output came back."""
    a, b = keras.Input((3,), name="b_first"), keras.Input((3,), name="a_second")
    added = keras.layers.Add()([a, b])
    model = keras.Model([a, b], [keras.layers.Dense(2, name="z")(added), keras.layers.Dense(4, name="y")(added)])
    path = tmp_path / "two.tflite"
    to_tflite(model, path)
    for runtime in ("litert", "micro"):
        with pytest.raises(ValueError, match=r"one input and one output; .* has 2 inputs \[.*\] and 2 outputs"):
            TFLiteModel(path, runtime)


@pytest.mark.parametrize("runtime", ["litert", "micro"])
def test_int8_model_returns_nan_for_a_nan_sample(runtime):
    """An int8 model quantized NaN to a code and returned a confident class."""
    model = TFLiteModel(INT8, runtime)
    x = np.random.default_rng(0).normal(size=(3, 28, 28, 1)).astype(np.float32)
    clean = model.predict(x)
    x[1, 5, 5, 0] = np.nan
    y = model.predict(x)
    assert np.isnan(y[1]).all() and not np.isnan(y[[0, 2]]).any()
    np.testing.assert_array_equal(y[[0, 2]], clean[[0, 2]])
    with pytest.raises(ValueError, match=r"`inputs` hold NaN \(samples \[1\]\), which an int8 model cannot"):
        model.predict_raw(x)


@pytest.mark.parametrize("runtime", ["litert", "micro"])
def test_empty_batch_batch_size_and_wrong_shape(runtime):
    model = TFLiteModel(INT8, runtime)
    empty = model.predict(np.zeros((0, 28, 28, 1), np.float32))
    assert empty.shape == (0, 10) and empty.dtype == np.float32
    assert model.predict_raw(np.zeros((0, 28, 28, 1))).dtype == np.int8
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer >= 1. Received: batch_size=0"):
        model.predict(np.zeros((2, 28, 28, 1)), batch_size=0)
    for shape in ((2, 28, 28), (2, 28, 27, 1), (28, 28, 1)):
        with pytest.raises(ValueError, match=r"`inputs` must have shape \(batch, 28, 28, 1\) .* Received inputs "
                                             rf"of shape \({', '.join(map(str, shape))}\)"):
            model.predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("runtime", ["litert", "micro"])
def test_one_instance_shared_by_threads(runtime):
    """Threads sharing a LiteRT interpreter raised "There is at least 1
    reference to internal data" and one got another thread's result: calls
    now run one at a time, each returning its own result."""
    model = TFLiteModel(FLOAT, runtime)
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(int(rng.integers(1, 5)), 28, 28, 1)).astype(np.float32) for _ in range(48)]
    expected = [model.predict(b) for b in batches]
    results, errors = [None] * len(batches), []

    def work(indices):
        try:
            for i in indices:
                results[i] = model.predict(batches[i])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(range(t, len(batches), 6),)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)
