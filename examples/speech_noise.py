"""Reproduce the paper's speech experiment (Ahmad & Scheinkman, 2019, Table 2):
accuracy and noise robustness of Dense, Sparse and Super-Sparse CNN-2 on
spoken digits.

For every chosen network and seed this script

1. builds the network on 32x32 log-mel spectrograms (`keras_sparse.models.speech`;
   the features are `keras_sparse.audio.log_mel_spectrogram`, computed once),
2. trains it with the paper's protocol: SGD with PyTorch-style weight decay
   0.01, `lr_epoch = lr * decay ** epoch`, the network's batch size, momentum
   and epochs, and k-winners boost decay ×0.9 after every epoch,
3. after every epoch, measures clean test accuracy and the noise score
   (`keras_sparse.noise`: 11 levels, `(1 - a) * x + a * u` on the waveforms,
   then the features) and reports the paper's selection (per seed, the epoch
   of highest test accuracy) beside the honest last epoch,
4. saves the last epoch's model with the features inside (`model.keras` and
   `model.tflite` take the raw waveform, float32 `(16000,)` at 16 kHz in
   [-1, 1]; output 10 logits, digits 0-9) and a SavedModel,

then writes `results.json`, `results.md` and `noise_curve.png`.

Data (`--data`):
- `fsdd` (default): the Free Spoken Digit Dataset, official split (index
  0-4 test: 300 clips; 2,700 training), resampled 8 -> 16 kHz, padded/cut to
  1 s. From `--data-dir`, else `$KERAS_SPARSE_FSDD`, else tensorflow-datasets.
- `gsc-v0.01`: the paper's task, the ten digit words of Speech Commands v0.01
  (a folder with `testing_list.txt` / `validation_list.txt`), from
  `--data-dir` or `$KERAS_SPARSE_SPEECH_COMMANDS`.

Examples:

    python examples/speech_noise.py --data-dir ../shared/datasets/fsdd              # the paper's protocol
    python examples/speech_noise.py --seeds 0 1 2 --out runs/speech --verbose 2
    python examples/speech_noise.py --data gsc-v0.01 --data-dir /data/speech_commands_v0.01

The tasks (data, features, noise protocol, networks, hyper-parameters) are
`keras_sparse.tasks.FSDD` and `SPEECH_COMMANDS`; training and evaluation are
`keras_sparse.experiment.run`; this script adds its flags and the augmentation.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import experiment_report  # noqa: E402  (beside this script; puts the checkout on the path if needed)
from keras_sparse import tasks  # noqa: E402
from keras_sparse.tasks.speech import FSDD, features  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=("fsdd", "gsc-v0.01"), default="fsdd",
                   help="fsdd (default) or the paper's Speech Commands v0.01 digits")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default: $KERAS_SPARSE_FSDD / $KERAS_SPARSE_SPEECH_COMMANDS, "
                        "else tensorflow-datasets for fsdd)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per network (default: the paper's)")
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on N clips drawn at random (seed 0) from the training split (default: all)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="PyTorch-style weight decay (paper: 0.01)")
    p.add_argument("--augment", action="store_true",
                   help="the paper's training augmentation, afresh every epoch (amplitude, speed/pitch, "
                        "spectrogram stretch and time shift; see augment_clips); default: none")
    p.add_argument("--normalize-features", action="store_true",
                   help="standardize the dB features with the training set's mean and sd before the "
                        "network (default: none, as the paper: dB in [-80, 0])")
    paper_networks = [name for name, cfg in FSDD.networks.items() if cfg["paper_accuracy"] is not None]
    experiment_report.add_run_arguments(p, FSDD, paper_networks, "speech_noise_out")
    args = p.parse_args(argv)
    experiment_report.check_run_arguments(p, args)
    if args.weight_decay is not None and not args.weight_decay >= 0:
        p.error(f"--weight-decay must be >= 0, got {args.weight_decay}")
    return args


def augment_clips(waveforms, rng):
    """The paper's training augmentation on `(N, 16000)` clips (docs/speech.md,
    "The paper's protocol", gives the steps and ranges; applying each to a clip with probability 1/2 is ours):

    - amplitude: `x *= U(0.7, 1.1)` (the features' 0 dB reference is each
      clip's own maximum, so this changes them only through `amin`),
    - speed and pitch: resampled by linear interpolation at a rate `U(0.8, 1.2)`,
      then padded or cut to 1 s.

    Returns float32 clips, clipped to [-1, 1].
    """
    out = np.empty_like(waveforms)
    n = waveforms.shape[1]
    for i, clip in enumerate(waveforms):
        if rng.random() < 0.5:
            clip = clip * rng.uniform(0.7, 1.1)
        if rng.random() < 0.5:
            rate = rng.uniform(0.8, 1.2)
            positions = np.arange(0, n, rate)
            clip = np.interp(positions, np.arange(n), clip)[:n]
            clip = np.pad(clip, (0, n - len(clip)))
        out[i] = np.clip(clip, -1, 1)
    return out


def augment_spectrograms(spectrograms, rng, floor=-80.0):
    """The paper's spectrogram augmentation on `(N, 32, 32, 1)` dB features, each
    step with probability 1/2 (ours, as in `augment_clips`):

    - stretch in time by `U(0.8, 1.2)` (the reference stretches the STFT; here
      the log-mel frames are linearly interpolated), kept at 32 frames,
    - time shift by a whole number of frames in [-8, 8] (our bound), the
      vacated frames at the `floor` (-80 dB, the features' silence).
    """
    out = spectrograms.copy()
    frames = out.shape[2]
    for i in range(len(out)):
        if rng.random() < 0.5:
            rate = rng.uniform(0.8, 1.2)
            src = np.arange(frames) * rate
            inside = src <= frames - 1
            for m in range(out.shape[1]):
                row = np.interp(src, np.arange(frames), spectrograms[i, m, :, 0])
                out[i, m, :, 0] = np.where(inside, row, floor)
        if rng.random() < 0.5:
            shift = int(rng.integers(-8, 9))
            out[i] = np.roll(out[i], shift, axis=1)
            if shift > 0:
                out[i, :, :shift] = floor
            elif shift < 0:
                out[i, :, shift:] = floor
    return out


class AugmentedClips(keras.utils.PyDataset):
    """`fit` data that applies the paper's augmentation afresh every epoch:
    shuffled batches of augmented clips' augmented features."""

    def __init__(self, waveforms, labels, batch_size, seed):
        super().__init__()
        self.waveforms, self.labels, self.batch_size = waveforms, labels, batch_size
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index):
        batch = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        clips = augment_clips(self.waveforms[batch], self.rng)
        return augment_spectrograms(features(clips), self.rng), self.labels[batch]

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.labels))


def standardized(model, spectrograms):
    """`model` behind one `Normalization` layer, `(x - mean) / std` with the
    training spectrograms' mean and standard deviation (scalars, in dB)."""
    mean, variance = float(spectrograms.mean()), float(spectrograms.var())
    inputs = keras.Input(model.input_shape[1:], name="spectrogram")
    scaled = keras.layers.Normalization(mean=mean, variance=variance, name="standardize")(inputs)
    return keras.Model(inputs, model(scaled), name=model.name)


def train_one(network, seed, data, args):
    """Trains and evaluates one network (`keras_sparse.experiment.run`); returns its result dict."""
    from keras_sparse import experiment

    adapt = fit_data = None
    if args.normalize_features:
        def adapt(model):
            return standardized(model, data.x_train), [], None
    if args.augment:
        def fit_data(batch_size, seed):
            return dict(x=AugmentedClips(data.train_inputs, data.y_train, batch_size, seed))

    return experiment.run(
        args.data, network, seed, data, args.out, initializer=args.initializer,
        k_inference_factor=args.k_inference_factor, hidden_block=args.hidden_block,
        hyper_parameters=dict(epochs=args.epochs, weight_decay=args.weight_decay),
        per_epoch_eval=True, noise_seed=args.noise_seed, export=not args.no_export,
        verbose=args.verbose, adapt=adapt, fit_data=fit_data,
        settings=dict(data=args.data, augment=args.augment, normalize_features=args.normalize_features))


def main(argv=None):
    args = parse_args(argv)
    from keras_sparse import experiment

    t0 = time.time()
    data = experiment.prepare(args.data, args.data_dir, args.train_samples, args.test_samples,
                              args.noise_seed)
    print(f"{args.data}: {len(data.y_train)} training and {len(data.y_test)} test clips; features and "
          f"{len(data.noisy_sets)} noisy test sets in {time.time() - t0:.1f} s", flush=True)
    return experiment_report.run_all(args, argv, train_one, data, tasks.get(args.data))


if __name__ == "__main__":
    main()
