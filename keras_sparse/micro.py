"""k-winners without top-k: an exact threshold search for TFLite Micro.

TensorFlow Lite for Microcontrollers has no `TOPK_V2` (nor `TILE`) kernel,
so the k-winners formulation of `keras_sparse.ops` (top-k, then the minimum
of the k values) cannot run there. This module finds the same threshold with
compare-and-count steps only (`GREATER_EQUAL`, `EQUAL`, `SELECT_V2`, `SUM`,
`ADD`, `MUL`), which every TFLite runtime has:

    t = the largest float32 value v with  count(boosted >= v) >= k
      = the k-th largest boosted value of the row            (exactly)

Every float32 number (and +-inf) lies on one of 512 uniform grids: the
binades `[2^e, 2^(e+1))` and their negatives, the subnormals of each sign,
and the infinities (`_search_grids`: point `m = 0 .. 2^23 - 1` of grid `i`
is computed exactly as `scales[i] * (offsets[i] + slopes[i] * m)`). A
binary search first picks the grid (9 steps over the 512 starts, which are
sorted), then the point on it (23 steps over `m`; every
candidate `start + m * step` is computed exactly). That is 32
compare-and-count steps, a radix select over the bits of float32, so the
threshold is bit-identical to top-k's. `SUM` of 0/1 floats counts exactly up
to 2^24 units per row. Subnormal values: CPUs that flush them to zero
(TensorFlow's kernels do) rank them as 0, as `keras_sparse.ops` documents.

The winners then follow `keras_sparse.ops` exactly (its own rule, in its
inference form): `boosted >= t` (ties included) or, with `break_ties`, the
lowest-index k; `relu` drops `boosted <= 0`; NaN never wins and passes
through. The search is `keras_sparse.selection`'s `"search"` kernel.

`SearchKWinners` is a trained k-winners layer's inference path in export
form (its `k_inference`, duty cycles and boost strength frozen into constant
boost factors), with the threshold by this search (`kernel="search"`) or by
`TOPK_V2` (`kernel="top_k"`, LiteRT); `keras_sparse.export.to_tflite` swaps
it in for every k-winners layer of a clone of the model. Training never
uses it.
"""

import math

import keras
import numpy as np
from keras import ops

MANTISSA_BITS = 23
# How `SearchKWinners` finds the threshold: "search" (TFLite Micro) or "top_k" (LiteRT).
SEARCH_KERNELS = ("search", "top_k")
# Marks the search layers' names (and so their ops' names in a converted model).
SEARCH_LAYER_SUFFIX = "_kwinners_search"


def _search_grids():
    """The 512 float32 grids in increasing order (see module doc), as
    `(starts, scales, offsets, slopes)`: point `m` of grid `i` is

        scales[i] * (offsets[i] + slopes[i] * m)

    with `offsets + slopes * m` exact in [0, 2] and `scales` a power of two,
    so no intermediate is subnormal (which CPUs may flush to zero) unless the
    point itself is; `starts[i]` is point 0.
    """
    ulp = 2.0 ** -MANTISSA_BITS
    grids = [(-np.inf, 1.0, 0.0)]
    for e in range(127, -127, -1):  # negative normals: -2^e * (2 - ulp - ulp*m), ascending
        grids.append((-(2.0 ** e), 2.0 - ulp, -ulp))
    grids += [(-(2.0 ** -126), 1.0 - ulp, -ulp),  # negative subnormals
              (2.0 ** -126, 0.0, ulp)]  # zero and positive subnormals
    grids += [(2.0 ** e, 1.0, ulp) for e in range(-126, 128)]  # positive normals
    grids.append((np.inf, 1.0, 0.0))
    scales, offsets, slopes = (np.array(column, np.float32) for column in zip(*grids))
    with np.errstate(invalid="ignore"):
        starts = (scales.astype(np.float64) * offsets).astype(np.float32)
    return starts, scales, offsets, slopes


SEARCH_GRID_STARTS, SEARCH_GRID_SCALES, SEARCH_GRID_OFFSETS, SEARCH_GRID_SLOPES = _search_grids()
GRID_BITS = int(math.log2(len(SEARCH_GRID_STARTS)))  # 9


def _lookup(table, index):
    """`table[index]` per row, for `index` `(..., 1)` float32 integers.

    A one-hot sum (`EQUAL`, `SELECT_V2`, `SUM` over the 512 entries) rather
    than `GATHER`: TFLite's int8 quantizer quantizes a `GATHER` of a float
    table even when told to keep the op float, which would round the grid.
    Exact: one entry is selected, the others add 0 (and `inf + 0 = inf`).
    """
    positions = ops.convert_to_tensor(np.arange(len(table), dtype=np.float32))
    table = ops.convert_to_tensor(np.asarray(table, np.float32))
    selected = ops.where(positions == ops.cast(index, "float32"), table, ops.zeros_like(table))
    return ops.sum(selected, axis=-1, keepdims=True)


def _count_at_least(values, candidate):
    """Number of `values >= candidate` per row, as float32 `(..., 1)`."""
    return ops.sum(ops.where(values >= candidate, 1.0, 0.0), axis=-1, keepdims=True)


def kth_largest_by_search(values, k):
    """The k-th largest value of each row of float32 `values` `(..., n)`
    (rows along the last axis), keeping the last axis (size 1), by the
    32-step search of the module doc.

    Equal to `keras_sparse.ops.kth_largest(values, k)` for any finite or
    infinite values and `1 <= k <= n`; NaN never counts (as `ops` ranks it
    last). `-inf` if fewer than k values are numbers.
    """
    n = values.shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"`k` must be in [1, {n}] (the number of units). Received: k={k}")
    values = ops.cast(values, "float32")
    starts = SEARCH_GRID_STARTS
    k = float(k)
    grid = ops.zeros_like(values[..., :1])  # index of the grid, as float32
    for bit in reversed(range(GRID_BITS)):
        candidate = grid + float(2**bit)
        start = _lookup(starts, candidate)
        grid = ops.where(_count_at_least(values, start) >= k, candidate, grid)
    scale, offset, slope = (_lookup(table, grid) for table in
                            (SEARCH_GRID_SCALES, SEARCH_GRID_OFFSETS, SEARCH_GRID_SLOPES))
    point = ops.zeros_like(grid)  # m on that grid
    for bit in reversed(range(MANTISSA_BITS)):
        candidate = point + float(2**bit)
        value = scale * (offset + slope * candidate)
        point = ops.where(_count_at_least(values, value) >= k, candidate, point)
    return scale * (offset + slope * point)


def keep_winners_by_search(x, factors, k, break_ties=False, relu=False, kernel="search",
                           finite_inputs=False):
    """`keras_sparse.ops`' k-winners of the rows `x` `(..., n)` (along the
    last axis; its inference form, no custom gradient), with the threshold
    from `kth_largest_by_search` (`kernel="search"`: TFLite Micro's ops) or
    from `keras_sparse.selection`'s portable kernel (`kernel="top_k"`:
    `TOPK_V2`, for LiteRT, where it is several times faster). The winner
    rule is `keras_sparse.ops`' own.

    `factors` `(n,)` are the boost factors `exp(-b * duty_cycles)`;
    `finite_inputs=True` promises `x` has no NaN (an int8 model's
    dequantized activations), one op fewer per layer.
    Returns `where(winner or isnan(x), x, 0)`.
    """
    from keras_sparse import ops as sparse_ops

    if kernel not in SEARCH_KERNELS:
        raise ValueError(f"`kernel` must be one of {SEARCH_KERNELS}. Received: kernel={kernel!r}")
    return sparse_ops._keep_winners(x, factors, k, break_ties, relu, portable=True, differentiable=False,
                                    kernel="search" if kernel == "search" else None,
                                    finite=finite_inputs)


@keras.saving.register_keras_serializable(package="keras_sparse")
class SearchKWinners(keras.layers.Layer):
    """The inference path of a built k-winners layer, by threshold search.

    Computes what `layer(x, training=False)` computes (its `k_inference`
    winners per row, boosted by its current duty cycles and boost strength,
    taken here as constants), with `keep_winners_by_search` instead of
    top-k. For export only: it has no state and no training path.

    Args:
        geometry: `"units"` (rows along the last axis: `KWinners`) or
            `"feature_map"` (`KWinners1D/2D/3D`: rows of channels at each
            position or of a whole sample, either data format); see
            `row_layout`.
        factors: boost factors, one per unit (channel), float32.
        k: winners per row.
        local, data_format: as in the feature-map layers (ignored for `"units"`).
        break_ties, relu: as in the layers.
        kernel: how the threshold is found, one of `SEARCH_KERNELS`:
            `"search"` (TFLite Micro's ops; the default) or `"top_k"`
            (LiteRT's `TOPK_V2`).
        finite_inputs: True where the input can hold no NaN (the layer's
            input dequantized from int8): the NaN-ranking step is skipped.
    """

    def __init__(self, geometry, factors, k, local=False, data_format="channels_last",
                 break_ties=False, relu=False, kernel="search", finite_inputs=False, **kwargs):
        super().__init__(**kwargs)
        if geometry not in ("units", "feature_map"):
            raise ValueError(f"`geometry` must be 'units' or 'feature_map'. Received: geometry={geometry!r}")
        self.geometry = geometry
        self.factors = np.asarray(factors, np.float32).reshape(-1)
        self.k = int(k)
        self.local = bool(local)
        self.data_format = data_format
        self.break_ties = bool(break_ties)
        self.relu = bool(relu)
        if kernel not in SEARCH_KERNELS:
            raise ValueError(f"`kernel` must be one of {SEARCH_KERNELS}. Received: kernel={kernel!r}")
        self.kernel = kernel
        self.finite_inputs = bool(finite_inputs)

    @classmethod
    def from_layer(cls, layer, kernel="search", finite_inputs=False):
        """The export form of a built k-winners layer (`KWinners`,
        `KWinners1D/2D/3D` or any other subclass of `KWinnersBase` whose rows
        `row_layout` can read from its hooks)."""
        from keras_sparse import ops as sparse_ops
        from keras_sparse.kwinners import KWinnersBase

        if not isinstance(layer, KWinnersBase) or not layer.built:
            raise ValueError(f"`layer` must be a built k-winners layer. Received: layer={layer!r}")
        local, data_format = row_layout(layer)
        factors = ops.convert_to_numpy(sparse_ops.boost_factors(layer.duty_cycles, layer.boost_strength))
        common = dict(factors=factors, k=layer.k_inference, break_ties=layer.break_ties,
                      relu=layer.relu, kernel=kernel, finite_inputs=finite_inputs,
                      name=layer.name + SEARCH_LAYER_SUFFIX)
        if local and data_format == "channels_last":
            return cls("units", **common)
        return cls("feature_map", local=local, data_format=data_format, **common)

    def call(self, x, mask=None):
        """Rows `(batch, rows per sample, n)`, searched along the last axis.

        `mask` is there because the k-winners layers take one (Keras records
        `mask=None` in the graph this layer is cloned into); a real mask is
        refused: the search form has no masking.

        Every reshape keeps the batch as a dimension of its own (the `-1`
        stands for it alone): the converter stores a dynamic batch as 1, and
        TFLite Micro, one sample per invocation, prepares each `RESHAPE`
        from those stored shapes (rows `(-1, n)` of a sequence or a local
        feature map were stored as one row: its `RESHAPE` failed to
        prepare). LiteRT resizes the batch at run time.
        """
        if mask is not None:
            raise ValueError(
                f"Layer {self.name!r}: SearchKWinners takes no mask (masked models export "
                "with top-k, not by search). Received: mask of shape "
                f"{tuple(mask.shape)}"
            )
        rank = len(x.shape)
        channels_first = self.geometry == "feature_map" and self.data_format == "channels_first"
        if channels_first:
            x = ops.transpose(x, (0, *range(2, rank), 1))
        shape = tuple(x.shape[1:])
        if None in shape[:-1] and not (self.geometry == "feature_map" and not self.local):
            # An unknown length (a sequence): no static rows to reshape to; the
            # search runs along the last axis as it is (LiteRT; TFLite Micro
            # needs static shapes anyway).
            y = self._keep(x, self.factors)
        else:
            rows, factors = self._rows(x)
            y = ops.reshape(self._keep(rows, factors), (-1, *shape))
        if channels_first:
            y = ops.transpose(y, (0, rank - 1, *range(1, rank - 1)))
        return y

    def _rows(self, x):
        """`(rows, factors)` for channels-last `x` `(batch, *positions, n)`:

            units / local:  rows (batch, prod(positions), n),  factors (n,)
            global:         rows (batch, 1, prod(positions) * n), the factors
                            tiled, channels fastest (a constant: no TILE op)
        """
        units, positions = x.shape[-1], math.prod(x.shape[1:-1])
        if self.geometry == "feature_map" and not self.local:
            return ops.reshape(x, (-1, 1, positions * units)), np.tile(self.factors, positions)
        return ops.reshape(x, (-1, positions, units)), self.factors

    def _keep(self, rows, factors):
        return keep_winners_by_search(rows, factors, self.k, self.break_ties, self.relu, self.kernel,
                                      self.finite_inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(geometry=self.geometry, factors=self.factors.tolist(), k=self.k,
                      local=self.local, data_format=self.data_format,
                      break_ties=self.break_ties, relu=self.relu, kernel=self.kernel,
                      finite_inputs=self.finite_inputs)
        return config


def row_layout(layer):
    """How the rows of a built k-winners `layer` lie in its input, read from
    its hooks (`_competing_units` at build, `layer.n`, and `_channel_axis`):
    `(local, data_format)`.

    - `local=True`: the rows are the units (channels) at each position
      (`n` = the number of channels): `KWinners`, `local=True` feature maps.
    - `local=False`: one row per sample, every non-batch value, channels
      fastest (`n` = the size of a sample): `local=False` feature maps.

    `data_format` is `"channels_first"` when the channel axis is axis 1 of an
    input of rank > 2, else `"channels_last"` (channels on the last axis).
    Any other geometry raises `ValueError`: its export form needs rows of its
    own here.
    """
    rank, channels = layer.input_spec.ndim, layer.duty_cycles.shape[0]
    channel_axis = layer._channel_axis() % rank
    known = layer.input_spec.axes or {}
    size = math.prod(known.values()) if len(known) == rank - 1 else None
    if channel_axis in (1, rank - 1) and layer.n in (channels, size):
        return layer.n == channels, "channels_first" if channel_axis == 1 and rank > 2 else "channels_last"
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) cannot be exported: its rows of n={layer.n} "
        f"competing units are neither its {channels} channels at each position nor its whole sample "
        f"({size} values) with the channels on the first or last non-batch axis (channel axis "
        f"{channel_axis} of rank {rank}); `keras_sparse.micro.row_layout` reads no other geometry."
    )


def with_search_kwinners(model, kernel="search", finite_inputs=False):
    """A clone of `model` (nested models and wrappers such as `TimeDistributed`
    included) whose k-winners layers are `SearchKWinners` (with `kernel`,
    `finite_inputs`); every other layer keeps its weights. Inference only."""
    from keras_sparse.kwinners import KWinnersBase, kwinners_layers

    def clone_layer(layer):
        if isinstance(layer, KWinnersBase):
            return SearchKWinners.from_layer(layer, kernel, finite_inputs)
        config = layer.get_config()
        if isinstance(layer, keras.layers.Wrapper) and kwinners_layers(layer):
            config["layer"] = keras.saving.serialize_keras_object(clone_layer(layer.layer))
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    # clone_model builds the clones; copy weights layer by layer (the search
    # layers have none).
    for source, target in zip(_leaf_layers(model), _leaf_layers(clone), strict=True):
        if source.weights and not isinstance(source, KWinnersBase):
            target.set_weights(source.get_weights())
    return clone


def _leaf_layers(model):
    """Every layer of `model` that holds no other layer (nested models and
    wrappers flattened), in the order Keras tracks them."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if not list(layer._flatten_layers(include_self=False, recursive=False))]
