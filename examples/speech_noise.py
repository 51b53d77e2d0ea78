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
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

try:  # run from a checkout without `pip install -e .`
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import experiment_report  # noqa: E402  (examples/experiment_report.py, beside this script)
from keras_sparse.models import SPEECH_NETWORKS  # noqa: E402

NETWORK_NAMES = tuple(SPEECH_NETWORKS)
FEATURE_BATCH = 256  # clips per feature computation (bounds memory)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=("fsdd", "gsc-v0.01"), default="fsdd",
                   help="fsdd (default) or the paper's Speech Commands v0.01 digits")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default: $KERAS_SPARSE_FSDD / $KERAS_SPARSE_SPEECH_COMMANDS, "
                        "else tensorflow-datasets for fsdd)")
    p.add_argument("--networks", nargs="+", default=list(NETWORK_NAMES), choices=NETWORK_NAMES,
                   help="networks to train (default: all three)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per network (default: the paper's)")
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on N clips drawn at random (seed 0) from the training split (default: all)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="evaluate on N clips drawn at random (seed 0) from the test split (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the noisy test sets (default: 0)")
    p.add_argument("--k-inference-factor", type=float, default=None,
                   help="winners at inference = k * this in every k-winners layer (paper: 1.5)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="PyTorch-style weight decay (paper: 0.01)")
    p.add_argument("--augment", action="store_true",
                   help="the paper's training augmentation, afresh every epoch (amplitude, speed/pitch, "
                        "spectrogram stretch and time shift; see augment_clips); default: none")
    p.add_argument("--normalize-features", action="store_true",
                   help="standardize the dB features with the training set's mean and sd before the "
                        "network (default: none, as the paper: dB in [-80, 0])")
    p.add_argument("--initializer", choices=("pytorch", "keras", "pytorch_dense_fan_in"),
                   default="pytorch", help="weight initialization (default: pytorch, as the paper's code)")
    p.add_argument("--hidden-block", type=int, nargs=2, default=None, metavar=("UNITS", "INPUTS"),
                   help="keep the sparse networks' hidden weights in whole blocks, e.g. 1 4 "
                        "(TFLite's float32 block-sparse kernel) or 1 16 (int8); default: none")
    p.add_argument("--out", default="speech_noise_out", help="output directory (default: speech_noise_out)")
    p.add_argument("--no-export", action="store_true", help="skip SavedModel/.tflite export")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")
    args = p.parse_args(argv)
    for name in ("epochs", "train_samples", "test_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.k_inference_factor is not None and not args.k_inference_factor > 0:
        p.error(f"--k-inference-factor must be > 0, got {args.k_inference_factor}")
    if args.weight_decay is not None and not args.weight_decay >= 0:
        p.error(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if args.noise_seed < 0 or any(s < 0 for s in args.seeds):
        p.error("--seeds and --noise-seed must be non-negative integers")
    return args


def features(waveforms):
    """The paper's log-mel features of `(N, 16000)` clips, `(N, 32, 32, 1)` float32."""
    from keras_sparse import audio

    parts = [np.asarray(audio.log_mel_spectrogram(waveforms[i:i + FEATURE_BATCH]))
             for i in range(0, len(waveforms), FEATURE_BATCH)]
    return np.concatenate(parts).astype(np.float32)


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


def _subsample(split, n):
    waveforms, labels, paths = split
    if n is None or n >= len(labels):
        return waveforms, labels, list(paths)
    keep = np.sort(np.random.default_rng(0).choice(len(labels), n, replace=False))
    return waveforms[keep], labels[keep], [paths[i] for i in keep]


def load_data(args):
    """(train waveforms, train labels, test waveforms, test labels, test paths)."""
    from keras_sparse import datasets

    if args.data == "fsdd":
        splits = datasets.load_fsdd(args.data_dir)
    else:
        splits = datasets.load_speech_commands_v001(args.data_dir)
    x_train, y_train, _ = _subsample(splits["train"], args.train_samples)
    x_test, y_test, test_paths = _subsample(splits["test"], args.test_samples)
    return x_train, y_train, x_test, y_test, test_paths


def train_one(network, seed, data, args):
    """Builds, trains and evaluates one network; returns its result dict."""
    from keras_sparse import callbacks, models
    from keras_sparse.export import to_tflite

    cfg = models.SPEECH_NETWORKS[network]
    epochs = args.epochs or cfg["epochs"]
    k_inference_factor = args.k_inference_factor or models.K_INFERENCE_FACTOR
    weight_decay = models.SPEECH_WEIGHT_DECAY if args.weight_decay is None else args.weight_decay
    x_train, y_train, train_waveforms, y_test, noisy_sets = data
    sparse = not network.startswith("dense")

    keras.utils.set_random_seed(seed)
    hidden_block = tuple(args.hidden_block) if args.hidden_block and sparse else None
    model = models.build_speech(network, args.initializer, k_inference_factor, weight_decay,
                                hidden_block)
    if args.normalize_features:
        model = standardized(model, x_train)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=cfg["lr"], momentum=cfg["momentum"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    scorer = callbacks.EpochNoiseScore(noisy_sets, y_test)
    cbs = [
        keras.callbacks.LearningRateScheduler(lambda epoch: cfg["lr"] * cfg["lr_decay"] ** epoch),
        callbacks.UpdateBoostStrength(),
        keras.callbacks.TerminateOnNaN(),
        scorer,
    ]
    print(f"\n=== {cfg['title']} seed {seed}: {epochs} epoch(s) on {len(x_train)} clips, batch "
          f"{cfg['batch_size']}, lr {cfg['lr']} x{cfg['lr_decay']}/epoch, momentum {cfg['momentum']}, "
          f"weight decay {weight_decay}, init {args.initializer}"
          + (f", k_inference_factor {k_inference_factor}" if sparse else "")
          + (", the paper's augmentation" if args.augment else "")
          + (", standardized features" if args.normalize_features else ""), flush=True)
    start = time.time()
    if args.augment:
        training = dict(x=AugmentedClips(train_waveforms, y_train, cfg["batch_size"], seed))
    else:
        training = dict(x=x_train, y=y_train, batch_size=cfg["batch_size"], shuffle=True)
    model.fit(**training, epochs=epochs, callbacks=cbs, verbose=args.verbose)
    train_time = time.time() - start  # includes the per-epoch evaluation

    selected = experiment_report.selected_results(scorer.records, per_epoch=True)
    last, paper = selected["last"], selected["paper"]
    print(f"{cfg['title']} seed {seed}: last epoch {100 * last['test_accuracy']:.2f}% / noise "
          f"score {last['noise_score']:,}; paper's selection: epoch {paper['epoch']}, "
          f"{100 * paper['test_accuracy']:.2f}% / {paper['noise_score']:,} "
          f"(train + per-epoch eval {train_time:.0f} s)", flush=True)

    run_dir = os.path.join(args.out, f"{network}_seed{seed}")
    os.makedirs(run_dir, exist_ok=True)
    raw_audio = models.waveform_model(model)
    raw_audio.save(os.path.join(run_dir, "model.keras"))
    if not args.no_export:
        raw_audio.export(os.path.join(run_dir, "saved_model"), format="tf_saved_model", verbose=False)
        to_tflite(raw_audio, os.path.join(run_dir, "model.tflite"))
    result = {
        "network": network, "title": cfg["title"], "seed": seed, "data": args.data,
        "epochs": epochs, "train_samples": int(len(x_train)), "test_samples": int(len(y_test)),
        "batch_size": cfg["batch_size"], "lr": cfg["lr"], "lr_decay": cfg["lr_decay"],
        "momentum": cfg["momentum"], "weight_decay": weight_decay, "initializer": args.initializer,
        "k_inference_factor": k_inference_factor if sparse else None, "hidden_block": hidden_block,
        "augment": args.augment,
        "normalize_features": args.normalize_features,
        "test_accuracy": last["test_accuracy"], "noise_score": last["noise_score"],
        "noise_seed": args.noise_seed, "noise_levels": scorer.records[-1]["levels"],
        "noise_accuracy": last["noise_accuracy"], "selected": selected,
        "epoch_records": scorer.records, "train_seconds": train_time,
    }
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def main(argv=None):
    args = parse_args(argv)
    from keras_sparse import models, noise

    x_train, y_train, x_test, y_test, _ = load_data(args)
    t0 = time.time()
    # Features once; the noisy test sets once (every run and epoch sees the same noise).
    data = (features(x_train), y_train, x_train, y_test,
            list(noise.noisy_audio_sets(x_test, seed=args.noise_seed, features=features)))
    print(f"{args.data}: {len(y_train)} training and {len(y_test)} test clips; features and "
          f"11 noisy test sets in {time.time() - t0:.1f} s", flush=True)

    return experiment_report.run_all(args, argv, train_one, data, models.SPEECH_NETWORKS,
                                     f"Spoken digits ({args.data}): accuracy vs noise",
                                     "noise level a: (1 - a) x + a u, u ~ U(-1, 1)")


if __name__ == "__main__":
    main()
