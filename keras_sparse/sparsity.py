"""How sparse a model is: weights, active units and multiplies, layer by layer.

`keras.Model.summary()` counts every masked weight of a `SparseDense` as a
parameter and knows nothing of k-winners. `summary(model)` prints, per layer,
the weights and how many of them are non-zero, the k of n units a k-winners
layer keeps, and the multiplies of one forward pass counted three ways (the
paper's point that sparse networks need far fewer multiplies); it returns the
same numbers as data (`sparsity_summary(model)` returns them without printing).

Definitions, for one sample and the inference path (`predict`):

- **weights** / **non-zero weights**: the values of the layer's trainable
  weights (kernel and bias, batch-norm scale and offset...), and how many of
  them are not exactly 0.0. Non-trainable state (k-winners duty cycles,
  batch-norm moving statistics, learned masks) is not counted. For a layer
  with `mask="learned"` the kernel counts the weights its current mask
  keeps (a weight RigL or SET has just grown is 0 but counted), here and in
  the multiplies below.
- **k-winners layers** (`keras_sparse.kwinners.kwinners_layers`): `n` units
  compete in each row, `k` of them win in training and `k_inference` at
  inference (the layer's public attributes, set at build). A sample's output
  of `S` values holds `S / n` rows (1 for `KWinners` and `KWinners2D(local=False)`,
  `h * w` for `KWinners2D(local=True)`), so its active units are

      active_training  = k * S / n
      active_inference = k_inference * S / n          (at most: a unit that
                                                       wins with the value 0 is inactive)

- **multiplies** are counted for the layers that multiply inputs by a kernel:
  `Dense`, `Conv1D/2D/3D`, `DepthwiseConv1D/2D` and their subclasses
  (`SparseDense`, `SparseConv1D`, `SparseConv2D`). With `K` the kernel, `P`
  the number of output positions (`1` for `Dense` on `(batch, features)`;
  `out_h * out_w` for a 2-D convolution; in general the output's values per
  sample divided by its channels) and `d` the input's activation density:

      dense                  = P * size(K)           # = P * fan_in * units
      sparse weights         = P * nonzero(K)      # kept(mask) for a learned mask
      sparse weights and act = P * nonzero(K) * d    # an expected value

  `size(K) = fan_in * units` for `Dense` and `kh * kw * (in / groups) * filters`
  for a convolution. Every output position is counted with the whole kernel,
  including those of `padding="same"` that overlap the zero padding (as most
  FLOP counters do). Bias adds, batch norm, pooling and the k-winners
  selection are not multiplies by weights and count 0.

- **activation density** `d` of a layer's input: `k_inference / n` when the
  input comes from a k-winners layer, possibly through layers that only move
  or copy values (`Flatten`, `Reshape`, `Permute`, dropout and noise layers,
  `Identity`); `1` otherwise (a model input, a ReLU, a pooling layer...:
  their zeros depend on the data, so they are counted as dense). The rule
  counts a multiply whenever its input value *can* be non-zero, averaged over
  the positions of the winners: each row of the input holds at most
  `k_inference` non-zero values of `n`, and if the winners were spread evenly
  over the input's positions, a fraction `k_inference / n` of the multiplies
  of every output position would read a non-zero input. For a `Dense` fed by
  a `KWinners` this is the expected number of multiplies over a uniformly
  random set of winners, `sum over winners i of nonzero(K[i, :])`; for a
  convolution fed by `KWinners2D` it assumes the winners are spread evenly
  over the image (they are not exactly: a border value feeds fewer output
  positions than a central one).

Input layers are not listed. A model nested in another (e.g. the members of
`keras_sparse.models.ensemble`) is listed layer by layer with its name as a prefix (`"member/conv1"`), its
input density 1. A layer called several times (shared) is counted once, for
its first call. Layers with a kernel of another kind (`EinsumDense`,
`Conv2DTranspose`, `SeparableConv2D`, recurrent layers) are listed with their
weights and `None` multiplies, and named in the totals' `uncounted_layers`.
"""

import math

import keras
import numpy as np

from keras_sparse.kwinners import kwinners_layers

# Layers that only move, copy or (in training) perturb their input: a zero of
# a k-winners output stays a zero through them at inference.
_PASS_THROUGH = (
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.Identity,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
)

# Layers whose multiplies are `P * size(kernel)` (see the module docstring).
_KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)

_TOTAL_KEYS = (
    "weights", "nonzero_weights", "multiplies_dense", "multiplies_sparse_weights", "multiplies_sparse",
)


def sparsity_summary(model):
    """Counts of weights, active units and multiplies of `model`, per layer
    (see the module docstring for the exact definitions).

    Args:
        model: a built Keras model (Functional or Sequential; nested models
            are expanded).

    Returns:
        A dict with

        - `"layers"`: one dict per layer, in the model's order: `name`,
          `type`, `output_shape` (without the batch axis), `weights`,
          `nonzero_weights`, `k`, `k_inference`, `n`, `active_training`,
          `active_inference` (None except for k-winners layers),
          `input_density`, `multiplies_dense`, `multiplies_sparse_weights`
          (ints) and `multiplies_sparse` (a float, an expected value); the
          multiplies are 0 for layers without a kernel and None for a kernel
          layer of a kind not counted. With an axis of unknown length (a
          sequence `Input((None, 8))`) `output_shape` holds None, and the
          per-sample counts (`active_*`, the multiplies of layers with
          weights) are None.
        - `"total"`: the sums of `weights`, `nonzero_weights` and the three
          multiply counts over all layers, and `uncounted_layers` (names).

    Raises:
        ValueError: if `model` is not a built Keras model, or a layer has
            no output shape (a subclassed model).
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built Keras model. Received: model={model!r}")
    rows = []
    _collect(model, "", rows)
    total = {key: sum(row[key] or 0 for row in rows) for key in _TOTAL_KEYS}
    total["uncounted_layers"] = [row["name"] for row in rows if row["multiplies_dense"] is None]
    return {"layers": rows, "total": total}


def summary(model, print_fn=None):
    """Prints `sparsity_summary(model)` as a table, like `model.summary()`,
    and returns it.

    Columns: layer (type), output shape, weights, non-zero weights, active
    units of k-winners layers (`k/n` in training and `k_inference/n` at
    inference, per row of `n` competing units; `x rows` when a sample has
    several rows), the input's activation density `d`, and the multiplies of
    one forward pass: dense, exploiting the sparse weights, and exploiting the
    sparse weights and the sparse activations. Totals at the bottom.

    Args:
        model: a built Keras model.
        print_fn: called with each line of the table (default: `print`).

    Returns:
        The dict of `sparsity_summary(model)`.
    """
    if print_fn is not None and not callable(print_fn):
        raise ValueError(f"`print_fn` must be callable or None. Received: print_fn={print_fn!r}")
    data = sparsity_summary(model)
    for line in format_summary(data, title=f'Sparsity of model "{model.name}"'):
        (print_fn or print)(line)
    return data


def format_summary(data, title="Sparsity"):
    """The lines of the table that `summary` prints, from `sparsity_summary`'s dict."""
    header = ("Layer (type)", "Output shape", "Weights", "Non-zero", "Active (train / infer)",
              "Input d", "Mult. dense", "Mult. sparse W", "Mult. sparse W+A")
    table = [header]
    for row in data["layers"]:
        table.append((
            f"{row['name']} ({row['type']})",
            str(row["output_shape"]),
            f"{row['weights']:,}",
            f"{row['nonzero_weights']:,}",
            _active(row),
            "" if row["input_density"] is None else f"{row['input_density']:.4g}",
            *(("",) * 3 if row["input_density"] is None and row["multiplies_dense"] == 0 else (
                _count(row["multiplies_dense"]),
                _count(row["multiplies_sparse_weights"]),
                _count(row["multiplies_sparse"]))),
        ))
    total = data["total"]
    table.append(("Total", "", f"{total['weights']:,}", f"{total['nonzero_weights']:,}", "", "",
                  _count(total["multiplies_dense"]), _count(total["multiplies_sparse_weights"]),
                  _count(total["multiplies_sparse"])))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def render(cells):
        left = [cells[i].ljust(widths[i]) for i in range(2)]
        right = [cells[i].rjust(widths[i]) for i in range(2, len(cells))]
        return "  ".join(left + right).rstrip()

    width = len(render(header))
    lines = [title, "=" * width, render(header), "=" * width]
    lines += [render(cells) for cells in table[1:-1]]
    lines += ["=" * width, render(table[-1])]
    if total["weights"]:
        lines.append(f"Non-zero weights: {total['nonzero_weights'] / total['weights']:.2%} of "
                     f"{total['weights']:,}")
    if total["multiplies_dense"]:
        lines.append(
            "Multiplies vs dense: sparse weights {:.2%}, sparse weights and activations {:.2%}".format(
                total["multiplies_sparse_weights"] / total["multiplies_dense"],
                total["multiplies_sparse"] / total["multiplies_dense"]))
    if total["uncounted_layers"]:
        lines.append("Multiplies not counted (layer kind unknown, or a length unknown): "
                     + ", ".join(total["uncounted_layers"]))
    return lines


def _count(value):
    return "?" if value is None else f"{round(value):,}"


def _active(row):
    if row["k"] is None:
        return ""
    text = f"{row['k']}/{row['n']} / {row['k_inference']}/{row['n']}"
    if None in row["output_shape"]:
        return f"{text} x ? rows"
    rows_per_sample = math.prod(row["output_shape"]) // row["n"]
    return text if rows_per_sample == 1 else f"{text} x {rows_per_sample} rows"


def _collect(model, prefix, rows):
    kwinners = {id(layer) for layer in kwinners_layers(model)}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _collect(layer, f"{prefix}{layer.name}/", rows)
            continue
        if isinstance(layer, keras.layers.InputLayer):
            continue
        rows.append(_layer_row(layer, prefix, kwinners))


def _layer_row(layer, prefix, kwinners):
    try:
        output = _first(layer.output)
    except (AttributeError, ValueError):  # no symbolic output: subclassed, or called twice
        raise ValueError(
            f"sparsity_summary needs every layer's output shape; layer '{layer.name}' has none "
            "(a subclassed model, or a layer called on several inputs). Use a Functional "
            "or Sequential model."
        ) from None
    output_shape = tuple(None if d is None else int(d) for d in output.shape[1:])
    known = None not in output_shape  # a sequence of unknown length counts per sample unknown
    trainable = [np.asarray(keras.ops.convert_to_numpy(w)) for w in layer.trainable_weights]
    row = dict(
        name=prefix + layer.name,
        type=type(layer).__name__,
        output_shape=output_shape,
        weights=int(sum(w.size for w in trainable)),
        nonzero_weights=int(sum(np.count_nonzero(w) for w in trainable)) + _mask_surplus(layer),
        k=None, k_inference=None, n=None, active_training=None, active_inference=None,
        input_density=None, multiplies_dense=0, multiplies_sparse_weights=0, multiplies_sparse=0.0,
    )
    if id(layer) in kwinners:
        rows_per_sample = math.prod(output_shape) // layer.n if known else None
        row.update(k=int(layer.k), k_inference=int(layer.k_inference), n=int(layer.n),
                   active_training=int(layer.k) * rows_per_sample if known else None,
                   active_inference=int(layer.k_inference) * rows_per_sample if known else None)
    if not known:
        if layer.trainable_weights:
            row.update(multiplies_dense=None, multiplies_sparse_weights=None, multiplies_sparse=None)
    elif isinstance(layer, _KERNEL_LAYERS):
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
        channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
        channels = output_shape[0] if channels_first else output_shape[-1]
        positions = math.prod(output_shape) // channels
        density = _input_density(layer, kwinners)
        row.update(
            input_density=density,
            multiplies_dense=positions * kernel.size,
            multiplies_sparse_weights=positions * _kept(layer, kernel),
            multiplies_sparse=positions * _kept(layer, kernel) * density,
        )
    elif any(len(w.shape) >= 2 for w in layer.trainable_weights):
        row.update(multiplies_dense=None, multiplies_sparse_weights=None, multiplies_sparse=None)
    return row


def _learned(layer):
    from keras_sparse.constraints import LearnedSparseWeights

    return isinstance(getattr(layer, "kernel_constraint", None), LearnedSparseWeights) and layer.built


def _kept(layer, kernel):
    """The kernel's counted weights: its learned mask's, else its non-zeros."""
    return int(layer.kernel_mask.sum()) if _learned(layer) else int(np.count_nonzero(kernel))


def _mask_surplus(layer):
    """Weights a learned mask keeps that are 0 now (e.g. just grown by RigL)."""
    if not _learned(layer):
        return 0
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
    return _kept(layer, kernel) - int(np.count_nonzero(kernel))


def _first(tensors):
    return tensors[0] if isinstance(tensors, (list, tuple)) else tensors


def _input_density(layer, kwinners):
    """`k_inference / n` of the k-winners layer feeding `layer` (through
    pass-through layers), else 1.0."""
    tensor = _first(layer.input)
    while True:
        history = getattr(tensor, "_keras_history", None)
        source = history.operation if history is not None else None
        if source is None:
            return 1.0
        if id(source) in kwinners:
            return source.k_inference / source.n
        if not isinstance(source, _PASS_THROUGH):
            return 1.0
        tensor = _first(source.input)
