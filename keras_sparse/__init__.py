"""keras_sparse: highly sparse networks for Keras 3 (Ahmad & Scheinkman, 2019)."""

from keras_sparse import (
    audio, callbacks, constraints, conversion, datasets, export, layers, metrics, models, noise, ops, pruning,
    sparsity, tasks, wav,
)
from keras_sparse.conversion import sparsify
from keras_sparse.layers import (
    KWinners,
    KWinners1d,
    KWinners1D,
    KWinners2d,
    KWinners2D,
    KWinners3d,
    KWinners3D,
    SparseConv1D,
    SparseConv2D,
    SparseDense,
)
from keras_sparse.sparsity import sparsity_summary, summary

__version__ = "0.1.0"
