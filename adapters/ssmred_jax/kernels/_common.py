"""What every kernel module shares: the complex128 dtype, the x64 guard, the batch shape checks, :math:`M^H`."""

from __future__ import annotations

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

_CDTYPE = jnp.complex128


def _require_x64(where: str) -> None:
    if not jax.config.x64_enabled:
        raise RuntimeError(
            f"{where} works in complex128 and needs 64-bit types: call it inside `with jax.enable_x64(True):`"
        )


def _as_complex(x: jax.Array) -> jax.Array:
    return jnp.asarray(x).astype(_CDTYPE)


def _check_batch(lam: jax.Array, B: jax.Array, C: jax.Array) -> None:
    if lam.ndim != 2 or lam.shape[-1] == 0:
        raise DimensionError(f"lam must have shape (batch, n_states); got {tuple(lam.shape)}")
    G, n = lam.shape
    if B.ndim != 3 or tuple(B.shape[:2]) != (G, n):
        raise DimensionError(f"B must have shape (batch={G}, n_states={n}, n_inputs); got {tuple(B.shape)}")
    if C.ndim != 3 or C.shape[0] != G or C.shape[2] != n:
        raise DimensionError(f"C must have shape (batch={G}, n_outputs, n_states={n}); got {tuple(C.shape)}")


def _mH(x: jax.Array) -> jax.Array:
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def _orders(r: jax.Array | int, G: int, n: int) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(r).astype(jnp.int32), (G,))
