"""TFLite file size and batch-1 latency: dense vs sparse encoding of a SparseDense kernel.

Builds `SparseDense(1600 -> 700, sparsity=0.7)` (one layer, bias, linear), writes
it twice with `keras_sparse.export.to_tflite` (`sparse_encoding=False` / `True`),
and reports for each file: its size, the operators in it, the time to load it
(`Interpreter(...)` + `allocate_tensors()`, median of 20), and the batch-1
latency of `invoke()` (median over `--invocations` calls, after 100 warm-up
calls; the models are timed in alternating blocks of 100 so that any
background load hits all alike), plus the max |difference| to Keras `predict`.

For reference (what it would take to run faster, not a keras_sparse feature
yet) it also times a plain `Dense(1600 -> 700)` whose kernel is pruned to a
random 1x4 BLOCK mask (each output unit keeps whole runs of 4 consecutive
inputs) at sparsity 0.7 and 0.9, sparse-encoded: the converter keeps these
block-sparse (no DENSIFY) and TFLite's FULLY_CONNECTED runs its 1x4
block-sparse kernel.

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
from tflite_timing import cpu_name, interleaved_us, load_litert, median_ms  # noqa: E402  (beside this script)

from keras_sparse.export import tflite_op_names, to_tflite  # noqa: E402
from keras_sparse.layers import SparseDense  # noqa: E402

IN, OUT, SPARSITY = 1600, 700, 0.7


def block_sparse_dense(sparsity, block=4):
    """Dense(IN -> OUT); each unit keeps round((1 - s) * IN / block) runs of `block` inputs."""
    rng = np.random.default_rng(1)
    model = keras.Sequential([keras.Input((IN,)), keras.layers.Dense(OUT)])
    n_blocks = IN // block
    keep = round((1 - sparsity) * n_blocks)
    blocks = np.zeros((n_blocks, OUT), bool)
    for unit in range(OUT):
        blocks[rng.permutation(n_blocks)[:keep], unit] = True
    kernel = model.layers[0].kernel
    kernel.assign(kernel.numpy() * np.repeat(blocks, block, axis=0))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", default=None, help="keep the .tflite files here")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((IN,)), SparseDense(OUT, SPARSITY)])
    x = np.random.default_rng(0).normal(size=(1, IN)).astype("float32")

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="bench_tflite_sparse_")
    paths = {
        "dense": to_tflite(model, os.path.join(out_dir, "sparse_dense_dense_encoding.tflite")),
        "sparse": to_tflite(
            model,
            os.path.join(out_dir, "sparse_dense_sparse_encoding.tflite"),
            sparse_encoding=True,
        ),
    }
    models = {"dense": model, "sparse": model}
    for block_sparsity in (0.7, 0.9):
        name = f"1x4-block {block_sparsity} (reference)"
        models[name] = block_sparse_dense(block_sparsity)
        paths[name] = to_tflite(
            models[name],
            os.path.join(out_dir, f"block1x4_{block_sparsity}_sparse_encoding.tflite"),
            sparse_encoding=True,
        )

    interpreters, load_ms, diffs = {}, {}, {}
    for name, path in paths.items():
        load_ms[name] = median_ms(lambda: load_litert(path, args.threads))
        interpreter = load_litert(path, args.threads)
        inp = interpreter.get_input_details()[0]["index"]
        out = interpreter.get_output_details()[0]["index"]
        interpreter.set_tensor(inp, x)
        for _ in range(100):  # warm-up
            interpreter.invoke()
        reference = models[name].predict(x, verbose=0)
        diffs[name] = float(np.abs(interpreter.get_tensor(out) - reference).max())
        interpreters[name] = interpreter

    latencies = interleaved_us({name: i.invoke for name, i in interpreters.items()}, args.invocations,
                               warmup=0)  # warmed up above

    sizes = {name: os.path.getsize(path) for name, path in paths.items()}
    kept = round((1 - SPARSITY) * IN) * OUT
    print(f"model: SparseDense({IN} -> {OUT}, sparsity={SPARSITY}), {kept} non-zero weights")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu_name()}; "
          f"interpreter threads: {args.threads}")
    print(f"files in: {out_dir}")
    print("| encoding | file bytes | ops | load ms (median of 20) | "
          f"batch-1 invoke us (median of {len(latencies['dense'])}) | p10-p90 us | "
          "max |tflite - keras| |")
    print("|---|---|---|---|---|---|---|")
    for name in paths:
        lat = np.array(latencies[name])
        print(
            f"| {name} | {sizes[name]:,} | {', '.join(tflite_op_names(paths[name]))} | "
            f"{load_ms[name]:.2f} | {np.median(lat):.1f} | "
            f"{np.percentile(lat, 10):.1f}-{np.percentile(lat, 90):.1f} | {diffs[name]:.2e} |"
        )
    for name in list(paths)[1:]:
        print(f"{name} / dense: size {sizes[name] / sizes['dense']:.4f}, median latency "
              f"{np.median(latencies[name]) / np.median(latencies['dense']):.3f}")


if __name__ == "__main__":
    main()
