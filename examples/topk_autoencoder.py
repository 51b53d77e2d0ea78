"""TopK sparse autoencoders built from keras_sparse layers, with and without
boosting against dead latents.

    python examples/topk_autoencoder.py --data-dir ../shared/datasets/mnist \
        [--latents 256 1024 4096] [--k 8 32] [--boost 0 10 50] [--epochs 5]

A TopK sparse autoencoder (Gao et al., 2024, *Scaling and evaluating sparse
autoencoders*) keeps the k largest latents of every sample: exactly a
k-winners layer. Its best-known failure is dead latents (units that never win);
duty-cycle boosting (Ahmad & Scheinkman, 2019) is the paper's cure for units
that never win. The model, on MNIST pixels in [0, 1] centred by the training
mean `m`:

    z     = KWinners(percent_on=k/n, relu=True)(W_enc (x - m) + b_enc)
    x_hat = W_dec z + b_dec + m        each latent's row of W_dec unit-norm
                                       (`keras.constraints.UnitNorm(axis=1)`)

`W_enc` starts as `W_dec^T` (Gao's tied initialization; the weights are then
trained separately). `boost_strength=0` is plain TopK; otherwise the boost is
constant (`boost_strength_factor=1`), `duty_cycle_period` as given. Inference
keeps k latents (`k_inference_factor=1`) with the layer's boosting, i.e. the
model exactly as trained. Reported on the 10,000 test images:

    normalized MSE  = sum ||x - x_hat||^2 / sum ||x - m||^2
    dead latents    = fraction of the n latents never active on the test set
    entropy         = binary_entropy(duty cycles) / max_entropy(n, k)
                      (keras_sparse.metrics, the layer's training duty cycles)

plus the normalized MSE with boosting switched off at inference (plain TopK on
the trained weights). Every `--eval-every` steps the dead-latent fraction on
the test set is recorded; the plot shows it against training steps.

Writes `<out>.json` (every run, with its curve, and the command) and
`<out>.png`; prints a Markdown table.
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

import keras  # noqa: E402
import keras_sparse as ks  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="directory of mnist.npz (else $KERAS_SPARSE_MNIST, else download)")
    parser.add_argument("--latents", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--k", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--boost", type=float, nargs="+", default=[0.0, 10.0, 50.0],
                        help="boost strengths; 0 is plain TopK")
    parser.add_argument("--duty-cycle-period", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-samples", type=int, default=None, help="first N training images (default all 60,000)")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between dead-latent measurements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="examples/results/topk_autoencoder")
    parser.add_argument("--replot", action="store_true", help="only redraw <out>.png from <out>.json")
    return parser.parse_args(argv)


def build_autoencoder(inputs_dim, latents, k, boost_strength, duty_cycle_period, seed):
    """The TopK autoencoder above; input and output are `x - m`."""
    rng = np.random.default_rng(seed)
    decoder_kernel = rng.normal(size=(latents, inputs_dim)).astype(np.float32)
    decoder_kernel /= np.linalg.norm(decoder_kernel, axis=1, keepdims=True)
    inputs = keras.Input((inputs_dim,))
    pre = keras.layers.Dense(latents, name="encoder")(inputs)
    codes = ks.KWinners(
        percent_on=k / latents,
        k_inference_factor=1.0,
        boost_strength=boost_strength,
        boost_strength_factor=1.0,
        duty_cycle_period=duty_cycle_period,
        relu=True,
        name="topk",
    )(pre)
    outputs = keras.layers.Dense(
        inputs_dim, kernel_constraint=keras.constraints.UnitNorm(axis=1), name="decoder"
    )(codes)
    model = keras.Model(inputs, outputs)
    model.get_layer("decoder").kernel.assign(decoder_kernel)
    model.get_layer("encoder").kernel.assign(decoder_kernel.T)
    return model


def codes_model(model):
    return keras.Model(model.input, model.get_layer("topk").output)


def dead_fraction(encoder, x, batch_size=1000):
    """Fraction of latents with no positive value on any row of `x` (inference)."""
    alive = [(encoder(x[s:s + batch_size], training=False).numpy() > 0).any(axis=0)
             for s in range(0, len(x), batch_size)]
    return float(1.0 - np.any(alive, axis=0).mean())


def normalized_mse(model, x, batch_size=1000):
    error = sum(float(np.sum((model(x[s:s + batch_size], training=False).numpy() - x[s:s + batch_size]) ** 2))
                for s in range(0, len(x), batch_size))
    return error / float(np.sum(x ** 2))


class DeadLatentCurve(keras.callbacks.Callback):
    """Records `(step, dead fraction on x)` every `every` training steps."""

    def __init__(self, x, every):
        super().__init__()
        self.x, self.every, self.step, self.points = x, every, 0, []

    def on_train_begin(self, logs=None):
        self.encoder = codes_model(self.model)
        self.points.append((0, dead_fraction(self.encoder, self.x)))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self.points.append((self.step, dead_fraction(self.encoder, self.x)))


def train_one(x_train, x_test, latents, k, boost, args):
    keras.utils.set_random_seed(args.seed)
    model = build_autoencoder(x_train.shape[1], latents, k, boost, args.duty_cycle_period, args.seed)
    model.compile(keras.optimizers.Adam(args.learning_rate), "mse")
    curve = DeadLatentCurve(x_test, args.eval_every)
    start = time.time()
    model.fit(x_train, x_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
              callbacks=[curve], verbose=0)
    seconds = time.time() - start
    topk = model.get_layer("topk")
    encoder = codes_model(model)
    curve.points.append((curve.step, dead_fraction(encoder, x_test)))
    result = {
        "latents": latents,
        "k": k,
        "boost_strength": boost,
        "normalized_mse": normalized_mse(model, x_test),
        "dead_fraction": dead_fraction(encoder, x_test),
        "entropy_ratio": float(ks.metrics.binary_entropy(topk.duty_cycles)
                               / ks.metrics.max_entropy(latents, k)),
        "train_seconds": round(seconds, 1),
        "steps": curve.step,
        "dead_curve": curve.points,
    }
    topk.boost_strength.assign(0.0)  # the same weights read as plain TopK
    result["normalized_mse_boost_off"] = normalized_mse(model, x_test)
    return result


def markdown_table(runs):
    lines = ["| latents n | k | boost strength | normalized MSE | NMSE, boost off at inference "
             "| dead latents | duty-cycle entropy / max |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['latents']} | {r['k']} | {r['boost_strength']:g} | {r['normalized_mse']:.4f} "
                     f"| {r['normalized_mse_boost_off']:.4f} | {100 * r['dead_fraction']:.1f}% "
                     f"| {r['entropy_ratio']:.3f} |")
    return "\n".join(lines)


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes, ks_ = sorted({r["latents"] for r in runs}), sorted({r["k"] for r in runs})
    fig, axes = plt.subplots(len(sizes), len(ks_), figsize=(3.4 * len(ks_), 2.6 * len(sizes)),
                             sharex=True, sharey=True, squeeze=False)
    for (row, latents), (col, k) in ((a, b) for a in enumerate(sizes) for b in enumerate(ks_)):
        ax = axes[row][col]
        for r in runs:
            if (r["latents"], r["k"]) == (latents, k):
                steps, dead = zip(*r["dead_curve"])
                label = "TopK" if r["boost_strength"] == 0 else f"boost {r['boost_strength']:g}"
                ax.plot(steps, 100 * np.asarray(dead), label=label)
        ax.set_title(f"n={latents}, k={k}", fontsize=9)
        if row == len(sizes) - 1:
            ax.set_xlabel("training step")
        if col == 0:
            ax.set_ylabel("dead latents (%)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("TopK autoencoders on MNIST: latents never active on the test set", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.replot:
        with open(args.out + ".json") as f:
            runs = json.load(f)["runs"]
        plot(runs, args.out + ".png")
        return runs
    (x_train, _), (x_test, _) = ks.datasets.load_mnist(args.data_dir)
    x_train = ks.datasets.to_unit_interval(x_train).reshape(len(x_train), -1)
    x_test = ks.datasets.to_unit_interval(x_test).reshape(len(x_test), -1)
    if args.train_samples:
        x_train = x_train[:args.train_samples]
    mean = x_train.mean(axis=0)
    x_train, x_test = x_train - mean, x_test - mean
    runs = []
    for latents in args.latents:
        for k in args.k:
            for boost in args.boost:
                result = train_one(x_train, x_test, latents, k, boost, args)
                runs.append(result)
                print(markdown_table([result]).splitlines()[-1], f"({result['train_seconds']} s)", flush=True)
    print()
    print(markdown_table(runs))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"command": "python examples/topk_autoencoder.py " + " ".join(argv),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "keras": keras.__version__, "seed": args.seed, "runs": runs}, f, indent=1)
    plot(runs, args.out + ".png")
    return runs


if __name__ == "__main__":
    main()
