"""Speech inference speed, in one run, as ratios: the log-mel features and the
shipped raw-audio FSDD models.

    python benchmarks/bench_speech.py [--repeats 20] [--fsdd ../shared/datasets/fsdd]

- Features: `keras_sparse.audio.log_mel_spectrogram` (the DFT as two matmul
  steps, exact to float32 rounding) against the same recipe with
  `keras.ops.stft` (TensorFlow's FFT kernel, up to 1.2e-3 dB off in the
  quietest bands), both inside one `tf.function`, on a batch of real clips.
- Models: `saved_models/fsdd_{dense,sparse}_cnn2` on the same batch of raw
  16 kHz clips, Keras (`predict_on_batch` of a traced model) and LiteRT.

Medians over repeats; ratios within this run.
"""

import argparse
import os
import pathlib
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
from keras import ops  # noqa: E402
from keras_sparse import audio, datasets  # noqa: E402
from timing import median_ms  # noqa: E402  (beside this script)

REPO = pathlib.Path(__file__).resolve().parents[1]


def stft_features(waveforms):
    """The paper's recipe on `keras.ops.stft` (centred, reflect padding, periodic Hann)."""
    real, imag = ops.stft(waveforms, 2048, 512, 2048, window="hann", center=True)
    power = real * real + imag * imag  # (batch, frames, 1025)
    mel = ops.swapaxes(ops.matmul(power, ops.convert_to_tensor(
        audio.mel_filterbank(16000, 2048, 32).T, "float32")), -1, -2)
    db = 10.0 * ops.log(ops.maximum(mel, 1e-10)) / np.log(10.0)
    db = db - ops.max(db, axis=(-2, -1), keepdims=True)
    return ops.maximum(db, -80.0)[..., None]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--fsdd", default=str(REPO.parent / "shared" / "datasets" / "fsdd"))
    args = p.parse_args(argv)
    from ai_edge_litert.interpreter import Interpreter

    clips = datasets.load_fsdd(args.fsdd)["test"][0][: args.batch]
    x = tf.constant(clips)
    print(f"{platform.processor() or platform.machine()}, TF {tf.__version__}, Keras {keras.__version__}, "
          f"batch {len(clips)} clips, median of {args.repeats}")

    ours = tf.function(audio.log_mel_spectrogram)
    fft = tf.function(stft_features)
    t_ours = median_ms(lambda: ours(x).numpy(), args.repeats, warmup=2)
    t_fft = median_ms(lambda: fft(x).numpy(), args.repeats, warmup=2)
    diff = float(np.abs(ours(x).numpy() - fft(x).numpy()).max())
    print(f"features, matmul DFT: {t_ours / len(clips):.3f} ms/clip; keras.ops.stft: "
          f"{t_fft / len(clips):.3f} ms/clip; ratio {t_ours / t_fft:.2f}x (max difference {diff:.1e} dB)")

    rows = {}
    for name in ("fsdd_dense_cnn2", "fsdd_sparse_cnn2"):
        model = keras.models.load_model(REPO / "saved_models" / f"{name}.keras")
        keras_ms = median_ms(lambda: model.predict_on_batch(clips), args.repeats, warmup=2)
        interpreter = Interpreter(model_path=str(REPO / "saved_models" / f"{name}.tflite"))
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(clips.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, clips)
        lite_ms = median_ms(interpreter.invoke, args.repeats, warmup=2)
        rows[name] = (keras_ms, lite_ms)
        print(f"{name}: Keras {keras_ms / len(clips):.3f} ms/clip, LiteRT {lite_ms / len(clips):.3f} ms/clip")
    (dk, dl), (sk, sl) = rows["fsdd_dense_cnn2"], rows["fsdd_sparse_cnn2"]
    print(f"sparse / dense: Keras {sk / dk:.2f}x, LiteRT {sl / dl:.2f}x")


if __name__ == "__main__":
    main()
