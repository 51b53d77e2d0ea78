"""The controls of the paper's MNIST claims (`keras_sparse.models.controls`,
`examples/controls.py`): each is its network with exactly one change."""

import json

import keras
import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.models import controls
from tests.conftest import load_example


def _layers(model):
    return {layer.name: layer for layer in model.layers}


def _same_except(control, base, changed=(), differing_keys=()):
    """Every layer of `control` and `base` not named in `changed` has the same
    class and config, the config keys in `differing_keys` apart."""
    mine, theirs = _layers(control), _layers(base)
    assert set(mine) - set(changed) == set(theirs) - set(changed)
    for name in set(mine) - set(changed):
        config = {key: value for key, value in mine[name].get_config().items() if key not in differing_keys}
        expected = {key: value for key, value in theirs[name].get_config().items() if key not in differing_keys}
        assert type(mine[name]) is type(theirs[name]) and config == expected, name


KWINNERS = ("conv1_kwinners", "conv2_kwinners", "hidden_kwinners")


def _seeded(build, *args, **kwargs):
    keras.utils.set_random_seed(0)  # the same fixed-mask seed in every build
    return build(*args, **kwargs)


def test_each_control_is_its_network_with_one_change():
    def build(*args, **kwargs):
        return _seeded(controls.build_control, *args, **kwargs)

    dense, sparse = build("dense_cnn2"), build("sparse_cnn2")
    assert dense.get_config() == _seeded(ks.models.mnist_dense_cnn2).get_config()
    assert sparse.get_config() == _seeded(ks.models.mnist_sparse_cnn2).get_config()

    twin = build("dense_twin")  # Sparse CNN-2's layer sizes, no k-winners, dense hidden
    assert sum(np.prod(w.shape) for w in twin.trainable_weights) == \
        sum(np.prod(w.shape) for w in sparse.trainable_weights) == 776_606
    assert [layer.filters for layer in twin.layers if isinstance(layer, keras.layers.Conv2D)] == [32, 64]
    assert type(_layers(twin)["hidden"]) is keras.layers.Dense and _layers(twin)["hidden"].units == 700
    assert not ks.kwinners.kwinners_layers(twin)

    with_dropout = build("dense_cnn2_dropout")
    assert _layers(with_dropout)["hidden_dropout"].rate == 0.5
    _same_except(with_dropout, dense, ["hidden_dropout"])
    order = [layer.name for layer in with_dropout.layers]
    assert order.index("hidden_relu") + 1 == order.index("hidden_dropout") == order.index("logits") - 1

    l2 = build("dense_cnn2_l2")
    for name in ("conv1", "conv2", "hidden", "logits"):  # coupled weight decay: L2(wd / 2)
        layer = _layers(l2)[name]
        assert layer.kernel_regularizer.l2 == layer.bias_regularizer.l2 == pytest.approx(2.5e-4)
    assert controls.CONTROL_NETWORKS["dense_cnn2_l2"]["weight_decay"] == 5e-4
    assert build("dense_cnn2_l2", weight_decay=0.0).get_config() == dense.get_config() | {"name": l2.name}

    bn = build("dense_cnn2_batch_norm")
    _same_except(bn, dense, ["conv1_bn", "conv2_bn", "hidden_bn"])
    order = [layer.name for layer in bn.layers]
    assert order.index("conv1") < order.index("conv1_bn") < order.index("pool1")
    assert order.index("hidden") < order.index("hidden_bn") < order.index("hidden_relu")

    assert build("dense_cnn2_shift").get_config() == dense.get_config() | {"name": "mnist_dense_cnn2_shift"}
    assert controls.CONTROL_NETWORKS["dense_cnn2_shift"]["shift"] == 2

    drop_connect = build("sparse_cnn2_drop_connect")
    _same_except(drop_connect, sparse, ["hidden"])
    assert type(_layers(drop_connect)["hidden"]) is ks.drop_connect.DropConnectDense
    assert _layers(drop_connect)["hidden"].rate == 0.7

    no_boost = build("sparse_cnn2_no_boost")
    _same_except(no_boost, sparse, differing_keys=["boost_strength"])
    assert [layer.initial_boost_strength for layer in ks.kwinners.kwinners_layers(no_boost)] == [0.0] * 3

    wta = build("sparse_cnn2_wta_lifetime")
    _same_except(wta, sparse, [f"{name}_lifetime" for name in KWINNERS], differing_keys=["boost_strength"])
    for name in KWINNERS:  # each k-winners layer, then lifetime sparsity at its own k / n
        kw, lifetime = _layers(wta)[name], _layers(wta)[f"{name}_lifetime"]
        assert kw.initial_boost_strength == 0.0 and lifetime.percent_on == kw.percent_on
        assert lifetime.input is kw.output
    assert [_layers(wta)[name].percent_on for name in KWINNERS] == [400 / 4608, 300 / 1024, 100 / 700]

    straight = build("sparse_cnn2_straight_through")
    _same_except(straight, sparse, differing_keys=["gradient"])
    assert {layer.gradient for layer in ks.kwinners.kwinners_layers(straight)} == {"straight_through"}
    assert {layer.gradient for layer in ks.kwinners.kwinners_layers(sparse)} == {"winners"}


def test_control_arguments_are_checked():
    with pytest.raises(ValueError, match="network"):
        controls.build_control("dense_cnn3")
    with pytest.raises(ValueError, match="hidden_block"):
        controls.build_control("sparse_cnn2", hidden_block=(1, 4))
    with pytest.raises(ValueError, match="weight_decay"):
        controls.build_control("dense_cnn2", weight_decay=-1.0)
    with pytest.raises(ValueError, match="dropout"):
        ks.models._cnn.cnn("n", (28, 28, 1), [4], None, 8, None, None, "keras", 0.9, False, dropout=1.0)
    with pytest.raises(ValueError, match="hidden_drop_connect"):
        ks.models._cnn.cnn("n", (28, 28, 1), [4], None, 8, None, 0.7, "keras", 0.9, False,
                           hidden_drop_connect=0.7)
    with pytest.raises(ValueError, match="kwinners_gradient.*'identity'"):
        ks.models._cnn.cnn("n", (28, 28, 1), [4], [10], 8, 2, None, "keras", 0.9, False,
                           kwinners_gradient="identity")
    for option in (dict(boost_strength=0.0), dict(lifetime=True), dict(kwinners_gradient="straight_through")):
        with pytest.raises(ValueError, match=f"{next(iter(option))}.*has none"):  # no k-winners layer to change
            ks.models._cnn.cnn("n", (28, 28, 1), [4], None, 8, None, None, "keras", 0.9, False, **option)


def test_controls_script_trains_each_control_with_its_networks_protocol(tmp_path, monkeypatch):
    """`examples/controls.py`: the Sparse CNN-2 controls take `--first-epoch-batch`,
    the dense ones keep batch 64; the L2 control trains with its weight decay,
    the shift control on shifted images; a run writes the task's JSON."""
    from keras_sparse import experiment

    script = load_example("controls.py")
    task = script.TASK
    assert task.hyper_parameters("sparse_cnn2_no_boost")["first_epoch_batch"] == 4
    assert task.hyper_parameters("dense_cnn2_l2")["weight_decay"] == 5e-4
    assert task.hyper_parameters("dense_twin") == task.hyper_parameters("dense_cnn2")
    seen = []

    def record(task, network, seed, data, out, **kw):
        seen.append((network, kw["hyper_parameters"], kw["fit_data"](8, 0)))
        return {"network": network}

    args = script.parse_args(["--epochs", "2", "--first-epoch-batch", "16", "--out", str(tmp_path)])
    rng = np.random.default_rng(0)
    data = experiment.Data(rng.normal(size=(16, 28, 28, 1)).astype("float32"), np.arange(16) % 10, None,
                           np.arange(4), [])
    monkeypatch.setattr(experiment, "run", record)
    for network in ("sparse_cnn2_wta_lifetime", "dense_cnn2_shift"):
        script.train_one(network, 0, data, args)
    assert seen[0][1] == dict(epochs=2, first_epoch_batch=16)
    assert seen[0][2]["batch_size"] == 8 and seen[0][2]["x"] is data.x_train  # not shifted
    assert seen[1][1] == dict(epochs=2, first_epoch_batch=None)
    assert "batch_size" not in seen[1][2]  # a tf.data pipeline of shifted images
    with pytest.raises(SystemExit):
        script.parse_args(["--hidden-block", "1", "4"])

    from keras_sparse import shipping

    shipped = []
    monkeypatch.setattr(shipping, "ship", lambda *args, **kw: shipped.append((args, kw)))
    script.main(["--ship", "runs/x", "--networks", "dense_twin", "--seeds", "2", "--ship-to", str(tmp_path)])
    assert shipped == [(("runs/x", task, ["dense_twin"], [2], str(tmp_path)), dict(noise_seed=0, data_dir=None))]


def test_controls_script_runs_end_to_end(tmp_path):
    script = load_example("controls.py")
    from tests.conftest import mnist_dir

    runs = script.main(["--data-dir", str(mnist_dir()), "--networks", "sparse_cnn2_straight_through",
                        "--epochs", "1", "--train-samples", "64", "--test-samples", "32",
                        "--first-epoch-batch", "32", "--no-export", "--verbose", "0", "--out", str(tmp_path)])
    (run,) = runs
    assert run["network"] == "sparse_cnn2_straight_through" and run["from_network"] == "sparse_cnn2"
    assert run["first_epoch_batch"] == 32 and run["train_samples"] == 64 and run["test_samples"] == 32
    assert set(run["selected"]) == {"last", "paper"}
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["summary"][0]["title"] == "Sparse CNN-2, straight-through gradient"
    loaded = keras.models.load_model(tmp_path / "sparse_cnn2_straight_through_seed0" / "model.keras")
    assert {layer.gradient for layer in ks.kwinners.kwinners_layers(loaded)} == {"straight_through"}
