"""keras_sparse.audio: log-mel features vs librosa on real clips, TFLite, loaders.

Real data: $KERAS_SPARSE_FSDD (FSDD root) and $KERAS_SPARSE_SPEECH_COMMANDS
(a folder of `<word>/<clip>.wav`), else ../shared/datasets/{fsdd,
speech_commands_sample} beside the repo. librosa is the reference, called as
the paper's code ran it (librosa 0.6: reflect padding).
"""

import os
import shutil
import struct
import wave

import keras
import librosa  # the reference implementation (test-only dependency)
import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse import audio, datasets, export, wav
from tests import conftest

MAX_DB_ERROR = 1e-3  # float32 features vs librosa in float64


@pytest.fixture(scope="module")
def fsdd_dir():
    return conftest.fsdd_dir()


@pytest.fixture(scope="module")
def speech_clips():
    """Up to 40 clips per folder (all 440 of the sample): `[path]`."""
    root = conftest.speech_commands_dir()
    if not root.is_dir():
        pytest.fail(f"real Speech Commands clips not found at {root}; set KERAS_SPARSE_SPEECH_COMMANDS")
    return [p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.glob("*.wav"))[:40]]


def librosa_features(waveforms, n_fft=2048, hop_length=512, n_mels=32):
    """The reference: librosa in float64, 0.6's reflect padding, `(N, n_mels, frames)`.
    (One batched melspectrogram call: the same numbers as a call per clip, 15x faster.)"""
    s = librosa.feature.melspectrogram(y=np.asarray(waveforms, np.float64), sr=16000, n_fft=n_fft,
                                       hop_length=hop_length, n_mels=n_mels, power=2.0, pad_mode="reflect")
    return np.stack([librosa.power_to_db(clip, ref=np.max, amin=1e-10, top_db=80) for clip in s])


def features(waveforms, **kwargs):
    return np.asarray(audio.log_mel_spectrogram(waveforms, **kwargs))


def write_wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, f"<i{width}" if width > 1 else "u1").tobytes())
    return path


# ------------------------------------------------------------------ features


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [(16000, 2048, 32, 0.0, None),
                                                          (16000, 512, 128, 300.0, 7600.0),
                                                          (8000, 400, 40, 0.0, None)])
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = audio.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float64)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_features_match_librosa_on_all_speech_commands_clips(speech_clips):
    x = np.stack([audio.fix_length(wav.read_wav(p, expected_rate=16000)[0]) for p in speech_clips])
    assert len(x) == 440 or "KERAS_SPARSE_SPEECH_COMMANDS" in os.environ
    ours = features(x)
    assert ours.shape == (len(x), 32, 32, 1) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours.max(axis=(1, 2, 3)), 0.0)
    error = np.abs(ours[..., 0] - librosa_features(x)).max()
    print(f"max |ours - librosa| on {len(x)} Speech Commands clips: {error:.2e} dB")
    assert error <= MAX_DB_ERROR


def test_features_match_librosa_on_fsdd_test_split(fsdd):
    x = fsdd["test"][0]  # 300 clips resampled to 16 kHz by our loader
    error = np.abs(features(x)[..., 0] - librosa_features(x)).max()
    print(f"max |ours - librosa| on {len(x)} FSDD clips: {error:.2e} dB")
    assert error <= MAX_DB_ERROR


def test_float64_features_and_other_settings_match_librosa(speech_clips):
    x = np.stack([audio.fix_length(wav.read_wav(p)[0]) for p in speech_clips[::40]])
    layer = audio.LogMelSpectrogram(dtype="float64")
    ours = keras.ops.convert_to_numpy(layer(x))
    assert ours.dtype == np.float64
    assert np.abs(ours[..., 0] - librosa_features(x)).max() < 1e-5
    settings = {"n_fft": 400, "hop_length": 160, "n_mels": 40}  # n_fft = 20 x 20, frames 101
    ours = features(x, **settings)
    assert ours.shape == (len(x), 40, 101, 1)
    assert np.abs(ours[..., 0] - librosa_features(x, **settings)).max() <= MAX_DB_ERROR


def test_silence_is_zero_db_everywhere():
    # S = 0 -> max(amin, S) = amin everywhere, and ref = amin too: 10 log10(amin / amin) = 0.
    silence = np.zeros((2, 16000), np.float32)
    np.testing.assert_array_equal(features(silence), 0.0)
    np.testing.assert_array_equal(librosa_features(silence), 0.0)


def test_pure_tone_peaks_in_the_band_centred_nearest_its_frequency():
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    ours = features(tone[None])[0, ..., 0]  # (32 mels, 32 frames)
    # Band centres: 33 equal steps on the Slaney scale up to mel(8000) = 15 + 27 ln(8) / ln(6.4).
    mel_max = 15 + 27 * np.log(8.0) / np.log(6.4)
    centres_mel = mel_max * np.arange(1, 33) / 33
    nearest = np.argmin(np.abs(centres_mel - 15.0))  # 1000 Hz is mel 15
    assert nearest == 10
    assert ours.max() == 0.0
    np.testing.assert_array_equal(ours.argmax(axis=0), nearest)  # loudest band of every frame
    np.testing.assert_allclose(ours, librosa_features(tone[None])[0], atol=MAX_DB_ERROR)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_sample_not_finite_makes_its_own_clip_nan_only(speech_clips, bad):
    clean = audio.fix_length(wav.read_wav(speech_clips[0])[0])
    broken = clean.copy()
    broken[8000] = bad
    out = features(np.stack([clean, broken]))
    assert np.isnan(out[1]).all()
    # The clean clip is untouched: finite, and its features those of the clip
    # alone up to float32 rounding (bit-identical on AVX-512 CPUs; on AVX2 ones
    # the matmul kernels round a batch of 2 and of 1 differently, by 1 ulp).
    assert np.isfinite(out[0]).all()
    np.testing.assert_allclose(out[0], features(clean[None])[0], rtol=1e-6, atol=0)


def test_layer_shape_config_and_arguments():
    layer = audio.LogMelSpectrogram()
    assert layer.compute_output_shape((None, 16000)) == (None, 32, 32, 1)
    assert layer(np.zeros((3, 16000), np.float32)).shape == (3, 32, 32, 1)
    config = layer.get_config()
    assert {k: config[k] for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "amin", "top_db")} == {
        "sample_rate": 16000, "n_fft": 2048, "hop_length": 512, "n_mels": 32, "amin": 1e-10, "top_db": 80.0}
    clone = audio.LogMelSpectrogram.from_config(audio.LogMelSpectrogram(n_mels=40, top_db=None).get_config())
    assert (clone.n_mels, clone.top_db) == (40, None)
    for name, value in [("sample_rate", 0), ("n_fft", 1), ("hop_length", 0), ("n_mels", 2.5),
                        ("amin", 0.0), ("top_db", -1.0)]:
        with pytest.raises(ValueError, match=f"`{name}`.*{name}={value!r}"):
            audio.LogMelSpectrogram(**{name: value})
    with pytest.raises(ValueError, match="more than n_fft // 2 = 1024 samples"):
        audio.log_mel_spectrogram(np.zeros((1, 1000), np.float32))
    with pytest.raises(ValueError, match="`fmax`"):
        audio.mel_filterbank(16000, 2048, 32, fmax=9000.0)


def test_tf_data_map_gives_the_layers_features(speech_clips):
    import tensorflow as tf

    x = np.stack([audio.fix_length(wav.read_wav(p)[0]) for p in speech_clips[:4]])
    mapped = np.stack(list(tf.data.Dataset.from_tensor_slices(x).map(audio.log_mel_spectrogram)
                           .as_numpy_iterator()))
    np.testing.assert_allclose(mapped, keras.ops.convert_to_numpy(audio.LogMelSpectrogram()(x)), atol=1e-4)


def test_model_with_the_layer_saves_and_loads(tmp_path, speech_clips):
    x = np.stack([audio.fix_length(wav.read_wav(p)[0]) for p in speech_clips[:8]])
    model = keras.Sequential([keras.Input((16000,)), audio.LogMelSpectrogram(),
                              keras.layers.Conv2D(4, 5), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[0], audio.LogMelSpectrogram)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_tflite_builtins_only_and_parity(tmp_path, speech_clips, fsdd):
    x = np.concatenate([np.stack([audio.fix_length(wav.read_wav(p)[0]) for p in speech_clips[::20]]),
                        fsdd["test"][0][::15]])
    model = keras.Sequential([keras.Input((16000,)), audio.LogMelSpectrogram()])
    path = export.to_tflite(model, tmp_path / "logmel.tflite")
    names = export.tflite_op_names(path)
    print("TFLite ops:", names)
    assert not [n for n in names if n.startswith("CUSTOM")]
    assert "RFFT2D" not in names and "BATCH_MATMUL" in names
    error = np.abs(export.run_tflite(path, x) - model.predict(x, verbose=0)).max()
    print(f"max |TFLite - Keras| on {len(x)} clips: {error:.2e} dB")
    # Measured 1.5e-5 dB on an AVX-512 CPU, 1.1e-4 dB on an AVX2 one: the
    # float32 rounding of each CPU's matmul kernels (about 15 ulp of -80 dB).
    assert error <= 2e-4
    # LiteRT's MAXIMUM drops NaN, yet a clip holding a NaN or infinite sample
    # comes out all NaN as in Keras (without the per-clip sum(samples * 0) it
    # came out finite and CPU-dependent); the other clips are unaffected.
    broken = x[:3].copy()
    broken[1, 8000], broken[2, 100] = np.nan, np.inf  # 8000: padded index 9024, in frames 14..17 only
    out = export.run_tflite(path, broken)[..., 0]
    assert np.isnan(out[1:]).all()
    assert np.abs(out[0] - model.predict(x[:1], verbose=0)[0, ..., 0]).max() <= 1e-4


# ------------------------------------------------------------------- loaders


def test_read_wav_real_clip(speech_clips):
    waveform, rate = wav.read_wav(speech_clips[0], expected_rate=16000)
    with wave.open(str(speech_clips[0])) as f:
        raw = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    assert rate == 16000 and waveform.dtype == np.float32 and waveform.shape == (16000,)
    np.testing.assert_array_equal(waveform * 32768, raw)


def test_read_wav_rejects_bad_files(tmp_path):
    cases = {
        write_wav(tmp_path / "stereo.wav", np.zeros((100, 2)), channels=2): "2 channels",
        write_wav(tmp_path / "8k.wav", np.zeros(100), rate=8000): "8000 Hz, expected 16000 Hz",
        write_wav(tmp_path / "8bit.wav", np.full(100, 128), width=1): "8-bit samples",
        write_wav(tmp_path / "noframes.wav", np.zeros(0)): "no audio frames",
    }
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio")
    cases[tmp_path / "empty.wav"] = cases[tmp_path / "text.wav"] = "not a readable PCM WAV"
    for path, reason in cases.items():
        with pytest.raises(ValueError, match=reason) as info:
            wav.read_wav(path, expected_rate=16000)
        assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=r"\(empty or truncated file\)"):  # EOFError has no message
        wav.read_wav(tmp_path / "empty.wav")
    assert wav.read_wav(tmp_path / "8k.wav")[1] == 8000  # any rate without expected_rate


def test_fix_length_pads_or_keeps_the_first_second(speech_clips):
    clip = wav.read_wav(speech_clips[0])[0]
    long = np.concatenate([clip, clip[:8000]])  # 1.5 s
    np.testing.assert_array_equal(audio.fix_length(long), clip)
    padded = audio.fix_length(clip[:100])
    assert padded.shape == (16000,) and not padded[100:].any()
    with pytest.raises(ValueError, match="`length`"):
        audio.fix_length(clip, length=0)
    with pytest.raises(ValueError, match="1-D"):
        audio.fix_length(np.zeros((2, 10)))


def test_resample_keeps_a_sines_frequency():
    sine = np.sin(2 * np.pi * 440.0 * np.arange(8000) / 8000).astype(np.float32)  # 1 s at 8 kHz
    up = audio.resample(sine, 8000, 16000)
    assert up.shape == (16000,) and up.dtype == np.float32
    assert np.argmax(np.abs(np.fft.rfft(up))) == 440  # 1 Hz per bin over 1 s
    np.testing.assert_allclose(up[1000:15000:2], sine[500:7500], atol=1e-3)  # same samples at even indices
    with pytest.raises(ValueError, match="`orig_rate`"):
        audio.resample(sine, 0, 16000)


def test_load_fsdd_official_split(fsdd, fsdd_dir):
    for split, size in [("train", 2700), ("test", 300)]:
        waveforms, labels, paths = fsdd[split]
        assert waveforms.shape == (size, 16000) and waveforms.dtype == np.float32 and labels.dtype == np.int64
        names = [os.path.basename(p) for p in paths]
        np.testing.assert_array_equal(labels, [int(n.split("_")[0]) for n in names])
        indices = np.array([int(n[:-4].split("_")[2]) for n in names])
        assert ((indices < 5) == (split == "test")).all()
        np.testing.assert_array_equal(np.bincount(labels), [size // 10] * 10)
    # An 8 kHz clip of n samples becomes 2n samples at 16 kHz, then padded with zeros.
    waveforms, _, paths = fsdd["test"]
    raw, rate = wav.read_wav(paths[0])
    assert rate == 8000
    np.testing.assert_array_equal(
        waveforms[0], np.clip(audio.fix_length(audio.resample(raw, 8000, 16000)), -1, 1))
    assert len(raw) < 8000 and not waveforms[0, 2 * len(raw):].any()
    cut = [p for p in paths + fsdd["train"][2] if len(wav.read_wav(p)[0]) > 8000]
    assert len(cut) == 20  # the docstring's count of clips longer than 1 s
    # The resampler's overshoot (max |x| 1.03 on a few loud clips) is clipped to [-1, 1].
    everything = np.concatenate([fsdd["train"][0], fsdd["test"][0]])
    assert np.abs(everything).max() == 1.0
    overshoot = max(np.abs(audio.resample(wav.read_wav(p)[0], 8000, 16000)).max()
                    for p in paths + fsdd["train"][2])
    assert 1.0 < overshoot < 1.05


def test_load_fsdd_layouts_and_errors(tmp_path, fsdd_dir, monkeypatch):
    recordings = tmp_path / "fsdd" / "recordings"
    recordings.mkdir(parents=True)
    for name in ["0_george_0.wav", "3_theo_7.wav", "9_lucas_49.wav"]:
        shutil.copy(fsdd_dir / "recordings" / name, recordings / name)
    (recordings / "README.txt").write_text("ignored")
    for data_dir in [tmp_path / "fsdd", recordings]:
        data = datasets.load_fsdd(data_dir)
        assert [os.path.basename(p) for p in data["test"][2]] == ["0_george_0.wav"]
        assert [os.path.basename(p) for p in data["train"][2]] == ["3_theo_7.wav", "9_lucas_49.wav"]
        np.testing.assert_array_equal(data["train"][1], [3, 9])
    monkeypatch.setenv(datasets.FSDD_ENV_VAR, str(recordings))
    assert len(datasets.load_fsdd()["train"][2]) == 2
    shutil.copy(recordings / "0_george_0.wav", recordings / "zero_george_0.wav")
    with pytest.raises(ValueError, match="zero_george_0.wav is not named"):
        datasets.load_fsdd(recordings)
    with pytest.raises(ValueError, match="`data_dir`"):
        datasets.load_fsdd(tmp_path / "nowhere")


@pytest.fixture
def v001_root(tmp_path, speech_clips):
    """A tiny Speech Commands v0.01 layout made of 15 real clips."""
    clips = [p for p in speech_clips if not p.parent.name.startswith("_")][:15]
    layout = {"zero": clips[0:4], "one": clips[4:8], "two": clips[8:12], "yes": clips[12:15]}
    for word, sources in layout.items():
        (tmp_path / word).mkdir()
        for i, source in enumerate(sources):
            shutil.copy(source, tmp_path / word / f"clip{i}_nohash_0.wav")
    long = np.concatenate([wav.read_wav(clips[0])[0], wav.read_wav(clips[1])[0][:8000]])
    write_wav(tmp_path / "zero" / "long_nohash_0.wav", np.round(long * 32768).astype(np.int16))
    (tmp_path / "testing_list.txt").write_text("zero/clip0_nohash_0.wav\none/clip1_nohash_0.wav\n"
                                               "yes/clip0_nohash_0.wav\n")
    (tmp_path / "validation_list.txt").write_text("two/clip2_nohash_0.wav\nzero/clip3_nohash_0.wav\n")
    return tmp_path, clips


def test_load_speech_commands_v001_splits(v001_root, monkeypatch):
    root, clips = v001_root
    data = datasets.load_speech_commands_v001(root)

    def entries(split):
        return [(os.path.relpath(p, root), int(label)) for p, label in zip(data[split][2], data[split][1])]

    assert entries("test") == [("zero/clip0_nohash_0.wav", 0), ("one/clip1_nohash_0.wav", 1)]
    assert entries("validation") == [("zero/clip3_nohash_0.wav", 0), ("two/clip2_nohash_0.wav", 2)]
    assert entries("train") == (
        [("zero/clip1_nohash_0.wav", 0), ("zero/clip2_nohash_0.wav", 0), ("zero/long_nohash_0.wav", 0)]
        + [(f"one/clip{i}_nohash_0.wav", 1) for i in (0, 2, 3)]
        + [(f"two/clip{i}_nohash_0.wav", 2) for i in (0, 1, 3)])
    assert all(data[s][0].shape[1:] == (16000,) and data[s][0].dtype == np.float32 for s in data)
    np.testing.assert_array_equal(data["test"][0][0], wav.read_wav(clips[0])[0])
    long = data["train"][0][2]  # 1.5 s clip: its first second
    np.testing.assert_array_equal(long, wav.read_wav(clips[0])[0])
    other = datasets.load_speech_commands_v001(root, words=("two", "yes"))
    assert [os.path.relpath(p, root) for p in other["test"][2]] == ["yes/clip0_nohash_0.wav"]
    np.testing.assert_array_equal(other["train"][1], [0, 0, 0, 1, 1])
    monkeypatch.setenv(datasets.SPEECH_COMMANDS_ENV_VAR, str(root))
    assert datasets.load_speech_commands_v001()["test"][2] == data["test"][2]


def test_load_speech_commands_v001_errors(v001_root):
    root, _ = v001_root
    for bad in [(), ("zero", "zero"), "zero", ("zero", 1)]:
        with pytest.raises(ValueError, match="`words`"):
            datasets.load_speech_commands_v001(root, words=bad)
    with pytest.raises(ValueError, match="No training clips of `words`.*'three'"):
        datasets.load_speech_commands_v001(root, words=("three",))
    write_wav(root / "one" / "slow_nohash_0.wav", np.zeros(8000, np.int16), rate=8000)
    with pytest.raises(ValueError, match="slow_nohash_0.wav.*8000 Hz, expected 16000 Hz"):
        datasets.load_speech_commands_v001(root)
    os.remove(root / "one" / "slow_nohash_0.wav")
    os.remove(root / "two" / "clip2_nohash_0.wav")
    with pytest.raises(ValueError, match="validation list entries have no file.*two/clip2_nohash_0.wav"):
        datasets.load_speech_commands_v001(root)
    os.remove(root / "testing_list.txt")
    with pytest.raises(ValueError, match="testing_list.txt"):
        datasets.load_speech_commands_v001(root)


def test_load_speech_commands_tfds_checks_the_split():
    with pytest.raises(ValueError, match="`split`.*split='dev'"):
        datasets.load_speech_commands_tfds("dev")


def _riff(fmt_body, data, promised=None):
    """A RIFF WAVE file of a `fmt ` chunk and a `data` chunk whose header
    says `promised` bytes (default: the bytes it holds)."""
    size = len(data) if promised is None else promised
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


PCM_MONO_16 = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)


def test_read_wav_refuses_a_header_promising_more_frames(tmp_path):
    """`wave` read a data chunk shorter than its header says as a shorter (or
    empty) clip, and `load_fsdd` made an all-zero clip of it with a label."""
    samples = np.int16([1000, -2000, 3000]).tobytes()
    path = tmp_path / "short.wav"
    path.write_bytes(_riff(PCM_MONO_16, samples, promised=32000))
    with pytest.raises(ValueError, match=rf"{path} is not a readable PCM WAV file \(its header promises 32000 "
                                         r"bytes of audio, the file holds 6 \(a truncated file\)\)"):
        wav.read_wav(path)
    path.write_bytes(_riff(PCM_MONO_16, samples + b"\x07"))  # cut mid-sample
    with pytest.raises(ValueError, match=rf"Cannot use WAV file {path}: its 7 bytes of audio end mid-sample"):
        wav.read_wav(path)
    path.write_bytes(_riff(PCM_MONO_16, samples))
    np.testing.assert_array_equal(wav.read_wav(path)[0], np.float32([1000, -2000, 3000]) / 32768)


def test_read_wav_reads_wave_format_extensible(tmp_path):
    """16-bit mono PCM in a WAVE_FORMAT_EXTENSIBLE header (what many recorders
    write) was refused; a float sub-format still is."""
    samples = np.int16([7, -8, 9, 32767]).tobytes()
    pcm_guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    extensible = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4) + pcm_guid
    path = tmp_path / "extensible.wav"
    path.write_bytes(_riff(extensible, samples))
    waveform, rate = wav.read_wav(path, expected_rate=16000)
    assert rate == 16000
    np.testing.assert_array_equal(waveform, np.float32([7, -8, 9, 32767]) / 32768)
    float_guid = struct.pack("<H", 3) + pcm_guid[2:]
    path.write_bytes(_riff(extensible[:-16] + float_guid, samples))
    with pytest.raises(ValueError, match="it is not PCM \\(format tag 3\\)"):
        wav.read_wav(path)


def test_ragged_clips_are_refused_by_name():
    """A list of clips of different lengths gave NumPy's "inhomogeneous shape"."""
    clips = [np.zeros(16000, np.float32), np.zeros(12000, np.float32)]
    message = r"`waveforms` must be clips of one length; received 2 clips of lengths 12000 to 16000. .*fix_length"
    with pytest.raises(ValueError, match=message):
        ks.noise.add_audio_noise(clips, 0.1)
    with pytest.raises(ValueError, match=message):
        ks.noise.evaluate_audio_noise(None, clips, [0, 1])
    with pytest.raises(ValueError, match=message):
        audio.log_mel_spectrogram(clips)
    assert ks.noise.add_audio_noise([audio.fix_length(c) for c in clips], 0.0).shape == (2, 16000)


def test_loaders_and_wav_reader_keep_their_former_names_in_audio():
    """The loaders moved to `keras_sparse.datasets` and the WAV reader to
    `keras_sparse.wav`; code written against `ks.audio.load_fsdd` & co. runs."""
    assert audio.load_fsdd is datasets.load_fsdd
    assert audio.load_speech_commands_v001 is datasets.load_speech_commands_v001
    assert audio.FSDD_ENV_VAR == datasets.FSDD_ENV_VAR == "KERAS_SPARSE_FSDD"
    assert audio.DIGITS == datasets.DIGITS and audio.read_wav is wav.read_wav
    with pytest.raises(AttributeError, match="has no attribute 'load_cifar'"):
        audio.load_cifar
