"""Property-based tests (Hypothesis): the k-winners layers against the NumPy
re-derivation in `tests/numpy_reference.py`, on inputs chosen to break them.

Random shapes (batch 0 included), every float dtype and int32, values with
many ties, +-inf and NaN, k from 1 to n, every layer (`KWinners` on
`(batch, ..., n)`, `KWinners1D/2D/3D`), both data formats,
`local`, `break_ties`, `relu`, boost strengths up to the maximum, training
(output and state update) and inference (output, state unchanged). The
example count is bounded and the search derandomized, so CI is fast and
repeatable; `KERAS_SPARSE_HYPOTHESIS_EXAMPLES` raises the count for a deeper run.
"""

import os

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import keras
import keras_sparse as ks
from tests import numpy_reference as ref
from tests.conftest import layer_reference, to_numpy

EXAMPLES = int(os.environ.get("KERAS_SPARSE_HYPOTHESIS_EXAMPLES", "400"))
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # a fixed search: the same examples on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NUMPY_DTYPES = {
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
}
# JAX computes float64 in float32 unless `jax_enable_x64` is set (Keras' own rule).
LAYER_DTYPES = sorted(set(NUMPY_DTYPES) - ({"float64"} if keras.backend.backend() == "jax" else set()))
# Few distinct values, so ties are common; the non-finite ones are rarer.
FINITE_VALUES = [-2.0, -0.75, -0.25, 0.0, 0.0, 0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 3.0]
NON_FINITE_VALUES = [np.inf, -np.inf, np.nan]


@st.composite
def layer_cases(draw):
    kind = draw(st.sampled_from(["dense", "local", "global"]))
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    batch = draw(st.integers(0, 4))
    if kind == "dense":  # (batch, ..., n): 0 to 2 leading axes
        leading = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        n = channels = draw(st.integers(2, 24))
        shape = (batch, *leading, n)
    else:  # 1d, 2d or 3d feature map
        spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
        channels = draw(st.integers(2, 8))
        shape = (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)
        n = channels if kind == "local" else int(np.prod(spatial)) * channels
    k = draw(st.integers(1, n - 1))  # percent_on < 1
    k_inference = draw(st.integers(k, n))
    dtype = draw(st.sampled_from(LAYER_DTYPES))
    values = FINITE_VALUES + ([] if dtype == "int32" else NON_FINITE_VALUES)
    flat = draw(st.lists(st.sampled_from(values), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    x = np.asarray(flat, np.float64).reshape(shape).astype(NUMPY_DTYPES[dtype])
    duty = np.asarray(draw(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5, 1.0]),
                                    min_size=channels, max_size=channels)), np.float32)
    kwargs = dict(
        percent_on=k / n,
        # midway between the factors giving k_inference - 1/2 and + 1/2: rounds to k_inference
        k_inference_factor=k_inference / k,
        boost_strength=draw(st.sampled_from([0.0, 0.5, 1.5, 10.0, ks.kwinners.MAX_BOOST_STRENGTH])),
        duty_cycle_period=draw(st.sampled_from([1, 3, 1000])),
        break_ties=draw(st.booleans()),
        relu=draw(st.booleans()),
        # integer inputs compute in the layer's float32; float dtypes in their own
        dtype="float32" if dtype == "int32" else dtype,
    )
    if kind == "dense":
        layer = ks.KWinners(**kwargs)
    else:
        feature_map_layer = {1: ks.KWinners1D, 2: ks.KWinners2D, 3: ks.KWinners3D}[len(spatial)]
        layer = feature_map_layer(local=kind == "local", data_format=data_format, **kwargs)
    layer.build(shape)
    assert (layer.k, layer.k_inference) == (k, k_inference)
    for name, value in (("kind", kind), ("rank", len(shape)), ("dtype", dtype), ("batch", batch),
                        ("non-finite", not np.isfinite(x.astype(np.float32)).all())):
        event(f"{name}={value}")
    layer.duty_cycles.assign(duty)
    layer.learning_iterations.assign(draw(st.integers(0, 5)))
    return layer, x


def _assert_same(got, want, layer, x):
    got = to_numpy(got)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64),
                                  err_msg=f"{layer.get_config()}\nx={x!r}")


@PROPERTY_SETTINGS
@given(layer_cases())
def test_inference_agrees_with_numpy_and_changes_no_state(case):
    layer, x = case
    state = [w.numpy().copy() for w in layer.weights]
    _assert_same(layer(x, training=False), layer_reference(layer, x, layer.k_inference), layer, x)
    for before, after in zip(state, layer.weights):
        np.testing.assert_array_equal(after.numpy(), before)


@PROPERTY_SETTINGS
@given(layer_cases())
def test_training_agrees_with_numpy_output_and_state_update(case):
    layer, x = case
    duty, iterations = layer.duty_cycles.numpy().copy(), int(layer.learning_iterations.numpy())
    want = layer_reference(layer, x, layer.k)
    _assert_same(layer(x, training=True), want, layer, x)
    channel_axis = 1 if getattr(layer, "data_format", "") == "channels_first" else -1
    want_duty, want_iterations = ref.duty_cycle_update(
        duty, iterations, want.astype(np.float32), layer.duty_cycle_period, channel_axis)
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), want_duty)
    assert int(layer.learning_iterations.numpy()) == want_iterations
    assert np.isfinite(layer.duty_cycles.numpy()).all()


@pytest.mark.parametrize("portable", [True, False])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_ops_winner_count_rules(portable, data):
    """Counting rules that hold whatever the values: with `break_ties` exactly
    min(k, numbers in the row) winners (fewer only under `relu`), without it at
    least that many; never a NaN; a losing unit outputs 0, a NaN stays NaN."""
    n = data.draw(st.integers(1, 30))
    k = data.draw(st.integers(0, n))
    rows = data.draw(st.integers(0, 5))
    break_ties, relu = data.draw(st.booleans()), data.draw(st.booleans())
    flat = data.draw(st.lists(st.sampled_from(FINITE_VALUES + NON_FINITE_VALUES), min_size=rows * n, max_size=rows * n))
    x = np.asarray(flat, np.float32).reshape(rows, n)
    mask = ref.kwinners(x, np.zeros(n, np.float32), k, 0.0, break_ties, relu, mask=True)
    y = to_numpy(ks.ops.kwinners(x, np.zeros(n, np.float32), k, 0.0, break_ties, relu, portable=portable))
    np.testing.assert_array_equal(y, ref.kwinners(x, np.zeros(n, np.float32), k, 0.0, break_ties, relu))
    numbers = ~np.isnan(x)
    counts, wanted = mask.sum(axis=1), np.minimum(k, numbers.sum(axis=1))
    if break_ties and not relu:
        np.testing.assert_array_equal(counts, wanted)
    elif not relu:
        assert (counts >= wanted).all()
    assert not (mask & ~numbers).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    assert (y[~mask & numbers] == 0).all()
