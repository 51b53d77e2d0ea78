"""Learned masks (docs/learned_sparsity.md): N:M patterns, `set_mask`, the
callbacks `MagnitudePruning`, `RigL` and `SET`, `sparsify`, ERK, and their
refusals. Backend-agnostic (tests/test_backends.py runs it on JAX and
PyTorch too); the save/load/SavedModel/TFLite round trips of learned-mask
layers are in the shared harness (tests/test_layers.py)."""

import hashlib
import json
import math
import os

import keras
import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse import pruning
from keras_sparse.callbacks import MagnitudePruning, RigL, SET
from keras_sparse.constraints import sparse_mask
from tests.conftest import crash_at, load_example, mnist_dir, to_numpy


def _model(optimizer=None, pattern_layer=True, sparsity=0.0, run_eagerly=True):
    """Input(16) -> learned SparseDense(8) [-> learned 2:4 SparseDense(8)] -> KWinners -> Dense(3).

    Eager by default (a few steps: tracing would cost more than they do);
    the compiled step, whose mask on JAX is a constant recompiled after
    every update, is what `test_zeros_outside_the_mask_after_every_step` runs."""
    inputs = keras.Input((16,))
    h = ks.layers.SparseDense(8, sparsity, seed=1, mask="learned", name="plain")(inputs)
    if pattern_layer:
        h = ks.layers.SparseDense(8, 0.5, seed=2, pattern=(2, 4), mask="learned", name="nm")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(ks.KWinners(0.5)(h)))
    model.compile(optimizer or keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=run_eagerly)
    return model


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16)).astype(np.float32), rng.integers(0, 3, n)


class Probe(keras.callbacks.Callback):
    """After every step (listed after the mask callback): each learned layer's
    mask, and its kernel's non-zeros outside the mask."""

    def __init__(self):
        super().__init__()
        self.masks, self.stray, self.kernels = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        model = self.model  # on JAX, syncs the training state
        layers = ks.callbacks.learned_mask_layers(model)
        self.masks.append([layer.kernel_mask for layer in layers])
        self.kernels.append([to_numpy(layer.kernel) for layer in layers])
        self.stray.append(sum(int(np.count_nonzero(k[~m])) for k, m in zip(self.kernels[-1], self.masks[-1])))


def test_pattern_masks_keep_n_of_every_m_inputs():
    mask = sparse_mask((3, 8, 5), 0.5, seed=0, pattern=(2, 4))  # Conv1D kernel, runs of 4 channels
    runs = mask.reshape(3, 2, 4, 5).sum(axis=2)
    assert (runs == 2).all()
    blocked = sparse_mask((16, 6), 0.75, seed=0, block=(2, 2), pattern=(4, 8))
    assert (blocked.reshape(2, 8, 6).sum(axis=1) == 2).all()  # min(4, round(0.25 * 8)) = 2
    assert (blocked[0::2] == blocked[1::2]).all() and (blocked[:, 0::2] == blocked[:, 1::2]).all()
    # pinned: the masks of a saved model are rebuilt from its seed
    assert hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()[:12] == _PINNED_PATTERN_MASK


_PINNED_PATTERN_MASK = "376d575501ea"


def test_set_mask_checks_and_zeros_the_kernel():
    model = _model()
    layer = model.get_layer("nm")
    before = (layer.kernel_mask.copy(), to_numpy(layer.kernel).copy())
    bad = np.zeros((8, 8), bool)
    bad[:3, 0] = True  # 3 of the first run of 4: breaks 2:4
    for mask, match in [(bad, "more than 2 of some run of 4"), (np.ones((8, 4), bool), "kernel's shape"),
                        (np.full((8, 8), 2), "booleans")]:
        with pytest.raises(ValueError, match=match):
            layer.set_mask(mask)
    np.testing.assert_array_equal(layer.kernel_mask, before[0])  # nothing changed
    np.testing.assert_array_equal(to_numpy(layer.kernel), before[1])
    new = np.zeros((8, 8), bool)
    new[::4] = True
    layer.set_mask(new)
    np.testing.assert_array_equal(layer.kernel_mask, new)
    np.testing.assert_array_equal(to_numpy(layer.kernel), np.where(new, before[1], 0))
    with pytest.raises(ValueError, match="mask='fixed'"):
        ks.layers.SparseDense(4, 0.5, seed=0).set_mask(np.ones((2, 4), bool))


def test_magnitude_pruning_density_equals_the_schedule_at_every_step():
    """Updates at steps 0, 3, 6, 9 and the end step 10: the plain layer keeps
    round((1 - s(t)) * 128) weights (its largest), the 2:4 layer
    min(2, round((1 - s(t)) * 4)) in every run of 4; unchanged in between."""
    x, y = _data()
    callback = MagnitudePruning(0.8, begin_step=0, end_step=10, frequency=3)
    probe = Probe()
    model = _model()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[callback, probe])
    expected_plain, expected_runs = [], []
    for step in range(1, 17):
        last_update = max(t for t in (0, 3, 6, 9, 10) if t <= step)
        s = 0.8 + (0.0 - 0.8) * (1 - last_update / 10) ** 3
        assert math.isclose(callback.sparsity_at(last_update), s)
        expected_plain.append(round((1 - s) * 128))
        expected_runs.append(min(2, round((1 - s) * 4)))
    assert [int(m[0].sum()) for m in probe.masks] == expected_plain
    assert expected_plain[-1] == 26 and expected_runs[2] == 2 and expected_runs[-1] == 1
    for masks, runs in zip(probe.masks, expected_runs):
        assert (masks[1].reshape(2, 4, 8).sum(axis=1) == runs).all()
    assert probe.stray == [0] * 16
    # the kept weights are the largest of the kernel at the update (step 10)
    kernel, mask = probe.kernels[9][0], probe.masks[9][0]
    assert np.abs(kernel[mask]).min() >= np.abs(kernel[~mask]).max() or not kernel[~mask].any()


def test_global_magnitude_pruning_counts_the_model():
    x, y = _data()
    model = _model(pattern_layer=False)
    second = ks.layers.SparseDense(8, 0.0, seed=3, mask="learned", name="second")
    model = keras.Model(model.input, keras.layers.Dense(3)(second(model.get_layer("plain").output)))
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=True)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[MagnitudePruning(0.75, 0, 2, 1, global_=True)])
    masks = [layer.kernel_mask for layer in ks.callbacks.learned_mask_layers(model)]
    assert sum(int(m.sum()) for m in masks) == round(0.25 * (128 + 64))
    kernels = [to_numpy(layer.kernel) for layer in ks.callbacks.learned_mask_layers(model)]
    kept = np.concatenate([np.abs(k[m]) for k, m in zip(kernels, masks)])
    assert kept.min() > 0


OPTIMIZERS = {
    "sgd-momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01),
    "lion": lambda: keras.optimizers.Lion(0.01),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_zeros_outside_the_mask_after_every_step(name):
    """SET changes both masks every 2 steps; after every step of 5 optimizers
    (Lion moves every weight it updates by the learning rate) the kernels
    are exactly 0 outside the current mask."""
    x, y = _data()
    probe = Probe()
    model = _model(OPTIMIZERS[name](), sparsity=0.5, run_eagerly=False)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[SET(2, 0.5, seed=0), probe])
    assert probe.stray == [0] * 8
    assert not np.array_equal(probe.masks[0][0], probe.masks[-1][0])
    # the weights grown at step 6 were trained by step 7
    assert all(np.count_nonzero(k) > 0.9 * m.sum() for k, m in zip(probe.kernels[6], probe.masks[6]))


@pytest.mark.parametrize("kind", ["rigl", "set"])
def test_drop_and_grow_keeps_every_count_and_grows_zeros(kind):
    """At every update (steps 2 and 4): the mask changes, every unit (and
    every 2:4 run) keeps its count, and every grown weight is 0; the weights
    kept through the update keep their values."""
    x, y = _data()
    probe = Probe()
    callback = (RigL(1, 0.5, end_step=3, data=(x, y), batch_size=32) if kind == "rigl"
                else SET(1, 0.5, end_step=3, seed=1))
    model = _model(sparsity=0.5)
    initial = [layer.kernel_mask for layer in ks.callbacks.learned_mask_layers(model)]
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[callback, probe])
    changed = [False, False]
    masks = [initial] + probe.masks
    for step in (1, 2):  # probe index step - 1 holds the state right after the update
        fraction = callback.drop_fraction_at(step)
        for i in range(2):
            before, after = masks[step - 1][i], masks[step][i]
            kernel = probe.kernels[step - 1][i]
            changed[i] |= bool((after != before).any())
            assert (after.sum(axis=0) == initial[i].sum(axis=0)).all()
            # exactly d = round(f * kept) weights per row were grown (RigL may
            # grow a weight it just dropped), each at 0; the other kept ones are not 0
            if i == 0:
                assert ((after & (kernel == 0)).sum(axis=0) == round(fraction * 8)).all()
            else:
                assert (after.reshape(2, 4, 8).sum(axis=1) == 2).all()
                assert ((after & (kernel == 0)).reshape(2, 4, 8).sum(axis=1) == round(fraction * 2)).all()
            assert not kernel[after & ~before].any()
    assert changed == [True, True]
    np.testing.assert_array_equal(probe.masks[2][0], probe.masks[3][0])  # no update from end_step on
    if kind == "rigl":
        assert math.isclose(callback.drop_fraction_at(2), 0.25 * (1 + math.cos(2 * math.pi / 3)))


def test_rigl_grows_where_the_dense_gradient_is_largest():
    """drop_and_grow by hand on one unit: drops the 2 smallest of 4 kept
    weights, grows the 2 largest scores outside the survivors (a just-dropped
    weight may come back, at 0)."""
    kernel = np.array([[0.5], [-0.1], [0.0], [0.3], [0.05], [0.0]], np.float32)
    mask = np.array([[1], [1], [0], [1], [1], [0]], bool)
    scores = np.array([[9.0, 0.0, 5.0, 9.0, 4.0, 1.0]])
    new_mask, new_kernel = pruning.drop_and_grow(kernel, mask, 0.5, scores)
    np.testing.assert_array_equal(new_mask[:, 0], [1, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(new_kernel[:, 0], np.float32([0.5, 0, 0, 0.3, 0, 0]))


def test_dense_gradient_is_the_backend_autodiff_and_leaves_state_alone():
    x, y = _data(16)
    model = _model()
    layer = model.get_layer("plain")
    kwinners = [l for l in model.layers if isinstance(l, ks.KWinners)][0]
    state = [to_numpy(v).copy() for v in model.non_trainable_variables]
    (grad,) = pruning.dense_gradients(model, [layer.kernel], x, y)
    for v, old in zip(model.non_trainable_variables, state):
        np.testing.assert_array_equal(to_numpy(v), old)
    assert int(to_numpy(kwinners.learning_iterations)) == 0
    # against a central difference of the loss (a model without k-winners,
    # whose winners could switch under the step)
    model = keras.Sequential([keras.Input((16,)), ks.layers.SparseDense(8, 0.5, seed=0, mask="learned",
                                                                        activation="tanh"), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    layer = model.layers[0]
    (grad,) = pruning.dense_gradients(model, [layer.kernel], x, y)
    assert np.count_nonzero(grad[~layer.kernel_mask]) > 0.9 * (~layer.kernel_mask).sum()  # dense
    kernel = to_numpy(layer.kernel)
    for i, j in [np.unravel_index(np.argmax(np.abs(np.where(m, grad, 0))), grad.shape)
                 for m in (layer.kernel_mask, ~layer.kernel_mask)]:
        values = []
        for delta in (1e-3, -1e-3):
            bumped = kernel.copy()
            bumped[i, j] += delta
            layer.kernel.assign(bumped)
            values.append(float(to_numpy(model.loss(y, model(x, training=True)))))
        assert abs((values[0] - values[1]) / 2e-3 - grad[i, j]) < 0.02 * abs(grad[i, j])


def test_masks_are_the_same_on_every_backend():
    """From the same weights (set from NumPy) and a zero learning rate, the
    masks magnitude pruning, SET and RigL choose are pinned: the same on
    TensorFlow, JAX and PyTorch."""
    x, y = _data(32)
    digests = {}
    for name, callback in [("magnitude", MagnitudePruning(0.7, 0, 2, 1)), ("set", SET(2, 0.4, seed=3)),
                           ("rigl", RigL(2, 0.4, end_step=4, data=(x, y)))]:
        model = _model(keras.optimizers.SGD(0.0), sparsity=0.0 if name == "magnitude" else 0.5)
        rng = np.random.default_rng(5)
        masks = {id(layer.kernel): layer.kernel_mask for layer in ks.callbacks.learned_mask_layers(model)}
        for variable in model.trainable_weights:
            value = rng.normal(size=tuple(variable.shape)).astype(np.float32)
            variable.assign(np.where(masks[id(variable)], value, 0) if id(variable) in masks else value)
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
        masks = np.concatenate([l.kernel_mask.ravel() for l in ks.callbacks.learned_mask_layers(model)])
        digests[name] = hashlib.sha256(np.packbits(masks).tobytes()).hexdigest()[:12]
    assert digests == _PINNED_BACKEND_MASKS


_PINNED_BACKEND_MASKS = {"magnitude": "ab20c4f17419", "set": "2e2bd3591354", "rigl": "adc1a21340e7"}


@pytest.mark.parametrize("kind", ["magnitude", "rigl"])
def test_resume_mid_schedule_is_bit_identical(kind, tmp_path):
    """Killed at step 6 of 8, between updates at steps 4 and 7 (magnitude
    pruning) or 3 and 6 (RigL), and resumed by
    `BackupAndRestore`: weights, masks and optimizer state equal an
    uninterrupted run's."""
    x, y = _data(32)

    def run(directory, crash=None):
        keras.utils.set_random_seed(0)
        model = _model(sparsity=0.0 if kind == "magnitude" else 0.5)
        callback = (MagnitudePruning(0.8, 1, 7, 3) if kind == "magnitude"
                    else RigL(3, 0.5, end_step=8, data=(x, y), batch_size=8))
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                  callbacks=[callback, keras.callbacks.BackupAndRestore(str(directory))] + ([crash] if crash else []))
        return model

    uninterrupted = run(tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path / "b", crash=crash_at(1, 1))
    resumed = run(tmp_path / "b")
    for a, b in zip(uninterrupted.weights + uninterrupted.optimizer.variables,
                    resumed.weights + resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)
    if kind == "magnitude":
        assert int(resumed.get_layer("plain").kernel_mask.sum()) == round(0.2 * 128)


def test_bad_input_is_refused_and_changes_nothing(tmp_path):
    for make, match in [
        (lambda: MagnitudePruning(1.0, 0, 10), r"`final_sparsity` must be in \[0, 1\)"),
        (lambda: MagnitudePruning(-0.1, 0, 10), "final_sparsity"),
        (lambda: MagnitudePruning(0.5, 10, 10), r"`end_step` must be an integer >= 11"),
        (lambda: MagnitudePruning(0.5, 0, 10, initial_sparsity=0.6), "initial_sparsity"),
        (lambda: RigL(0, end_step=5, data=_data()), "update_every"),
        (lambda: RigL(2, 1.5, end_step=5, data=_data()), "drop_fraction"),
        (lambda: RigL(2, end_step=5, data=(np.zeros(3), np.zeros(4))), "`data`"),
        (lambda: RigL(2, end_step=5, data=(np.full((3, 16), np.nan), np.zeros(3))), "`data` x must be finite"),
        (lambda: SET(2, 0.3, seed=-1), "seed"),
        (lambda: ks.layers.SparseDense(4, 1.0, mask="learned"), r"`sparsity` must be in \[0.0, 1\)|sparsity"),
        (lambda: ks.layers.SparseDense(4, 0.0), "sparsity"),  # a fixed mask must drop something
        (lambda: ks.layers.SparseDense(4, 0.5, mask="dynamic"), "`mask` must be one of"),
        (lambda: ks.layers.SparseDense(4, 0.3, pattern=(2, 4)), r"at least 1 - n / m = 0.5"),
        (lambda: ks.layers.SparseDense(4, 0.5, pattern=(4, 4)), r"pattern\[1\]"),
        (lambda: ks.layers.SparseDense(4, 0.5, pattern=(2, 4), block=(1, 4)), "multiples of 4"),
    ]:
        with pytest.raises(ValueError, match=match):
            make()
    with pytest.raises(ValueError, match=r"pattern=\(2, 4\) tiles the input channels .* 30"):
        ks.layers.SparseDense(4, 0.5, pattern=(2, 4), mask="learned").build((None, 30))
    # a callback on a model with no learned-mask layer: refused before any step
    model = keras.Sequential([keras.Input((16,)), ks.layers.SparseDense(3, 0.5, seed=0)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [to_numpy(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match="mask='learned'.*the model has none"):
        model.fit(*_data(), epochs=1, verbose=0, callbacks=[MagnitudePruning(0.5, 0, 4)])
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(to_numpy(w), old)
    assert int(to_numpy(model.optimizer.iterations)) == 0
    # a learned-mask file into a fixed-mask layer, and back
    learned = keras.Sequential([keras.Input((16,)), ks.layers.SparseDense(3, 0.5, seed=0, mask="learned")])
    # a diverged kernel (NaN inside the mask): refused before any mask changes
    diverged = keras.models.clone_model(learned)
    diverged.set_weights(learned.get_weights())
    weights = diverged.get_weights()
    i, j = np.argwhere(weights[2])[0]
    weights[0][i, j] = np.nan
    diverged.set_weights(weights)
    diverged.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"MagnitudePruning at step 0: the kernels of layers \['sparse_dense.*'\] "
                                         "hold NaN or inf"):
        diverged.fit(*_data(), epochs=1, verbose=0, callbacks=[MagnitudePruning(0.5, 0, 4)])
    np.testing.assert_array_equal(diverged.layers[0].kernel_mask, weights[2])
    assert int(to_numpy(diverged.optimizer.iterations)) == 0
    learned.save_weights(tmp_path / "learned.weights.h5")
    model.save_weights(tmp_path / "fixed.weights.h5")
    with pytest.raises(ValueError, match="has mask='fixed', but the weights were saved by a layer with mask='learned'"):
        model.load_weights(tmp_path / "learned.weights.h5")
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(to_numpy(w), old)
    with pytest.raises(ValueError, match="has mask='learned', but the weights were saved by a layer with mask='fixed'"):
        learned.load_weights(tmp_path / "fixed.weights.h5")
    # a stored mask that breaks the layer's pattern, or a kernel outside its mask
    layer = learned.layers[0]
    weights = layer.get_weights()
    weights[0][~weights[2]] = 1.0
    with pytest.raises(ValueError, match="outside its learned mask"):
        layer.set_weights(weights)


def test_sparsify_keeps_the_weights():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(16, activation="relu", name="hidden"),
                              keras.layers.Dense(3, name="out")])
    x = np.random.default_rng(0).normal(size=(5, 6, 6, 2)).astype(np.float32)
    copy = ks.sparsify(model, 0.0, seed=0)
    assert [type(l).__name__ for l in copy.layers] == ["SparseConv2D", "Flatten", "SparseDense", "SparseDense"]
    np.testing.assert_array_equal(to_numpy(copy(x)), to_numpy(model(x)))
    pruned = ks.sparsify(model, 0.75, layers=["hidden"], seed=0)
    assert [type(l).__name__ for l in pruned.layers] == ["Conv2D", "Flatten", "SparseDense", "Dense"]
    kernel, mask = to_numpy(model.get_layer("hidden").kernel), pruned.get_layer("hidden").kernel_mask
    assert mask.sum() == 0.25 * kernel.size and np.abs(kernel[mask]).min() >= np.abs(kernel[~mask]).max()
    np.testing.assert_array_equal(to_numpy(pruned.get_layer("hidden").kernel), np.where(mask, kernel, 0))
    fixed = ks.sparsify(model, 0.5, mask="fixed", layers=["conv"], seed=7)
    np.testing.assert_array_equal(fixed.get_layer("conv").kernel_mask, sparse_mask((3, 3, 2, 4), 0.5, 7))
    erk = ks.sparsify(model, 0.8, distribution="erk", seed=0)
    shapes = [(3, 3, 2, 4), (64, 16), (16, 3)]
    kept = sum(l.kernel_mask.sum() for l in erk.layers if hasattr(l, "kernel_mask"))
    assert abs(kept - 0.2 * sum(math.prod(s) for s in shapes)) <= 3
    for bad, match in [(dict(sparsity=1.0), "sparsity"), (dict(sparsity=0.5, layers=["nope"]), "nope"),
                       (dict(sparsity=0.5, distribution="random"), "distribution"),
                       (dict(sparsity=0.0, mask="fixed"), "sparsity")]:
        with pytest.raises(ValueError, match=match):
            ks.sparsify(model, **bad)


def test_erk_densities_by_hand():
    """density = eps * sum(shape) / prod(shape), eps solving the budget; a
    layer that would exceed 1 is made dense and eps solved again."""
    shapes = [(100, 100), (10, 4)]
    densities = pruning.erk_densities(shapes, 0.9)
    assert densities[1] == 1.0  # 14/40 per eps would exceed 1
    eps = (0.1 * 10040 - 40) / (200 / 10000 * 10000)
    assert math.isclose(densities[0], eps * 200 / 10000)
    assert math.isclose(sum(d * math.prod(s) for d, s in zip(densities, shapes)), 0.1 * 10040)


def test_summary_counts_the_current_mask():
    """Right after RigL grows weights (still 0), `ks.summary` counts them."""
    model = _model(sparsity=0.5, pattern_layer=False)
    layer = model.get_layer("plain")
    mask = layer.kernel_mask.copy()
    kernel = to_numpy(layer.kernel)
    layer.kernel.assign(np.where(np.arange(8) < 4, kernel, 0))  # units 4..7: kept weights at 0
    row = next(r for r in ks.sparsity_summary(model)["layers"] if r["name"] == "plain")
    assert row["nonzero_weights"] == int(mask.sum())  # the mask (the zero bias counts 0)
    assert row["multiplies_sparse_weights"] == int(mask.sum())


@pytest.mark.tensorflow_only
def test_pruned_model_exports_block_sparse_and_smaller(tmp_path):
    """A Dense model, sparsified in 1x4 blocks and magnitude-pruned to 90%,
    exports to a TFLite file that keeps the blocks sparse (no DENSIFY), is
    smaller than the dense original's and answers as Keras."""
    from keras_sparse.export import has_block_sparse_weights, run_tflite, tflite_op_names, to_tflite

    keras.utils.set_random_seed(0)
    dense = keras.Sequential([keras.Input((256,)), keras.layers.Dense(128, name="hidden")])
    pruned = ks.sparsify(dense, 0.0, layers=["hidden"], block=(1, 4), seed=0)
    layer = pruned.get_layer("hidden")
    layer.set_mask(pruning.magnitude_mask(to_numpy(layer.kernel), layer.kernel_mask, 0.9, layer.block))
    assert has_block_sparse_weights(pruned)
    assert layer.kernel_mask.sum() == 4 * round(0.1 * 256 * 128 / 4)
    x = np.random.default_rng(0).normal(size=(8, 256)).astype(np.float32)
    sizes = {}
    for name, model in (("dense", dense), ("pruned", pruned)):
        path = to_tflite(model, tmp_path / f"{name}.tflite")
        sizes[name] = os.path.getsize(path)
        np.testing.assert_allclose(run_tflite(path, x), to_numpy(model(x)), rtol=0, atol=1e-5)
        assert "DENSIFY" not in tflite_op_names(path)
    assert sizes["pruned"] < 0.3 * sizes["dense"], sizes


def test_study_variants_build_the_networks_they_name():
    """`examples/learned_sparsity.py`: each variant's hidden layer holds the
    mask kind and density its name says, and `sparse_cnn2_relu` is Sparse
    CNN-2 with a ReLU of the same name for each k-winners layer."""
    study = load_example("learned_sparsity.py")
    expected = {  # (hidden layer class, mask, block, density)
        "dense_cnn2/dense": (keras.layers.Dense, None, None, 1.0),
        "dense_cnn2/rigl_90": (ks.layers.SparseDense, "learned", None, 0.1),
        "sparse_cnn2/fixed_70": (ks.layers.SparseDense, "fixed", None, 0.3),
        "sparse_cnn2/fixed_95": (ks.layers.SparseDense, "fixed", None, 0.05),
        "sparse_cnn2/magnitude_90": (ks.layers.SparseDense, "learned", None, 1.0),
        "sparse_cnn2/magnitude_95_block1x4": (ks.layers.SparseDense, "learned", (1, 4), 1.0),
        "sparse_cnn2/set_95": (ks.layers.SparseDense, "learned", None, 0.05),
        "sparse_cnn2_relu/rigl_70": (ks.layers.SparseDense, "learned", None, 0.3),
    }
    sparse = study.build("sparse_cnn2", None, seed=0)
    for name, (kind, mask, block, density) in expected.items():
        network, hidden, _ = study.VARIANTS[name]
        model = study.build(network, hidden, seed=0)
        layer = model.get_layer("hidden")
        assert type(layer) is kind, name
        if mask is not None:
            assert (layer.mask, layer.block) == (mask, block), name
        kernel = to_numpy(layer.kernel)
        assert np.count_nonzero(kernel) / kernel.size == pytest.approx(density, abs=0.002), name
    relu = study.build("sparse_cnn2_relu", None, seed=0)
    assert not ks.kwinners.kwinners_layers(relu)
    replaced = [layer.name for layer in ks.kwinners.kwinners_layers(sparse)]
    assert [type(relu.get_layer(name)) for name in replaced] == [keras.layers.ReLU] * 3
    assert [layer.name for layer in relu.layers] == [layer.name for layer in sparse.layers]
    assert study.VARIANTS["sparse_cnn2_relu/fixed_70"][1] is None  # the paper's fixed mask, ReLU


def test_study_on_fsdd_adapts_the_task_network_and_schedules_over_its_steps(tmp_path, monkeypatch):
    """`--task fsdd`: `keras_sparse.experiment.run` trains the task's network at
    its protocol; the study's `adapt` makes the hidden layer (1600 -> 1000,
    60% sparse in Sparse CNN-2) what the variant names and schedules the
    callback over the run's steps (epochs x batches of the network's size)."""
    from keras_sparse import experiment, tasks

    study = load_example("learned_sparsity.py")
    fsdd_variants = study.TASK_VARIANTS["fsdd"]
    assert "sparse_cnn2/fixed_60" in fsdd_variants and "sparse_cnn2/fixed_70" not in fsdd_variants
    with pytest.raises(SystemExit):  # an MNIST variant for FSDD
        study.parse_args(["--task", "fsdd", "--variants", "sparse_cnn2/rigl_70"])
    seen = []

    def run(task, network, seed, data, out, hyper_parameters, adapt, **kwargs):
        model, cbs, _ = adapt(tasks.get(task).build(network))
        seen.append((network, hyper_parameters, model, cbs))
        return dict(test_accuracy=0.5, noise_score=7, train_seconds=1.0)

    monkeypatch.setattr(experiment, "run", run)
    data = experiment.Data(np.zeros((40, 32, 32, 1), "float32"), np.arange(40) % 10, None, np.arange(300) % 10, [])
    args = study.parse_args(["--task", "fsdd", "--epochs", "2", "--out", str(tmp_path)])
    results = [study.train_task(name, 0, data, args)
               for name in ("sparse_cnn2/rigl_60", "dense_cnn2/magnitude_90_block1x4", "sparse_cnn2_relu/fixed_60")]
    assert [r["steps"] for r in results] == [2 * 3, 2 * 1, 2 * 3]  # batches of 16, 64, 16
    assert [r["hidden_density"] for r in results] == [pytest.approx(0.4), 1.0, pytest.approx(0.4)]
    assert [(network, hp["epochs"]) for network, hp, _, _ in seen] == [
        ("sparse_cnn2", 2), ("dense_cnn2", 2), ("sparse_cnn2", 2)]
    rigl, pruning_cb = seen[0][3][0], seen[1][3][0]
    assert isinstance(rigl, RigL) and rigl.end_step == 4  # 0.75 of 6 steps
    assert isinstance(pruning_cb, MagnitudePruning) and pruning_cb.final_sparsity == 0.9
    assert seen[0][2].get_layer("hidden").mask == "learned" and seen[2][3] == []
    assert ks.kwinners.kwinners_layers(seen[0][2]) and not ks.kwinners.kwinners_layers(seen[2][2])
    # the first seed's block-pruned Dense CNN-2, which benchmarks/bench_pruned.py times, is saved as trained
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["pruned_block.keras"]
    saved = keras.models.load_model(tmp_path / "pruned_block.keras").get_layer("hidden")
    assert saved.block == (1, 4)
    np.testing.assert_array_equal(saved.kernel_mask, seen[1][2].get_layer("hidden").kernel_mask)


def test_study_on_mnist_full_runs_the_papers_protocol(tmp_path, monkeypatch):
    """`--full`: MNIST through `keras_sparse.experiment.run` (the shipped
    models' runner), Sparse CNN-2's first epoch at batch 4 counted in the
    schedules' steps; the reduced protocol's own flags are refused there."""
    from keras_sparse import experiment, tasks

    study = load_example("learned_sparsity.py")
    for flag in ("--noise-samples", "--first-epoch-batch"):
        with pytest.raises(SystemExit):
            study.parse_args(["--full", flag, "8"])
    seen = []

    def run(task, network, seed, data, out, hyper_parameters, adapt, **kwargs):
        model, cbs, _ = adapt(tasks.get(task).build(network))
        seen.append((task, hyper_parameters, cbs))
        return dict(test_accuracy=0.5, noise_score=7, train_seconds=1.0)

    monkeypatch.setattr(experiment, "run", run)
    data = experiment.Data(np.zeros((40, 28, 28, 1), "float32"), np.arange(40) % 10, None, np.arange(30) % 10, [])
    args = study.parse_args(["--full", "--epochs", "2", "--out", str(tmp_path)])
    results = [study.train_task(name, 0, data, args) for name in ("sparse_cnn2/rigl_70", "dense_cnn2/magnitude_90")]
    assert [(r["steps"], r["first_epoch_batch"], r["noise_samples"]) for r in results] == [
        (10 + 1, 4, 30), (1 + 1, 64, 30)]  # 40 inputs: batches of 4 then 64; of 64
    assert [(task.name, hp["epochs"]) for task, hp, _ in seen] == [("mnist", 2), ("mnist", 2)]
    assert isinstance(seen[0][2][0], RigL) and seen[0][2][0].end_step == 8  # 0.75 of 11 steps
    assert isinstance(seen[1][2][0], MagnitudePruning) and seen[1][2][0].end_step == 1


def test_study_script_runs_and_writes_its_results(tmp_path):
    study = load_example("learned_sparsity.py")
    study.main(["--data-dir", str(mnist_dir()), "--epochs", "1", "--train-samples", "128", "--noise-samples", "20",
                "--first-epoch-batch", "64", "--variants", "dense_cnn2/set_90", "sparse_cnn2_relu/magnitude_70",
                "--out", str(tmp_path)])
    runs = json.load(open(tmp_path / "runs.json"))
    assert [(r["variant"], r["seed"], r["steps"]) for r in runs] == [
        ("dense_cnn2/set_90", 0, 2), ("sparse_cnn2_relu/magnitude_70", 0, 2)]
    # 2 steps: magnitude pruning's schedule (steps 0.1 T to 0.6 T) is over, at 70%
    assert [r["hidden_density"] for r in runs] == [pytest.approx(0.1), pytest.approx(0.3)]
    assert all(0 <= r["noise_score"] <= 11 * 20 and r["noise_samples"] == 20 for r in runs)
    assert set(json.load(open(tmp_path / "summary.json"))) == {r["variant"] for r in runs}
