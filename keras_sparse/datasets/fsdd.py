"""The Free Spoken Digit Dataset (FSDD): 3,000 spoken digits, 8 kHz, its
official split, resampled to 16 kHz for the paper's speech networks."""

import os
import re

import numpy as np

from keras_sparse.audio import SAMPLE_RATE, resample, stack_clips
from keras_sparse.wav import read_wav

FSDD_ENV_VAR = "KERAS_SPARSE_FSDD"

_FSDD_NAME = re.compile(r"([0-9])_([^_]+)_([0-9]+)\.wav")


def _fsdd_splits(records):
    """[(file name, path, 8 kHz waveform)] -> {"train", "test"}: index 0-4 is the test set."""
    splits = {"train": [], "test": []}
    for name, path, waveform in records:
        match = _FSDD_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"FSDD file {path!s} is not named "
                             "'{digit}_{speaker}_{index}.wav'")
        split = "test" if int(match.group(3)) < 5 else "train"
        waveform = np.clip(resample(waveform, 8000, SAMPLE_RATE), -1.0, 1.0)
        splits[split].append((waveform, int(match.group(1)), path))
    return {split: stack_clips(items) for split, items in splits.items()}


def load_fsdd(data_dir=None):
    """The Free Spoken Digit Dataset, official split, at 16 kHz.

    Returns `{"train": (waveforms, labels, paths), "test": (...)}`: files with
    index 0-4 are the test set (300 of the 3,000 clips), 5-49 training (2,700).
    Labels are the digit in the file name `{digit}_{speaker}_{index}.wav`
    (any other `.wav` name is an error; other files are ignored). Each 8 kHz
    clip is resampled to 16 kHz (`resample`) then padded or cut to 16,000
    samples (`fix_length`). FSDD clips last 0.14-2.28 s: the 20 longer than
    1 s (18 training, 2 test clips) keep only their first second. The
    band-limited resampler overshoots full scale on a few loud clips (max
    |x| 1.03): samples are clipped to [-1, 1], as a 16-bit recording at
    16 kHz would be, so the noise protocol's range holds.

    Args:
        data_dir: the dataset root (holding `recordings/`) or the recordings
            folder. If None, `$KERAS_SPARSE_FSDD`; if unset too, the
            tensorflow-datasets copy `spoken_digit` (needs internet; 2,500
            clips of 5 speakers, so 2,250 / 250), split by file name alike.
    """
    data_dir = data_dir if data_dir is not None else os.environ.get(FSDD_ENV_VAR) or None
    if data_dir is None:  # pragma: no cover - needs the network
        import tensorflow_datasets as tfds

        records = []
        for example in tfds.as_numpy(tfds.load("spoken_digit", split="train")):
            name = example["audio/filename"].decode()
            records.append((os.path.basename(name), name, example["audio"] / 32768.0))
        return _fsdd_splits(records)
    folder = os.fspath(data_dir)
    if os.path.isdir(os.path.join(folder, "recordings")):
        folder = os.path.join(folder, "recordings")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    names = sorted(n for n in names if n.endswith(".wav"))
    if not names:
        raise ValueError(f"`data_dir` must be the FSDD root or its recordings folder, with .wav "
                         f"files. Received: data_dir={data_dir!r}")
    paths = [os.path.join(folder, n) for n in names]
    return _fsdd_splits([(n, p, read_wav(p, expected_rate=8000)[0]) for n, p in zip(names, paths)])
