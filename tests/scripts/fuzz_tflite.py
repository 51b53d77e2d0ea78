"""Fuzzes `TFLiteModel` (LiteRT and TFLite Micro) with mutated `.tflite` files.

    python tests/scripts/fuzz_tflite.py RUNTIME CASES SEED FILE...

Each case mutates one of FILE (bit flips, a tensor's buffer index, an
operator's tensor index out of range or rewired in range, a constant tensor's dimension, a
truncation, random bytes; `mutate`), then constructs `TFLiteModel(path, RUNTIME)` and predicts
one sample. Prints one JSON line per case, `{"case", "kind", "outcome"}`
with outcome `"ok"` or `"ValueError"`; any other exception stops the run
with exit status 1. A crash (SIGSEGV) kills the process: the caller sees a
negative return code and the last case printed before it. tests/
test_hardening_tflite.py runs a few hundred cases; run more by hand, e.g.
`python tests/scripts/fuzz_tflite.py micro 5000 1 saved_models/mnist_dense_cnn2_int8.tflite`.

Rewiring an operator to another tensor in range (`operator_rewire`) is
fuzzed but not checked structurally: the check infers shapes only for fully
connected, convolution and pooling operators, and relies on each TFLite Micro
kernel's `Prepare` for the others (1,400 micro cases, seed 11, on the
shipped int8 and float files: no crash).
"""

import json
import os
import struct
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

KINDS = ("bit_flips", "buffer_index", "operator_index", "operator_rewire", "tensor_dimension", "truncate",
         "random_bytes")


def _tensor_fields(data):
    """Byte positions of every tensor's `buffer` field and shape dimensions,
    and of every operator's input/output indices, in the flatbuffer `data`."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    buffers, dimensions, indices, constant = [], [], [], []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            if tensor._tab.Offset(8):
                buffers.append(tensor._tab.Pos + tensor._tab.Offset(8))
            if tensor.ShapeLength():
                start = tensor._tab.Vector(tensor._tab.Offset(4))
                positions = [start + 4 * i for i in range(tensor.ShapeLength())]
                dimensions += positions
                if tensor.Buffer() and model.Buffers(tensor.Buffer()).DataLength():
                    constant += positions
        for o in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(o)
            for field, length in ((6, operator.InputsLength()), (8, operator.OutputsLength())):
                if length:
                    start = operator._tab.Vector(operator._tab.Offset(field))
                    indices += [start + 4 * i for i in range(length)]
    return buffers, dimensions, indices, constant, model.Subgraphs(0).TensorsLength()


def mutate(data, rng, kind, fields):
    """One mutated copy of `data` (bytes)."""
    out = bytearray(data)
    buffers, dimensions, indices, constant, _ = fields
    if kind == "bit_flips":
        for _ in range(int(rng.integers(1, 9))):
            position = int(rng.integers(0, len(out)))
            out[position] ^= 1 << int(rng.integers(0, 8))
    elif kind == "buffer_index":
        value = int(rng.choice([rng.integers(0, 2**31), rng.integers(0, 400), 2**32 - 1]))
        struct.pack_into("<I", out, int(rng.choice(buffers)), value)
    elif kind == "operator_index":  # out of range: [-2^31, -2] or [tensors, 2^31)
        value = int(rng.choice([rng.integers(-(2**31), -1), rng.integers(fields[4], 2**31), fields[4]]))
        struct.pack_into("<i", out, int(rng.choice(indices)), value)
    elif kind == "operator_rewire":  # in range: another tensor, of another shape or type
        struct.pack_into("<i", out, int(rng.choice(indices)), int(rng.integers(0, fields[4])))
    elif kind == "tensor_dimension":  # of a constant tensor: its size against its buffer
        position = int(rng.choice(constant))
        old = struct.unpack_from("<i", out, position)[0]
        value = int(rng.choice([old + 1, old * 2, old * 1000, -1, 0, 2**31 - 1]))
        struct.pack_into("<i", out, position, max(min(value, 2**31 - 1), -(2**31)))
    elif kind == "truncate":
        out = out[: int(rng.integers(0, len(out)))]
    else:  # random bytes, sometimes behind a valid header
        out = bytearray(rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes())
        if rng.random() < 0.5 and len(out) >= 8:
            out[4:8] = b"TFL3"
    return bytes(out)


def run_case(path, runtime):
    from keras_sparse.export import TFLiteModel

    try:
        model = TFLiteModel(path, runtime)
        model.predict(np.zeros((1, *(d or 1 for d in model.input_shape)), np.float32))
    except ValueError:
        return "ValueError"
    return "ok"


def main(runtime, cases, seed, files):
    rng = np.random.default_rng(seed)
    sources = [open(f, "rb").read() for f in files]
    fields = [_tensor_fields(data) for data in sources]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "case.tflite")
        for case in range(cases):
            kind = KINDS[case % len(KINDS)]
            source = case // len(KINDS) % len(sources)
            with open(path, "wb") as f:
                f.write(mutate(sources[source], rng, kind, fields[source]))
            print(json.dumps({"case": case, "kind": kind, "file": files[source]}), flush=True)
            print(json.dumps({"case": case, "kind": kind, "outcome": run_case(path, runtime)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
