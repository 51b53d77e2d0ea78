"""k-winners selection kernels against ReLU on every backend: under XLA the
radix select against top_k (which XLA lowers to a sort on CPU), on TensorFlow
(`jit_compile=True`) and JAX (`jit`); on PyTorch `torch.topk` against
`torch.kthvalue`.

    python benchmarks/bench_selection.py [--repeats 100]

Each case times one compiled function: `keras_sparse.ops.kwinners` (training
selection, `portable=False`) forward and the gradient with respect to its
input, the median over repeats; the functions of one case take turns call by
call. Under XLA the radix select also runs with its counts summed in int32
at every size (float32 is chosen from 1,024 values). The kernel is forced through
`keras_sparse.selection.selection_kernel`; every kernel returns identical
winners (tests/test_selection.py). Ratios are taken within one run of one
process per backend. TensorFlow without XLA (NthElement) is the reference row.
"""

import argparse
import json
import os
import platform
import subprocess
import sys

# This checkout's package first, even where another keras_sparse is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = [  # (shape, k): the paper's layer sizes, as in bench_kwinners.py
    ((64, 700), 100),
    ((64, 1600), 200),
    ((64, 4608), 400),  # MNIST Sparse CNN-2's first k-winners, flattened
    ((64, 9216), 922),
]


def measure(backend, repeats, torch_threads=1):
    """Runs in a process whose Keras backend is `backend`; returns rows."""
    import numpy as np

    import keras
    from keras_sparse import ops as sparse_ops
    from keras_sparse import selection
    from timing import interleaved_medians_ms  # beside this script

    chosen = {"kernel": None}
    float_counts_min = selection.RADIX_FLOAT_COUNTS_MIN
    original = selection.selection_kernel
    selection.selection_kernel = lambda values, portable=True: chosen["kernel"] or original(values, portable)

    if backend == "jax":
        import jax

        def compile_grad(fn):
            return jax.jit(jax.grad(lambda x: (fn(x) * x).sum()))

        contexts = [("jit", None)]
    elif backend == "torch":
        import torch

        torch.set_num_threads(torch_threads)

        def compile_grad(fn):
            def step(x):
                x = x.detach().requires_grad_(True)
                (fn(x) * x).sum().backward()
                return x.grad

            return step

        contexts = [("eager", None)]
    else:
        import tensorflow as tf

        def compile_grad(fn, jit=True):
            def step(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = tf.reduce_sum(fn(x) * x)
                return tape.gradient(y, x)

            return tf.function(step, jit_compile=jit)

        contexts = [("graph", False), ("jit_compile", True)]

    rows = []
    for shape, k in CASES:
        x = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        duty = np.random.default_rng(1).random(shape[-1]).astype(np.float32) * 0.2
        for context, jit in contexts:
            kernels = {"graph": ["nth_element"], "eager": ["top_k", "kthvalue"]}.get(
                context, ["radix", "top_k", "radix, int32 counts"])
            steps = {}
            for name in ["relu"] + kernels:
                chosen["kernel"] = None if name == "relu" else name.split(",")[0]
                if name == "relu":
                    fn = keras.ops.relu
                else:
                    def fn(t):
                        return sparse_ops.kwinners(t, duty, k, 1.5, portable=False)
                step = compile_grad(fn) if backend != "tensorflow" else compile_grad(fn, jit)

                def call(step=step, kernel=chosen["kernel"], int32_counts=name.endswith("int32 counts")):
                    chosen["kernel"] = kernel  # PyTorch chooses at every call, the others when tracing
                    selection.RADIX_FLOAT_COUNTS_MIN = 2**31 if int32_counts else float_counts_min
                    return keras.ops.convert_to_numpy(step(x))

                steps[name] = call
            timings = interleaved_medians_ms(steps, repeats, warmup=1)  # the warm-up call compiles
            rows.append({"backend": backend, "context": context, "shape": list(shape), "k": k, "ms": timings})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="PyTorch's threads (2 spin-wait on a loaded 2-core machine)")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # internal: one backend's process
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(measure(args.backend, args.repeats, args.torch_threads)))
        return
    rows = []
    for backend in ("tensorflow", "jax", "torch"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        out = subprocess.run([sys.executable, __file__, "--backend", backend, "--repeats", str(args.repeats),
                              "--torch-threads", str(args.torch_threads)],
                             env=env, capture_output=True, text=True, check=True).stdout
        rows += json.loads(out.strip().splitlines()[-1])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; median of {args.repeats}, ms; "
          f"PyTorch {args.torch_threads} thread(s)")
    print("| backend, context | input | k | ReLU | kernel (chosen) | k-winners | / ReLU "
          "| other kernels: k-winners ms (chosen's speed-up) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = r["ms"]
        kernel, *others = [name for name in ms if name != "relu"]
        alternatives = ", ".join(f"{name} {ms[name]:.3f} ({ms[name] / ms[kernel]:.2f}x)" for name in others)
        print(f"| {r['backend']}, {r['context']} | {tuple(r['shape'])} | {r['k']} | {ms['relu']:.3f} | {kernel} "
              f"| {ms[kernel]:.3f} | {ms[kernel] / ms['relu']:.1f}x | {alternatives or '—'} |")


if __name__ == "__main__":
    main()
