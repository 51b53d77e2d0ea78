"""Independent PyTorch cross-check of the MNIST "Sparse CNN-2" (not run in CI).

Ahmad & Scheinkman 2019, "How Can We Be So Dense?".  Written from the math in
docs/semantics.md and docs/mnist.md ("The paper's protocol") only; it shares no code with keras_sparse or with
Numenta's libraries.  It answers one question: does a plain PyTorch
implementation of the same network and training protocol, trained on a CPU,
show the same test accuracy / noise score, and the same dependence on
k_inference_factor, as the Keras implementation?

Network: Conv(1->32, 5x5) -> MaxPool 2 -> KWinners2D(400 of 4608) ->
Conv(32->64, 5x5) -> MaxPool 2 -> KWinners2D(300 of 1024) -> Linear(1024->700,
30% non-zero weights per unit) -> KWinners(100 of 700) -> Linear(700->10).
SGD lr 0.02 (x0.8 per epoch), no momentum, 10 epochs, batch 4 in epoch 0 and
64 afterwards, boost strength 1.5 (x0.85 per epoch), duty-cycle period 1000.
After training, the same weights are evaluated with k_inference_factor 1.0,
1.25 and 1.5 (clean test accuracy and noise score over 11 noise levels).

torch is NOT a dependency of keras_sparse; use a separate environment:

    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch==2.13.0 numpy
    /work/venv-torch/bin/python examples/torch_crosscheck/mnist_sparse_cnn2_torch.py \
        --seed 0 --out torch_sparse_cnn2_seed0.json

Quick smoke test: add ``--train-samples 2000 --epochs 1 --test-samples 1000``.

Weight swap (are the two inference paths the same function?): export a trained
keras_sparse Sparse CNN-2 with ``export_keras_weights.py`` (in the Keras
environment) and evaluate it here without training:

    python examples/torch_crosscheck/export_keras_weights.py model.keras weights.npz
    /work/venv-torch/bin/python examples/torch_crosscheck/mnist_sparse_cnn2_torch.py \
        --weights weights.npz --out torch_eval.json

Clean test accuracy then equals keras_sparse's at every k_inference_factor
(the noisy sets differ: this script draws its own noise).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("This cross-check needs PyTorch, which is not a dependency of keras_sparse.\n"
             "Install it in a separate venv: python3 -m venv /work/venv-torch && "
             "/work/venv-torch/bin/pip install torch numpy")

MEAN, STD = 0.1307, 0.3081
NOISE_LEVELS = [round(0.05 * i, 2) for i in range(11)]


class KWinners(nn.Module):
    """k-winners-take-all with boosting over all units of a sample (docs/semantics.md).

    Works for (batch, n) and (batch, c, h, w); for 4-d inputs the duty cycles are
    per channel and the count of active units is divided by h*w.
    """

    def __init__(self, n_dutys, k, boost_strength=1.5, period=1000):
        super().__init__()
        self.k, self.k_inference, self.period = k, k, period
        self.register_buffer("duty", torch.zeros(n_dutys))
        self.boost_strength = boost_strength
        self.learning_iterations = 0

    def forward(self, x):
        k = self.k if self.training else self.k_inference
        d = self.duty.view(1, -1, 1, 1) if x.dim() == 4 else self.duty.view(1, -1)
        with torch.no_grad():
            boosted = x * torch.exp(-self.boost_strength * d)
            idx = torch.topk(boosted.flatten(1), k, dim=1).indices
            mask = torch.zeros_like(x).flatten(1).scatter_(1, idx, 1.0).view_as(x)
        y = x * mask  # unboosted value at the winners; gradient = upstream * mask
        if self.training:
            with torch.no_grad():
                b = x.shape[0]
                self.learning_iterations += b
                p = min(self.period, self.learning_iterations)
                active = (y > 0).float()
                if x.dim() == 4:
                    count = active.sum(dim=(0, 2, 3)) / (x.shape[2] * x.shape[3])
                else:
                    count = active.sum(dim=0)
                self.duty.mul_(p - b).add_(count).div_(p)
        return y


class SparseLinear(nn.Linear):
    """Linear layer where each output unit keeps exactly round(density*in) weights."""

    def __init__(self, n_in, n_out, density, generator):
        super().__init__(n_in, n_out)
        n_on = round(density * n_in)
        mask = torch.zeros(n_out, n_in)
        for j in range(n_out):
            mask[j, torch.randperm(n_in, generator=generator)[:n_on]] = 1.0
        self.register_buffer("mask", mask)
        bound = 1.0 / math.sqrt(n_on)  # true fan-in
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.uniform_(-bound, bound, generator=generator)
            self.rezero()

    @torch.no_grad()
    def rezero(self):
        self.weight.mul_(self.mask)


class SparseCNN2(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5)
        self.kw1 = KWinners(32, 400)          # of 32*12*12 = 4608
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.kw2 = KWinners(64, 300)          # of 64*4*4 = 1024
        self.fc1 = SparseLinear(1024, 700, 0.3, generator)
        self.kw3 = KWinners(700, 100)
        self.fc2 = nn.Linear(700, 10)
        self.kws = [self.kw1, self.kw2, self.kw3]

    def forward(self, x):
        x = self.kw1(F.max_pool2d(self.conv1(x), 2))
        x = self.kw2(F.max_pool2d(self.conv2(x), 2))
        x = self.kw3(self.fc1(x.flatten(1)))
        return self.fc2(x)

    def set_k_inference_factor(self, f):
        for kw in self.kws:
            kw.k_inference = round(kw.k * f)


def load_weights(model, path):
    """Weights, masks, duty cycles and current boost strengths from an `.npz`
    written by export_keras_weights.py (PyTorch layouts)."""
    w = np.load(path)
    state = model.state_dict()
    for key in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
        if tuple(w[key].shape) != tuple(state[key].shape):
            raise ValueError(f"{path}: {key} has shape {w[key].shape}, expected {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(w[key].astype(np.float32))
    state["fc1.mask"] = (state["fc1.weight"] != 0).float()
    for i, kw in enumerate(model.kws, 1):
        state[f"kw{i}.duty"] = torch.from_numpy(w[f"kw{i}.duty"].astype(np.float32))
    model.load_state_dict(state)
    for i, kw in enumerate(model.kws, 1):
        kw.boost_strength = float(w[f"kw{i}.boost_strength"])


def normalize(x01):
    return ((x01 - MEAN) / STD).astype(np.float32).reshape(-1, 1, 28, 28)


def add_noise(x01, p, rng):
    """Set int(784*p) distinct random pixels of each image to MEAN + 2*STD."""
    x = x01.reshape(len(x01), 784).copy()
    m = int(784 * p)
    if m:
        idx = np.argsort(rng.random((len(x), 784)), axis=1)[:, :m]
        np.put_along_axis(x, idx, MEAN + 2 * STD, axis=1)
    return x.reshape(x01.shape)


@torch.no_grad()
def n_correct(model, x, y, bs=1000):
    model.eval()
    c = 0
    for i in range(0, len(x), bs):
        c += (model(torch.from_numpy(x[i:i + bs])).argmax(1) == torch.from_numpy(y[i:i + bs])).sum().item()
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="/work/shared/datasets/mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise-seed", type=int, default=1234)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--train-samples", type=int, default=None)
    ap.add_argument("--test-samples", type=int, default=None)
    # 1 thread by default: on the shared 2-core machine, 2 OpenMP threads measured
    # ~50x slower per step (324 vs 6 ms at batch 4) because of spin-waiting under load.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", default=None,
                    help="evaluate these weights (export_keras_weights.py) instead of training")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.weights:
        a.epochs = 0
    out = a.out or f"torch_sparse_cnn2_seed{a.seed}.json"
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()

    d = np.load(os.path.join(a.data_dir, "mnist.npz"))
    xtr01, ytr = d["x_train"][:a.train_samples] / 255.0, d["y_train"][:a.train_samples].astype(np.int64)
    xte01, yte = d["x_test"][:a.test_samples] / 255.0, d["y_test"][:a.test_samples].astype(np.int64)
    xtr = torch.from_numpy(normalize(xtr01))
    ytr_t = torch.from_numpy(ytr)
    xte = normalize(xte01)

    g = torch.Generator().manual_seed(a.seed)
    model = SparseCNN2(g)
    if a.weights:
        load_weights(model, a.weights)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.0)
    history = []
    for epoch in range(a.epochs):
        te = time.time()
        lr = 0.02 * 0.8 ** epoch
        for grp in opt.param_groups:
            grp["lr"] = lr
        bs = 4 if epoch == 0 else 64
        model.train()
        perm = torch.from_numpy(rng.permutation(len(xtr)))
        correct, loss_sum = 0, 0.0
        for i in range(0, len(perm), bs):
            b = perm[i:i + bs]
            logits = model(xtr[b])
            loss = F.cross_entropy(logits, ytr_t[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.fc1.rezero()
            correct += (logits.argmax(1) == ytr_t[b]).sum().item()
            loss_sum += loss.item() * len(b)
        model.set_k_inference_factor(1.5)
        test_acc = n_correct(model, xte, yte) / len(yte)
        h = dict(epoch=epoch, lr=lr, batch_size=bs, boost_strength=model.kw1.boost_strength,
                 train_acc_running=correct / len(perm), train_loss_running=loss_sum / len(perm),
                 test_acc_kif1_5=test_acc, seconds=time.time() - te)
        history.append(h)
        print(json.dumps(h), flush=True)
        for kw in model.kws:
            kw.boost_strength *= 0.85

    # Same weights, three k_inference_factors; the noisy sets are built once per level.
    factors = [1.0, 1.25, 1.5]
    noise_rng = np.random.default_rng(a.noise_seed)
    per_level = {f: [] for f in factors}
    for p in NOISE_LEVELS:
        xn = normalize(add_noise(xte01, p, noise_rng))
        for f in factors:
            model.set_k_inference_factor(f)
            per_level[f].append(n_correct(model, xn, yte))
    results = {}
    for f in factors:
        model.set_k_inference_factor(f)
        results[str(f)] = dict(k_inference=[kw.k_inference for kw in model.kws],
                               test_acc=n_correct(model, xte, yte) / len(yte),
                               noise_score=sum(per_level[f]),
                               correct_per_noise_level=per_level[f])
        print(f"k_inference_factor {f}: k_inference {results[str(f)]['k_inference']} "
              f"test acc {100 * results[str(f)]['test_acc']:.2f}%  "
              f"noise score {results[str(f)]['noise_score']} / {11 * len(yte)}", flush=True)
    wall = time.time() - t0
    print(f"wall time {wall:.0f} s")
    rec = dict(weights=a.weights, seed=a.seed, noise_seed=a.noise_seed, torch_version=torch.__version__,
               command=" ".join([sys.executable] + sys.argv), args=vars(a), history=history,
               results=results, duty_cycles_mean=[kw.duty.mean().item() for kw in model.kws],
               wall_time_s=wall)
    with open(out, "w") as fh:
        json.dump(rec, fh, indent=1)


if __name__ == "__main__":
    main()
