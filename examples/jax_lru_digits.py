"""Train a small equinox LRU classifier on the scikit-learn digits with optax and shrink it while it trains.

Each 8x8 digit is read pixel by pixel (a sequence of 64 scalars). The model is
``Linear(1 -> H) -> blocks -> mean over time -> Linear(H -> 10)``, a block being
``x + GLU(GELU(LRU(LayerNorm(x))))`` with :class:`ssmred_jax.LRU` layers. The functional
:class:`ssmred_jax.CompreSSM` controller reduces every LRU layer at 2.5, 5, 7.5 and 10 % of the steps
(tolerance mode: each attempt discards a fraction ``tau`` of the Hankel singular-value sum); it
returns the smaller model and the rebuilt optax state, and the jitted train step re-traces once for
the new shapes. Test accuracy is printed before and after every reduction.

Run: ``python examples/jax_lru_digits.py`` (``--help`` for options; the measured run time is in docs/jax.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from ssmred_jax import LRU, CompreSSM, ssm_layers, tolerance


class Block(eqx.Module):
    """``x + GLU(GELU(LRU(LayerNorm(x))))`` on one ``(length, H)`` sequence."""

    norm: eqx.nn.LayerNorm
    lru: LRU
    value: eqx.nn.Linear
    gate: eqx.nn.Linear

    def __init__(self, d_model: int, d_state: int, *, key: jax.Array) -> None:
        k1, k2, k3 = jax.random.split(key, 3)
        self.norm = eqx.nn.LayerNorm(d_model)
        self.lru = LRU(d_model, d_state, key=k1)
        self.value = eqx.nn.Linear(d_model, d_model, key=k2)
        self.gate = eqx.nn.Linear(d_model, d_model, key=k3)

    def __call__(self, x: jax.Array) -> jax.Array:
        z = jax.nn.gelu(self.lru(jax.vmap(self.norm)(x)))
        return x + jax.vmap(self.value)(z) * jax.nn.sigmoid(jax.vmap(self.gate)(z))


class Classifier(eqx.Module):
    """Encoder, LRU blocks, mean pooling over time, linear head."""

    encoder: eqx.nn.Linear
    blocks: list[Block]
    head: eqx.nn.Linear

    def __init__(self, d_model: int, d_state: int, n_blocks: int, *, key: jax.Array) -> None:
        keys = jax.random.split(key, n_blocks + 2)
        self.encoder = eqx.nn.Linear(1, d_model, key=keys[0])
        self.blocks = [Block(d_model, d_state, key=k) for k in keys[1:-1]]
        self.head = eqx.nn.Linear(d_model, 10, key=keys[-1])

    def __call__(self, x: jax.Array) -> jax.Array:
        z = jax.vmap(self.encoder)(x)
        for block in self.blocks:
            z = block(z)
        return self.head(jnp.mean(z, axis=0))


def loss_fn(model: Classifier, x: jax.Array, y: jax.Array) -> jax.Array:
    logits = jax.vmap(model)(x)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def make_train_step(optimizer: optax.GradientTransformation) -> Any:
    @eqx.filter_jit
    def train_step(model: Classifier, opt_state: Any, x: jax.Array, y: jax.Array) -> tuple[Classifier, Any, jax.Array]:
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return train_step


@eqx.filter_jit
def accuracy(model: Classifier, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(jax.vmap(model)(x), axis=-1) == y)


def state_sizes(model: Any) -> list[int]:
    return [s.layer.d_state for s in ssm_layers(model)]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800, help="training steps (default 800, ~36 epochs)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--tau", type=float, default=0.1, help="discarded fraction of the HSV sum per attempt")
    parser.add_argument(
        "--schedule",
        type=float,
        nargs="+",
        default=None,
        help="attempts as fractions of --steps (default 2.5 5 7.5 10 %%)",
    )
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(y))
    X = (X[order] / 16.0).astype(np.float32)[:, :, None]  # (samples, 64 pixels, 1)
    y = y[order].astype(np.int32)
    n_test = len(y) // 5
    x_test, y_test = jnp.asarray(X[:n_test]), jnp.asarray(y[:n_test])
    x_train, y_train = X[n_test:], y[n_test:]

    model = Classifier(args.d_model, args.d_state, args.blocks, key=jax.random.key(args.seed))
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, max(1, args.steps // 10), args.steps)
    optimizer = optax.adamw(schedule, weight_decay=0.01)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    train_step = make_train_step(optimizer)
    controller = CompreSSM(args.steps, mode=tolerance(args.tau), schedule=args.schedule)
    print(f"state sizes {state_sizes(model)}; reductions at steps {controller.attempt_steps}")

    events = []
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(1, args.steps + 1):
        idx = rng.integers(0, len(y_train), args.batch)
        model, opt_state, loss = train_step(model, opt_state, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]))
        if step in controller.attempt_steps:
            before = float(accuracy(model, x_test, y_test))
        model, opt_state, changed = controller.step(step, model, opt_state, optimizer)
        if step in controller.attempt_steps:
            record = controller.history[-1]
            after = float(accuracy(model, x_test, y_test)) if changed else before
            events.append({"step": step, "sizes": record.sizes_after, "acc_before": before, "acc_after": after})
            print(
                f"step {step:4d}  loss {float(loss):.3f}  reduced {list(record.sizes_before)} -> "
                f"{list(record.sizes_after)} in {record.seconds:.2f} s  test accuracy {before:.3f} -> {after:.3f}"
            )
    final = float(accuracy(model, x_test, y_test))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"final state sizes {state_sizes(model)}, loss {float(loss):.3f}, test accuracy {final:.3f}, "
        f"{seconds:.1f} s wall, {cpu:.1f} s CPU (training loop incl. compilation)"
    )
    return {
        "events": events,
        "accuracy": final,
        "loss": float(loss),
        "sizes": state_sizes(model),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


if __name__ == "__main__":
    main()
