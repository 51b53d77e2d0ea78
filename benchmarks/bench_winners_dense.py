"""Does the Dense layer after a k-winners layer pay to compute only the
winners' contribution? LiteRT, batch 1, one thread.

    python benchmarks/bench_winners_dense.py [--invocations 3000]

After a k-winners layer only k of the n inputs of the next Dense layer are
non-zero, so `y = x W + b` needs only the k rows of `W` at the winners:

    winners(boosted) = the indices of the k largest boosted values (TOPK_V2)
    y = x[winners] W[winners, :] + b          (GATHER, GATHER, BATCH_MATMUL)

against what `keras_sparse.export.to_tflite` exports today, the k-winners
layer (threshold by `keras_sparse.selection.kth_largest`'s portable kernel,
compare, select; without the layer's step that ranks NaN last, so this
"today" is if anything cheaper than the real export) and then a dense
`FULLY_CONNECTED` over all n inputs. Each
pair (n inputs, units, k) comes from a shipped model's layers at inference
(`k_inference`), with that model's Dense kernel and bias; the boost factors
and the input (ReLU of a Gaussian) are random, which the time does not
depend on. Also timed: the Dense layer alone and with a ReLU before it (the
ReLU twin's layer), and the paper network's pair at k = 300 and 100 to show
where the gather starts to pay. float32 and int8 (calibrated on 50 random
inputs; the two int8 forms quantize different tensors, so their outputs
differ by a few codes). Interleaved in blocks of 100 calls; medians.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_sparse  # noqa: E402, F401  (registers the layers for loading)
from keras_sparse.selection import kth_largest  # noqa: E402

BLOCK = 100


def shipped_pairs():
    """`(label, kernel, bias, k)` for each k-winners -> Dense pair of the shipped MNIST models."""
    pairs = []
    for name in ("mnist_sparse_cnn2", "mnist_sparse_cnn2_small_relu1"):
        model = keras.saving.load_model(os.path.join(ROOT, "saved_models", f"{name}.keras"))
        for kwinners, dense in (("conv2_kwinners", "hidden"), ("hidden_kwinners", "logits")):
            layer = model.get_layer(dense)
            k = model.get_layer(kwinners).k_inference
            pairs.append((f"{name}: {kwinners} -> {dense}", layer.kernel.numpy(), layer.bias.numpy(), k))
    kernel, bias = pairs[0][1], pairs[0][2]
    pairs += [(f"mnist_sparse_cnn2: conv2_kwinners -> hidden at k = {k}", kernel, bias, k) for k in (300, 100)]
    return pairs


def graphs(kernel, bias, k, seed=0):
    n = kernel.shape[0]
    boost = tf.constant(np.exp(-np.random.default_rng(seed).random(n)).astype(np.float32))
    w, b = tf.constant(kernel), tf.constant(bias)
    spec = [tf.TensorSpec((1, n), tf.float32)]

    @tf.function(input_signature=spec)
    def exported_today(x):
        boosted = x * boost
        return tf.matmul(tf.where(boosted >= kth_largest(boosted, k), x, tf.zeros_like(x)), w) + b

    @tf.function(input_signature=spec)
    def winners_only(x):
        _, winners = tf.math.top_k(x * boost, k, sorted=False)
        return tf.matmul(tf.gather(x, winners, batch_dims=1), tf.gather(w, winners[0])) + b

    @tf.function(input_signature=spec)
    def dense_alone(x):
        return tf.matmul(x, w) + b

    @tf.function(input_signature=spec)
    def relu_dense(x):
        return tf.matmul(tf.nn.relu(x), w) + b

    return {"k-winners + Dense (today)": exported_today, "winners-only Dense (gather)": winners_only,
            "Dense alone": dense_alone, "ReLU + Dense (twin)": relu_dense}


def convert(function, int8, n, folder, name):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
    if int8:
        rng = np.random.default_rng(1)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [np.maximum(rng.standard_normal((1, n)), 0).astype(np.float32)] for _ in range(50))
    path = os.path.join(folder, name + ".tflite")
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path


def medians_us(paths, x, invocations):
    from ai_edge_litert.interpreter import Interpreter

    runners = {}
    for name, path in paths.items():
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        interpreter.set_tensor(index, x)
        for _ in range(BLOCK):
            interpreter.invoke()
        runners[name] = interpreter
    times = {name: [] for name in paths}
    for _ in range(max(invocations // BLOCK, 1)):
        for name, interpreter in runners.items():
            start = time.perf_counter()
            for _ in range(BLOCK):
                interpreter.invoke()
            times[name].append((time.perf_counter() - start) / BLOCK * 1e6)
    outputs = {name: r.get_tensor(r.get_output_details()[0]["index"]) for name, r in runners.items()}
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invocations", type=int, default=3000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench_winners_dense_")
    print("| pair (n inputs -> units, k) | precision | k-winners + Dense (today) | winners-only Dense (gather) "
          "| gather / today | Dense alone | ReLU + Dense (twin) | max abs difference |")
    print("|---|---|---|---|---|---|---|---|")
    for label, kernel, bias, k in shipped_pairs():
        n = kernel.shape[0]
        x = np.maximum(np.random.default_rng(2).standard_normal((1, n)), 0).astype(np.float32)
        functions = graphs(kernel, bias, k)
        for int8 in (False, True):
            paths = {name: convert(f, int8, n, folder, f"{i}_{int8}") for i, (name, f) in enumerate(functions.items())}
            us, outputs = medians_us(paths, x, args.invocations)
            today, gather = us["k-winners + Dense (today)"], us["winners-only Dense (gather)"]
            difference = np.abs(outputs["k-winners + Dense (today)"] - outputs["winners-only Dense (gather)"]).max()
            print(f"| {label} ({n} -> {kernel.shape[1]}, {k}) | {'int8' if int8 else 'float32'} | {today:.1f} | "
                  f"{gather:.1f} | {gather / today:.2f} | {us['Dense alone']:.1f} | {us['ReLU + Dense (twin)']:.1f} "
                  f"| {difference:.2g} |", flush=True)


if __name__ == "__main__":
    main()
