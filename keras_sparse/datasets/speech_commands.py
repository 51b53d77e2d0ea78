"""Speech Commands: the v0.01 folder layout (the paper's ten digits by
default) and tensorflow-datasets' v0.02 (a different, 12-class task)."""

import os

import keras

from keras_sparse.audio import SAMPLE_RATE, stack_clips
from keras_sparse.wav import read_wav

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPEECH_COMMANDS_ENV_VAR = "KERAS_SPARSE_SPEECH_COMMANDS"
SPEECH_COMMANDS_V001_URL = "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz"


def _read_list(root, name):
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        raise ValueError(f"Speech Commands split list not found: {path} (expected in `data_dir`)")
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def load_speech_commands_v001(data_dir=None, words=DIGITS):
    """Speech Commands v0.01 restricted to `words` (by default the paper's ten digits).

    The v0.01 layout is `<data_dir>/<word>/<name>.wav` (16 kHz mono) with
    `<data_dir>/testing_list.txt` and `validation_list.txt` listing
    `<word>/<name>.wav`. Returns `{"train", "validation", "test"}`, each
    `(waveforms, labels, paths)` with label = index of the word in `words`;
    training is every clip of those folders in neither list. Clips are
    padded or cut to 16,000 samples. A list entry of those words with no
    file is an error; a word with no folder has no clips.

    Args:
        data_dir: the dataset root. If None, `$KERAS_SPARSE_SPEECH_COMMANDS`;
            if unset too, the v0.01 archive (1.4 GB) is downloaded with
            `keras.utils.get_file` (tensorflow-datasets only has v0.02).
        words: non-empty sequence of distinct folder names.
    """
    if not (isinstance(words, (list, tuple)) and words and len(set(words)) == len(words)
            and all(isinstance(w, str) and w and "/" not in w for w in words)):
        raise ValueError(f"`words` must be a non-empty sequence of distinct folder names. "
                         f"Received: words={words!r}")
    data_dir = data_dir if data_dir is not None else os.environ.get(SPEECH_COMMANDS_ENV_VAR) or None
    if data_dir is None:  # pragma: no cover - needs the network
        path = keras.utils.get_file("speech_commands_v0.01.tar.gz", SPEECH_COMMANDS_V001_URL,
                                    extract=True)
        data_dir = path if os.path.isdir(path) else os.path.dirname(path)  # Keras < 3.6: the archive
    root = os.fspath(data_dir)
    lists = {"test": _read_list(root, "testing_list.txt"),
             "validation": _read_list(root, "validation_list.txt")}
    splits = {"train": [], "validation": [], "test": []}
    for label, word in enumerate(words):
        folder = os.path.join(root, word)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            key = f"{word}/{name}"
            if name.endswith(".wav"):
                splits[next((s for s in lists if key in lists[s]), "train")].append((key, label))
    for split, entries in lists.items():
        found = {key for key, _ in splits[split]}
        missing = sorted(e for e in entries if e.split("/")[0] in words and e not in found)
        if missing:
            raise ValueError(f"{len(missing)} {split} list entries have no file in {root}, "
                             f"e.g. {missing[0]}")
    if not splits["train"]:
        raise ValueError(f"No training clips of `words` in {root}. Received: words={words!r}")

    def clip(key, label):
        path = os.path.join(root, key)
        return read_wav(path, expected_rate=SAMPLE_RATE)[0], label, path

    return {split: stack_clips([clip(*item) for item in items]) for split, items in splits.items()}


def load_speech_commands_tfds(split):
    """tensorflow-datasets' `speech_commands` (v0.02): `(waveforms, labels)`.

    A DIFFERENT task from the paper's: 12 classes, the ten command words
    `yes no up down left right on off stop go` plus `_silence_` and
    `_unknown_` (the digits fall into `_unknown_`); class names come from
    `tfds.builder("speech_commands").info.features["label"].names`. Clips
    are padded or cut to 16,000 samples. Needs internet (or a tfds cache).

    Args:
        split: "train", "validation" or "test".
    """
    if split not in ("train", "validation", "test"):
        raise ValueError(f"`split` must be 'train', 'validation' or 'test'. "
                         f"Received: split={split!r}")
    return _speech_commands_tfds(split)


def _speech_commands_tfds(split):  # pragma: no cover - needs the network
    import tensorflow_datasets as tfds

    examples = tfds.as_numpy(tfds.load("speech_commands", split=split))
    waveforms, labels, _ = stack_clips([(e["audio"] / 32768.0, e["label"], None) for e in examples])
    return waveforms, labels
