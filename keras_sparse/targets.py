"""The export targets of `keras_sparse.export.to_tflite`, as data.

One `Target` per device family says everything the exporter and the runner
decide by target: the `quantize` modes it runs, whether (and under which
modes) it can store sparse tensors, the builtin ops it has, the threshold
kernel of the k-winners layers' export form (`keras_sparse.micro.SearchKWinners`)
and the `keras_sparse.tflite_model.TFLiteModel` runtime that runs its files.
`to_tflite` refuses, with a `ValueError` before any file is written, every
combination a target's entry does not allow.

Adding a target: one `Target` in `TARGET_RULES` here, and (unless an existing
runtime runs its files) one runtime class in `keras_sparse.tflite_model.RUNTIMES`.
"""

import dataclasses

QUANTIZE_MODES = (None, "dynamic", "int8")

# Builtin operators of the TFLite Micro interpreter (`tflite-micro` on PyPI,
# its `AllOpsResolver`), less the signal-processing and vendor ones.
MICRO_OPS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL
BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION
CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DIV
DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR
FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL
HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG
LOG_SOFTMAX LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAX_POOL_2D MAXIMUM MEAN
MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE
REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX
SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE
SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split())


@dataclasses.dataclass(frozen=True)
class Target:
    """What one export target allows and uses.

    Attributes:
        name: the `target=` of `to_tflite`.
        label: the target's name in messages ("TFLite Micro").
        quantize_modes: the `quantize` modes it has kernels for.
        sparse_quantize_modes: the `quantize` modes under which it can run
            TFLite's sparse tensor encoding (empty: never).
        sparse_refusal: why `sparse_encoding=True` is refused under the
            other modes (ends a `ValueError`).
        ops: the builtin operators it has (a converted model using another
            is refused), or None for every TFLite builtin.
        ops_name: where `ops` is public, for messages.
        kwinners_kernel: the threshold kernel of `SearchKWinners`, one of
            `keras_sparse.micro.SEARCH_KERNELS`.
        runtime: the `TFLiteModel(runtime=...)` that runs its files.
    """

    name: str
    label: str
    quantize_modes: tuple
    sparse_quantize_modes: tuple
    sparse_refusal: str
    ops: frozenset | None
    ops_name: str | None
    kwinners_kernel: str
    runtime: str


TARGET_RULES = {target.name: target for target in (
    Target(
        name="litert", label="LiteRT", quantize_modes=QUANTIZE_MODES,
        sparse_quantize_modes=(None, "int8"),
        sparse_refusal=("LiteRT's default runtime computes block-sparse dynamic-range kernels "
                        "wrongly (see `to_tflite`)"),
        ops=None, ops_name=None, kwinners_kernel="top_k", runtime="litert",
    ),
    Target(
        name="micro", label="TFLite Micro", quantize_modes=(None, "int8"),
        sparse_quantize_modes=(), sparse_refusal="TFLite Micro has no sparse tensors",
        ops=MICRO_OPS, ops_name="keras_sparse.export.MICRO_OPS", kwinners_kernel="search",
        runtime="micro",
    ),
)}
TARGETS = tuple(TARGET_RULES)


def get_target(target):
    """The `Target` named `target`; `ValueError` naming the argument otherwise."""
    if not isinstance(target, str) or target not in TARGET_RULES:
        raise ValueError(f"`target` must be one of {TARGETS}. Received: target={target!r}")
    return TARGET_RULES[target]


def check_combination(target, quantize, sparse_encoding):
    """Raises `ValueError` for a `quantize` or `sparse_encoding` that `target`
    (a `Target`) cannot run; returns whether sparse encoding is possible."""
    if quantize not in target.quantize_modes:
        raise ValueError(
            f"`quantize` must be one of {target.quantize_modes} with target={target.name!r}: "
            f"quantize={quantize!r} has no {target.label} kernels. "
            f"Received: quantize={quantize!r}, target={target.name!r}"
        )
    possible = quantize in target.sparse_quantize_modes
    if sparse_encoding is True and not possible:
        raise ValueError(
            f"`sparse_encoding` must be False or 'auto' with target={target.name!r}, "
            f"quantize={quantize!r}: {target.sparse_refusal}. Received: sparse_encoding=True"
        )
    return possible


def check_ops(target, ops):
    """Raises `ValueError` if the converted model's `ops` include one `target` lacks."""
    missing = sorted(set(ops) - target.ops) if target.ops is not None else []
    if missing:
        raise ValueError(
            f"target={target.name!r}: the converted model uses ops {target.label} lacks: {missing} "
            f"({target.label} has: `{target.ops_name}`)."
        )
