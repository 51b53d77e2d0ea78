"""keras_sparse.selection: every k-th-largest kernel against NumPy, and which
kernel runs where. Backend-agnostic (also run on JAX and PyTorch by
tests/test_backends.py)."""

import numpy as np
import pytest

import keras
from keras_sparse import ops as sparse_ops
from keras_sparse import selection
from tests import numpy_reference as ref
from tests.conftest import to_numpy

AVAILABLE = {
    "tensorflow": ["top_k", "sampled_top_k", "nth_element", "radix"],
    "jax": ["top_k", "radix"],
    "torch": ["top_k", "kthvalue", "radix"],
}[keras.backend.backend()]
# Values that stress an order-preserving integer key: both zeros, both
# infinities, the extremes, the smallest normals, ties. (Not subnormals: CPU
# kernels of TensorFlow and XLA flush them to zero, see keras_sparse.ops.)
AWKWARD = np.float32([-np.inf, np.inf, 0.0, -0.0, 1.5, -1.5, 3.4e38, -3.4e38,
                      1.2e-38, -1.2e-38, 2.0, 2.0, -2.0])


# JAX compiles every new shape op by op: fewer cases there, on a few row
# lengths (every length from 1 to 49 on the other backends).
CASES = 60 if keras.backend.backend() == "jax" else 400
LENGTHS = (1, 2, 7, 13, 32, 49) if keras.backend.backend() == "jax" else tuple(range(1, 50))


@pytest.mark.parametrize("kernel", AVAILABLE)
def test_every_kernel_returns_the_numpy_kth_largest(kernel):
    rng = np.random.default_rng(11)
    for case in range(CASES):
        n, rows = int(rng.choice(LENGTHS)), int(rng.integers(1, 6))
        if case % 2:
            x = rng.choice(AWKWARD, size=(rows, n))
        else:
            x = (rng.integers(-4, 5, size=(rows, n)) * rng.choice([1e-3, 1.0, 1e30])).astype(np.float32)
        k = int(rng.integers(1, n + 1))
        want = -np.sort(-x, axis=-1)[:, k - 1:k]
        got = to_numpy(selection.kth_largest(keras.ops.convert_to_tensor(x), k, kernel=kernel))
        np.testing.assert_array_equal(got, want, err_msg=f"case {case}: k={k}, x={x!r}")


@pytest.mark.parametrize("kernel", AVAILABLE)
def test_every_kernel_at_layer_sizes(kernel):
    """4,608 values per row (MNIST Sparse CNN-2's first k-winners), k = 400."""
    x = np.random.default_rng(12).normal(size=(8, 4608)).astype(np.float32)
    x[:, :50] = x[:, 50:51]  # a 51-way tie inside every row
    want = -np.sort(-x, axis=-1)[:, 399:400]
    np.testing.assert_array_equal(to_numpy(selection.kth_largest(keras.ops.convert_to_tensor(x), 400, kernel=kernel)), want)


@pytest.mark.parametrize("float_counts", [True, False], ids=["float32 counts", "int32 counts"])
def test_radix_counts_in_either_dtype(float_counts, monkeypatch):
    """The radix select sums its counts in float32 on rows of 1,024 to 2^24
    values and in int32 otherwise; both give the NumPy answer (the bounds
    moved here so that these small rows take either branch)."""
    monkeypatch.setattr(selection, "RADIX_FLOAT_COUNTS_MIN", 1 if float_counts else 2**24)
    x = np.random.default_rng(17).choice(AWKWARD, size=(6, 40))
    for k in (1, 13, 40):
        got = to_numpy(selection.kth_largest(keras.ops.convert_to_tensor(x), k, kernel="radix"))
        np.testing.assert_array_equal(got, -np.sort(-x, axis=-1)[:, k - 1:k], err_msg=f"k={k}")


def test_kernel_choice_here():
    x = keras.ops.convert_to_tensor(np.ones((2, 5), np.float32))
    backend = keras.backend.backend()
    expected = {"tensorflow": ("top_k", "nth_element"), "jax": ("top_k", "top_k"),
                "torch": ("top_k", "top_k")}[backend]
    assert (selection.selection_kernel(x, portable=True), selection.selection_kernel(x, portable=False)) == expected
    with pytest.raises(ValueError, match="`kernel` must be one of"):
        selection.kth_largest(x, 1, kernel="sort")


def test_compiled_graphs_select_by_radix():
    """Under XLA (JAX's jit, TensorFlow's jit_compile) the kernel is the radix
    select, whose result is the same."""
    backend = keras.backend.backend()
    if backend == "torch":
        pytest.skip("PyTorch does not compile through XLA")
    seen = []

    def kth(x):
        seen.append(selection.selection_kernel(x, portable=False))
        return selection.kth_largest(x, 3, portable=False)

    if backend == "jax":
        import jax

        compiled = jax.jit(kth)
    else:
        import tensorflow as tf

        compiled = tf.function(kth, jit_compile=True)
    x = np.random.default_rng(13).normal(size=(4, 30)).astype(np.float32)
    np.testing.assert_array_equal(to_numpy(compiled(x)), -np.sort(-x, axis=-1)[:, 2:3])
    assert seen == ["radix"]
    # the whole op, compiled: ties, infinities and NaN as the NumPy reference says
    x = np.random.default_rng(14).choice(np.float32([-np.inf, -1, 0, 0.5, 0.5, 2, np.inf, np.nan]), size=(64, 50))
    duty = np.random.default_rng(15).random(50).astype(np.float32) * 0.3
    for break_ties in (False, True):
        def kwinners(x, break_ties=break_ties):
            return sparse_ops.kwinners(x, duty, 5, 1.0, break_ties=break_ties, portable=False)

        compiled = jax.jit(kwinners) if backend == "jax" else tf.function(kwinners, jit_compile=True)
        np.testing.assert_array_equal(to_numpy(compiled(x)), ref.kwinners(x, duty, 5, 1.0, break_ties=break_ties))


@pytest.mark.tensorflow_only
def test_no_nth_element_where_tensorflow_sees_a_gpu(monkeypatch):
    """NthElement has a CPU kernel only: with a GPU visible, training selects
    with top_k (not copying every input to the host and back)."""
    x = keras.ops.convert_to_tensor(np.ones((2, 5), np.float32))
    monkeypatch.setattr(selection, "_tf_sees_a_gpu", lambda: True)
    assert selection.selection_kernel(x, portable=False) == "top_k"
    monkeypatch.setattr(selection, "_tf_sees_a_gpu", lambda: False)
    assert selection.selection_kernel(x, portable=False) == "nth_element"


@pytest.mark.tensorflow_only
def test_sampled_top_k_is_exact_whatever_its_estimate():
    """The estimate only decides how many values the exact top-k sorts: rows
    whose sample is all ties, all -inf, all above or all below the answer,
    and rows of one batch needing very different corrections."""
    rng = np.random.default_rng(16)
    n = 2048
    stride = selection._prime_stride(n)
    rows = [rng.normal(size=n)]
    sampled_high = rng.normal(size=n)
    sampled_high[::stride] = 1e6  # the sample sees only giants: c = m, estimate far above
    sampled_low = rng.normal(size=n)
    sampled_low[::stride] = -np.inf  # the estimate is -inf: every value is a candidate
    ties = np.full(n, 2.0)
    ties[: n // 3] = rng.integers(-3, 4, size=n // 3)
    rows += [sampled_high, sampled_low, ties, np.sort(rng.normal(size=n))]
    x = np.stack(rows).astype(np.float32)
    for k in (1, 7, 300, 1024, 2047, n):
        got = to_numpy(selection.kth_largest(keras.ops.convert_to_tensor(x), k, kernel="sampled_top_k"))
        np.testing.assert_array_equal(got, -np.sort(-x, axis=-1)[:, k - 1:k], err_msg=f"k={k}")
    empty = keras.ops.convert_to_tensor(np.zeros((0, n), np.float32))
    assert tuple(selection.kth_largest(empty, 5, kernel="sampled_top_k").shape) == (0, 1)


@pytest.mark.tensorflow_only
def test_wide_rows_select_by_sampled_top_k_where_portable():
    wide = keras.ops.convert_to_tensor(np.ones((1, selection.SAMPLED_MIN_UNITS), np.float32))
    narrow = keras.ops.convert_to_tensor(np.ones((1, selection.SAMPLED_MIN_UNITS - 1), np.float32))
    assert selection.selection_kernel(wide, portable=True) == "sampled_top_k"
    assert selection.selection_kernel(narrow, portable=True) == "top_k"
    assert selection.selection_kernel(wide, portable=False) == "nth_element"
    assert selection._prime_stride(4608) == 17 and selection._prime_stride(17 * 19) == 23


@pytest.mark.tensorflow_only
def test_keras_trainer_graphs_select_by_nth_element_and_exported_graphs_stay_portable(monkeypatch, tmp_path):
    """`predict` and `evaluate` (graphs Keras' trainer builds and never
    exports) take the fastest kernel at inference; a `tf.function` of the
    model and `model.export` trace the portable one. Same outputs."""
    import tensorflow as tf

    from keras_sparse import KWinners

    seen = []
    choose = selection.selection_kernel

    def spy(values, portable=True):
        seen.append(choose(values, portable))
        return seen[-1]

    monkeypatch.setattr(selection, "selection_kernel", spy)
    model = keras.Sequential([keras.Input((40,)), KWinners(percent_on=0.2, name="kw")])
    model.compile(loss="mse")
    x = np.random.default_rng(18).normal(size=(6, 40)).astype(np.float32)
    want = ref.kwinners(x, np.zeros(40, np.float32), 12, 1.0)  # k_inference = 0.2 * 40 * 1.5
    np.testing.assert_array_equal(model.predict(x, verbose=0), want)
    model.evaluate(x, want, verbose=0)
    assert seen == ["nth_element", "nth_element"]
    seen.clear()
    np.testing.assert_array_equal(tf.function(lambda x: model(x, training=False))(x).numpy(), want)
    model.export(str(tmp_path / "saved"), verbose=False)
    assert set(seen) == {"top_k"}
