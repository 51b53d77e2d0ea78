"""How loud the test clips are against the speech noise protocol's noise.

The protocol blends `(1 - a) x + a u` with `u ~ U(-1, 1)`, whose RMS is
`a / sqrt(3)` (0.029 at the first level, a = 0.05). This script prints, per
data set, the median over clips of the clip RMS over its 1 s, the peak, the
fraction of samples that are exactly zero (digital silence: padding or
trimmed recordings) and the RMS of the quietest 100 ms (the recording's own
noise floor), so the signal-to-noise ratio of each level can be read off.

    python examples/speech_loudness.py --fsdd ../shared/datasets/fsdd \\
        --speech-commands ../shared/datasets/speech_commands_sample
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

try:  # run from a checkout without `pip install -e .`
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def loudness(waveforms, sample_rate=16000):
    """Medians over `(N, samples)` clips of: RMS, peak, zero fraction, quietest-100-ms RMS."""
    window = sample_rate // 10
    usable = waveforms[:, : waveforms.shape[1] // window * window]
    windows = usable.reshape(len(waveforms), -1, window)
    return {
        "clips": int(len(waveforms)),
        "rms": float(np.median(np.sqrt(np.mean(waveforms ** 2, axis=1)))),
        "peak": float(np.median(np.abs(waveforms).max(axis=1))),
        "zero_fraction": float(np.median(np.mean(waveforms == 0, axis=1))),
        "quietest_100ms_rms": float(np.median(np.sqrt(np.mean(windows ** 2, axis=2)).min(axis=1))),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fsdd", required=True, help="FSDD folder (its official test split is measured)")
    p.add_argument("--speech-commands", required=True,
                   help="a folder of Speech Commands word folders (those starting with '_' are skipped)")
    args = p.parse_args(argv)
    from keras_sparse import audio, datasets, wav

    paths = sorted(p for p in glob.glob(os.path.join(args.speech_commands, "*", "*.wav"))
                   if not os.path.basename(os.path.dirname(p)).startswith("_"))
    speech_commands = np.stack([audio.fix_length(wav.read_wav(p)[0]) for p in paths])
    result = {
        "fsdd_test": loudness(datasets.load_fsdd(args.fsdd)["test"][0]),
        "speech_commands": loudness(speech_commands),
        "noise_rms": {str(a): a / np.sqrt(3) for a in (0.005, 0.05, 0.1)},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
