"""keras_sparse.tasks: the registry, and each task's noise protocol bit-identical
to the formulas of keras_sparse.noise on real data."""

import numpy as np
import pytest

from keras_sparse import noise, tasks
from tests.conftest import speech_commands_dir


def _mnist_reference(images01, p, seed_sequence):
    """docs/mnist.md's protocol written out: `int(784 p)` distinct pixels (the
    smallest of `u ~ U(0, 1)^784`) set to 0.1307 + 2 * 0.3081."""
    x = images01.reshape(len(images01), -1).copy()
    m = int(784 * p)
    if m:
        u = np.random.default_rng(seed_sequence).random(x.shape)
        np.put_along_axis(x, np.argpartition(u, m - 1, axis=1)[:, :m], np.float32(0.1307 + 2 * 0.3081), axis=1)
    return x.reshape(images01.shape)


def _audio_reference(waveforms, a, seed_sequence):
    """docs/speech.md's protocol written out: `(1 - a) x + a u`, `u ~ U(-1, 1)` per sample."""
    if a == 0:
        return waveforms.copy()
    u = np.random.default_rng(seed_sequence).uniform(-1.0, 1.0, size=waveforms.shape).astype(np.float32)
    return np.float32(1 - a) * waveforms + np.float32(a) * u


def _speech_commands_clips(n=8):
    from keras_sparse import audio, wav

    paths = sorted(speech_commands_dir().glob("yes/*.wav"))[:n]
    return np.stack([audio.fix_length(wav.read_wav(p)[0]) for p in paths]).astype(np.float32)


def test_registry():
    assert tasks.names() == ("mnist", "fsdd", "gsc-v0.01")
    assert tasks.get("mnist") is tasks.MNIST and tasks.get(tasks.FSDD) is tasks.FSDD
    assert tasks.from_model_name("fsdd_sparse_cnn2") is tasks.FSDD
    assert tasks.from_model_name("gsc-v0.01_dense_cnn2") is tasks.SPEECH_COMMANDS
    assert tasks.from_model_name("mnist_sparse_cnn2_ensemble3_int8") is tasks.MNIST
    with pytest.raises(ValueError, match=r"`name` must be one of \['fsdd', 'gsc-v0.01', 'mnist'\]. "
                                         r"Received: name='cifar'"):
        tasks.get("cifar")
    with pytest.raises(ValueError, match="`model_name`.*Received: model_name='cifar_cnn'"):
        tasks.from_model_name("cifar_cnn")
    with pytest.raises(ValueError, match="`model_name`"):
        tasks.from_model_name(None)
    with pytest.raises(ValueError, match="`network` must be one of .* Received: network='cnn9'"):
        tasks.MNIST.hyper_parameters("cnn9")
    with pytest.raises(ValueError, match="`overrides`.*'lr_schedule'"):
        tasks.MNIST.hyper_parameters("sparse_cnn2", lr_schedule=1)
    with pytest.raises(ValueError, match="momentum"):
        tasks.FSDD.hyper_parameters("sparse_cnn2", momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        tasks.MNIST.build("sparse_cnn2", weight_decay=0.01)
    with pytest.raises(ValueError, match="train_samples"):
        tasks.MNIST.load(train_samples=0)
    with pytest.raises(ValueError, match="subsample"):
        tasks.Task(**{**{f.name: getattr(tasks.MNIST, f.name) for f in tasks.Task.__dataclass_fields__.values()},
                      "subsample": "last"})


def test_hyper_parameters_are_the_scripts():
    assert tasks.MNIST.hyper_parameters("sparse_cnn2") == dict(
        lr=0.02, lr_decay=0.8, momentum=0.0, batch_size=64, first_epoch_batch=4, epochs=10, weight_decay=0.0)
    assert tasks.MNIST.hyper_parameters("dense_cnn2", epochs=1, momentum=None)["momentum"] == 0.9
    assert tasks.FSDD.hyper_parameters("dense_cnn2") == dict(
        lr=0.01, lr_decay=0.8, momentum=0.9, batch_size=64, first_epoch_batch=None, epochs=20, weight_decay=0.01)
    assert tasks.FSDD.network("super_sparse_cnn2") is tasks.SPEECH_COMMANDS.network("super_sparse_cnn2")


def test_mnist_corrupt_is_the_protocol_on_real_images(mnist):
    from keras_sparse import datasets

    x01 = datasets.to_unit_interval(mnist["x_test"][:200])
    for i, p in enumerate(tasks.MNIST.levels):
        seed = np.random.SeedSequence([3, i])
        got = tasks.MNIST.corrupt(x01, p, seed)
        np.testing.assert_array_equal(got, noise.add_noise(x01, p, seed=np.random.SeedSequence([3, i])))
        np.testing.assert_array_equal(got, _mnist_reference(x01, p, np.random.SeedSequence([3, i])))
    new = list(tasks.MNIST.noisy_sets(x01, seed=3))
    old = list(noise.noisy_test_sets(x01, seed=3))
    assert [p for p, _ in new] == [p for p, _ in old] == list(noise.NOISE_LEVELS)
    for (_, a), (_, b), (i, p) in zip(new, old, enumerate(noise.NOISE_LEVELS)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, datasets.normalize(_mnist_reference(x01, p, noise._level_seed(3, i))))


@pytest.mark.parametrize("task", [tasks.FSDD, tasks.SPEECH_COMMANDS], ids=lambda t: t.name)
def test_audio_corrupt_is_the_protocol_on_real_clips(task, fsdd):
    clips = fsdd["test"][0][:12] if task is tasks.FSDD else _speech_commands_clips()
    for i, a in enumerate(task.levels):
        got = task.corrupt(clips, a, np.random.SeedSequence([1, i]))
        np.testing.assert_array_equal(got, noise.add_audio_noise(clips, a, seed=np.random.SeedSequence([1, i])))
        np.testing.assert_array_equal(got, _audio_reference(clips, a, np.random.SeedSequence([1, i])))
    new = list(task.noisy_sets(clips, seed=1, levels=(0.0, 0.3)))
    old = list(noise.noisy_audio_sets(clips, seed=1, levels=(0.0, 0.3)))
    for (_, a), (_, b) in zip(new, old):
        np.testing.assert_array_equal(a, b)


class _Loudness:
    """Class 1 when the mean absolute model input exceeds a threshold."""

    def __init__(self, threshold):
        self.threshold = threshold

    def predict(self, x, batch_size=None, verbose=0):
        loud = np.abs(np.asarray(x)).reshape(len(x), -1).mean(1) > self.threshold
        return np.stack([~loud, loud], 1).astype(np.float32)


def test_evaluate_noise_by_task_equals_the_former_functions(mnist, fsdd):
    from keras_sparse import datasets

    x01, y = datasets.to_unit_interval(mnist["x_test"][:100]), mnist["y_test"][:100] % 2
    expected = noise.evaluate_noise(_Loudness(0.8), x01, y, seed=2)
    assert noise.evaluate_noise(_Loudness(0.8), "mnist", x01, y, seed=2) == expected
    assert noise.evaluate_noise(_Loudness(0.8), images01=x01, labels=y, seed=2) == expected
    clips, labels = fsdd["test"][0][:40], fsdd["test"][1][:40] % 2
    expected = noise.evaluate_audio_noise(_Loudness(0.2), clips, labels, seed=2)
    assert noise.evaluate_noise(_Loudness(0.2), tasks.FSDD, clips, labels, seed=2) == expected
    assert 0 < expected["noise_score"] < 11 * 40
    with pytest.raises(ValueError, match="`inputs` and `labels` must be given together"):
        noise.evaluate_noise(_Loudness(0.2), "fsdd", clips)
    with pytest.raises(ValueError, match="`labels` must have one entry per input: 40 waveforms"):
        noise.evaluate_noise(_Loudness(0.2), "fsdd", clips, labels[:3])
    with pytest.raises(ValueError, match="`task` must be"):
        noise.evaluate_noise(_Loudness(0.2))


def test_load_subsamples_by_the_tasks_rule(mnist, fsdd):
    from tests.conftest import fsdd_dir, mnist_dir

    x, y = tasks.MNIST.load(mnist_dir(), test_samples=5)["test"]
    np.testing.assert_array_equal(y, mnist["y_test"][:5])
    assert x.dtype == np.float32 and x.max() <= 1
    x, y = tasks.FSDD.load(fsdd_dir(), train_samples=7)["train"]
    keep = np.sort(np.random.default_rng(0).choice(len(fsdd["train"][1]), 7, replace=False))
    np.testing.assert_array_equal(x, fsdd["train"][0][keep])
    assert tasks.FSDD.network_inputs(x[:2]).shape == (2, 32, 32, 1)


def test_experiment_refuses_bad_arguments(tmp_path):
    from keras_sparse import experiment

    with pytest.raises(ValueError, match="`noise_seed` must"):
        experiment.prepare("mnist", noise_seed=-1)
    with pytest.raises(ValueError, match="`name` must be one of"):
        experiment.prepare("cifar")
    with pytest.raises(ValueError, match="`data` must be a keras_sparse.experiment.Data"):
        experiment.run("mnist", "sparse_cnn2", 0, None, tmp_path)
    with pytest.raises(ValueError, match="`per_epoch_eval` must be True or False"):
        experiment.run("mnist", "sparse_cnn2", 0, None, tmp_path, per_epoch_eval=1)


def test_a_first_epoch_stopped_by_nan_ends_the_run(tmp_path):
    """`TerminateOnNaN` stops the first epoch's own `fit` (batch 4); the run
    ends there instead of a second `fit` that would reset `stop_training`
    and train on NaN weights."""
    from keras_sparse import experiment
    from tests.conftest import mnist_dir

    data = experiment.prepare("mnist", mnist_dir(), train_samples=256, test_samples=20)
    run = experiment.run("mnist", "dense_cnn2", 0, data, tmp_path, export=False, verbose=0,
                         hyper_parameters=dict(lr=1e12, epochs=3, first_epoch_batch=4))
    (record,) = run["epoch_records"]  # epoch 1 only
    assert run["epochs"] == 3 and run["epochs_trained"] == 1 and run["stopped_early"] is True
    assert record["epoch"] == 1 and record["noise_score"] == 0  # NaN outputs: every answer wrong
