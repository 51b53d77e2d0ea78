"""keras_sparse.ops: hand-computed cases, the NumPy re-derivation, gradients."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sparse import ops
from tests import numpy_reference as ref

PORTABLE = pytest.mark.parametrize("portable", [True, False], ids=["top_k", "nth_element"])
NO_BOOST = np.zeros(5, np.float32)


def kw(x, duty, k, boost, **kwargs):
    return ops.kwinners(np.asarray(x, np.float32), duty, k, boost, **kwargs).numpy()


@PORTABLE
@pytest.mark.parametrize(
    "x, k, break_ties, expected",
    [
        # plain top-2
        ([[1, 5, 3, 4, 2]], 2, False, [[0, 5, 0, 4, 0]]),
        # ties at the threshold: all tied units win without break_ties ...
        ([[1, 3, 2, 3, 3]], 2, False, [[0, 3, 0, 3, 3]]),
        # ... and the lower indices win with it
        ([[1, 3, 2, 3, 3]], 2, True, [[0, 3, 0, 3, 0]]),
        # negative values win when they are among the k largest
        ([[-1, -5, -3, -4, -2]], 2, False, [[-1, 0, 0, 0, -2]]),
        # k = n keeps everything
        ([[-1, 0, 7, -4, 2]], 5, True, [[-1, 0, 7, -4, 2]]),
        ([[-1, 0, 7, -4, 2]], 5, False, [[-1, 0, 7, -4, 2]]),
        # k = 0 keeps nothing
        ([[1, 2, 3, 4, 5]], 0, False, [[0, 0, 0, 0, 0]]),
        # each row selects on its own
        ([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], 1, True, [[0, 0, 0, 0, 5], [5, 0, 0, 0, 0]]),
    ],
)
def test_kwinners_hand_computed(x, k, break_ties, expected, portable):
    y = kw(x, NO_BOOST, k, 1.0, break_ties=break_ties, portable=portable)
    np.testing.assert_array_equal(y, np.float32(expected))


@PORTABLE
def test_unequal_duty_cycles_change_the_winners(portable):
    x = [[1.0, 0.9, 0.8, 0.1, 0.0]]
    duty = np.float32([0.5, 0.0, 0.0, 0.0, 0.0])
    # boosted = [1 * e^-1, 0.9, 0.8, 0.1, 0] = [0.368, 0.9, 0.8, 0.1, 0]: unit 0 loses
    np.testing.assert_array_equal(kw(x, duty, 2, 2.0, portable=portable), np.float32([[0, 0.9, 0.8, 0, 0]]))
    # without boosting unit 0 wins, with its unboosted value
    np.testing.assert_array_equal(kw(x, duty, 2, 0.0, portable=portable), np.float32([[1.0, 0.9, 0, 0, 0]]))


@PORTABLE
def test_relu_excludes_non_positive(portable):
    x = [[3, -1, 0, -2, 1]]
    np.testing.assert_array_equal(kw(x, NO_BOOST, 3, 1.0, relu=True, portable=portable), [[3, 0, 0, 0, 1]])
    np.testing.assert_array_equal(kw(x, NO_BOOST, 3, 1.0, relu=False, portable=portable), [[3, 0, 0, 0, 1]])
    np.testing.assert_array_equal(kw(x, NO_BOOST, 4, 1.0, relu=False, portable=portable), [[3, -1, 0, 0, 1]])
    np.testing.assert_array_equal(
        kw(x, NO_BOOST, 4, 1.0, relu=True, break_ties=True, portable=portable), [[3, 0, 0, 0, 1]]
    )


@PORTABLE
def test_batch_of_one_2d_local_and_global(portable):
    # (1, 2, 2, 2) channels_last: values by (h, w, c)
    x = np.float32([[[[1, 8], [3, 2]], [[7, 4], [5, 6]]]])
    duty = np.zeros(2, np.float32)
    glob = ops.kwinners2d(x, duty, 3, 1.0, portable=portable).numpy()
    np.testing.assert_array_equal(glob, [[[[0, 8], [0, 0]], [[7, 0], [0, 6]]]])
    local = ops.kwinners2d(x, duty, 1, 1.0, local=True, portable=portable).numpy()
    np.testing.assert_array_equal(local, [[[[0, 8], [3, 0]], [[7, 0], [0, 6]]]])
    # the same tensor channels_first gives the same winners, transposed
    xf = x.transpose(0, 3, 1, 2)
    globf = ops.kwinners2d(xf, duty, 3, 1.0, data_format="channels_first", portable=portable)
    np.testing.assert_array_equal(globf.numpy(), glob.transpose(0, 3, 1, 2))


@PORTABLE
def test_2d_duty_cycles_are_per_channel(portable):
    x = np.float32([[[[1.0, 0.9]]]])  # one location, two channels
    duty = np.float32([1.0, 0.0])
    y = ops.kwinners2d(x, duty, 1, 1.0, local=True, portable=portable).numpy()
    np.testing.assert_array_equal(y, np.float32([[[[0, 0.9]]]]))  # e^-1 < 0.9


def _random_case(rng):
    """A random layer-shaped problem with deliberate ties and negative values."""
    kind = rng.choice(["dense", "local", "global"])
    data_format = rng.choice(["channels_last", "channels_first"])
    batch = int(rng.integers(1, 4))
    if kind == "dense":
        shape, channels = (batch, int(rng.integers(1, 40))), None
    else:
        h, w, c = (int(v) for v in rng.integers(1, 6, size=3))
        shape = (batch, h, w, c) if data_format == "channels_last" else (batch, c, h, w)
        channels = c
    # values on a coarse grid, so exact ties are common
    x = (rng.integers(-8, 9, size=shape) / 4).astype(np.float32)
    units = shape[-1] if kind == "dense" else channels
    duty = rng.choice([0.0, 0.1, 0.25, 0.5, 1.0], size=units).astype(np.float32)
    if rng.random() < 0.5:
        duty = rng.random(units).astype(np.float32)
    n = shape[-1] if kind == "dense" else (channels if kind == "local" else int(np.prod(shape[1:])))
    return dict(
        kind=kind,
        data_format=data_format,
        x=x,
        duty=duty,
        k=int(rng.integers(0, n + 1)),
        boost=float(rng.choice([0.0, 0.5, 1.0, 1.5, 3.0])),
        break_ties=bool(rng.random() < 0.5),
        relu=bool(rng.random() < 0.5),
    )


def _run(case, portable, differentiable=True):
    common = dict(break_ties=case["break_ties"], relu=case["relu"])
    if case["kind"] == "dense":
        got = ops.kwinners(case["x"], case["duty"], case["k"], case["boost"], portable=portable,
                           differentiable=differentiable, **common)
        want = ref.kwinners(case["x"], case["duty"], case["k"], case["boost"], **common)
    else:
        local = case["kind"] == "local"
        got = ops.kwinners2d(
            case["x"], case["duty"], case["k"], case["boost"], local=local,
            data_format=case["data_format"], portable=portable, differentiable=differentiable, **common
        )
        want = ref.kwinners2d(
            case["x"], case["duty"], case["k"], case["boost"], local=local,
            data_format=case["data_format"], **common
        )
    return got.numpy(), want


@PORTABLE
def test_agrees_exactly_with_numpy_on_1200_random_cases(portable):
    rng = np.random.default_rng(2019)
    kinds = set()
    for i in range(1200):
        case = _random_case(rng)
        kinds.add((case["kind"], case["data_format"], case["break_ties"], case["relu"], case["boost"]))
        got, want = _run(case, portable)
        assert np.array_equal(got, want), f"case {i}: {case}\n got {got}\nwant {want}"
    # every combination of kind x format x break_ties x relu x boost strength was drawn
    assert len(kinds) == 3 * 2 * 2 * 2 * 5


def test_inference_form_agrees_exactly_with_numpy():
    """`differentiable=False` (the layers' inference path and exported graphs:
    `where(boosted < threshold, 0, x)`, no custom gradient) on the same 1,200
    random cases: ties, NaN and infinities, every geometry and option."""
    rng = np.random.default_rng(2019)
    for i in range(1200):
        case = _random_case(rng)
        got, want = _run(case, portable=True, differentiable=False)
        assert np.array_equal(got, want, equal_nan=True), f"case {i}: {case}\n got {got}\nwant {want}"


@pytest.mark.parametrize("form", ["top_k", "nth_element", "inference"])
@pytest.mark.parametrize("break_ties", [False, True])
def test_agrees_with_numpy_at_layer_sizes(form, break_ties):
    """Paper-sized rows: 4608 units, k = 400, continuous values and duty cycles."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 12, 12, 32)).astype(np.float32)
    # sample 0: 36 equal values per channel above everything else, so the
    # 400th largest sits inside a block of 36 ties (11 * 36 < 400 < 12 * 36)
    x[0, :3] = 10.0
    duty = rng.random(32).astype(np.float32) * 0.2
    x[1, 0, 0, :5] = [np.nan, np.inf, -np.inf, np.nan, 0.0]
    got = ops.kwinners2d(x, duty, 400, 1.5, break_ties=break_ties, portable=form != "nth_element",
                         differentiable=form != "inference").numpy()
    want = ref.kwinners2d(x, duty, 400, 1.5, break_ties=break_ties)
    np.testing.assert_array_equal(got, want)
    winners = (np.nan_to_num(got, nan=0.0) != 0).reshape(8, -1).sum(axis=1)
    if break_ties:
        np.testing.assert_array_equal(winners, 400)
    else:
        assert winners[0] == 12 * 36 and (winners[1:] == 400).all()


@PORTABLE
@pytest.mark.parametrize("break_ties", [False, True])
def test_gradient_is_upstream_times_winner_mask(portable, break_ties):
    rng = np.random.default_rng(3)
    x = tf.constant((rng.integers(-6, 7, size=(4, 30)) / 2).astype(np.float32))
    duty = rng.random(30).astype(np.float32)
    upstream = tf.constant(rng.normal(size=(4, 30)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.kwinners(x, duty, 20, 1.5, break_ties=break_ties, portable=portable)
    grad = tape.gradient(y, x, output_gradients=upstream).numpy()
    mask = ref.kwinners(x.numpy(), duty, 20, 1.5, break_ties=break_ties, mask=True)
    assert ((x.numpy() == 0) & mask).any()  # a winner whose value is 0 still passes gradient
    np.testing.assert_array_equal(grad, np.where(mask, upstream.numpy(), 0))


@PORTABLE
def test_gradient_at_losers_is_zero_even_for_non_finite_upstream(portable):
    """`where(winner, upstream, 0)`, not `upstream * mask`: an infinite or NaN
    upstream at a loser gives 0 (`inf * 0` would be NaN); at a winner it
    passes unchanged."""
    x = tf.constant([[5.0, 1.0, 4.0, 2.0, 3.0]])
    upstream = tf.constant([[np.inf, np.nan, -np.inf, np.inf, 7.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.kwinners(x, NO_BOOST, 2, 1.0, portable=portable)
    grad = tape.gradient(y, x, output_gradients=upstream).numpy()
    np.testing.assert_array_equal(grad, np.float32([[np.inf, 0, -np.inf, 0, 0]]))


FEATURE_MAP_OPS = [
    pytest.param(ops.kwinners1d, ref.kwinners1d, (2, 3, 7), id="1d"),
    pytest.param(ops.kwinners2d, ref.kwinners2d, (2, 3, 6, 6), id="2d"),
    pytest.param(ops.kwinners3d, ref.kwinners3d, (2, 3, 3, 4, 2), id="3d"),
]


@PORTABLE
@pytest.mark.parametrize("op, reference, shape", FEATURE_MAP_OPS)
def test_feature_map_gradient_is_upstream_times_winner_mask(op, reference, shape, portable):
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    duty = rng.random(3).astype(np.float32)
    upstream = tf.constant(rng.normal(size=shape).astype(np.float32))
    for local, k in [(False, 20), (True, 1)]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = op(x, duty, k, 1.0, local=local, data_format="channels_first", portable=portable)
        grad = tape.gradient(y, x, output_gradients=upstream).numpy()
        mask = reference(x.numpy(), duty, k, 1.0, local=local, data_format="channels_first", mask=True)
        assert mask.sum() == (20 * shape[0] if not local else np.prod(shape) // 3)  # k per row
        np.testing.assert_array_equal(grad, np.where(mask, upstream.numpy(), 0))


@PORTABLE
def test_sequence_gradient_is_upstream_times_winner_mask(portable):
    """`kwinners` on `(batch, time, n)`: every time step is a row."""
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(3, 5, 8)).astype(np.float32))
    duty = rng.random(8).astype(np.float32)
    upstream = tf.constant(rng.normal(size=(3, 5, 8)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.kwinners(x, duty, 3, 1.0, portable=portable)
    mask = ref.kwinners(x.numpy(), duty, 3, 1.0, mask=True)
    assert (mask.sum(axis=-1) == 3).all()
    np.testing.assert_array_equal(tape.gradient(y, x, output_gradients=upstream), np.where(mask, upstream.numpy(), 0))


@PORTABLE
def test_sequences_and_volumes_hand_computed(portable):
    def run(op, x, duty, k, boost=0.0, **kwargs):
        return op(np.float32(x), np.float32(duty), k, boost, portable=portable, **kwargs).numpy()

    # (batch, time, n): each time step keeps its own 2
    np.testing.assert_array_equal(run(ops.kwinners, [[[1, 4, 2, 3], [4, 3, 2, 1]]], [0] * 4, 2),
                                  [[[0, 4, 0, 3], [4, 3, 0, 0]]])
    # 1d, channels_first (batch, c=3, steps=2): per step the largest channel
    np.testing.assert_array_equal(
        run(ops.kwinners1d, [[[1, 5], [2, 4], [3, 3]]], [0] * 3, 1, local=True, data_format="channels_first"),
        [[[0, 5], [0, 0], [3, 0]]])
    # 1d global (batch, steps=2, c=3): the 3 largest of the sample; 3 ties at
    # steps 0 and 1, the lower (step, channel) position wins with break_ties
    x = [[[1, 2, 3], [5, 4, 3]]]
    np.testing.assert_array_equal(run(ops.kwinners1d, x, [0] * 3, 3), [[[0, 0, 3], [5, 4, 3]]])
    np.testing.assert_array_equal(run(ops.kwinners1d, x, [0] * 3, 3, break_ties=True), [[[0, 0, 3], [5, 4, 0]]])
    # 3d global (batch, d=2, h=1, w=1, c=2), equal values: channel 0 is boosted
    # down by its duty cycle (exp(-0.5) < 1), so both channel-1 values win
    np.testing.assert_array_equal(run(ops.kwinners3d, [[[[[1, 1]]], [[[1, 1]]]]], [0.5, 0], 2, boost=1.0),
                                  [[[[[0, 1]]], [[[0, 1]]]]])


@PORTABLE
def test_nan_units_never_win_and_stay_nan(portable):
    x = np.float32([[1.0, np.nan, 3.0, 2.0, 0.5], [np.nan, np.nan, np.nan, 1.0, -1.0]])
    y = kw(x, NO_BOOST, 2, 1.0, portable=portable)
    # row 0: the winners are the two largest numbers; the NaN stays NaN
    np.testing.assert_array_equal(y, np.float32([[0, np.nan, 3, 2, 0], [np.nan, np.nan, np.nan, 1, -1]]))
    np.testing.assert_array_equal(y, ref.kwinners(x, NO_BOOST, 2, 1.0))


@pytest.mark.parametrize("portable", [True, False])
def test_winner_mask_hand_computed_and_against_numpy(portable):
    """`ops.winner_mask` on boosted values: ties at the threshold all win,
    `break_ties` keeps the lower index, `relu` drops non-positive values, NaN
    never wins, `k = 0` none; then 300 random rows against the reference."""
    boosted = np.float32([[3, 1, 2, 2, 0], [-1, -2, np.nan, -3, -1]])
    np.testing.assert_array_equal(ops.winner_mask(boosted, 2), np.float32([[1, 0, 1, 1, 0], [1, 0, 0, 0, 1]]))
    np.testing.assert_array_equal(ops.winner_mask(boosted, 2, break_ties=True, portable=portable),
                                  np.float32([[1, 0, 1, 0, 0], [1, 0, 0, 0, 1]]))
    np.testing.assert_array_equal(ops.winner_mask(boosted, 3, relu=True, portable=portable),
                                  np.float32([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0]]))
    np.testing.assert_array_equal(ops.winner_mask(boosted, 0), np.zeros((2, 5), np.float32))
    rng = np.random.default_rng(5)
    values = np.round(rng.normal(size=(300, 40)) * 2).astype(np.float32) / 2  # many ties
    for k, break_ties, relu in ((1, False, False), (7, True, False), (20, False, True), (40, True, True)):
        np.testing.assert_array_equal(ops.winner_mask(values, k, break_ties, relu, portable=portable),
                                      ref._winners(values, k, break_ties, relu).astype(np.float32))
    with pytest.raises(ValueError, match=r"`k` must be in \[0, 5\]"):
        ops.winner_mask(boosted, 6)


def test_k_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="k"):
        ops.kwinners(np.ones((1, 5), np.float32), NO_BOOST, 6, 1.0)
    with pytest.raises(ValueError, match="rank >= 2"):
        ops.kwinners(np.ones((5,), np.float32), NO_BOOST, 2, 1.0)
    with pytest.raises(ValueError, match=r"`duty_cycles` of shape \(1,\). Received: duty_cycles of shape \(5,\)"):
        ops.kwinners(np.ones((1, 5, 1), np.float32), NO_BOOST, 1, 1.0)
    with pytest.raises(ValueError, match=r"kwinners1d` expects x of rank 3"):
        ops.kwinners1d(np.ones((1, 2, 2, 1), np.float32), np.zeros(1), 1, 1.0)
    with pytest.raises(ValueError, match="data_format"):
        ops.kwinners2d(np.ones((1, 2, 2, 1), np.float32), np.zeros(1), 1, 1.0, data_format="NHWC")


def test_float16_inputs_give_float16_outputs():
    x = np.float16([[1, 5, 3, 4, 2]])
    y = ops.kwinners(x, NO_BOOST, 2, 1.0)
    assert y.dtype == tf.float16
    np.testing.assert_array_equal(y.numpy(), np.float16([[0, 5, 0, 4, 0]]))


def _op_types(fn, *args):
    graph = tf.function(fn).get_concrete_function(*args).graph
    return {op.type for op in graph.get_operations()}


def test_selection_kernel_by_context():
    """Training selects with NthElement; portable and XLA graphs use TopKV2."""
    spec = tf.TensorSpec((None, 50), tf.float32)
    duty = np.zeros(50, np.float32)
    fast = _op_types(lambda x: ops.kwinners(x, duty, 5, 1.0, portable=False), spec)
    portable = _op_types(lambda x: ops.kwinners(x, duty, 5, 1.0, portable=True), spec)
    assert "NthElement" in fast and "TopKV2" not in fast
    assert "TopKV2" in portable and "NthElement" not in portable
    xla = tf.function(lambda x: ops.kwinners(x, duty, 5, 1.0, portable=False), jit_compile=True)
    x = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32)
    np.testing.assert_array_equal(xla(x).numpy(), ref.kwinners(x, duty, 5, 1.0))
    # the radix select under XLA, with ties, infinities and NaN
    x = np.random.default_rng(1).choice(np.float32([-np.inf, -1, 0, 0.5, 0.5, 2, np.inf, np.nan]), size=(64, 50))
    for break_ties in (False, True):
        xla = tf.function(lambda x: ops.kwinners(x, duty, 5, 1.0, break_ties=break_ties, portable=False),
                          jit_compile=True)
        np.testing.assert_array_equal(xla(x).numpy(), ref.kwinners(x, duty, 5, 1.0, break_ties=break_ties))


def test_straight_through_keeps_the_values_and_passes_the_gradient_at_finite_inputs():
    """`straight_through(x, kwinners(x))`: exactly the k-winners values, and
    the upstream gradient at every finite input (0 at ±inf and NaN)."""
    x = tf.constant([[5.0, 1.0, np.inf, 2.0, -np.inf, 3.0], [0.5, np.nan, -1.0, 4.0, 2.0, 1.0]])
    upstream = tf.constant([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [7.0, 8.0, 9.0, 10.0, 11.0, 12.0]])
    duty = np.zeros(6, np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ops.straight_through(x, ops.kwinners(x, duty, 2, 1.0))
    expected = ref.kwinners(x.numpy(), duty, 2, 1.0)
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(expected, [[5, 0, np.inf, 0, 0, 0], [0, np.nan, 0, 4, 2, 0]])
    np.testing.assert_array_equal(tape.gradient(y, x, output_gradients=upstream).numpy(),
                                  [[1, 2, 0, 4, 0, 6], [7, 0, 9, 10, 11, 12]])
    with pytest.raises(ValueError, match="one shape and dtype"):
        ops.straight_through(x, x[:1])
    with pytest.raises(ValueError, match="one shape and dtype"):
        ops.straight_through(x, tf.cast(x, "float64"))
