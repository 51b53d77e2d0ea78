"""`fit` throughput of the paper's MNIST Sparse CNN-2 against the same network
with ReLU activations and dense weights, in one run, as a ratio.

    python benchmarks/bench_fit.py [--data-dir ../shared/datasets/mnist] [--steps 150] [--rounds 3]

Both models train with SGD, batch 64, on the same real MNIST images. After a
warm-up epoch (tracing), each round times `--steps` training steps of each
model in turn; the median over rounds of images per second is reported.
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
from keras_sparse import datasets, models  # noqa: E402


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


def images_per_second(model, x, y):
    start = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    return len(x) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    (x_train, y_train), _ = datasets.load_mnist(args.data_dir)
    x_train = datasets.normalize(datasets.to_unit_interval(x_train))
    x = x_train[: args.steps * 64]
    y = y_train[: args.steps * 64]
    contenders = {"Sparse CNN-2": models.mnist_sparse_cnn2(), "dense ReLU twin": dense_relu_twin()}
    for model in contenders.values():
        model.compile(keras.optimizers.SGD(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x[:640], y[:640], batch_size=64, epochs=1, verbose=0)  # trace, warm up
    rates = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, model in contenders.items():
            rates[name].append(images_per_second(model, x, y))
    sparse, dense = (float(np.median(rates[name])) for name in contenders)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; TF {tf.__version__}, Keras {keras.__version__}")
    print(f"steps per round: {args.steps} x batch 64, rounds: {args.rounds}")
    print("| model | images/s (median) |")
    print("|---|---|")
    for name in contenders:
        print(f"| {name} | {np.median(rates[name]):.0f} |")
    print(f"throughput ratio Sparse CNN-2 / dense ReLU twin: {sparse / dense:.2f}")


if __name__ == "__main__":
    main()
