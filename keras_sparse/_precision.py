"""float64 where the library needs it, on every backend.

Boost factors and the duty-cycle update are computed in float64 and rounded
once to float32, so every backend, kernel and compiler (XLA's fused
multiply-adds included) stores the identical float32 state.
"""

import contextlib

import keras


def float64_context():
    """A context in which float64 really is float64.

    JAX computes in float32 unless `jax_enable_x64` is set; there this enables
    it for the computations inside the context only (also while a compiled
    function is being traced). Elsewhere it does nothing.
    """
    if keras.backend.backend() != "jax":
        return contextlib.nullcontext()
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # JAX < 0.7

    return enable_x64()
