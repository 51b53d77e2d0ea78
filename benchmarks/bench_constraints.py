"""What keeping a sparse kernel's zeros costs per optimizer step, for each
sparse kernel of the paper's networks: its `SparseWeights` constraint (one
bitwise AND) against the same constraint written as `where(mask, w,
zeros_like(w))` (the form of releases before), alone and inside an SGD step.

    python benchmarks/bench_constraints.py [--repeats 300]

Contenders, each a `tf.function` on one kernel variable (TensorFlow backend):

- "assign": `w.assign(constraint(w))` alone, with each form, and `w.assign(w
  + 0.0)` (one read and one write of the kernel: the floor of any form);
- "SGD step": `SGD(0.02).apply` of a fixed random gradient, which applies
  the variable's constraint after the update as `fit` does, with each form
  and without a constraint.

The contenders of a kernel take turns call by call
(`timing.interleaved_medians_ms`), so load on a shared machine hits them
alike.
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from keras_sparse import models  # noqa: E402
from keras_sparse.constraints import sparse_weight_layers  # noqa: E402

try:
    from timing import cpu_name, interleaved_medians_ms
except ImportError:  # run as `python -m benchmarks.bench_constraints`
    from benchmarks.timing import cpu_name, interleaved_medians_ms

NETWORKS = {"MNIST Sparse CNN-2": models.mnist_sparse_cnn2, "FSDD Sparse CNN-2": models.gsc_sparse_cnn2}


class SelectConstraint(keras.constraints.Constraint):
    """The select form: `where(mask, w, zeros_like(w))`."""

    def __init__(self, mask):
        self.mask = mask

    def __call__(self, w):
        w = ops.convert_to_tensor(w)
        return ops.where(self.mask, w, ops.zeros_like(w))


def assign(kernel, constraint):
    """A `tf.function` assigning `constraint(w)` (`w + 0.0` for None) to a copy of `kernel`."""
    variable = keras.Variable(ops.convert_to_numpy(kernel))
    function = constraint or (lambda w: ops.convert_to_tensor(w) + 0.0)
    return tf.function(lambda: variable.assign(function(variable)))


def sgd_step(kernel, constraint):
    """A `tf.function` applying one SGD step to a copy of `kernel` under `constraint`."""
    variable = keras.Variable(ops.convert_to_numpy(kernel))
    variable.constraint = constraint  # what the layer's `kernel_constraint` sets
    gradient = tf.constant(np.random.default_rng(0).normal(size=variable.shape).astype("float32"))
    optimizer = keras.optimizers.SGD(0.02)
    optimizer.build([variable])
    step = tf.function(lambda: optimizer.apply([gradient], [variable]))
    step()
    if constraint is not None:  # the step applied it: the kernel is its own constrained form
        assert np.array_equal(variable.numpy(), ops.convert_to_numpy(constraint(variable)))
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"median of {args.repeats} interleaved calls")
    print("| network, layer | kernel | kept | assign: w + 0 (ms) | where (ms) | SparseWeights (ms) | ratio "
          "| SGD step: no constraint (ms) | where (ms) | SparseWeights (ms) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for network, build in NETWORKS.items():
        for layer in sparse_weight_layers(build()):
            constraint = layer.kernel.constraint
            mask = constraint.mask(layer.kernel.shape)
            forms = {"none": None, "where": SelectConstraint(mask), "bits": constraint}
            ms = interleaved_medians_ms(
                {(step.__name__, form): step(layer.kernel, c) for step in (assign, sgd_step)
                 for form, c in forms.items()}, repeats=args.repeats, warmup=5)
            cells = [f"{network}, {layer.name}", str(tuple(layer.kernel.shape)), f"{mask.mean():.2f}"]
            for step in ("assign", "sgd_step"):
                cells += [f"{ms[step, form]:.3f}" for form in forms]
                cells.append(f"{ms[step, 'bits'] / ms[step, 'where']:.2f}")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
