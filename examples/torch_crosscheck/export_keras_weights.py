"""Writes a trained keras_sparse MNIST Sparse CNN-2 as an `.npz` in PyTorch layouts,
for `mnist_sparse_cnn2_torch.py --weights` (the weight-swap cross-check).

    python examples/torch_crosscheck/export_keras_weights.py model.keras weights.npz

Conv kernels go HWIO -> OIHW. The hidden layer's rows are reordered from
Keras' channels-last flatten `(h, w, c)` to PyTorch's `(c, h, w)`, and Dense
kernels are transposed to `(out, in)`. The k-winners layers' duty cycles and
current (decayed) boost strengths are included.
"""

import argparse
import os
import sys

import numpy as np

try:
    import keras_sparse  # noqa: F401  (registers the layers for load_model)
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    import keras_sparse  # noqa: F401


def torch_layout(model):
    """{name: array} of `model`'s weights and k-winners state in PyTorch layouts."""
    weights = {}
    for name in ("conv1", "conv2"):
        kernel, bias = model.get_layer(name).get_weights()
        weights[f"{name}.weight"] = kernel.transpose(3, 2, 0, 1)
        weights[f"{name}.bias"] = bias
    kernel, bias = model.get_layer("hidden").get_weights()[:2]
    height, width, channels = model.get_layer("conv2_kwinners").output.shape[1:]
    # PyTorch flattens (c, h, w); Keras flattened (h, w, c).
    order = np.arange(height * width * channels).reshape(height, width, channels)
    weights["fc1.weight"] = kernel[order.transpose(2, 0, 1).reshape(-1)].T
    weights["fc1.bias"] = bias
    kernel, bias = model.get_layer("logits").get_weights()
    weights["fc2.weight"], weights["fc2.bias"] = kernel.T, bias
    for i, name in enumerate(("conv1_kwinners", "conv2_kwinners", "hidden_kwinners"), 1):
        layer = model.get_layer(name)
        weights[f"kw{i}.duty"] = np.asarray(layer.duty_cycles)
        weights[f"kw{i}.boost_strength"] = np.float32(layer.boost_strength)
    return weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a trained Sparse CNN-2 (.keras)")
    parser.add_argument("out", help="the .npz to write")
    args = parser.parse_args(argv)

    import keras

    np.savez(args.out, **torch_layout(keras.models.load_model(args.model)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
