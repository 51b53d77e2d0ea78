"""Forward + backward time of KWinners / KWinners2D (training mode, state
update included) against ReLU, in one run, as ratios.

    python benchmarks/bench_kwinners.py [--repeats 200]

Each case runs inside one `tf.function` (the way `fit` runs it): the layer
call under a GradientTape and the gradient with respect to the input. The
median over repeats is reported; ratios are taken within this run, so machine
noise affects numerator and denominator alike. `top_k` is the portable
selection used at inference and under XLA; `nth_element` is what training
uses on the TensorFlow backend (see `keras_sparse.ops.kth_largest`); the
last columns time that selection kernel alone (forward only), the floor of
any layer built on it.
"""

import argparse
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
from keras_sparse import ops as sparse_ops  # noqa: E402
from keras_sparse.layers import KWinners, KWinners2D  # noqa: E402
from timing import median_ms  # noqa: E402  (beside this script)

# (shape, percent_on): the paper's layer sizes and sparsities where they exist
CASES = [
    ((64, 700), 100 / 700),  # MNIST Sparse CNN-2 hidden layer, k = 100
    ((64, 1600), 200 / 1600),  # GSC Sparse CNN-2 second conv block, k = 200
    ((64, 12, 12, 32), 400 / 4608),  # MNIST Sparse CNN-2 first conv block, k = 400
    ((64, 12, 12, 64), 0.1),  # 9216 values, k = 922
]


def median_time(fn, x, repeats):
    """Median seconds of `fn(x)` (a traced function; two warm-up calls)."""
    return median_ms(lambda: fn(x)[0].numpy(), repeats, warmup=2) / 1e3


def forward_backward(activation):
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = activation(x)
        return y, tape.gradient(y, x, output_gradients=tf.ones_like(y))

    return step


def make_layer(shape, percent_on, local=False):
    if len(shape) == 2:
        layer = KWinners(percent_on, boost_strength=1.5)
    else:
        layer = KWinners2D(percent_on, boost_strength=1.5, local=local)
    layer.build(shape)
    layer.duty_cycles.assign(np.random.default_rng(0).random(layer.duty_cycles.shape) * 0.2)
    return layer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"TF {tf.__version__}, Keras {keras.__version__}")
    print("| input shape | k of n | ReLU (ms) | layer, training (ms) | ratio | ops top_k (ms) | ratio "
          "| ops nth_element (ms) | ratio | NthElement kernel alone (ms) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for shape, percent_on in CASES:
        x = tf.constant(rng.normal(size=shape).astype(np.float32))
        layer = make_layer(shape, percent_on)
        rows = x.shape[0]
        flat = tf.reshape(x, (rows, -1))
        duty = tf.ones(flat.shape[1]) * 0.1
        relu = median_time(forward_backward(tf.nn.relu), x, args.repeats)
        in_training = median_time(forward_backward(lambda t: layer(t, training=True)), x, args.repeats)
        top_k = median_time(
            forward_backward(lambda t: sparse_ops.kwinners(t, duty, layer.k, 1.5, portable=True)), flat, args.repeats
        )
        nth = median_time(
            forward_backward(lambda t: sparse_ops.kwinners(t, duty, layer.k, 1.5, portable=False)), flat, args.repeats
        )
        kernel_alone = median_time(
            tf.function(lambda t: (tf.raw_ops.NthElement(input=t, n=layer.k - 1, reverse=True),)),
            flat, args.repeats,
        )
        print(
            f"| {shape} | {layer.k} of {layer.n} | {relu * 1e3:.3f} | {in_training * 1e3:.3f} | "
            f"{in_training / relu:.1f}x | {top_k * 1e3:.3f} | {top_k / relu:.1f}x | "
            f"{nth * 1e3:.3f} | {nth / relu:.1f}x | {kernel_alone * 1e3:.3f} | {kernel_alone / relu:.1f}x |"
        )


if __name__ == "__main__":
    main()
