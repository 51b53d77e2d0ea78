"""A structural check of a `.tflite` flatbuffer before an interpreter sees it.

TFLite Micro trusts its model: a tensor naming a buffer that does not
exist, or an operator naming a tensor out of range, makes it read or write
outside its arrays (a SIGSEGV, or worse, a silent read past a buffer).
`check_tflite` walks the file with bounds checks at every step and raises
`ValueError` for anything an interpreter would index out of range:

- the flatbuffer itself: every offset, table and vector inside the file
  (truncated or random bytes), every table's fields inside its own size
  (operators' builtin options included), the `TFL3` identifier;
- buffers: data stored after the flatbuffer (`offset`, `size`) inside the file;
- tensors: `buffer < len(buffers)`, a known element type, dimensions
  `>= 0` (`> 0` from rank 2 on: kernels divide by them), and a constant
  tensor's data exactly `prod(shape) * itemsize` bytes, as LiteRT requires
  (strings, sparse and variant tensors excepted: their size is not a
  product of the shape);
- quantization: as many zero points as scales; per channel, one per
  channel of `quantized_dimension`, which must be an axis of the tensor;
- subgraphs: input and output tensor indices in range; operators: an
  operator code in range, input indices in `[-1, tensors)` (-1: an
  omitted optional input), output and intermediate indices in range;
- convolutions, pooling and fully connected operators (`_RANKS`): the
  ranks TFLite Micro's kernels assume without checking, and strides,
  dilations and filter sizes `> 0` (they divide by them).

- for TFLite Micro (`micro=True`), which runs the stored shapes: the
  outputs of those operators as large as what they write
  (`_check_micro_shapes`).

Beyond that it checks indices and sizes, not semantics (an operator's
shapes are for the interpreter's `Prepare` to refuse).
"""

import math
import struct

# Bytes per element of each `TensorType` (schema.fbs); None: not a product of
# the shape (STRING, RESOURCE, VARIANT); INT4 packs two elements per byte.
_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16,
             12: 8, 13: None, 14: None, 15: 4, 16: 2, 17: 0.5, 18: 2}
_MAX_ELEMENTS = 2**31 - 1


class _Invalid(Exception):
    pass


def check_tflite(data, name="the model", micro=False):
    """Raises `ValueError` unless `data` (bytes) is a structurally valid
    `.tflite` flatbuffer (see the module doc); returns None. `micro=True`
    adds the shape checks of `_check_micro_shapes`."""
    from tensorflow.lite.python import schema_py_generated as schema

    data = bytes(data)
    try:
        _check_model(schema, data, micro)
    except _Invalid as error:
        raise ValueError(f"{name} is not a valid .tflite file: {error}") from None
    except (struct.error, IndexError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as error:
        raise ValueError(f"{name} is not a valid .tflite file (a corrupted or truncated "
                         f"flatbuffer: {type(error).__name__}: {error})") from None


def _fail(message):
    raise _Invalid(message)


def _vector(table, field, data, itemsize, what):
    """`(start, length)` of the vector at vtable offset `field` of `table`
    (length 0 if absent), checked to lie inside `data`."""
    offset = table._tab.Offset(field)
    if not offset:
        return 0, 0
    _inside(table._tab.Pos + offset, 4, data, what)
    start = table._tab.Vector(offset)
    length = table._tab.VectorLen(offset)
    _inside(start, length * itemsize, data, what)
    return start, length


def _inside(start, size, data, what):
    if start < 0 or size < 0 or start + size > len(data):
        _fail(f"{what} lies outside the file ({start} + {size} bytes > {len(data)})")


def _table(table, data, what):
    """Checks a table lies inside `data`: its position, its vtable, its
    inline size (the vtable's second entry) and every field offset within it
    (so no scalar field is read past the file)."""
    position = table._tab.Pos
    _inside(position, 4, data, what)
    vtable = position - struct.unpack_from("<i", data, position)[0]
    _inside(vtable, 4, data, f"{what}'s vtable")
    vtable_size, table_size = struct.unpack_from("<HH", data, vtable)
    if vtable_size < 4 or vtable_size % 2:
        _fail(f"{what}'s vtable has size {vtable_size}")
    _inside(vtable, vtable_size, data, f"{what}'s vtable")
    _inside(position, table_size, data, what)
    fields = struct.unpack_from(f"<{(vtable_size - 4) // 2}H", data, vtable + 4)
    if any(field >= table_size for field in fields):
        _fail(f"{what} has a field at offset {max(fields)} past its size {table_size}")
    return table


class _AnyTable:
    """A table of unknown type at `position` (for `_table`)."""

    def __init__(self, data, position):
        import flatbuffers

        self._tab = flatbuffers.table.Table(data, position)


def _indices(table, field, data, what, low, high):
    start, length = _vector(table, field, data, 4, what)
    values = struct.unpack_from(f"<{length}i", data, start) if length else ()
    for i, value in enumerate(values):
        if not low <= value < high:
            _fail(f"{what}[{i}] = {value} is not in [{low}, {high})")
    return values


def _check_model(schema, data, micro):
    if len(data) < 8:
        _fail(f"{len(data)} bytes")
    if data[4:8] != b"TFL3":
        _fail(f"no TFL3 identifier (bytes 4-8 are {data[4:8]!r})")
    _inside(struct.unpack_from("<I", data, 0)[0], 4, data, "the root table")
    model = _table(schema.Model.GetRootAs(data, 0), data, "the model")
    # Model: version 4, operator_codes 6, subgraphs 8, description 10, buffers 12.
    _, num_codes = _vector(model, 6, data, 4, "operator_codes")
    _, num_subgraphs = _vector(model, 8, data, 4, "subgraphs")
    _, num_buffers = _vector(model, 12, data, 4, "buffers")
    if num_subgraphs == 0:
        _fail("no subgraph")
    codes = []
    for i in range(num_codes):
        code = _table(model.OperatorCodes(i), data, f"operator_codes[{i}]")
        codes.append(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
    buffer_sizes = [_buffer_size(_table(model.Buffers(i), data, f"buffers[{i}]"), data, i)
                    for i in range(num_buffers)]
    for s in range(num_subgraphs):
        _check_subgraph(schema, _table(model.Subgraphs(s), data, f"subgraphs[{s}]"), data, buffer_sizes,
                        codes, micro, f"subgraphs[{s}]")


def _buffer_size(buffer, data, i):
    """Bytes of buffer `i`: its `data` vector, or `size` bytes at `offset`
    (models over 2 GB store their weights after the flatbuffer)."""
    _, length = _vector(buffer, 4, data, 1, f"buffers[{i}].data")
    offset, size = buffer.Offset(), buffer.Size()
    if offset > 1:
        _inside(offset, size, data, f"buffers[{i}] (offset {offset}, size {size})")
        return size
    return length


def _check_subgraph(schema, subgraph, data, buffer_sizes, codes, micro, where):
    # SubGraph: tensors 4, inputs 6, outputs 8, operators 10.
    _, num_tensors = _vector(subgraph, 4, data, 4, f"{where}.tensors")
    shapes = [_check_tensor(_table(subgraph.Tensors(i), data, f"{where}.tensors[{i}]"), data, buffer_sizes,
                            f"{where}.tensors[{i}]") for i in range(num_tensors)]
    _indices(subgraph, 6, data, f"{where}.inputs", 0, num_tensors)
    _indices(subgraph, 8, data, f"{where}.outputs", 0, num_tensors)
    _, num_operators = _vector(subgraph, 10, data, 4, f"{where}.operators")
    for i in range(num_operators):
        what = f"{where}.operators[{i}]"
        operator = _table(subgraph.Operators(i), data, what)
        # Operator: opcode_index 4, inputs 6, outputs 8, ..., intermediates 20.
        if not 0 <= operator.OpcodeIndex() < len(codes):
            _fail(f"{what}.opcode_index = {operator.OpcodeIndex()} is not in [0, {len(codes)})")
        inputs = _indices(operator, 6, data, f"{what}.inputs", -1, num_tensors)
        outputs = _indices(operator, 8, data, f"{what}.outputs", 0, num_tensors)
        _indices(operator, 20, data, f"{what}.intermediates", 0, num_tensors)
        if operator._tab.Offset(12):  # builtin_options: a table of the operator's own type
            _inside(operator._tab.Pos + operator._tab.Offset(12), 4, data, f"{what}.builtin_options")
            _table(_AnyTable(data, operator._tab.Indirect(operator._tab.Pos + operator._tab.Offset(12))),
                   data, f"{what}.builtin_options")
        code = codes[operator.OpcodeIndex()]
        if code in _RANKS:
            in_shapes = [shapes[i] if i >= 0 else None for i in inputs]
            out_shapes = [shapes[i] for i in outputs]
            _check_operator(schema, operator, code, in_shapes, out_shapes, data, what)
            if micro:
                _check_micro_shapes(code, in_shapes, out_shapes, what)


def _check_tensor(tensor, data, buffer_sizes, what):
    # Tensor: shape 4, type 6, buffer 8, name 10, quantization 12, is_variable 14,
    # sparsity 16, shape_signature 18, has_rank 20, variant_tensors 22.
    start, rank = _vector(tensor, 4, data, 4, f"{what}.shape")
    shape = struct.unpack_from(f"<{rank}i", data, start) if rank else ()
    if any(d < 0 for d in shape) or (len(shape) > 1 and 0 in shape):
        _fail(f"{what}.shape = {list(shape)} has a negative dimension, or a 0 in a tensor of rank > 1")
    _vector(tensor, 18, data, 4, f"{what}.shape_signature")
    _vector(tensor, 10, data, 1, f"{what}.name")
    dtype = tensor.Type()
    if dtype not in _ITEMSIZE:
        _fail(f"{what}.type = {dtype} is not a TensorType")
    buffer = tensor.Buffer()
    if buffer >= len(buffer_sizes):
        _fail(f"{what}.buffer = {buffer} is not in [0, {len(buffer_sizes)}) (the model's buffers)")
    elements = math.prod(shape)
    if elements > _MAX_ELEMENTS:
        _fail(f"{what}.shape = {list(shape)} holds {elements} elements")
    itemsize = _ITEMSIZE[dtype]
    sparse = tensor._tab.Offset(16) != 0
    variant = tensor._tab.Offset(22) != 0
    if buffer and buffer_sizes[buffer] and itemsize and not sparse and not variant:
        needed = math.ceil(elements * itemsize)
        if buffer_sizes[buffer] != needed:
            _fail(f"{what} of shape {list(shape)} needs {needed} bytes, its buffer {buffer} "
                  f"holds {buffer_sizes[buffer]}")
    if tensor._tab.Offset(12):
        _check_quantization(_table(tensor.Quantization(), data, f"{what}.quantization"), data, shape,
                            what)
    return shape


def _check_quantization(quantization, data, shape, what):
    # QuantizationParameters: min 4, max 6, scale 8, zero_point 10, ..., quantized_dimension 16.
    _vector(quantization, 4, data, 4, f"{what}.quantization.min")
    _vector(quantization, 6, data, 4, f"{what}.quantization.max")
    _, scales = _vector(quantization, 8, data, 4, f"{what}.quantization.scale")
    _, zero_points = _vector(quantization, 10, data, 8, f"{what}.quantization.zero_point")
    if scales != zero_points:
        _fail(f"{what} has {scales} quantization scales and {zero_points} zero points")
    if scales > 1:
        axis = quantization.QuantizedDimension()
        if not 0 <= axis < len(shape):
            _fail(f"{what}.quantization.quantized_dimension = {axis} is not an axis of shape {list(shape)}")
        if scales != shape[axis]:
            _fail(f"{what} has {scales} quantization scales for its {shape[axis]} channels (axis {axis})")


# Ranks of the (inputs, outputs) of operators whose TFLite Micro kernels
# index their tensors' dimensions without checking the rank (None: an
# optional input), by `BuiltinOperator` code, and the integer options that
# they divide by (`> 0`), by option table: CONV_2D 3, DEPTHWISE_CONV_2D 4,
# FULLY_CONNECTED 9 (filter and bias only), MAX_POOL_2D 17, AVERAGE_POOL_2D 1.
_RANKS = {3: ((4, 4, 1), (4,)), 4: ((4, 4, 1), (4,)), 9: ((None, 2, 1), (None,)),
          17: ((4,), (4,)), 1: ((4,), (4,))}
_POSITIVE_OPTIONS = {
    3: ("Conv2DOptions", ("StrideW", "StrideH", "DilationWFactor", "DilationHFactor")),
    4: ("DepthwiseConv2DOptions", ("StrideW", "StrideH", "DilationWFactor", "DilationHFactor")),
    17: ("Pool2DOptions", ("StrideW", "StrideH", "FilterWidth", "FilterHeight")),
    1: ("Pool2DOptions", ("StrideW", "StrideH", "FilterWidth", "FilterHeight")),
}


def _check_operator(schema, operator, code, inputs, outputs, data, what):
    """The ranks and options of a convolution, pooling or fully connected
    operator (see `_RANKS`). Only ranks: the stored shapes of computed
    tensors may be placeholders (a dynamic batch or length stored as 1)."""
    input_ranks, output_ranks = _RANKS[code]
    for kind, shapes, ranks in (("inputs", inputs, input_ranks), ("outputs", outputs, output_ranks)):
        for i, rank in enumerate(ranks):
            if i >= len(shapes):
                if kind == "outputs" or i < 2:
                    _fail(f"{what} has {len(shapes)} {kind}, needs {len(ranks)}")
                continue
            if rank is not None and shapes[i] is not None and len(shapes[i]) != rank:
                _fail(f"{what}.{kind}[{i}] has shape {list(shapes[i])}, needs rank {rank}")
    if code in _POSITIVE_OPTIONS and operator._tab.Offset(12):
        table, fields = _POSITIVE_OPTIONS[code]
        options = getattr(schema, table)()
        position = operator._tab.Indirect(operator._tab.Pos + operator._tab.Offset(12))
        options.Init(data, position)
        _table(options, data, f"{what}.builtin_options")
        for field in fields:
            if getattr(options, field)() <= 0:
                _fail(f"{what}.builtin_options.{field} = {getattr(options, field)()} must be > 0")


def _check_micro_shapes(code, inputs, outputs, what):
    """TFLite Micro runs the stored shapes (it has no dynamic shapes) and its
    fully connected, convolution and pooling kernels write as many values as
    their inputs and weights give, whatever the output tensor's size: so
    those must agree (LiteRT recomputes them). Output elements:

        FULLY_CONNECTED:     prod(input) / weights[1] * weights[0]
        CONV_2D:             channels = filter[0], input channels divisible by filter[3]
        DEPTHWISE_CONV_2D:   channels = filter[3]
        MAX/AVERAGE_POOL_2D: channels = input channels
        all four:            batch = input batch
    """
    x, y = inputs[0], outputs[0]
    if code == 9:
        rows, remainder = divmod(math.prod(x), inputs[1][1])
        if remainder or rows * inputs[1][0] != math.prod(y):
            _fail(f"{what}: input {list(x)} and weights {list(inputs[1])} give "
                  f"{rows * inputs[1][0]} outputs, the output {list(y)} holds {math.prod(y)}")
        return
    channels = inputs[1][0] if code == 3 else inputs[1][3] if code == 4 else x[3]
    if y[0] != x[0] or y[3] != channels or (code == 3 and x[3] % inputs[1][3]):
        _fail(f"{what}: input {list(x)}{f' and filter {list(inputs[1])}' if code in (3, 4) else ''} "
              f"do not give the output {list(y)}")
