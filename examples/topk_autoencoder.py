"""TopK sparse autoencoders built from keras_sparse layers, with and without
boosting or the AuxK loss against dead latents.

    python examples/topk_autoencoder.py --data-dir ../shared/datasets/mnist \
        [--latents 256 1024 4096] [--k 8 32] [--boost 0 10 50] [--aux-k 0 256] [--batch-topk] [--lifetime] \
        [--epochs 5]

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
trained separately). `--decoder-gradient orthogonal` also removes, before
each step, the part of every decoder row's gradient parallel to the row
(Gao et al.'s unit-norm decoder: with `u_i = W_dec[i] / ||W_dec[i]||`,
`g_i <- g_i - (g_i . u_i) u_i`, the `UnitNormDecoder` layer below), so the
step moves the row along the unit sphere and the renormalization after it
changes little; `full` (default) leaves the gradient as it is.
`boost_strength=0` is plain TopK; otherwise the boost is
constant (`boost_strength_factor=1`), `duty_cycle_period` as given. Inference
keeps k latents (`k_inference_factor=1`) with the layer's boosting, i.e. the
model exactly as trained. A boost strength above the layer's bound
(`MAX_BOOST_STRENGTH`, 50) measures what the bound costs: the layer is built
at 50 and its `boost_strength` variable set to the value after construction
(nothing is saved). Its factors `exp(-b d)` underflow to 0 for duty cycles
`d > 87 / b`, and with `relu=True` a latent whose boosted value is 0 cannot
win, so the busiest latents sit out rather than tie.

`--aux-k k_aux` (> 0) adds Gao et al.'s AuxK loss (the `AuxK` layer below):
the top `k_aux` *dead* latents of each sample (no activation in the last
`--aux-dead-after` training samples) reconstruct the main model's residual,

    e     = stop_gradient(x - x_hat)
    e_hat = W_dec z_aux            z_aux: the k_aux largest positive encoder
                                   pre-activations among the dead latents
    loss  = mse(x, x_hat) + alpha * mean((e - e_hat)^2)    (0 with no dead latent)

with `alpha = --aux-alpha` (1/32), so the gradient reaches the dead latents'
encoder and decoder weights.

`--features-from MODEL.keras` trains the same autoencoders on a trained
MNIST classifier's penultimate activations instead of pixels: the input of
the model's last layer (for the shipped Dense CNN-2, its 1,000 hidden ReLU
units) on the normalized images, centred by their training mean in the same
way.

`--batch-topk` adds, for each size, k and k_aux, a run whose latent layer is
`keras_sparse.layers.BatchTopK(k)` (Bussmann et al., 2024) instead of
`KWinners`: the `k * batch` largest positive latents of the whole batch in
training, its learned threshold at inference (no boosting, no duty cycles:
its entropy is not reported).

`--lifetime` adds, for each size, k and k_aux, a run with Makhzani & Frey's
WTA lifetime sparsity (2015) in training instead of TopK (the
`LifetimeTopK` layer below):

    training:   z = LifetimeSparsity(percent_on=k/n)(relu(pre))
                    every latent keeps its max(1, round(k/n * B)) largest
                    values of the batch of B, so no latent can die in training
    inference:  z = the k largest of relu(pre) per sample (ties kept)

so the test set is reconstructed from k latents per sample, like every
other run; `normalized_mse_training_form` is the test set's normalized MSE
with the training rule instead (lifetime sparsity over test batches of
`--batch-size`), the codes the decoder was trained on. At a batch `B` with
`k/n * B < 1` each latent still keeps one value per batch: the training
codes are then denser than k per sample (`n / B` on average). No duty
cycles: its entropy is not reported.

Reported on the 10,000 test images:

    normalized MSE  = sum ||x - x_hat||^2 / sum ||x - m||^2
    dead latents    = fraction of the n latents never active on the test set
    entropy         = binary_entropy(duty cycles) / max_entropy(n, k)
                      (keras_sparse.metrics, the layer's training duty cycles)

plus the normalized MSE with boosting switched off at inference (plain TopK on
the trained weights), and where the dead latents stand (`why_dead`): the
fraction of them with a positive encoder pre-activation on some test image
(AuxK can only train those), the median of their largest pre-activation, and
the median over test images of the k-th largest pre-activation, the value
a latent has to beat to win. Every `--eval-every` steps the dead-latent
fraction on the test set is recorded; the plot shows it against training
steps.

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
from keras import ops  # noqa: E402

import keras_sparse as ks  # noqa: E402
from keras_sparse._validation import MAX_BOOST_STRENGTH  # noqa: E402
from keras_sparse.selection import kth_largest  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="directory of mnist.npz (else $KERAS_SPARSE_MNIST, else download)")
    parser.add_argument("--latents", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--k", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--boost", type=float, nargs="*", default=[0.0, 10.0, 50.0],
                        help="boost strengths of the TopK runs (none given: no TopK run); 0 is plain TopK; "
                             "above 50, the layer's bound, set past it (see above)")
    parser.add_argument("--aux-k", type=int, nargs="+", default=[0],
                        help="k_aux of the AuxK loss; 0 is no AuxK loss")
    parser.add_argument("--aux-alpha", type=float, default=1 / 32, help="weight of the AuxK loss")
    parser.add_argument("--aux-dead-after", type=int, default=10000,
                        help="AuxK: a latent is dead after this many training samples without activation")
    parser.add_argument("--batch-topk", action="store_true",
                        help="also train BatchTopK latent layers (one run per size, k and k_aux)")
    parser.add_argument("--lifetime", action="store_true",
                        help="also train with WTA lifetime sparsity, TopK at inference (one run per size, k and k_aux)")
    parser.add_argument("--decoder-gradient", choices=("full", "orthogonal"), default="full",
                        help="orthogonal: remove each decoder row's gradient component parallel to the row")
    parser.add_argument("--duty-cycle-period", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-samples", type=int, default=None,
                        help="first N training images (default all 60,000)")
    parser.add_argument("--features-from", default=None, metavar="MODEL.keras",
                        help="inputs: this MNIST classifier's penultimate activations instead of pixels")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between dead-latent measurements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="examples/results/topk_autoencoder")
    parser.add_argument("--replot", action="store_true", help="only redraw <out>.png from <out>.json")
    args = parser.parse_args(argv)
    if not (args.boost or args.batch_topk or args.lifetime):
        parser.error("nothing to train: give --boost values, --batch-topk or --lifetime")
    return args


class LifetimeTopK(keras.layers.Layer):
    """WTA lifetime sparsity in training, TopK at inference (see the module
    docstring): `LifetimeSparsity(k / n)` on `relu(pre)` in a training call,
    the `k` largest of `relu(pre)` per sample (ties kept) otherwise."""

    def __init__(self, k, **kwargs):
        super().__init__(**kwargs)
        self.k = k

    def build(self, input_shape):
        self.lifetime = ks.layers.LifetimeSparsity(percent_on=self.k / input_shape[-1])
        self.lifetime.build(input_shape)

    def call(self, pre, training=None):
        if training:
            return self.lifetime(ops.relu(pre), training=True)
        no_boost = ops.zeros((pre.shape[-1],), pre.dtype)  # the library's winner rule, plain TopK
        return ks.ops.kwinners(pre, no_boost, self.k, 0.0, relu=True, differentiable=False)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


class AuxK(keras.layers.Layer):
    """Gao et al.'s AuxK loss; passes the reconstruction through unchanged.

    Called on `[x, pre, codes, x_hat]` (input, encoder pre-activations, TopK
    codes, reconstruction), with the model's decoder layer given at
    construction. State: `samples_since_active` (int32, one per latent). A
    training call with batch `B` updates it and adds
    `alpha * auxk_loss(...)` to the model's losses:

        samples_since_active = 0 where the latent is > 0 in some sample of the
                               batch, else samples_since_active + B
        dead = samples_since_active >= dead_after

    Inference adds nothing and changes nothing.
    """

    def __init__(self, decoder, k_aux, alpha=1 / 32, dead_after=10000, **kwargs):
        super().__init__(**kwargs)
        self.decoder, self.k_aux, self.alpha, self.dead_after = decoder, k_aux, alpha, dead_after

    def build(self, input_shapes):
        self.samples_since_active = self.add_weight(
            name="samples_since_active", shape=(input_shapes[1][-1],), initializer="zeros",
            dtype="int32", trainable=False)

    def call(self, inputs, training=None):
        x, pre, codes, x_hat = inputs
        if not training:
            return x_hat
        active = ops.any(codes > 0, axis=0)
        since = ops.where(active, 0, self.samples_since_active + ops.shape(codes)[0])
        self.samples_since_active.assign(since)
        dead = since >= self.dead_after
        self.add_loss(self.alpha * auxk_loss(x, pre, x_hat, dead, self.decoder.decoding_kernel(), self.k_aux))
        return x_hat


def auxk_loss(x, pre, x_hat, dead, decoder_kernel, k_aux):
    """`mean((e - e_hat)^2)` with `e = stop_gradient(x - x_hat)` and
    `e_hat = z_aux @ decoder_kernel`, `z_aux` each sample's `k_aux` largest
    positive values of `pre` among the `dead` latents (ties with the k_aux-th
    kept); 0 when no latent is dead."""
    candidates = ops.where(dead, pre, float("-inf"))
    kth = kth_largest(candidates, min(k_aux, pre.shape[-1]), portable=False)
    z_aux = ops.where(ops.logical_and(candidates >= kth, candidates > 0), pre, 0.0)
    residual = ops.stop_gradient(x - x_hat)
    loss = ops.mean(ops.square(residual - ops.matmul(z_aux, decoder_kernel)))
    return ops.where(ops.any(dead), loss, 0.0)


def without_parallel_gradient(kernel):
    """`kernel` `(latents, inputs)` as it is, whose gradient loses, row by
    row, its component along the row: `g_i - (g_i . u_i) u_i`, `u_i` the row
    scaled to unit norm."""
    @ops.custom_gradient
    def rows(w):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            unit = w / ops.sqrt(ops.sum(ops.square(w), axis=1, keepdims=True))
            return upstream - ops.sum(upstream * unit, axis=1, keepdims=True) * unit

        return ops.multiply(w, 1.0), grad

    return rows(ops.copy(kernel))  # a tensor: TensorFlow's custom gradient takes no variable


class UnitNormDecoder(keras.layers.Dense):
    """A linear `Dense` decoder whose rows (one per latent) are unit-norm after
    every step (`UnitNorm(axis=1)`), and with `orthogonal=True` stepped along
    the sphere: every use of its kernel (`decoding_kernel`: the decoding and
    the AuxK loss) has `without_parallel_gradient`'s gradient."""

    def __init__(self, units, orthogonal=False, **kwargs):
        kwargs["kernel_constraint"] = keras.constraints.UnitNorm(axis=1)
        super().__init__(units, **kwargs)
        self.orthogonal = orthogonal

    def decoding_kernel(self):
        return without_parallel_gradient(self.kernel) if self.orthogonal else self.kernel

    def call(self, inputs):
        return ops.matmul(inputs, self.decoding_kernel()) + self.bias

    def get_config(self):
        return {**super().get_config(), "orthogonal": self.orthogonal}


def build_autoencoder(inputs_dim, latents, k, boost_strength, duty_cycle_period, seed,
                      aux_k=0, aux_alpha=1 / 32, aux_dead_after=10000, latent="topk", orthogonal=False):
    """The TopK autoencoder above; input and output are `x - m`. With
    `aux_k > 0` the output passes through an `AuxK` layer (named "auxk");
    `latent="batchtopk"`: a `BatchTopK(k)` latent layer, `"lifetime"`: a
    `LifetimeTopK(k)` (`boost_strength` and `duty_cycle_period` unused for
    both). The latent layer is named "topk";
    `orthogonal`: the decoder's gradient without its parallel components."""
    rng = np.random.default_rng(seed)
    decoder_kernel = rng.normal(size=(latents, inputs_dim)).astype(np.float32)
    decoder_kernel /= np.linalg.norm(decoder_kernel, axis=1, keepdims=True)
    inputs = keras.Input((inputs_dim,))
    pre = keras.layers.Dense(latents, name="encoder")(inputs)
    if latent == "batchtopk":
        codes = ks.layers.BatchTopK(k, name="topk")(pre)
    elif latent == "lifetime":
        codes = LifetimeTopK(k, name="topk")(pre)
    else:
        codes = ks.KWinners(
            percent_on=k / latents,
            k_inference_factor=1.0,
            boost_strength=min(boost_strength, MAX_BOOST_STRENGTH),
            boost_strength_factor=1.0,
            duty_cycle_period=duty_cycle_period,
            relu=True,
            name="topk",
        )(pre)
    decoder = UnitNormDecoder(inputs_dim, orthogonal, name="decoder")
    outputs = decoder(codes)
    if aux_k:
        outputs = AuxK(decoder, aux_k, aux_alpha, aux_dead_after, name="auxk")([inputs, pre, codes, outputs])
    model = keras.Model(inputs, outputs)
    if latent == "topk" and boost_strength > MAX_BOOST_STRENGTH:  # past the bound: see the module docstring
        model.get_layer("topk").boost_strength.assign(boost_strength)
    model.get_layer("decoder").kernel.assign(decoder_kernel)
    model.get_layer("encoder").kernel.assign(decoder_kernel.T)
    return model


def codes_model(model):
    return keras.Model(model.input, model.get_layer("topk").output)


def alive_latents(encoder, x, batch_size=1000):
    """Boolean `(n,)`: the latents with a positive value on some row of `x` (inference)."""
    return np.any([(encoder(x[s:s + batch_size], training=False).numpy() > 0).any(axis=0)
                   for s in range(0, len(x), batch_size)], axis=0)


def dead_fraction(encoder, x, batch_size=1000):
    """Fraction of latents with no positive value on any row of `x` (inference)."""
    return float(1.0 - alive_latents(encoder, x, batch_size).mean())


def why_dead(model, x, k, dead, batch_size=1000):
    """Where the dead latents of `model` stand on `x` (inference): with
    `pre` the encoder's pre-activations and `dead` (boolean `(n,)`) the
    latents never active on `x` (`~alive_latents`),

        dead_with_positive_pre = fraction of `dead` with pre > 0 on some row
                                 (the only dead latents AuxK's z_aux reaches)
        dead_max_pre_median    = median over `dead` of the latent's max pre
        kth_pre_median         = median over rows of the row's k-th largest pre
                                 (what a latent has to beat to win, unboosted)

    (the first two None when nothing is dead)."""
    encoder = keras.Model(model.input, model.get_layer("encoder").output)
    max_pre, kth = np.full(dead.shape, -np.inf, np.float32), []
    for s in range(0, len(x), batch_size):
        pre = encoder(x[s:s + batch_size], training=False).numpy()
        max_pre = np.maximum(max_pre, pre.max(axis=0))
        kth.append(-np.partition(-pre, k - 1, axis=1)[:, k - 1])
    return {
        "dead_with_positive_pre": float((max_pre[dead] > 0).mean()) if dead.any() else None,
        "dead_max_pre_median": float(np.median(max_pre[dead])) if dead.any() else None,
        "kth_pre_median": float(np.median(np.concatenate(kth))),
    }


def normalized_mse(model, x, batch_size=1000, training=False):
    error = sum(float(np.sum((model(x[s:s + batch_size], training=training).numpy() - x[s:s + batch_size]) ** 2))
                for s in range(0, len(x), batch_size))
    return error / float(np.sum(x ** 2))


def training_form_nmse(model, x, batch_size):
    """`normalized_mse` of `x` with the latent layer in its training form on
    batches of `batch_size` (lifetime sparsity: the codes the decoder was
    trained on); the AuxK layer, if any, left out."""
    layers = [model.get_layer(name) for name in ("encoder", "topk", "decoder")]
    return normalized_mse(keras.Sequential(layers), x, batch_size, training=True)


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


def train_one(x_train, x_test, latents, k, boost, args, aux_k=0, latent="topk"):
    """One run; `boost` is ignored (recorded as None) unless `latent="topk"`."""
    keras.utils.set_random_seed(args.seed)
    model = build_autoencoder(x_train.shape[1], latents, k, boost, args.duty_cycle_period, args.seed,
                              aux_k, args.aux_alpha, args.aux_dead_after, latent,
                              args.decoder_gradient == "orthogonal")
    model.compile(keras.optimizers.Adam(args.learning_rate), "mse")
    curve = DeadLatentCurve(x_test, args.eval_every)
    start = time.time()
    model.fit(x_train, x_train, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
              callbacks=[curve], verbose=0)
    seconds = time.time() - start
    topk = model.get_layer("topk")
    alive = alive_latents(codes_model(model), x_test)
    curve.points.append((curve.step, float(1.0 - alive.mean())))
    result = {
        "latents": latents,
        "k": k,
        "latent": latent,
        "boost_strength": boost if latent == "topk" else None,
        "aux_k": aux_k,
        "aux_alpha": args.aux_alpha if aux_k else None,
        "aux_dead_after": args.aux_dead_after if aux_k else None,
        "decoder_gradient": args.decoder_gradient,
        "normalized_mse": normalized_mse(model, x_test),
        "dead_fraction": curve.points[-1][1],
        "train_seconds": round(seconds, 1),
        "steps": curve.step,
        "dead_curve": curve.points,
        **why_dead(model, x_test, k, ~alive),
    }
    if latent != "topk":
        result.update(entropy_ratio=None, normalized_mse_boost_off=result["normalized_mse"])
        if latent == "batchtopk":
            result["threshold"] = float(topk.threshold.numpy())
        else:
            result["normalized_mse_training_form"] = training_form_nmse(model, x_test, args.batch_size)
        return result
    result["entropy_ratio"] = float(ks.metrics.binary_entropy(topk.duty_cycles) / ks.metrics.max_entropy(latents, k))
    topk.boost_strength.assign(0.0)  # the same weights read as plain TopK
    result["normalized_mse_boost_off"] = normalized_mse(model, x_test)
    return result


def method_label(run):
    """The latent layer of a run, as the table and the plot name it."""
    latent = run.get("latent", "topk")
    if latent == "batchtopk":
        return "BatchTopK"
    if latent == "lifetime":
        return "Lifetime"
    return "TopK" if run["boost_strength"] == 0 else f"boost {run['boost_strength']:g}"


def markdown_table(runs):
    lines = ["| latents n | k | boost strength | AuxK k_aux | normalized MSE | NMSE, boost off at inference "
             "| dead latents | duty-cycle entropy / max |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        boost = f"{r['boost_strength']:g}" if r.get("latent", "topk") == "topk" else method_label(r)
        entropy = "–" if r["entropy_ratio"] is None else f"{r['entropy_ratio']:.3f}"
        lines.append(f"| {r['latents']} | {r['k']} | {boost} | {r.get('aux_k', 0)} "
                     f"| {r['normalized_mse']:.4f} "
                     f"| {r['normalized_mse_boost_off']:.4f} | {100 * r['dead_fraction']:.1f}% "
                     f"| {entropy} |")
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
                label = method_label(r) + (f" + AuxK {r['aux_k']}" if r.get("aux_k") else "")
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


def inputs(images, features_from=None):
    """MNIST `images` (uint8) as the autoencoder's rows: pixels in [0, 1], or
    with `features_from` (a `.keras` classifier) the input of its last layer
    on the normalized images."""
    pixels = ks.datasets.to_unit_interval(images)
    if features_from is None:
        return pixels.reshape(len(pixels), -1)
    classifier = keras.models.load_model(features_from)
    penultimate = keras.Model(classifier.input, classifier.layers[-1].input)
    return penultimate.predict(ks.datasets.normalize(pixels), batch_size=1000, verbose=0).reshape(len(pixels), -1)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.replot:
        with open(args.out + ".json") as f:
            runs = json.load(f)["runs"]
        plot(runs, args.out + ".png")
        return runs
    (x_train, _), (x_test, _) = ks.datasets.load_mnist(args.data_dir)
    if args.train_samples:
        x_train = x_train[:args.train_samples]
    x_train, x_test = (inputs(x, args.features_from) for x in (x_train, x_test))
    mean = x_train.mean(axis=0)
    x_train, x_test = x_train - mean, x_test - mean
    runs = []
    for latents in args.latents:
        for k in args.k:
            methods = ([("topk", boost) for boost in args.boost] + [("batchtopk", None)] * args.batch_topk
                       + [("lifetime", None)] * args.lifetime)
            for latent, boost in methods:
                for aux_k in args.aux_k:
                    result = train_one(x_train, x_test, latents, k, boost, args, aux_k, latent)
                    runs.append(result)
                    print(markdown_table([result]).splitlines()[-1], f"({result['train_seconds']} s)", flush=True)
    print()
    print(markdown_table(runs))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"command": "python examples/topk_autoencoder.py " + " ".join(argv),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                   "keras": keras.__version__, "seed": args.seed,
                   "inputs": args.features_from or "pixels", "runs": runs}, f, indent=1)
    plot(runs, args.out + ".png")
    return runs


if __name__ == "__main__":
    main()
