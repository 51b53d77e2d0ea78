"""The shipped models (MNIST and FSDD, and the int8 MNIST files) reproduce their
JSON numbers on the real test sets."""

import json

import numpy as np
import pytest

from tests.conftest import REPO, fsdd_dir, load_example, mnist_dir

SAVED = REPO / "saved_models"
INT8_NAMES = sorted(p.stem for p in SAVED.glob("*_int8*.json"))
NAMES = sorted(p.stem for p in SAVED.glob("*.json") if p.stem not in INT8_NAMES)


def test_paper_models_are_shipped():
    assert {"mnist_dense_cnn2", "mnist_sparse_cnn2", "fsdd_dense_cnn2", "fsdd_sparse_cnn2"} <= set(NAMES)


# Shipped before KWinners1d/2d/3d became KWinners1D/2D/3D: their configs
# name the former classes.
WRITTEN_BEFORE_THE_RENAMES = {"mnist_dense_cnn2", "mnist_sparse_cnn2", "mnist_sparse_cnn2_ensemble3",
                              "fsdd_dense_cnn2", "fsdd_sparse_cnn2"}


@pytest.mark.parametrize("path", sorted(SAVED.glob("*.keras")), ids=lambda path: path.stem)
def test_every_shipped_keras_file_loads_and_predicts_like_its_tflite(path, tmp_path):
    """Files written under the former names (`keras_sparse>KWinners2d`) load as
    `KWinners2D`, and later ones use the current names; every file predicts
    what its shipped `.tflite` predicts, and saves again under the current
    names."""
    import zipfile

    import keras

    import keras_sparse as ks
    from keras_sparse.export import run_tflite

    config = zipfile.ZipFile(path).read("config.json").decode()
    model = keras.models.load_model(path)
    kwinners = ks.kwinners.kwinners_layers(model)
    old_names = path.stem in WRITTEN_BEFORE_THE_RENAMES
    assert ("keras_sparse>KWinners2d" in config) == (old_names and bool(kwinners))
    assert ("keras_sparse>KWinners2D" in config) == (not old_names and bool(kwinners))
    assert {type(layer).__name__ for layer in kwinners} <= {"KWinners", "KWinners2D"}
    rng = np.random.default_rng(0)
    if path.stem.startswith("mnist"):
        x = rng.normal(size=(8, 28, 28, 1)).astype(np.float32)
    else:
        x = rng.uniform(-0.3, 0.3, size=(8, 16000)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(run_tflite(path.with_suffix(".tflite"), x), expected, atol=1e-4)
    model.save(tmp_path / "again.keras")
    again = zipfile.ZipFile(tmp_path / "again.keras").read("config.json").decode()
    assert "KWinners2d" not in again
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "again.keras").predict(x, verbose=0), expected)


def _test_inputs(task, mnist, fsdd):
    from keras_sparse import datasets, shipping

    if task == "mnist":
        return datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:64]))
    return fsdd["test"][0][:64]


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_reproduces_json(name, mnist, fsdd):
    import keras

    from keras_sparse import shipping, tasks
    from keras_sparse.export import run_tflite

    task = tasks.from_model_name(name).name
    info = json.loads((SAVED / f"{name}.json").read_text())
    model = keras.models.load_model(SAVED / f"{name}.keras")
    assert model.input_shape == (None, *tasks.get(task).input_shape) and model.output_shape == (None, 10)
    assert info["input"] == tasks.get(task).input_description
    data_dir = mnist_dir() if task == "mnist" else fsdd_dir()
    accuracy, noisy = shipping.evaluate_saved(model, task, data_dir, info["noise_seed"])
    assert accuracy == info["test_accuracy"]
    assert noisy["noise_score"] == info["noise_score"]
    assert noisy["correct"] == info["noise_correct"]

    x = _test_inputs(task, mnist, fsdd)
    got = run_tflite(SAVED / f"{name}.tflite", x)
    expected = model.predict(x, verbose=0)
    # FSDD logits reach ~12: float32 rounding of the raw-audio path allows 1e-6 of that.
    tolerance = {"mnist": dict(atol=1e-4), "fsdd": dict(atol=1e-5, rtol=1e-6)}[task]
    np.testing.assert_allclose(got, expected, **tolerance)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_tflite_is_what_this_release_exports(name, tmp_path):
    """A user gets this release's kernels: every shipped float `.tflite` holds
    the ops the exporter writes today for its `.keras` (`ship_models.py
    --reexport` rewrites a stale one); where its JSON records the file against
    Keras on the whole clean test set (`tflite_vs_keras`), that count holds
    and is at least 99.9% of it."""
    import keras

    from keras_sparse import shipping, tasks
    from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite

    info = json.loads((SAVED / f"{name}.json").read_text())
    model = keras.models.load_model(SAVED / f"{name}.keras")
    to_tflite(model, tmp_path / "today.tflite", sparse_encoding=info.get("tflite_sparse_encoding", False))
    shipped_ops = tflite_op_names(SAVED / f"{name}.tflite")
    assert shipped_ops == tflite_op_names(tmp_path / "today.tflite")
    if "tflite_vs_keras" not in info:
        return
    record = info["tflite_vs_keras"]
    task = tasks.from_model_name(name)
    inputs, _ = shipping.test_inputs(task, mnist_dir() if task.name == "mnist" else fsdd_dir())
    equal = TFLiteModel(SAVED / f"{name}.tflite").predict(inputs).argmax(1) == model.predict(
        inputs, batch_size=512, verbose=0).argmax(1)
    assert record == {"samples": len(inputs), "argmax_equal": int(equal.sum()), "tflite_ops": shipped_ops}
    assert record["argmax_equal"] >= 0.999 * record["samples"]


def test_int8_models_are_shipped():
    ship_int8 = load_example("ship_int8.py")
    assert {f"{name}_int8" for name in ship_int8.MNIST_MODELS + ship_int8.FSDD_MODELS} <= set(INT8_NAMES)
    # Every shipped k-winners network also has its LiteRT form (TOPK_V2, faster there).
    sparse = [name for name in ship_int8.MNIST_MODELS + ship_int8.FSDD_MODELS if "sparse" in name]
    assert sparse and {f"{name}_int8_litert" for name in sparse} <= set(INT8_NAMES)


def _int8_test_inputs(name, n, mnist, fsdd):
    """The first `n` test inputs as the int8 network takes them, and their labels:
    normalized MNIST images, or FSDD clips through the float model's front end."""
    import keras

    import keras_sparse  # noqa: F401
    from keras_sparse import datasets, shipping

    if name.startswith("mnist"):
        return datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:n])), mnist["y_test"][:n]
    model = keras.models.load_model(SAVED / f"{name.removesuffix('_litert').removesuffix('_int8')}.keras")
    _, features = shipping.int8_network(model)
    waveforms, labels, _ = fsdd["test"]
    return features(waveforms[:n]), labels[:n]


@pytest.mark.parametrize("name", INT8_NAMES)
def test_int8_model_reproduces_json(name, mnist, fsdd):
    """`examples/ship_int8.py`'s files: LiteRT's correct answers on the JSON's
    test slice; for TFLite Micro files (`_int8`), its ops only and TFLite
    Micro against LiteRT on 100 real test inputs as the JSON says (the full
    comparison's code bound holds); LiteRT files (`_int8_litert`) hold
    builtin ops only."""
    import keras_sparse  # noqa: F401
    from keras_sparse.export import MICRO_OPS, TFLiteModel, tflite_op_names

    from keras_sparse import shipping, tasks

    info = json.loads((SAVED / f"{name}.json").read_text())
    path = SAVED / f"{name}.tflite"

    ship_int8 = load_example("ship_int8.py")
    task = tasks.from_model_name(name).name
    source = name.removesuffix("_litert").removesuffix("_int8")
    assert name == ship_int8.int8_file_name(source, info["target"])
    assert info["quantize"] == "int8" and info["source"] == f"{source}.keras"
    front_end = ship_int8.FEATURES_INPUT if task == "fsdd" else ""
    assert info["input"].startswith(f"{front_end}{tasks.get(task).input_description}, then int8: ")
    assert path.stat().st_size == info["bytes"]
    ops = tflite_op_names(path)
    assert ops == info["tflite_ops"] and not [op for op in ops if op.startswith("CUSTOM")]
    if info["target"] == "micro":
        assert set(ops) <= MICRO_OPS and "TOPK_V2" not in ops

    lite = TFLiteModel(path)
    assert lite.input_dtype == np.int8 and lite.output_dtype == np.int8
    assert list(lite.input_quantization) == info["input_quantization"]
    assert list(lite.output_quantization) == info["output_quantization"]
    x, y = _int8_test_inputs(name, info["test_slice"]["samples"], mnist, fsdd)
    assert len(y) == info["test_slice"]["samples"]
    assert int(np.sum(lite.predict(x).argmax(1) == y)) == info["test_slice"]["litert_correct"]
    if info["target"] != "micro":
        return
    micro = shipping.micro_vs_litert(path, x[:ship_int8.MICRO_CHECK_SAMPLES])
    # The runtimes round requantized conv/FC outputs differently (docs/devices.md):
    # in FSDD Sparse CNN-2 one clip of the 100 changes its answer.
    assert micro == info["micro_vs_litert_first_100"] and micro["argmax_agreement"] >= 0.99
    assert micro["max_code_difference"] <= info["micro_vs_litert"]["max_code_difference"]


def test_ship_int8_refuses_bad_arguments():
    ship_int8 = load_example("ship_int8.py")
    with pytest.raises(ValueError, match="--calibration"):
        ship_int8.parse_args(["--calibration", "0"])
    with pytest.raises(ValueError, match="`names`: 'mnist_nothing'"):
        ship_int8.parse_args(["mnist_nothing"])
