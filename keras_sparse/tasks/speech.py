"""Spoken digits (docs/speech.md): the paper's Table 2 networks on two datasets.

- `FSDD`: the Free Spoken Digit Dataset, official split (`datasets.load_fsdd`).
- `SPEECH_COMMANDS`: the paper's task, the ten digit words of Speech Commands
  v0.01 (`datasets.load_speech_commands_v001`; train and test lists).

Both: 1-s waveforms at 16 kHz in [-1, 1]; the networks see their log-mel
spectrograms `(32, 32, 1)` (`keras_sparse.audio.log_mel_spectrogram`),
computed outside the network in training and inside the shipped model
(`keras_sparse.models.waveform_model`). Noise at level `a`:
`(1 - a) x + a u`, `u ~ U(-1, 1)` per sample, on the waveform
(`keras_sparse.noise.add_audio_noise`). Networks: `SPEECH_NETWORKS`, SGD with
PyTorch-style weight decay 0.01, `lr * decay ** epoch`.
"""

import numpy as np

from keras_sparse import audio, datasets, models, noise
from keras_sparse.tasks._task import Task

FEATURE_BATCH = 256  # clips per feature computation (bounds memory)
_RAW_AUDIO = "float32 (16000,) raw waveform at 16 kHz in [-1, 1] (features inside the model); "


def features(waveforms):
    """The paper's log-mel features of `(N, 16000)` clips, `(N, 32, 32, 1)` float32,
    computed `FEATURE_BATCH` clips at a time."""
    waveforms = np.asarray(waveforms)
    if waveforms.ndim != 2 or len(waveforms) == 0:
        raise ValueError(f"`waveforms` must have shape (N, samples), N >= 1. Received shape={waveforms.shape}")
    parts = [np.asarray(audio.log_mel_spectrogram(waveforms[i:i + FEATURE_BATCH]))
             for i in range(0, len(waveforms), FEATURE_BATCH)]
    return np.concatenate(parts).astype(np.float32)


def corrupt(waveforms, level, rng):
    """`keras_sparse.noise.add_audio_noise(waveforms, level, seed=rng)`: the additive protocol."""
    return noise.add_audio_noise(waveforms, level, seed=rng)


def waveforms(clips):
    """The shipped models' input: the clips themselves, as a float32 array."""
    return np.asarray(clips, np.float32)


def _splits(loaded):
    return {split: loaded[split][:2] for split in ("train", "test")}


def _speech_task(name, title, loader, env_var, source):
    return Task(
        name=name, title=title, loader=lambda data_dir=None: _splits(loader(data_dir)),
        data_env_var=env_var, input_name="waveforms", input_shape=(models.speech.WAVEFORM_SAMPLES,),
        input_description=_RAW_AUDIO + source, prepare=waveforms, corrupt=corrupt,
        noise_description="noise level a: (1 - a) x + a u, u ~ U(-1, 1)",
        networks=models.SPEECH_NETWORKS, builder=models.build_speech,
        training=dict(weight_decay=models.SPEECH_WEIGHT_DECAY),
        features=features, with_features=models.waveform_model, subsample="random",
    )


FSDD = _speech_task(
    "fsdd", "Spoken digits (fsdd)", datasets.load_fsdd, datasets.FSDD_ENV_VAR,
    "an FSDD clip is read as int16 / 32768, resampled 8 -> 16 kHz by "
    "scipy.signal.resample_poly(x, 2, 1), clipped to [-1, 1], then cut to its first "
    "16,000 samples or zero-padded at the end (keras_sparse.audio.load_fsdd)")
SPEECH_COMMANDS = _speech_task(
    "gsc-v0.01", "Spoken digits (gsc-v0.01)", datasets.load_speech_commands_v001,
    datasets.SPEECH_COMMANDS_ENV_VAR,
    "a Speech Commands v0.01 clip (16 kHz) is read as int16 / 32768, then cut to its first "
    "16,000 samples or zero-padded at the end (keras_sparse.datasets.load_speech_commands_v001)")
