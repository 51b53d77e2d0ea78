"""Forward + backward time of KWinners / KWinners2D (training mode, state
update included) against ReLU, in one run, as ratios.

    python benchmarks/bench_kwinners.py [--repeats 200]

Each case runs inside one `tf.function` (the way `fit` runs it): the layer
call under a GradientTape and the gradient with respect to the input. The
median over repeats is reported; the variants of a shape take turns call by
call and ratios are taken within this run, so machine noise affects
numerator and denominator alike. `top_k` is the portable
selection used at inference and under XLA; `nth_element` is what training
uses on the TensorFlow backend (see `keras_sparse.ops.kth_largest`); the
"NthElement kernel alone" times that selection kernel alone (forward only),
the floor of any layer built on it; then the layer in training inside
`tf.function(jit_compile=True)` (XLA: the radix select) and its ratio to the
same layer without XLA; last, the layer's inference path (`training=False`,
`k_inference` winners, the portable exportable kernels) forward only, against
ReLU's forward.
"""

import argparse
import os
import platform
import sys

# This checkout's package first, even where another keras_sparse is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # retracing notices: every case traces its own functions

import keras  # noqa: E402
from keras_sparse import ops as sparse_ops  # noqa: E402
from keras_sparse.layers import KWinners, KWinners2D  # noqa: E402
from timing import interleaved_medians_ms  # noqa: E402  (beside this script)

# (shape, percent_on): the paper's layer sizes and sparsities where they exist
CASES = [
    ((64, 700), 100 / 700),  # MNIST Sparse CNN-2 hidden layer, k = 100
    ((64, 1600), 200 / 1600),  # GSC Sparse CNN-2 second conv block, k = 200
    ((64, 12, 12, 32), 400 / 4608),  # MNIST Sparse CNN-2 first conv block, k = 400
    ((64, 12, 12, 64), 0.1),  # 9216 values, k = 922
]


def forward_backward(activation, jit_compile=False):
    @tf.function(jit_compile=jit_compile)
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
          "| ops nth_element (ms) | ratio | NthElement kernel alone (ms) | ratio "
          "| layer, training, jit_compile (ms) | XLA / non-XLA | ReLU forward (ms) "
          "| layer, inference, forward (ms) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for shape, percent_on in CASES:
        x = tf.constant(rng.normal(size=shape).astype(np.float32))
        layer = make_layer(shape, percent_on)
        rows = x.shape[0]
        flat = tf.reshape(x, (rows, -1))
        duty = tf.ones(flat.shape[1]) * 0.1
        steps = {
            "relu": (forward_backward(tf.nn.relu), x),
            "training": (forward_backward(lambda t: layer(t, training=True)), x),
            "training_xla": (forward_backward(lambda t: layer(t, training=True), True), x),
            "top_k": (forward_backward(
                lambda t: sparse_ops.kwinners(t, duty, layer.k, 1.5, portable=True)), flat),
            "nth": (forward_backward(
                lambda t: sparse_ops.kwinners(t, duty, layer.k, 1.5, portable=False)), flat),
            "relu_forward": (tf.function(lambda t: (tf.nn.relu(t),)), x),
            "inference": (tf.function(lambda t: (layer(t, training=False),)), x),
            "kernel_alone": (tf.function(
                lambda t: (tf.raw_ops.NthElement(input=t, n=layer.k - 1, reverse=True),)), flat),
        }
        t = {name: ms / 1e3 for name, ms in interleaved_medians_ms(
            {name: (lambda fn=fn, v=v: fn(v)[0].numpy()) for name, (fn, v) in steps.items()},
            args.repeats).items()}
        relu, in_training, in_training_xla = t["relu"], t["training"], t["training_xla"]
        top_k, nth, kernel_alone = t["top_k"], t["nth"], t["kernel_alone"]
        relu_forward, inference = t["relu_forward"], t["inference"]
        print(
            f"| {shape} | {layer.k} of {layer.n} | {relu * 1e3:.3f} | {in_training * 1e3:.3f} | "
            f"{in_training / relu:.1f}x | {top_k * 1e3:.3f} | {top_k / relu:.1f}x | "
            f"{nth * 1e3:.3f} | {nth / relu:.1f}x | {kernel_alone * 1e3:.3f} | {kernel_alone / relu:.1f}x | "
            f"{in_training_xla * 1e3:.3f} | {in_training_xla / in_training:.2f} | {relu_forward * 1e3:.3f} | "
            f"{inference * 1e3:.3f} | {inference / relu_forward:.1f}x |"
        )


if __name__ == "__main__":
    main()
