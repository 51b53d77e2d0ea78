"""Bad input and awkward use: a clear error or a documented, tested behaviour,
never a silent wrong answer or lost state, one test per case (summarized in
docs/semantics.md, "Bad input").

Elsewhere: saved and set state (tests/test_hardening_state.py), `.tflite`
files and `TFLiteModel` (tests/test_hardening_tflite.py), argument errors
that used to crash (tests/test_hardening_messages.py), WAV files and ragged
clips (tests/test_audio.py), noise images (tests/test_noise.py), an empty training batch
(tests/test_kwinners.py), `to_tflite` arguments and `load_weights` into
another mask (tests/test_sparse_weights.py), resuming a crashed `fit` for every
layer (tests/test_layers.py), random shapes/dtypes/values against the NumPy
reference (tests/test_properties.py).
"""

import json
import zipfile

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse.callbacks import UpdateBoostStrength
from tests import numpy_reference as ref


@pytest.mark.parametrize("layer, shape", [(ks.KWinners(0.2), (0, 30)), (ks.KWinners2D(0.15), (0, 6, 6, 4))])
@pytest.mark.parametrize("jit", [False, True])
def test_empty_batch_in_inference(layer, shape, jit):
    """Eager TensorFlow refuses the min of an empty tensor; the layer returns
    an empty output instead, in eager mode, in a graph and under XLA."""
    empty = np.zeros(shape, np.float32)
    model = keras.Sequential([keras.Input(shape[1:]), layer])
    assert layer(empty, training=False).shape == shape
    model.compile(jit_compile=jit)
    assert model.predict_on_batch(empty).shape == shape
    np.testing.assert_array_equal(layer.duty_cycles.numpy(), 0.0)


def test_integer_inputs_choose_the_winners_of_the_same_floats():
    """The layers compute integer (and boolean) inputs in their float compute
    dtype, as `Dense` does; the ops refuse them rather than cast the boost
    factors to integers (which made every factor 0 or 1)."""
    duty = np.linspace(0, 0.7, 8).astype(np.float32)
    x = np.int32([[5, 5, 5, 5, 4, 4, 4, 4], [-1, 2, 0, 7, 7, 1, 3, 3]])
    for training in (False, True):
        layer = ks.KWinners(0.25, k_inference_factor=1.5)
        layer.build((None, 8))
        layer.duty_cycles.assign(duty)
        y = layer(x, training=training)
        assert y.dtype == "float32"
        k = layer.k if training else layer.k_inference
        np.testing.assert_array_equal(y, ref.kwinners(x.astype(np.float32), duty, k, 1.0))
        if not training:  # by hand: k_inference = 3, the three 5s with the lowest duty cycles
            np.testing.assert_array_equal(y[0], [5, 5, 5, 0, 0, 0, 0, 0])
    for op, shape in ((ks.ops.kwinners, (2, 8)), (ks.ops.kwinners2d, (2, 2, 2, 2))):
        with pytest.raises(ValueError, match="floating-point activations .* int32"):
            op(np.ones(shape, np.int32), np.zeros(shape[-1], np.float32), 1, 1.0)


@pytest.mark.parametrize("break_ties", [False, True])
def test_losing_infinities_output_zero_not_nan(break_ties):
    x = np.float32([[-np.inf, 1, 2, 3, np.inf, np.inf, np.inf]])
    duty = np.zeros(7, np.float32)
    # k = 2 among three +inf: without break_ties all three tie and win,
    # with it the first two; -inf always loses. `x * mask` gave NaN for both.
    want = [[0, 0, 0, 0, np.inf, np.inf, np.inf]] if not break_ties else [[0, 0, 0, 0, np.inf, np.inf, 0]]
    np.testing.assert_array_equal(ks.ops.kwinners(x, duty, 2, 1.0, break_ties=break_ties), want)
    # a winning -inf passes (it is among the k largest)
    y = ks.ops.kwinners(np.float32([[-np.inf, -np.inf, 1]]), np.zeros(3, np.float32), 2, 1.0, break_ties=True)
    np.testing.assert_array_equal(y, [[-np.inf, 0, 1]])


def test_boost_strength_is_bounded_so_boosting_never_passes_everything():
    """`boost_strength=1e6` made every boost factor underflow to 0, so all units
    tied at 0 and won. Above `MAX_BOOST_STRENGTH` (50) it is an error; at 50
    the factors stay normal floats and the layer still keeps k units."""
    assert ks.kwinners.MAX_BOOST_STRENGTH == 50.0
    for bad in (50.5, 1e6, float("inf")):
        with pytest.raises(ValueError, match=r"`boost_strength` must be in \[0, 50.0\]"):
            ks.KWinners(0.1, boost_strength=bad)
    layer = ks.KWinners(0.25, boost_strength=50.0, k_inference_factor=1.0)
    layer.build((None, 8))
    layer.duty_cycles.assign(np.float32([1, 1, 1, 1, 1, 1, 0.5, 0.5]))
    x = np.float32([[8, 7, 6, 5, 4, 3, 1e-3, 2e-3]])
    # boosted: 8e-22..3e-22 for the busy units, 1.4e-14 and 2.8e-14 for the others
    np.testing.assert_array_equal(layer(x, training=False), np.float32([[0, 0, 0, 0, 0, 0, 1e-3, 2e-3]]))


@pytest.mark.parametrize("make_layer, shape", [
    (lambda: ks.KWinners(0.01), (None, 50)),  # round(0.5) = 0 (half to even)
    (lambda: ks.KWinners2D(0.05, local=True), (None, 4, 4, 8)),  # round(0.4) = 0
])
def test_percent_on_that_rounds_to_no_winner_is_an_error_at_build(make_layer, shape):
    layer = make_layer()
    with pytest.raises(ValueError, match=r"keeps k = round\(.*\) = 0 of its .* Use percent_on > "):
        layer.build(shape)


def test_kwinners_and_kwinners2d_share_the_default_percent_on():
    """Both default to percent_on=0.1 (the base class never shows in errors)."""
    for cls in (ks.KWinners, ks.KWinners2D):
        assert cls().percent_on == 0.1
        with pytest.raises(ValueError, match=r"`percent_on` must be in \(0, 1\)"):
            cls(percent_on=1.5)


TAMPERED = [
    (lambda: ks.KWinners(0.1), "percent_on", float("nan"), r"Invalid KWinners config: `percent_on`"),
    (lambda: ks.KWinners2D(0.1), "boost_strength", -1.0, r"Invalid KWinners2D config: `boost_strength`"),
    (lambda: ks.layers.SparseDense(4, 0.5, seed=3), "seed", -7, r"Invalid SparseDense config: `seed`"),
    (lambda: ks.layers.SparseConv2D(4, 3, 0.5, seed=3), "sparsity", 1.5, r"Invalid SparseConv2D config: `sparsity`"),
]


@pytest.mark.parametrize("make_layer, key, value, message", TAMPERED)
def test_tampered_config_raises_the_library_value_error(make_layer, key, value, message):
    config = keras.saving.serialize_keras_object(make_layer())
    config["config"][key] = value
    with pytest.raises(ValueError, match=message):
        keras.saving.deserialize_keras_object(config)


def test_tampered_keras_file_raises_the_library_value_error(tmp_path):
    model = keras.Sequential([keras.Input((10,)), ks.layers.SparseDense(8, 0.5, seed=1, name="sd"),
                              ks.KWinners(0.25, name="kw")])
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    for layer in config["config"]["layers"]:
        if layer["config"]["name"] == "kw":
            layer["config"]["percent_on"] = float("nan")
    files["config.json"] = json.dumps(config).encode()
    tampered = tmp_path / "tampered.keras"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"`percent_on` must be in \(0, 1\). Received: percent_on=nan"):
        keras.models.load_model(tampered)


def _boosted_net():
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(40),
        ks.KWinners(0.1, boost_strength=1.5, boost_strength_factor=0.5, duty_cycle_period=20, name="kw"),
        keras.layers.Dense(3),
    ])


def test_boost_strength_is_set_from_the_epoch_number():
    """During epoch e the boost is initial * factor ** e, after it factor ** (e + 1);
    a second `fit` continues the schedule through `initial_epoch`."""
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.get_layer("kw").boost_strength.numpy()))

    model = _boosted_net()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.ones((8, 12), np.float32), np.zeros(8, int)
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Record(), UpdateBoostStrength()])
    assert seen == [1.5, 1.5, 0.75, 0.75, 0.375, 0.375]
    assert model.get_layer("kw").boost_strength.numpy() == 0.1875
    seen.clear()
    model.fit(x, y, batch_size=8, epochs=5, initial_epoch=3, verbose=0, callbacks=[UpdateBoostStrength(), Record()])
    assert seen == [0.1875, 0.09375]
    assert model.get_layer("kw").boost_strength.numpy() == np.float32(1.5 * 0.5**5)
    with pytest.raises(ValueError, match="`epoch` must be an integer >= 0"):
        model.get_layer("kw").set_boost_strength_for_epoch(-1)


@pytest.mark.parametrize("boost_first", [True, False], ids=["boost-then-checkpoint", "checkpoint-then-boost"])
def test_resume_from_a_model_checkpoint_equals_an_uninterrupted_run(boost_first, tmp_path):
    """`ModelCheckpoint` listed before `UpdateBoostStrength` used to save the
    boost before its decay, so a run resumed from it drifted (0.375 against
    0.1875 here); now the epoch number sets it, in either order."""
    x = np.random.default_rng(0).normal(size=(32, 12)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 32)

    def compiled():
        keras.utils.set_random_seed(0)
        model = _boosted_net()
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    def callbacks():
        checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch}.keras"))
        return [UpdateBoostStrength(), checkpoint] if boost_first else [checkpoint, UpdateBoostStrength()]

    uninterrupted = compiled()
    uninterrupted.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks())
    resumed = keras.models.load_model(tmp_path / "epoch2.keras")
    resumed.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, shuffle=False, verbose=0, callbacks=callbacks())
    for a, b in zip(uninterrupted.weights + uninterrupted.optimizer.variables,
                    resumed.weights + resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert resumed.get_layer("kw").boost_strength.numpy() == np.float32(1.5 * 0.5**4)


def test_checkpoint_listed_first_saves_the_live_boost_strength(tmp_path):
    """A `ModelCheckpoint` (or any `on_epoch_end`) listed before
    `UpdateBoostStrength` saved the boost before its decay (1.5 after epoch 1
    while the live model went on with 0.75): the decay now lands after the
    epoch's last batch, so every callback sees the live value."""
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(self.model.get_layer("kw").boost_strength.numpy()))

    model = _boosted_net()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch}.keras"))
    x, y = np.ones((8, 12), np.float32), np.zeros(8, int)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[Record(), checkpoint, UpdateBoostStrength()])
    assert seen == [0.75, 0.375]
    for epoch, boost in ((1, 0.75), (2, 0.375)):
        saved = keras.models.load_model(tmp_path / f"epoch{epoch}.keras")
        assert saved.get_layer("kw").boost_strength.numpy() == boost


class _FixedScores:
    """A stand-in model whose `predict` returns the given scores."""

    def __init__(self, scores):
        self.scores = scores

    def predict(self, inputs, batch_size=None, verbose=0):
        return self.scores


def test_score_levels_counts_nan_scores_as_wrong():
    """NumPy's argmax of a NaN row is the NaN's index: row 0 scored as class 0
    (correct for label 0), so the accuracy was the share of label 0."""
    scores = np.float32([[np.nan, np.nan, np.nan], [0, 1, 0], [np.nan, 0, 5], [1, np.nan, 0]])
    record = ks.noise.score_levels(_FixedScores(scores), [(0.0, np.zeros((4, 2)))], [0, 1, 2, 0])
    assert record["correct"] == [1] and record["accuracy"] == [0.25]


def test_score_levels_refuses_a_model_with_several_outputs():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, [keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)])
    with pytest.raises(ValueError, match=r"one output of class scores; it returned 2 outputs"):
        ks.noise.score_levels(model, [(0.0, np.zeros((5, 4), np.float32))], [0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"scores of shape \(N, classes\) with classes >= 2. Received scores "
                                         r"of shape \(5, 1\)"):
        ks.noise.score_levels(_FixedScores(np.zeros((5, 1))), [(0.0, np.zeros((5, 4)))], [0] * 5)


@pytest.mark.parametrize("labels, message", [
    ([0, 1.5, 2], r"integer class indices >= 0. Received: \[1.5\] at positions \[1\]"),
    ([0, -1, 2], r"Received: \[-1\] at positions \[1\]"),
    ([0, np.nan, 2], r"Received: \[nan\] at positions \[1\]"),
    ([0, 1e30, 2], r"Received: \[1e\+30\] at positions \[1\]"),  # int64 would wrap it negative
    (["0", "1", "2"], r"integer class indices. Received labels of dtype <U1"),
    ([0, 1, 3], r"`labels` must be < the model's 3 classes. Received a label 3"),
])
def test_score_levels_refuses_labels_that_are_not_class_indices(labels, message):
    """Fractional, string and out-of-range labels scored 0.0 silently."""
    scores = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        ks.noise.score_levels(_FixedScores(scores), [(0.0, np.zeros((3, 2)))], labels)
    record = ks.noise.score_levels(_FixedScores(scores), [(0.0, np.zeros((3, 2)))], np.float64([0, 1, 2]))
    assert record["correct"] == [3]  # integer-valued floats are class indices
    with pytest.raises(ValueError, match=message):
        ks.noise.evaluate_noise(_FixedScores(scores), np.zeros((3, 28, 28)), labels, levels=(0.0,))
