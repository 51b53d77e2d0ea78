"""All keras_sparse layers, under one name (as `keras.layers`).

- Sparse activations (`keras_sparse.kwinners`): `KWinners`, `KWinners1D`,
  `KWinners2D`, `KWinners3D`, and their base `KWinnersBase` for new variants
  (`KWinners1d/2d/3d`: the former names, kept as aliases).
- Sparsity across the batch (`keras_sparse.batch_sparsity`): `LifetimeSparsity`
  (WTA lifetime sparsity), `BatchTopK`.
- Sparse weights (`keras_sparse.sparse_weights`): `SparseDense`, `SparseConv1D`,
  `SparseConv2D`; random weights dropped each step (`keras_sparse.drop_connect`):
  `DropConnectDense`.
- Audio features (`keras_sparse.audio`): `LogMelSpectrogram`.
"""

from keras_sparse.audio import LogMelSpectrogram  # noqa: F401
from keras_sparse.batch_sparsity import BatchTopK, LifetimeSparsity  # noqa: F401
from keras_sparse.drop_connect import DropConnectDense  # noqa: F401
from keras_sparse.kwinners import (  # noqa: F401
    KWinners,
    KWinners1d,
    KWinners1D,
    KWinners2d,
    KWinners2D,
    KWinners3d,
    KWinners3D,
    KWinnersBase,
)
from keras_sparse.sparse_weights import SparseConv1D, SparseConv2D, SparseDense  # noqa: F401
