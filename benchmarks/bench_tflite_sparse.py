"""TFLite file size and batch-1 latency of a sparse 1600 -> 700 layer: dense,
unstructured-sparse and block-sparse kernels, float32 and int8.

Each model is one layer, `Input((1600,))` -> 700 units (bias, linear), written
by `keras_sparse.export.to_tflite`:

- `Dense(700)`: the dense baseline;
- `SparseDense(700, sparsity=0.7)` with `sparse_encoding=False` (dense
  kernel, zeros stored) and `True` (CSR + `DENSIFY`);
- `SparseDense(700, s, block=(1, 4))`, s = 0.7 and 0.9, sparse-encoded: the
  converter keeps 1x4 blocks sparse (no `DENSIFY`) and `FULLY_CONNECTED` runs
  its block-sparse kernel;
- int8 (`quantize="int8"`, calibrated on 200 Gaussian inputs): `Dense(700)` and
  `SparseDense(700, 0.9, block=(1, 16))`, the int8 block shape.

For each file: its size, its operators, the time to load it (`Interpreter(...)`
+ `allocate_tensors()`, median of 20), the batch-1 latency of `invoke()`
(median over `--invocations` calls after 100 warm-up calls; the models are
timed in alternating blocks of 100 so that background load hits all alike),
and the max |difference| to Keras `predict`. Ratios are to the dense model of
the same dtype, from this one run.

Usage:
    python benchmarks/bench_tflite_sparse.py [--invocations 2000] [--threads 1] [--out-dir DIR]
"""

import argparse
import os
import platform
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from timing import cpu_name, interleaved_us, load_litert, median_ms  # noqa: E402  (beside this script)

from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite  # noqa: E402
from keras_sparse.layers import SparseDense  # noqa: E402

IN, OUT = 1600, 700

# name: (layer, to_tflite arguments, baseline name)
CASES = {
    "Dense": (lambda: keras.layers.Dense(OUT), {}, None),
    "SparseDense 0.7, dense encoding": (lambda: SparseDense(OUT, 0.7), dict(sparse_encoding=False), "Dense"),
    "SparseDense 0.7, sparse encoding": (lambda: SparseDense(OUT, 0.7), dict(sparse_encoding=True), "Dense"),
    "SparseDense 0.7, block (1, 4)": (lambda: SparseDense(OUT, 0.7, block=(1, 4)), {}, "Dense"),
    "SparseDense 0.9, block (1, 4)": (lambda: SparseDense(OUT, 0.9, block=(1, 4)), {}, "Dense"),
    "int8 Dense": (lambda: keras.layers.Dense(OUT), dict(quantize="int8"), None),
    "int8 SparseDense 0.9, block (1, 16)": (
        lambda: SparseDense(OUT, 0.9, block=(1, 16)), dict(quantize="int8"), "int8 Dense"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", default=None, help="keep the .tflite files here")
    args = parser.parse_args()
    if args.invocations < 1 or args.threads < 1:
        parser.error(f"--invocations and --threads must be >= 1, got {args.invocations}, {args.threads}")

    rng = np.random.default_rng(0)
    calibration = rng.normal(size=(200, IN)).astype("float32")
    x = calibration[:1]
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="bench_tflite_sparse_")
    paths, interpreters, load_ms, diffs, nonzero = {}, {}, {}, {}, {}
    for name, (make_layer, kwargs, _) in CASES.items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((IN,)), make_layer()])
        if kwargs.get("quantize") == "int8":
            kwargs = dict(kwargs, representative_data=calibration)
        path = os.path.join(out_dir, name.replace(" ", "_").replace(",", "") + ".tflite")
        paths[name] = to_tflite(model, path, **kwargs)
        nonzero[name] = int(np.count_nonzero(keras.ops.convert_to_numpy(model.layers[0].kernel)))
        expected = keras.ops.convert_to_numpy(model(x, training=False))
        diffs[name] = float(np.abs(TFLiteModel(path).predict(x) - expected).max())
        load_ms[name] = median_ms(lambda: load_litert(path, args.threads))
        interpreter = load_litert(path, args.threads)
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], TFLiteModel(path).quantize_inputs(x).astype(detail["dtype"]))
        interpreters[name] = interpreter

    latencies = interleaved_us({name: i.invoke for name, i in interpreters.items()}, args.invocations)

    sizes = {name: os.path.getsize(path) for name, path in paths.items()}
    medians = {name: float(np.median(lat)) for name, lat in latencies.items()}
    print(f"layer: Input({IN}) -> {OUT} units; machine: {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{cpu_name()}; interpreter threads: {args.threads}; files in: {out_dir}")
    print(f"| model | non-zero weights | file bytes | ops | load ms (median of 20) | "
          f"batch-1 invoke us (median of {len(latencies['Dense'])}) | p10-p90 us | "
          "size / dense | latency / dense | max abs(tflite - keras) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (_, _, baseline) in CASES.items():
        lat = np.array(latencies[name])
        ratios = ("—", "—") if baseline is None else (
            f"{sizes[name] / sizes[baseline]:.3f}", f"{medians[name] / medians[baseline]:.3f}")
        print(
            f"| {name} | {nonzero[name]:,} | {sizes[name]:,} | {', '.join(tflite_op_names(paths[name]))} | "
            f"{load_ms[name]:.2f} | {medians[name]:.1f} | "
            f"{np.percentile(lat, 10):.1f}-{np.percentile(lat, 90):.1f} | {ratios[0]} | {ratios[1]} | "
            f"{diffs[name]:.2e} |"
        )


if __name__ == "__main__":
    main()
