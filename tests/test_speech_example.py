"""examples/speech_noise.py and its helpers end to end on a tiny budget (real FSDD clips, 2 epochs)."""

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, fsdd_dir, load_example, speech_commands_dir

FSDD = str(fsdd_dir())


def test_speech_noise_example_end_to_end(tmp_path, fsdd):
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # the paper's networks but its dropout row (default: all four; the dropout
    # network is Dense CNN-2's layers and training, tested in test_models)
    assert load_example("speech_noise.py").parse_args([]).networks == [
        "dense_cnn2", "sparse_cnn2", "super_sparse_cnn2", "dense_cnn2_dropout"]
    cmd = [sys.executable, str(REPO / "examples" / "speech_noise.py"), "--data-dir", FSDD,
           "--epochs", "2", "--train-samples", "48", "--test-samples", "24", "--out", str(out),
           "--verbose", "0", "--networks", "dense_cnn2", "sparse_cnn2", "super_sparse_cnn2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    names = ["dense_cnn2", "sparse_cnn2", "super_sparse_cnn2"]
    assert [r["network"] for r in results["runs"]] == names
    for run in results["runs"]:
        assert run["train_samples"] == 48 and run["test_samples"] == 24 and run["epochs"] == 2
        assert run["epochs_trained"] == 2 and run["stopped_early"] is False
        assert run["weight_decay"] == 0.01
        records = run["epoch_records"]
        assert [r["epoch"] for r in records] == [1, 2]
        for record in records:
            assert record["noise_score"] == sum(record["correct"]) and len(record["correct"]) == 11
        clean = [r["accuracy"][0] for r in records]
        paper = run["selected"]["paper"]
        assert paper["epoch"] == 1 + int(np.argmax(clean))  # the paper's rule
        assert paper["noise_score"] == records[paper["epoch"] - 1]["noise_score"]
        assert run["selected"]["last"]["noise_score"] == records[-1]["noise_score"] == run["noise_score"]
    assert [r["batch_size"] for r in results["runs"]] == [64, 16, 16]

    table = (out / "results.md").read_text().strip().splitlines()
    assert len(table) == 5 and "Super-Sparse CNN-2" in table[4]
    assert "96.65 ± 0.21" in table[3] and "11,233 ± 1,013" in table[3]  # the paper's Table 2
    assert "—" not in table[3]  # both selection rules filled
    png = (out / "noise_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    import keras

    import keras_sparse  # noqa: F401  (registers the layers for load_model)
    from keras_sparse.export import run_tflite, tflite_op_names

    clips = fsdd["test"][0][:16]
    for name in names:
        run_dir = out / f"{name}_seed0"
        assert (run_dir / "saved_model" / "saved_model.pb").exists()
        model = keras.models.load_model(run_dir / "model.keras")
        assert model.input_shape == (None, 16000) and model.output_shape == (None, 10)
        expected = model.predict(clips, verbose=0)
        got = run_tflite(run_dir / "model.tflite", clips)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
        assert not any(op.startswith("CUSTOM") for op in tflite_op_names(run_dir / "model.tflite"))

    # k_inference.py --task fsdd: at the model's own factor (1.5) its numbers are the
    # saved raw-audio model's; at 1.0 the k-winners keep fewer units and answer differently.
    from keras_sparse import noise

    kif_out = tmp_path / "kif.json"
    path = out / "sparse_cnn2_seed0" / "model.keras"
    cmd = [sys.executable, str(REPO / "examples" / "k_inference.py"), "--task", "fsdd", str(path),
           "--factors", "1.0", "1.5", "--data-dir", FSDD, "--test-samples", "60", "--out", str(kif_out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(kif_out.read_text())["results"]
    waveforms, labels, _ = fsdd["test"]
    direct = noise.evaluate_audio_noise(keras.models.load_model(path), waveforms[:60], labels[:60])
    assert [r["k_inference_factor"] for r in results] == [1.0, 1.5]
    assert results[1]["noise_accuracy"] == direct["accuracy"] and results[1]["test_samples"] == 60
    assert results[0]["noise_accuracy"] != direct["accuracy"]
    # --levels: other noise levels, the same evaluation
    low = load_example("k_inference.py").main([
        "--task", "fsdd", str(path), "--factors", "1.5", "--data-dir", FSDD, "--test-samples", "60",
        "--levels", "0.0", "0.02"])
    direct = noise.evaluate_audio_noise(keras.models.load_model(path), waveforms[:60], labels[:60],
                                        levels=(0.0, 0.02))
    assert low[0]["noise_levels"] == [0.0, 0.02] and low[0]["noise_accuracy"] == direct["accuracy"]


class _ScriptedRng:
    """Stands in for a numpy Generator: every coin says 'apply', fixed draws."""

    def __init__(self, uniform, shift):
        self.uniform_value, self.shift = uniform, shift

    def random(self):
        return 0.0

    def uniform(self, low, high):
        assert low <= self.uniform_value <= high
        return self.uniform_value

    def integers(self, low, high):
        return self.shift


def test_paper_augmentation_steps():
    example = load_example("speech_noise.py")
    clip = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)[None]
    out = example.augment_clips(clip, _ScriptedRng(0.8, 0))  # amplitude x0.8, then speed 0.8
    positions = np.arange(0, 16000, 0.8)[:16000]  # slower: 16,000 samples of 12,800 stretched
    np.testing.assert_allclose(out[0], np.interp(positions, np.arange(16000), clip[0] * 0.8), rtol=1e-6)
    fast = example.augment_clips(clip, _ScriptedRng(1.0, 0))[0]
    np.testing.assert_allclose(fast, clip[0], rtol=1e-6)  # rate 1, gain 1: unchanged
    assert out.dtype == np.float32 and np.abs(out).max() <= 1

    spectrogram = np.arange(32, dtype=np.float32)[None, None, :, None] - 40 + np.zeros((1, 32, 32, 1), np.float32)
    shifted = example.augment_spectrograms(spectrogram, _ScriptedRng(1.0, 3))  # stretch 1.0, shift +3
    np.testing.assert_array_equal(shifted[0, :, 3:], spectrogram[0, :, :-3])
    np.testing.assert_array_equal(shifted[0, :, :3], -80.0)
    stretched = example.augment_spectrograms(spectrogram, _ScriptedRng(1.2, 0))[0, 0, :, 0]
    expected = np.where(np.arange(32) * 1.2 <= 31, np.arange(32) * 1.2 - 40, -80)
    np.testing.assert_allclose(stretched, expected, rtol=1e-6)


def test_speech_noise_on_the_gsc_v001_layout(tmp_path):
    """`--data gsc-v0.01` reads the paper's folder layout: digit folders and split lists."""
    import shutil

    clips = sorted(speech_commands_dir().glob("yes/*.wav"))[:12]  # real 1-s clips, filed under digit words
    root = tmp_path / "gsc"
    for i, clip in enumerate(clips):
        (root / ("zero", "one", "two")[i % 3]).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / ("zero", "one", "two")[i % 3] / f"c{i}_nohash_0.wav")
    (root / "testing_list.txt").write_text("zero/c0_nohash_0.wav\none/c1_nohash_0.wav\ntwo/c2_nohash_0.wav\n")
    (root / "validation_list.txt").write_text("zero/c3_nohash_0.wav\n")
    runs = load_example("speech_noise.py").main([
        "--data", "gsc-v0.01", "--data-dir", str(root), "--networks", "sparse_cnn2",
        "--epochs", "1", "--no-export", "--verbose", "0", "--out", str(tmp_path / "out")])
    assert runs[0]["data"] == "gsc-v0.01"
    assert (runs[0]["train_samples"], runs[0]["test_samples"]) == (8, 3)
    assert (tmp_path / "out" / "sparse_cnn2_seed0" / "model.keras").exists()


def test_loudness_by_hand():
    clip = np.zeros((1, 16000), np.float32)
    clip[0, :1600] = 0.5  # 100 ms at 0.5, the rest digital silence
    stats = load_example("speech_loudness.py").loudness(np.concatenate([clip, clip]))
    assert stats["clips"] == 2 and stats["peak"] == 0.5
    np.testing.assert_allclose(stats["rms"], np.sqrt(0.25 / 10))
    assert stats["zero_fraction"] == 0.9 and stats["quietest_100ms_rms"] == 0.0
