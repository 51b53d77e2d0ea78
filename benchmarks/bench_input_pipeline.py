"""The TensorFlow backend's wait between passes over NumPy arrays, and
`keras_sparse.datasets.fit_inputs` / `predict_inputs` without it.

    python benchmarks/bench_input_pipeline.py [--data-dir ../shared/datasets/mnist] [--epochs 4]
        [--train-samples 60000] [--predict-repeats 10]

Given arrays, Keras (TensorFlow backend) feeds `fit`, `evaluate` and
`predict` through an autotuned `tf.data` pipeline; tearing down one pass's
iterator waits for the autotuner's thread, which sleeps in doubling periods.
Measured here, on the paper's MNIST Sparse CNN-2 (SGD 0.02, batch 64):

- `fit`: one `model.fit(..., epochs=--epochs)` given the arrays, then one of
  a fresh model given `fit_inputs` (the same batches); for every epoch, its
  seconds and the seconds from its start to the end of its first step (the
  wait, when there is one, falls there: the previous epoch's iterator is
  destroyed when the next one is made).
- `predict`: the test set, batch 512, `--predict-repeats` calls of each
  form in turn (interleaved); every call's seconds.

The wait is wall time, not CPU time: a loaded machine changes the steps'
time, not whether a pass waits.
"""

import argparse
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_sparse import datasets, models  # noqa: E402

BATCH = 64


class EpochTimes(keras.callbacks.Callback):
    """Each epoch's seconds, and the seconds to the end of its first step."""

    def __init__(self):
        super().__init__()
        self.epochs, self.first_steps = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.first = time.perf_counter(), None

    def on_train_batch_end(self, batch, logs=None):
        if self.first is None:
            self.first = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self.start)
        self.first_steps.append(self.first)


def fit_times(inputs, epochs):
    keras.utils.set_random_seed(0)
    model = models.mnist_sparse_cnn2()
    model.compile(keras.optimizers.SGD(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    times = EpochTimes()
    model.fit(**inputs, epochs=epochs, callbacks=[times], verbose=0)
    return model, times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-samples", type=int, default=60000)
    parser.add_argument("--predict-repeats", type=int, default=10)
    args = parser.parse_args()
    (x_train, y_train), (x_test, _) = datasets.load_mnist(args.data_dir)
    x_train = datasets.normalize(datasets.to_unit_interval(x_train))[: args.train_samples]
    y_train = y_train[: args.train_samples]
    x_test = datasets.normalize(datasets.to_unit_interval(x_test))

    forms = {
        "arrays to `fit`": dict(x=x_train, y=y_train, batch_size=BATCH, shuffle=True),
        "`fit_inputs`": datasets.fit_inputs(x_train, y_train, batch_size=BATCH),
    }
    results = {name: fit_times(inputs, args.epochs) for name, inputs in forms.items()}
    print(f"Sparse CNN-2, {len(x_train)} images, batch {BATCH}, {args.epochs} epochs in one `fit` each; "
          "seconds per epoch (of which: to the end of the first step)")
    print("| input | " + " | ".join(f"epoch {e + 1}" for e in range(args.epochs)) + " | total |")
    print("|---|" + "---|" * (args.epochs + 1))
    for name, (_, times) in results.items():
        cells = [f"{t:.1f} ({f:.2f})" for t, f in zip(times.epochs, times.first_steps)]
        print(f"| {name} | " + " | ".join(cells) + f" | {sum(times.epochs):.1f} |")

    model = results["`fit_inputs`"][0]
    calls = {
        "arrays to `predict`": lambda: model.predict(x_test, batch_size=512, verbose=0),
        "`predict_inputs`": lambda: model.predict(**datasets.predict_inputs(x_test, batch_size=512), verbose=0),
    }
    seconds = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm-up: tracing
    for _ in range(args.predict_repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    print(f"\npredict, {len(x_test)} images, batch 512, {args.predict_repeats} interleaved calls each (s)")
    for name, values in seconds.items():
        print(f"- {name}: median {np.median(values):.2f}, min {min(values):.2f}, max {max(values):.2f}; "
              + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
