"""All keras_sparse layers, under one name.

- Sparse activations (`keras_sparse.kwinners`): `KWinners`, `KWinners1d`,
  `KWinners2d`, `KWinners3d`.
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
from keras_sparse.kwinners import KWinners, KWinners1d, KWinners2d, KWinners3d  # noqa: F401
from keras_sparse.sparse_weights import SparseConv1D, SparseConv2D, SparseDense  # noqa: F401
