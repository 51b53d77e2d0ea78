"""Controls for the paper's MNIST claims (docs/controls.md): each network is
Sparse CNN-2 or Dense CNN-2 with one thing changed.

| control                       | from         | the change                                              |
|-------------------------------|--------------|---------------------------------------------------------|
| `dense_twin`                  | Dense CNN-2  | Sparse CNN-2's layer sizes, 32/64 filters and 700 hidden |
|                               |              | units, with ReLU and dense weights                       |
| `dense_cnn2_dropout`          | Dense CNN-2  | `Dropout(0.5)` after the hidden ReLU                     |
| `dense_cnn2_l2`               | Dense CNN-2  | L2 weight decay 5e-4 on every kernel and bias (coupled,  |
|                               |              | the gradient gains `5e-4 * w`, as PyTorch's SGD)         |
| `dense_cnn2_batch_norm`       | Dense CNN-2  | batch norm (no affine) after each conv and the hidden    |
|                               |              | layer, before the ReLU                                   |
| `dense_cnn2_shift`            | Dense CNN-2  | training images shifted by up to 2 pixels (augmentation, |
|                               |              | on the data, each epoch: the network is Dense CNN-2's;  |
|                               |              | `examples/mnist_noise.py`'s `--augment-shift`)           |
| `sparse_cnn2_drop_connect`    | Sparse CNN-2 | the hidden weights dropped at 70% by DropConnect, a      |
|                               |              | fresh mask each step, instead of one fixed mask (and,    |
|                               |              | as a dense layer, initialized for its 1,024 inputs)      |
| `sparse_cnn2_no_boost`        | Sparse CNN-2 | boost strength 0 (no lifetime sparsity at all)           |
| `sparse_cnn2_wta_lifetime`    | Sparse CNN-2 | no boosting; each k-winners layer followed by WTA        |
|                               |              | lifetime sparsity at its own `k / n` of the batch        |
| `sparse_cnn2_straight_through`| Sparse CNN-2 | k-winners gradient straight through (1 for every unit)   |

Each control trains with the hyper-parameters of the network it comes from
(`keras_sparse.models.MNIST_NETWORKS`): the dense twin and the Dense CNN-2
controls as Dense CNN-2 (SGD 0.01, momentum 0.9, 15 epochs, batch 64), the
Sparse CNN-2 controls as Sparse CNN-2 (SGD 0.02, no momentum, 10 epochs, the
first at batch 4). `CONTROL_NETWORKS` holds them with the two reference
networks, as a task's `networks` table.
"""

from keras_sparse._validation import check_float
from keras_sparse.models._cnn import K_INFERENCE_FACTOR, cnn
from keras_sparse.models.mnist import MNIST_BOOST_STRENGTH_FACTOR, MNIST_NETWORKS

SPARSE_CNN2_HIDDEN_SPARSITY = 0.7  # the fraction of Sparse CNN-2's hidden weights fixed at 0
CONTROL_WEIGHT_DECAY = 5e-4
CONTROL_DROPOUT = 0.5
CONTROL_SHIFT = 2

# name: (the network it comes from, title, `cnn` options, augmentation shift in pixels);
# the weight decay is a hyper-parameter (`CONTROL_NETWORKS`).
_CONTROLS = {
    "dense_cnn2": ("dense_cnn2", "Dense CNN-2", {}, 0),
    "sparse_cnn2": ("sparse_cnn2", "Sparse CNN-2", {}, 0),
    "dense_twin": ("dense_cnn2", "Equal-size dense twin (32/64, 700, ReLU)",
                   dict(conv_filters=[32, 64], hidden_units=700), 0),
    "dense_cnn2_dropout": ("dense_cnn2", "Dense CNN-2 + dropout 0.5", dict(dropout=CONTROL_DROPOUT), 0),
    "dense_cnn2_l2": ("dense_cnn2", "Dense CNN-2 + L2 5e-4", {}, 0),
    "dense_cnn2_batch_norm": ("dense_cnn2", "Dense CNN-2 + batch norm", dict(batch_norm=True), 0),
    "dense_cnn2_shift": ("dense_cnn2", "Dense CNN-2 + random shifts (2 px)", {}, CONTROL_SHIFT),
    "sparse_cnn2_drop_connect": ("sparse_cnn2", "Sparse CNN-2, DropConnect 0.7 for the fixed mask",
                                 dict(hidden_sparsity=None, hidden_drop_connect=SPARSE_CNN2_HIDDEN_SPARSITY), 0),
    "sparse_cnn2_no_boost": ("sparse_cnn2", "Sparse CNN-2, no boosting", dict(boost_strength=0.0), 0),
    "sparse_cnn2_wta_lifetime": ("sparse_cnn2", "Sparse CNN-2, WTA lifetime sparsity for boosting",
                                 dict(boost_strength=0.0, lifetime=True), 0),
    "sparse_cnn2_straight_through": ("sparse_cnn2", "Sparse CNN-2, straight-through gradient",
                                     dict(kwinners_gradient="straight_through"), 0),
}

# The paper's layers of the two networks, as `cnn` arguments.
_BASES = {
    "dense_cnn2": dict(conv_filters=[30, 30], conv_k=None, hidden_units=1000, hidden_k=None,
                       hidden_sparsity=None),
    "sparse_cnn2": dict(conv_filters=[32, 64], conv_k=[400, 300], hidden_units=700, hidden_k=100,
                        hidden_sparsity=SPARSE_CNN2_HIDDEN_SPARSITY),
}

CONTROL_NETWORKS = {
    name: {**MNIST_NETWORKS[base], "title": title, "paper_accuracy": None, "paper_noise_score": None,
           "from_network": base, "shift": shift,
           "weight_decay": CONTROL_WEIGHT_DECAY if name == "dense_cnn2_l2" else 0.0}
    for name, (base, title, _, shift) in _CONTROLS.items()
}
for _name in ("dense_cnn2", "sparse_cnn2"):
    CONTROL_NETWORKS[_name].update(paper_accuracy=MNIST_NETWORKS[_name]["paper_accuracy"],
                                   paper_noise_score=MNIST_NETWORKS[_name]["paper_noise_score"])


def build_control(network, initializer="pytorch", k_inference_factor=K_INFERENCE_FACTOR, hidden_block=None,
                  weight_decay=None):
    """The control (or reference network) named `network`, a key of
    `CONTROL_NETWORKS` (module docstring), fresh.

    The arguments are a task builder's: `k_inference_factor` for the
    networks with k-winners (ignored by the others), `hidden_block` must be
    None, and `weight_decay` None takes the control's own
    (`CONTROL_NETWORKS[network]["weight_decay"]`: 5e-4 for `dense_cnn2_l2`,
    else 0)."""
    if network not in _CONTROLS:
        raise ValueError(f"`network` must be one of {sorted(_CONTROLS)}. Received: network={network!r}")
    if hidden_block is not None:
        raise ValueError(f"The controls keep the paper's hidden weights: `hidden_block` must be None. "
                         f"Received: hidden_block={hidden_block!r}")
    check_float("k_inference_factor", k_inference_factor, 0, None, low_open=True)
    base, _, options, _ = _CONTROLS[network]
    layers = {**_BASES[base], **options}
    if weight_decay is None:
        weight_decay = CONTROL_NETWORKS[network]["weight_decay"]
    layers["weight_decay"] = check_float("weight_decay", weight_decay, 0, None)
    layers.setdefault("batch_norm", False)
    return cnn(f"mnist_{network}", (28, 28, 1), initializer=initializer,
               boost_strength_factor=MNIST_BOOST_STRENGTH_FACTOR, k_inference_factor=k_inference_factor,
               **layers)
