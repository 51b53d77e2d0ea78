"""The k-th largest value of every row: the one step of k-winners that is not
elementwise. Several kernels, one result.

`kth_largest(values, k)` returns, for each row along the last axis, the k-th
largest value (rows hold no NaN: `keras_sparse.ops` ranks NaN as `-inf` first).
Which kernel computes it depends on the backend, the device and whether the
graph is compiled by XLA; every kernel returns the identical value:

- `"top_k"`: `top_k(sorted=False)` + `min`. Every backend and TFLite
  (`TOPK_V2`, `REDUCE_MIN`) run it; the portable form, used for inference
  graphs that may be exported.
- `"nth_element"`: TensorFlow's `NthElement` (`std::nth_element`, O(n) per
  row against top-k's O(n log k): 0.48x the time of `top_k` for 600 of
  4,608 values at batch 64). TensorFlow on CPU outside XLA, where no graph
  can be exported: in training, and in the graphs Keras' trainer builds for
  `fit`, `evaluate` and `predict` (`model.predict(x)` runs it, a
  `tf.function` of `model(x)`, `model.export` and the TFLite converters
  trace the portable kernels: `NthElement` has no TFLite, ONNX or OpenVINO
  counterpart). It has no GPU kernel, so never where TensorFlow sees a GPU.
- `"kthvalue"`: `torch.kthvalue` of the negated values (exact: negation is).
  Not chosen: on PyTorch `"top_k"` (`torch.topk(sorted=False)` + `min`)
  measured 1.05-1.09x faster, forward + backward, at the paper's layer
  sizes (`benchmarks/bench_selection.py`).
- `"sampled_top_k"`: TensorFlow's portable kernel for wide rows (inference
  and export): a threshold *estimate* from a strided sample, then one exact
  top-k of only the few values between the estimate and the answer,

      s     = a prime stride near 16 that does not divide n (so the sample
              visits every channel of a flattened feature map)
      e     = the round(k * m / n)-th largest of the m = ceil(n / s) values
              x[0], x[s], x[2s], ...                       (top-k of m values)
      c     = count(x >= e)
      c >= k:  t = the (c - k + 1)-th smallest of {x >= e}
      c <  k:  t = the (k - c)-th largest of {x < e}

  Both cases are one `top_k` of `r = |c - k| + [c >= k]` keys (the others
  set to -inf), so the exact answer costs a top-k of a few dozen values
  instead of k (TFLite's `TOPK_V2` sorts its k outputs: O(k log k)). Exact
  whatever the estimate; a poor estimate only makes `r` larger (at worst n).
  Ops: `STRIDED_SLICE`, `TOPK_V2`, `REDUCE_MIN/MAX`, `GREATER_EQUAL`, `SUM`,
  `SELECT_V2`, `RANGE`: TFLite builtins. With several rows, the top-k takes
  the largest `r` of the batch and each row reads its own `r`-th value.
- `"search"`: a 32-step binary search over the float32 values with
  compare-and-count ops only, for TFLite Micro, which has no `TOPK_V2`
  (`keras_sparse.micro.kth_largest_by_search`); chosen only when asked for.
- `"radix"`: an exact select without sorting, for XLA (JAX inside `jit`,
  as in `fit`; TensorFlow under `jit_compile=True`), whose top-k lowers to a
  sort on CPU. (JAX run op by op uses `top_k`: 130 small ops compile slower
  than they run.)
  Each float32 maps to an int32 key of the same order,

      bits = bitcast(x, int32)
      key  = bits            if bits >= 0
             bits ^ 0x7FFFFFFF otherwise      (negative floats, reversed)

  and the k-th largest key T is the largest integer with
  `count(key >= T) >= k`, built bit by bit from the sign down: 32 passes of
  compare-and-count over the row, whatever n (counts summed in float32 for
  rows of 1,024 to 2^24 values, where it is exact and XLA vectorizes it;
  int32 otherwise). T is a key of the row, so
  mapping it back gives the k-th largest value exactly (ties, ±inf and the
  two zeros included: -0.0 and +0.0 get distinct keys but compare equal as
  floats, and only the float threshold is used afterwards).
"""

import math

import keras
from keras import ops

from keras_sparse._validation import check_kwinners_args

KERNELS = ("top_k", "sampled_top_k", "nth_element", "kthvalue", "radix", "search")
# Rows at least this wide use "sampled_top_k" where it is portable and chosen
# (TensorFlow): measured faster than "top_k" from 1,024 values on LiteRT at
# batch 1 and in TensorFlow graphs (benchmarks/bench_inference.py).
SAMPLED_MIN_UNITS = 1024
SAMPLE_STRIDE = 16
# The radix select sums its counts in float32 for rows of RADIX_FLOAT_COUNTS_MIN
# to RADIX_FLOAT_COUNTS_MAX values (exact below 2^24), in int32 otherwise:
# measured faster from 1,600 values on JAX, slower at 700 (bench_selection.py).
RADIX_FLOAT_COUNTS_MIN = 1024
RADIX_FLOAT_COUNTS_MAX = 2**24


def kth_largest(values, k, portable=True, kernel=None):
    """The k-th largest value along the last axis, keeping that axis (size 1).

    Args:
        values: float tensor `(..., n)` without NaN, n >= k >= 1.
        k: an integer in `[1, n]`.
        portable: True for graphs that may be exported (TFLite): `top_k`
            or `sampled_top_k` unless XLA compiles the graph or Keras'
            trainer built it (`fit`, `evaluate`, `predict`: never
            exported). False lets the fastest exact kernel of the context
            run (see `selection_kernel`).
        kernel: force one of `KERNELS` (tests, benchmarks); None chooses.
    """
    check_kwinners_args(k, None, minimum_k=1, n=values.shape[-1])
    kernel = kernel or selection_kernel(values, portable)
    if kernel not in KERNELS:
        raise ValueError(f"`kernel` must be one of {KERNELS} or None. Received: kernel={kernel!r}")
    if kernel == "nth_element":
        import tensorflow as tf

        return tf.raw_ops.NthElement(input=values, n=k - 1, reverse=True)[..., None]
    if kernel == "kthvalue":
        import torch

        return -torch.kthvalue(-values, k, dim=-1, keepdim=True).values
    if kernel == "radix":
        return _radix_kth_largest(values, k)
    if kernel == "sampled_top_k":
        return _sampled_kth_largest(values, k)
    if kernel == "search":
        from keras_sparse.micro import kth_largest_by_search

        return kth_largest_by_search(values, k)
    top_values, _ = ops.top_k(values, k, sorted=False)
    # `initial` lets an empty batch through (eager TF refuses the min of an
    # empty tensor); it never changes a result, every row has k >= 1 values.
    return ops.min(top_values, axis=-1, keepdims=True, initial=float("inf"))


def selection_kernel(values, portable=True):
    """The kernel `kth_largest` uses for `values` here (see the module doc)."""
    backend = keras.backend.backend()
    float32 = keras.backend.standardize_dtype(values.dtype) == "float32"
    if backend == "jax":  # compiled (traced): radix; op by op, top_k compiles faster
        return "radix" if float32 and _traced_by_jax(values) else "top_k"
    if backend == "tensorflow":
        if _inside_tf_xla():
            return "radix" if float32 else "top_k"
        if (not portable or _in_keras_trainer_step()) and not _tf_sees_a_gpu():
            return "nth_element"
        if values.shape[-1] is not None and values.shape[-1] >= SAMPLED_MIN_UNITS:
            return "sampled_top_k"
    return "top_k"


def _traced_by_jax(values):
    import jax

    return isinstance(values, jax.core.Tracer)


# The `tf.function`s of Keras' TensorFlow trainer (`fit`, `evaluate`,
# `predict`, `*_on_batch`), by name: graphs that run in Keras and are never
# exported. A Keras that renames them only loses the speed-up.
_KERAS_TRAINER_GRAPHS = frozenset(
    ("one_step_on_data", "one_step_on_data_distributed", "multi_step_on_data", "multi_step_on_iterator"))


def _in_keras_trainer_step():
    """True while Keras' TensorFlow trainer traces a step (see above)."""
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if getattr(graph, "name", None) in _KERAS_TRAINER_GRAPHS:
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


def _inside_tf_xla():
    """True inside `tf.function(jit_compile=True)` (TensorFlow's own test)."""
    import tensorflow as tf

    try:
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:  # a future TF without it: assume not compiled
        return False
    return GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _tf_sees_a_gpu():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def _radix_kth_largest(values, k):
    """The `"radix"` kernel: 32 compare-and-count passes on int32 keys."""
    bits = ops.view(values, "int32")
    keys = ops.where(bits >= 0, bits, ops.bitwise_xor(bits, 0x7FFFFFFF))
    # Counts summed in float32 on wide rows: XLA's CPU reductions vectorize
    # float32 sums, not int32 ones (see RADIX_FLOAT_COUNTS_MIN).
    n = values.shape[-1]
    count_dtype = "float32" if n is not None and RADIX_FLOAT_COUNTS_MIN <= n <= RADIX_FLOAT_COUNTS_MAX else "int32"
    counts_at_least = lambda t: ops.sum(ops.cast(keys >= t, count_dtype), axis=-1, keepdims=True)  # noqa: E731
    k = ops.cast(k, count_dtype)
    # The sign bit: non-negative keys (x >= +0.0) if k of them exist, else negative.
    threshold = ops.where(counts_at_least(0) >= k, 0, -(2**31))
    threshold = ops.cast(threshold, "int32")
    powers = ops.convert_to_tensor([1 << bit for bit in range(30, -1, -1)], dtype="int32")

    def next_bit(i, threshold):
        candidate = ops.bitwise_or(threshold, ops.take(powers, i))
        return ops.where(counts_at_least(candidate) >= k, candidate, threshold)

    # A loop, not 31 unrolled steps: XLA would fuse the unrolled chain into one
    # expression and spend minutes compiling it.
    threshold = ops.fori_loop(0, 31, next_bit, threshold)
    bits = ops.where(threshold >= 0, threshold, ops.bitwise_xor(threshold, 0x7FFFFFFF))
    return ops.view(bits, "float32")



def _prime_stride(n, target=SAMPLE_STRIDE):
    """The smallest prime >= `target` that does not divide `n`."""
    stride = target
    while any(stride % d == 0 for d in range(2, math.isqrt(stride) + 1)) or n % stride == 0:
        stride += 1
    return stride


def _sampled_kth_largest(values, k):
    """The `"sampled_top_k"` kernel (TensorFlow ops, TFLite builtins)."""
    import tensorflow as tf

    n = values.shape[-1]
    sample = values[..., :: _prime_stride(n)]
    m = sample.shape[-1]
    estimate = tf.reduce_min(
        tf.math.top_k(sample, min(max(round(k * m / n), 1), m), sorted=False).values,
        axis=-1, keepdims=True)
    at_least = values >= estimate
    count = tf.reduce_sum(tf.cast(at_least, tf.int32), axis=-1, keepdims=True)
    from_above = count >= k  # the answer is among {x >= e}: negate to take the smallest
    sign = tf.where(from_above, tf.constant(-1, values.dtype), tf.constant(1, values.dtype))
    keys = tf.where(tf.equal(at_least, from_above), values * sign, tf.constant(-math.inf, values.dtype))
    rank = tf.where(from_above, count - k + 1, k - count)  # (..., 1), in [1, n]
    widest = tf.maximum(tf.reduce_max(rank), 1)  # 1 for an empty batch
    top = tf.math.top_k(keys, widest, sorted=True).values  # descending
    # The rank-th of each row: the smallest of its first `rank` values.
    kept = tf.where(tf.range(widest) < rank, top, tf.constant(math.inf, values.dtype))
    return tf.reduce_min(kept, axis=-1, keepdims=True) * sign
