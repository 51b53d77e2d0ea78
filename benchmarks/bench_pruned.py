"""TFLite size and LiteRT batch-1 latency of magnitude-pruned Dense CNN-2 and
Sparse CNN-2 against their originals (docs/learned_sparsity.md).

Takes the models `examples/learned_sparsity.py` saves for its first seed, in
pairs (a pair whose files are missing is left out): Dense CNN-2 trained dense
(`dense.keras`) and with its hidden layer (MNIST 480 -> 1000, FSDD 1600 ->
1000) magnitude-pruned to 90% in 1x4 blocks (`pruned_block.keras`); Sparse
CNN-2 with the paper's fixed random hidden mask (MNIST 70%, FSDD 60%;
`sparse_fixed.keras`) and with its hidden layer (MNIST 1024 -> 700, FSDD
1600 -> 1000) magnitude-pruned to 90% in 1x4 blocks
(`sparse_pruned_block.keras`). Each is written by
`keras_sparse.export.to_tflite` (float32; a pruned hidden kernel kept
block-sparse, `sparse_encoding="auto"`), whole and as its hidden layer alone
(`Input(fan-in)` -> the layer, the same weights). For each file: its size,
the batch-1 `invoke()` latency (median over `--invocations` calls after 100
warm-up calls; the files are timed in alternating blocks of 100 so that
background load hits all alike), and the max |difference| to Keras on 100
of the task's test inputs (`--task`; `Task.load(test_samples=100)`: MNIST
images, FSDD log-mel features). Ratios are pruned / original, from this run.

Usage:
    python benchmarks/bench_pruned.py --models runs/learned_sparsity \\
        --data-dir ../shared/datasets/mnist [--invocations 2000] [--threads 1]
    python benchmarks/bench_pruned.py --task fsdd --models runs/ls_fsdd_blocks --data-dir ../shared/datasets/fsdd
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
from timing import cpu_name, interleaved_us, load_litert  # noqa: E402  (beside this script)

from keras_sparse import tasks  # noqa: E402
from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite  # noqa: E402


PAIRS = {"Dense CNN-2": ("dense", "pruned_block"), "Sparse CNN-2": ("sparse_fixed", "sparse_pruned_block")}


def hidden_alone(model):
    layer = model.get_layer("hidden")
    inputs = keras.Input((layer.kernel.shape[0],))
    copy = layer.__class__.from_config(layer.get_config())
    out = keras.Model(inputs, copy(inputs))
    copy.set_weights(layer.get_weights())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("mnist", "fsdd"), default="mnist")
    parser.add_argument("--models", default="runs/learned_sparsity")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.invocations < 1 or args.threads < 1:
        parser.error(f"--invocations and --threads must be >= 1, got {args.invocations}, {args.threads}")

    task = tasks.get(args.task)
    inputs, _ = task.load(args.data_dir, test_samples=100)["test"]
    images = task.network_inputs(inputs).astype("float32")
    out_dir = tempfile.mkdtemp(prefix="bench_pruned_")
    cases, base_of, kept = {}, {}, {}
    for network, pair in PAIRS.items():
        files = [os.path.join(args.models, f"{name}.keras") for name in pair]
        if not all(os.path.exists(f) for f in files):
            continue
        for name, path in zip(pair, files):
            model = keras.models.load_model(path)
            hidden = hidden_alone(model)  # the same kernel: the same non-zero count
            nonzero = int(np.count_nonzero(keras.ops.convert_to_numpy(model.get_layer("hidden").kernel)))
            features = np.random.default_rng(0).normal(size=(100, hidden.input_shape[-1])).astype("float32")
            for part, case in ((network, (model, images)), (f"{network} hidden layer", (hidden, features))):
                cases[f"{part} {name}"] = case
                base_of[f"{part} {name}"] = f"{part} {pair[0]}"
                kept[f"{part} {name}"] = nonzero
    if not cases:
        parser.error(f"no pair of models in {args.models}: " + ", ".join(" and ".join(p) for p in PAIRS.values()))
    paths, interpreters, diffs = {}, {}, {}
    for name, (model, x) in cases.items():
        path = to_tflite(model, os.path.join(out_dir, name.replace(" ", "_") + ".tflite"))
        paths[name] = path
        diffs[name] = float(np.abs(TFLiteModel(path).predict(x) - model.predict(x, verbose=0)).max())
        interpreter = load_litert(path, args.threads)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[:1])
        interpreters[name] = interpreter
    latencies = interleaved_us({name: i.invoke for name, i in interpreters.items()}, args.invocations)
    medians = {name: float(np.median(lat)) for name, lat in latencies.items()}
    sizes = {name: os.path.getsize(path) for name, path in paths.items()}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu_name()}; LiteRT threads {args.threads}; "
          f"files in {out_dir}")
    print(f"| file | hidden non-zero | ops | bytes | batch-1 us (median of {args.invocations}) | "
          "size / original | latency / original | max abs(tflite - keras) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in cases:
        base = base_of[name]
        print(f"| {name} | {kept[name]:,} | {', '.join(tflite_op_names(paths[name]))} | {sizes[name]:,} | "
              f"{medians[name]:.1f} | {sizes[name] / sizes[base]:.3f} | {medians[name] / medians[base]:.3f} | "
              f"{diffs[name]:.1e} |")


if __name__ == "__main__":
    main()
