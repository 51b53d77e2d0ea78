"""`fit` throughput of the paper's MNIST Sparse CNN-2 against its ReLU twin and
a PyTorch implementation of the same network, in one command, as ratios.

    python benchmarks/bench_fit.py [--data-dir ../shared/datasets/mnist] [--steps 100] [--rounds 5]
        [--torch-threads 1 2] [--backends jax torch] [--profile-steps 40]

Contenders, all trained with SGD (lr 0.02), batch 64, on the same real MNIST
images, interleaved in one process (TensorFlow backend):

- "Sparse CNN-2": `keras_sparse.models.mnist_sparse_cnn2()`, plain
  `model.compile(...)` (what a user gets; Keras runs it without XLA on a
  machine without a GPU), and the same with `jit_compile=True` (XLA).
- "ReLU twin": the same layers with ReLU for k-winners and dense weights,
  both ways.
- "Sparse CNN-2, arrays to `fit`": the same model given the NumPy arrays
  (`model.fit(x, y, ...)`), fed by Keras' autotuned `tf.data` pipeline,
  whose iterator teardown at the start of the next epoch waits for the
  autotuner's thread (up to the epoch's own length). Every other Keras
  contender gets the same batches through
  `keras_sparse.datasets.fit_inputs` (autotuning off), so the ratios
  compare training steps, not that wait.
- "Sparse CNN-2 without weight constraints": the same model with its sparse
  kernels' constraints removed (`where(mask, w, 0)` after every optimizer
  step), for timing only (its weights leave the mask): the difference to
  Sparse CNN-2 is what keeping the fixed masks costs per step.
- "PyTorch": `examples/torch_crosscheck/mnist_sparse_cnn2_torch.py`'s
  network, the project's own PyTorch implementation of nupic.torch's
  k-winners algorithm (boosting `exp((target - duty) * b)`, a sorted
  `torch.topk` of every sample, a scattered mask, duty cycles updated every
  step, the sparse hidden weights re-zeroed after every step), one contender
  per `--torch-threads` value (OpenMP threads; 2 threads can spin-wait on a
  loaded 2-core machine).

After a warm-up epoch (tracing, compiling), each round times one epoch of
`--steps` batches of each contender in turn; the median images per second
over rounds is reported. `--backends` then runs Sparse CNN-2 and its twin
the same way on other Keras backends, one subprocess each (JAX's `fit` is
always compiled by XLA; the PyTorch backend runs in the first
`--torch-threads` threads). `--profile-steps` profiles that many steps of Sparse
CNN-2 (TensorFlow profiler, op self times) and reports the share of the op
time spent in the k-winners layers (forward, backward and duty-cycle update:
every op in their name scopes).
"""

import argparse
import glob
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if "--child" not in sys.argv:
    os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras_sparse import datasets, models  # noqa: E402
from keras_sparse.constraints import sparse_weight_layers  # noqa: E402
from keras_sparse.kwinners import kwinners_layers  # noqa: E402

BATCH = 64


def dense_relu_twin():
    """Sparse CNN-2's shape (32 and 64 filters, 700 hidden) with ReLU and dense weights."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 5),
            keras.layers.MaxPooling2D(2),
            keras.layers.ReLU(),
            keras.layers.Conv2D(64, 5),
            keras.layers.MaxPooling2D(2),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(700),
            keras.layers.ReLU(),
            keras.layers.Dense(10),
        ],
        name="dense_relu_twin",
    )


def without_weight_constraints(model):
    """`model` with every sparse kernel's constraint removed (timing only)."""
    for layer in sparse_weight_layers(model):
        layer.kernel.constraint = None
    return model


def compiled(model, jit_compile="auto"):
    model.compile(keras.optimizers.SGD(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    return model


def keras_epoch(model, x, y, arrays=False):
    """A callable training one epoch of `x` (no shuffling), for timing: the
    arrays through `fit_inputs`, or (`arrays`) given to `fit` as they are."""
    if arrays:
        return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return lambda: model.fit(**datasets.fit_inputs(x, y, batch_size=BATCH, shuffle=False), epochs=1, verbose=0)


def torch_epoch(x, y, threads):
    """A callable training the PyTorch network one epoch of `x` in `threads` threads."""
    import torch
    import torch.nn.functional as F

    spec = importlib.util.spec_from_file_location(
        "torch_sparse_cnn2", os.path.join(ROOT, "examples", "torch_crosscheck", "mnist_sparse_cnn2_torch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.SparseCNN2(torch.Generator().manual_seed(0))
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(y.astype(np.int64))

    def epoch():
        torch.set_num_threads(threads)
        for start in range(0, len(images), BATCH):
            loss = F.cross_entropy(model(images[start:start + BATCH]), labels[start:start + BATCH])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.fc1.rezero()

    return epoch


def images_per_second(contenders, n, rounds):
    """`{name: [images/s per round]}`, the contenders taking turns each round."""
    for run in contenders.values():
        run()  # warm-up: tracing, compiling, caches
    rates = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            rates[name].append(n / (time.perf_counter() - start))
    return rates


def load(args):
    (x_train, y_train), _ = datasets.load_mnist(args.data_dir)
    x_train = datasets.normalize(datasets.to_unit_interval(x_train))
    return x_train[: args.steps * BATCH], y_train[: args.steps * BATCH]


def kwinners_share(model, x, y, steps):
    """The k-winners layers' share of a training step's op self time
    (TensorFlow profiler), and the op time per step in ms."""
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    names = [layer.name for layer in kwinners_layers(model)]
    logdir = tempfile.mkdtemp(prefix="bench_fit_profile_")
    tf.profiler.experimental.start(logdir)
    x, y = x[: steps * BATCH], y[: steps * BATCH]
    model.fit(**datasets.fit_inputs(x, y, batch_size=BATCH, shuffle=False), verbose=0)
    tf.profiler.experimental.stop()
    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    table = json.loads(plugin.xspace_to_tools_data([path], "framework_op_stats", {})[0])[0]
    columns = [c["id"] for c in table["cols"]]
    total = in_kwinners = 0.0
    per_layer = dict.fromkeys(names, 0.0)
    for row in table["rows"]:
        op = dict(zip(columns, (c.get("v") for c in row["c"])))
        if op["type"] == "IDLE" or op["operation"].startswith("Iterator"):
            continue  # idle threads and the input pipeline are not the step
        total += op["total_self_time"]
        for name in names:
            if f"/{name}" in op["operation"]:
                in_kwinners += op["total_self_time"]
                per_layer[name] += op["total_self_time"]
                break
    return in_kwinners / total, total / 1e3 / steps, {k: v / 1e3 / steps for k, v in per_layer.items()}


def child(args):
    """Sparse CNN-2 against its twin on this process' Keras backend (JSON on stdout)."""
    if args.child == "torch" and args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads[0])
    x, y = load(args)
    contenders = {
        "Sparse CNN-2": keras_epoch(compiled(models.mnist_sparse_cnn2()), x, y),
        "ReLU twin": keras_epoch(compiled(dense_relu_twin()), x, y),
    }
    rates = images_per_second(contenders, len(x), args.rounds)
    print("RESULT " + json.dumps({name: float(np.median(r)) for name, r in rates.items()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=100, help="batches of 64 per timed epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--backends", nargs="*", default=["jax", "torch"])
    parser.add_argument("--profile-steps", type=int, default=40)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    import tensorflow as tf

    x, y = load(args)
    sparse = compiled(models.mnist_sparse_cnn2())
    contenders = {
        "Sparse CNN-2": keras_epoch(sparse, x, y),
        "ReLU twin": keras_epoch(compiled(dense_relu_twin()), x, y),
        "Sparse CNN-2, arrays to `fit`": keras_epoch(compiled(models.mnist_sparse_cnn2()), x, y, arrays=True),
        "Sparse CNN-2 without weight constraints": keras_epoch(
            compiled(without_weight_constraints(models.mnist_sparse_cnn2())), x, y),
        "Sparse CNN-2, jit_compile=True": keras_epoch(compiled(models.mnist_sparse_cnn2(), True), x, y),
        "ReLU twin, jit_compile=True": keras_epoch(compiled(dense_relu_twin(), True), x, y),
    }
    if args.torch_threads:
        import torch

        for threads in args.torch_threads:
            contenders[f"PyTorch Sparse CNN-2, {threads} thread(s)"] = torch_epoch(x, y, threads)
    rates = {name: float(np.median(r)) for name, r in images_per_second(contenders, len(x), args.rounds).items()}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; TF {tf.__version__}, Keras {keras.__version__}"
          + (f", torch {torch.__version__}" if args.torch_threads else ""))
    print(f"batches per epoch: {args.steps} x {BATCH}, rounds: {args.rounds}")
    print("| contender (TensorFlow backend unless named) | images/s (median) | / Sparse CNN-2 |")
    print("|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / rates['Sparse CNN-2']:.2f} |")
    print(f"Sparse CNN-2 / ReLU twin: {rates['Sparse CNN-2'] / rates['ReLU twin']:.2f}")
    print(f"arrays to `fit` / fit_inputs: {rates['Sparse CNN-2, arrays to `fit`'] / rates['Sparse CNN-2']:.2f}")
    print("jit_compile=True / default: Sparse CNN-2 "
          f"{rates['Sparse CNN-2, jit_compile=True'] / rates['Sparse CNN-2']:.2f}, ReLU twin "
          f"{rates['ReLU twin, jit_compile=True'] / rates['ReLU twin']:.2f}")
    torch_rates = [r for name, r in rates.items() if name.startswith("PyTorch")]
    if torch_rates:
        print(f"Sparse CNN-2 / fastest PyTorch: {rates['Sparse CNN-2'] / max(torch_rates):.2f}")
    for backend in args.backends:
        command = [sys.executable, os.path.abspath(__file__), "--child", backend, "--steps", str(args.steps),
                   "--rounds", str(args.rounds), "--torch-threads", *map(str, args.torch_threads[:1])]
        command += ["--data-dir", args.data_dir] if args.data_dir else []
        out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend})
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not lines:
            print(f"{backend} backend: failed\n{out.stderr[-2000:]}")
            continue
        result = json.loads(lines[-1][len("RESULT "):])
        print(f"{backend} backend: Sparse CNN-2 {result['Sparse CNN-2']:.0f} images/s, ReLU twin "
              f"{result['ReLU twin']:.0f}, ratio {result['Sparse CNN-2'] / result['ReLU twin']:.2f}")
    if args.profile_steps:
        share, step_ms, per_layer = kwinners_share(sparse, x, y, args.profile_steps)
        layers = ", ".join(f"{name} {ms:.2f}" for name, ms in per_layer.items())
        print(f"profile ({args.profile_steps} steps, TensorFlow backend): k-winners layers {share:.1%} of "
              f"op self time ({step_ms:.1f} ms of ops per step; ms per step: {layers})")


if __name__ == "__main__":
    main()
