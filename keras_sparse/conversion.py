"""`sparsify`: how an existing Keras model enters the library (docs/learned_sparsity.md)."""

import keras
import numpy as np

from keras_sparse import pruning
from keras_sparse._validation import check_float, check_int
from keras_sparse.sparse_weights import MASKS, SparseConv1D, SparseConv2D, SparseDense

_SPARSE_COUNTERPART = {
    keras.layers.Dense: SparseDense,
    keras.layers.Conv1D: SparseConv1D,
    keras.layers.Conv2D: SparseConv2D,
}
DISTRIBUTIONS = ("uniform", "erk")


def sparsify(model, sparsity, mask="learned", layers=None, distribution="uniform", seed=None, block=None,
             pattern=None):
    """A copy of `model` whose `Dense`, `Conv1D` and `Conv2D` layers (all, or
    those named in `layers`) are `SparseDense`, `SparseConv1D`, `SparseConv2D`
    with the same configuration and weights.

    Each converted layer `l` gets a sparsity `s_l`: `sparsity` for every layer
    (`distribution="uniform"`), or `1 - density_l` with the Erdős–Rényi-kernel
    densities of `keras_sparse.pruning.erk_densities` (`"erk"`: the converted
    layers together keep `(1 - sparsity)` of their weights, small layers
    denser). Its mask is

    - `mask="learned"`: the largest-magnitude `round((1 - s_l) * size)` weights
      of the original kernel (`keras_sparse.pruning.magnitude_mask`; one-shot
      magnitude pruning; `s_l = 0` keeps every weight, so the copy computes
      exactly what `model` does), then changed by the callbacks
      `MagnitudePruning`, `RigL`, `SET`;
    - `mask="fixed"`: the paper's random mask of `(s_l, seed)` per unit; a
      layer whose `s_l` is 0 (ERK may make a small layer dense) is copied
      unchanged.

    The kernel is `where(mask, original kernel, 0)`; every other weight,
    and every other layer, is copied as it is. The copy is not compiled.

    Args:
        model: a built Functional or Sequential Keras model.
        sparsity: in [0, 1) (`mask="learned"`) or (0, 1) (`"fixed"`).
        mask: `"learned"` or `"fixed"`.
        layers: `None` (every `Dense`, `Conv1D`, `Conv2D`; subclasses, such
            as the sparse layers, are left alone) or a list of their names.
        distribution: `"uniform"` or `"erk"`.
        seed: integer >= 0 for the masks (layer `i` uses `seed + i`), or
            `None` to draw them.
        block, pattern: given to every converted layer (see `SparseDense`):
            the masks then keep whole blocks (by the sum of `|w|` over a
            block) or the N:M pattern.

    Returns:
        The new model.
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built Functional or Sequential Keras model. Received: model={model!r}")
    if mask not in MASKS:
        raise ValueError(f"`mask` must be one of {MASKS}. Received: mask={mask!r}")
    sparsity = check_float("sparsity", sparsity, 0, 1, mask == "fixed", True)
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"`distribution` must be one of {DISTRIBUTIONS}. Received: distribution={distribution!r}")
    if seed is not None:
        seed = check_int("seed", seed, 0)
    candidates = [layer for layer in model.layers if type(layer) in _SPARSE_COUNTERPART]
    if layers is not None:
        if isinstance(layers, str) or not all(isinstance(name, str) for name in layers):
            raise ValueError(f"`layers` must be None or a list of layer names. Received: layers={layers!r}")
        names = {layer.name for layer in candidates}
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(f"`layers` names {unknown}, which are not Dense, Conv1D or Conv2D layers of the "
                             f"model; those are {sorted(names)}.")
        candidates = [layer for layer in candidates if layer.name in set(layers)]
    for layer in candidates:
        if layer.kernel_constraint is not None or getattr(layer, "quantization_mode", None) is not None:
            raise ValueError(f"Layer '{layer.name}' has a kernel constraint or is quantized; sparsify converts "
                             "plain float layers only.")
    if distribution == "erk" and candidates:
        shapes = [tuple(layer.kernel.shape) for layer in candidates]
        sparsities = [max(0.0, 1.0 - d) for d in pruning.erk_densities(shapes, sparsity)]
    else:
        sparsities = [sparsity] * len(candidates)
    plan = {id(layer): (s, i) for i, (layer, s) in enumerate(zip(candidates, sparsities))
            if not (mask == "fixed" and s == 0.0)}
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1 - len(candidates)))

    def clone(layer):
        if id(layer) not in plan:
            return layer.__class__.from_config(layer.get_config())
        layer_sparsity, index = plan[id(layer)]
        config = layer.get_config()
        config.pop("kernel_constraint", None)
        config.pop("quantization_config", None)
        return _SPARSE_COUNTERPART[type(layer)](**config, sparsity=layer_sparsity, seed=seed + index, mask=mask,
                                                block=block, pattern=pattern)

    copy = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, copy.layers):
        weights = old.get_weights()
        if id(old) not in plan:
            new.set_weights(weights)
            continue
        layer_sparsity = plan[id(old)][0]
        if mask == "learned":
            chosen = pruning.magnitude_mask(weights[0], np.ones(weights[0].shape, bool), layer_sparsity,
                                            new.block, new.pattern)
            new.set_mask(chosen)
        else:
            chosen = new.kernel_mask
        weights[0] = np.where(chosen, weights[0], 0).astype(weights[0].dtype)
        new.set_weights(weights + ([chosen] if mask == "learned" else []))
    return copy
