"""examples/mnist_noise.py end to end on a tiny budget (real MNIST, 1 epoch)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, load_example, mnist_dir, trained_sparse_cnn1


def test_mnist_noise_example_end_to_end(tmp_path, mnist):
    out = tmp_path / "out"
    env = dict(os.environ, KERAS_SPARSE_MNIST=str(mnist_dir()), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, str(REPO / "examples" / "mnist_noise.py"),
           "--networks", "dense_cnn2", "sparse_cnn2", "--epochs", "1",
           "--train-samples", "300", "--test-samples", "500", "--out", str(out),
           "--verbose", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    assert [r["network"] for r in results["runs"]] == ["dense_cnn2", "sparse_cnn2"]
    for run in results["runs"]:
        assert run["train_samples"] == 300 and run["test_samples"] == 500
        assert 0 <= run["test_accuracy"] <= 1
        assert len(run["noise_accuracy"]) == 11
        assert run["noise_score"] == round(sum(a * 500 for a in run["noise_accuracy"]))
        assert 0 <= run["noise_score"] <= 11 * 500
    assert results["runs"][1]["first_epoch_batch"] == 4
    # One seed has no sd: JSON null (strict JSON has no NaN), no "±" in the measured columns.
    assert [row["last"]["accuracy_sd"] for row in results["summary"]] == [None, None]
    assert all("paper" not in run["selected"] for run in results["runs"])  # no --per-epoch-eval

    table = (out / "results.md").read_text().strip().splitlines()
    assert table[0].startswith("| network |") and len(table) == 4
    assert "Dense CNN-2" in table[2] and "Sparse CNN-2" in table[3]
    assert "99.31" in table[2] and "103,764" in table[3]  # paper columns
    assert table[2].count("±") == table[3].count("±") == 2  # paper's sd only
    assert table[2].count("| — |") == 2  # no paper's-selection columns without --per-epoch-eval

    png = (out / "noise_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    import keras

    import keras_sparse  # noqa: F401  (registers the layers for load_model)
    from keras_sparse.export import run_tflite
    from keras_sparse import datasets

    x = datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:16]))
    for name in ("dense_cnn2", "sparse_cnn2"):
        run_dir = out / f"{name}_seed0"
        assert (run_dir / "saved_model" / "saved_model.pb").exists()
        model = keras.models.load_model(run_dir / "model.keras")
        expected = model.predict(x, verbose=0)
        got = run_tflite(run_dir / "model.tflite", x)
        np.testing.assert_allclose(got, expected, atol=1e-4)
        np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_k_inference_example(tmp_path, mnist):
    """examples/k_inference.py: at the model's own factor its numbers equal
    evaluating the saved model directly; other factors change them."""
    import keras

    from keras_sparse import datasets, noise

    model, _ = trained_sparse_cnn1(mnist)
    path = tmp_path / "sparse_cnn1.keras"
    model.save(path)

    out = tmp_path / "kif.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, str(REPO / "examples" / "k_inference.py"), str(path),
           "--factors", "1.0", "1.5", "--data-dir", str(mnist_dir()),
           "--test-samples", "300", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert [r["k_inference_factor"] for r in results] == [1.0, 1.5]

    x01 = datasets.to_unit_interval(mnist["x_test"][:300])
    y = mnist["y_test"][:300]
    direct = noise.evaluate_noise(keras.models.load_model(path), x01, y, seed=0)
    assert results[1]["noise_score"] == direct["noise_score"]
    assert results[1]["noise_accuracy"] == direct["accuracy"]
    assert results[1]["test_accuracy"] == direct["accuracy"][0]  # level 0 is the clean set
    assert results[0]["noise_accuracy"] != direct["accuracy"]


def _shifted(image, dy, dx, fill):
    out = np.full_like(image, fill)
    src = image[max(0, -dy):28 - max(0, dy), max(0, -dx):28 - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def test_augment_shift_translates_by_whole_pixels(mnist):
    from keras_sparse import datasets

    x = datasets.normalize(datasets.to_unit_interval(mnist["x_train"][:32]))
    y = mnist["y_train"][:32]
    example = load_example("mnist_noise.py")
    assert example.training_data(x, y, 8, 0, 0) == dict(x=x, y=y, batch_size=8, shuffle=True)

    ds = example.training_data(x, y, 8, 2, 0)["x"]
    first = [(a.numpy(), b.numpy()) for a, b in ds]
    second = np.concatenate([a.numpy() for a, _ in ds])
    images = np.concatenate([a for a, _ in first])
    labels = np.concatenate([b for _, b in first])
    assert images.shape == (32, 28, 28, 1) and sorted(labels) == sorted(y)
    assert not np.array_equal(images, second)  # new shifts (and order) every epoch
    fill = np.float32((0 - datasets.MNIST_MEAN) / datasets.MNIST_STD)
    shifts = range(-2, 3)
    for image, label in zip(images, labels):
        matches = [
            (dy, dx) for i in np.flatnonzero(y == label) for dy in shifts for dx in shifts
            if np.allclose(image, _shifted(x[i], dy, dx, fill), atol=1e-6)
        ]
        assert matches, "every training image is a whole-pixel shift of an original"
    unshifted = sum(any(np.array_equal(image, original) for original in x) for image in images)
    assert unshifted < 8  # a shift of (0, 0) has probability 1/25 per image


def test_rezero_every_epoch_lets_masked_weights_train_until_epoch_end(mnist):
    """`--rezero every-epoch` (the public PyTorch example's protocol): within an
    epoch the masked weights move; the epoch-end callback zeroes them again."""
    import keras

    from keras_sparse import datasets, models

    example = load_example("mnist_noise.py")

    keras.utils.set_random_seed(0)
    model = models.mnist_sparse_cnn1()
    hidden = model.get_layer("hidden")
    callback, restore = example._rezero_at_epoch_end(model)
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = datasets.normalize(datasets.to_unit_interval(mnist["x_train"][:128]))
    model.fit(x, mnist["y_train"][:128], batch_size=32, epochs=1, verbose=0)  # no callback yet
    masked = ~hidden.kernel_mask
    kernel = keras.ops.convert_to_numpy(hidden.kernel)
    assert (kernel[masked] != 0).mean() > 0.5  # trained while unconstrained
    callback.on_epoch_end(0)
    kernel = keras.ops.convert_to_numpy(hidden.kernel)
    assert not kernel[masked].any() and (kernel[~masked] != 0).mean() > 0.999
    assert hidden.kernel.constraint is None
    restore()
    assert hidden.kernel.constraint is hidden.kernel_constraint


def test_ship_script_ensemble(tmp_path, mnist):
    """examples/ship_models.py with several seeds ships their ensemble,
    re-set to `--k-inference-factor`, with the JSON numbers of that model."""
    import keras

    from keras_sparse import callbacks, datasets, models
    from keras_sparse.export import run_tflite

    run_dir, members = tmp_path / "run", []
    for seed in (0, 1):
        member, _ = trained_sparse_cnn1(mnist, samples=128, seed=seed)
        (run_dir / f"sparse_cnn1_seed{seed}").mkdir(parents=True)
        member.save(run_dir / f"sparse_cnn1_seed{seed}" / "model.keras")
        (run_dir / f"sparse_cnn1_seed{seed}" / "run.json").write_text(json.dumps({"seed": seed}))
        members.append(models.with_k_inference_factor(member, 1.0))

    out = tmp_path / "shipped"
    load_example("ship_models.py").main([
        str(run_dir), "--networks", "sparse_cnn1", "--seeds", "0", "1", "--k-inference-factor", "1.0",
        "--name", "pair", "--out", str(out), "--data-dir", str(mnist_dir()), "--test-samples", "1000"])
    info = json.loads((out / "pair.json").read_text())
    assert info["k_inference_factor"] == 1.0
    assert [run["seed"] for run in info["training"]] == [0, 1]
    assert info["output"] == "10 probabilities, the mean softmax of 2 members"
    assert info["test_samples"] == 1000

    shipped = keras.models.load_model(out / "pair.keras")
    assert sorted(l.k_inference for l in callbacks.kwinners_layers(shipped)) == [50, 50, 400, 400]
    x = datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:1000]))
    expected = models.ensemble(members).predict(x, batch_size=512, verbose=0)
    assert info["test_accuracy"] == float(np.mean(expected.argmax(1) == mnist["y_test"][:1000]))
    assert info["noise_correct"][0] == round(info["test_accuracy"] * 1000)
    np.testing.assert_allclose(run_tflite(out / "pair.tflite", x[:32]), expected[:32], atol=1e-5)


def test_ship_script_reexport(tmp_path, mnist):
    """`ship_models.py --reexport NAME` rewrites the shipped `.tflite` from its
    `.keras` with today's exporter and adds to its JSON (nothing else
    changed) the argmax agreement on the whole test set; an unknown name, or
    a run folder with it, is refused."""
    import shutil

    import keras

    from keras_sparse import datasets
    from keras_sparse.export import run_tflite, tflite_op_names

    name = "mnist_sparse_cnn2_small_relu1"
    for suffix in (".keras", ".json"):
        shutil.copy(REPO / "saved_models" / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    (tmp_path / f"{name}.tflite").write_bytes(b"stale")
    before = json.loads((tmp_path / f"{name}.json").read_text())
    ship = load_example("ship_models.py")
    records = ship.main(["--reexport", name, "--out", str(tmp_path), "--data-dir", str(mnist_dir())])
    info = json.loads((tmp_path / f"{name}.json").read_text())
    assert info.pop("tflite_vs_keras") == records[name] and info == before
    x = datasets.normalize(datasets.to_unit_interval(mnist["x_test"]))
    model = keras.models.load_model(tmp_path / f"{name}.keras")
    lite = run_tflite(tmp_path / f"{name}.tflite", x)
    expected = model.predict(x, batch_size=512, verbose=0)
    np.testing.assert_allclose(lite[:64], expected[:64], atol=1e-4)
    assert records[name] == {"samples": 10000, "argmax_equal": int(np.sum(lite.argmax(1) == expected.argmax(1))),
                             "tflite_ops": tflite_op_names(tmp_path / f"{name}.tflite")}
    assert records[name]["argmax_equal"] >= 9990
    with pytest.raises(ValueError, match="`name` must be a shipped model"):
        ship.main(["--reexport", "mnist_nothing", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        ship.main([str(tmp_path), "--reexport", name, "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        ship.main(["--out", str(tmp_path)])


def test_torch_weight_export_layout():
    """export_keras_weights.py: the PyTorch-layout weights compute the same
    hidden pre-activations and conv outputs as the Keras layers."""
    import keras

    from keras_sparse import models

    module = load_example("torch_crosscheck/export_keras_weights.py")
    keras.utils.set_random_seed(3)
    model = models.mnist_sparse_cnn2()
    weights = module.torch_layout(model)
    assert weights["conv1.weight"].shape == (32, 1, 5, 5) and weights["fc1.weight"].shape == (700, 1024)
    assert weights["kw3.duty"].shape == (700,) and float(weights["kw1.boost_strength"]) == 1.5

    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 4, 4, 64)).astype("float32")  # conv2_kwinners output, (h, w, c)
    kernel, bias = model.get_layer("hidden").get_weights()[:2]
    keras_hidden = features.reshape(3, -1) @ kernel + bias
    torch_hidden = features.transpose(0, 3, 1, 2).reshape(3, -1) @ weights["fc1.weight"].T + weights["fc1.bias"]
    np.testing.assert_allclose(torch_hidden, keras_hidden, rtol=1e-5, atol=1e-5)

    image = rng.normal(size=(1, 28, 28, 1)).astype("float32")
    keras_conv = keras.ops.convert_to_numpy(model.get_layer("conv1")(image))[0, 0, 0]
    patch = image[0, :5, :5, 0]  # the output at (0, 0), one value per filter
    torch_conv = (weights["conv1.weight"][:, 0] * patch).sum((1, 2)) + weights["conv1.bias"]
    np.testing.assert_allclose(torch_conv, keras_conv, rtol=1e-5, atol=1e-5)
