"""JAX reduction benchmark (issue 13): one reduction of an sCIFAR-size LRU model, three routes, one run.

Prints, in one run:

1. the reduction of ``--layers`` LRU layers (default 6, n = 384, H = 512, float32 like a trained model)
   with the tolerance rule (tau = 0.1) by
   (a) ``ssmred_jax.reduce_model`` — one jitted analysis call for all layers (closed-form Gramians,
       Cholesky factors, SVD of the factor product, in complex128 with x64 enabled for the call),
       orders on the host by ``ssmred.selection``, one jitted truncation call (SR projections,
       re-diagonalisation, new parameters) — timed *after* the first trace, i.e. the steady cost of a
       reduction whose programs are compiled;
   (b) the published per-layer numpy route, re-implemented from its description for timing (the
       CompreSSM code's recipe): a host copy of each layer, closed-form Gramians, HSVs as
       ``sqrt(eigvals(P @ Q).real)`` with NaN -> 0, the kept-energy threshold, then a balancing
       transformation from ``sqrtm(P + 1e-9 I)``, the SVD of ``P^½ Q P^½`` and ``inv(T)``, the truncation
       and ``eig``/``inv`` for the new LRU parameters — plus an "analysis" variant with the Gramians
       from ``scipy.linalg.solve_discrete_lyapunov`` instead (the per-layer Lyapunov route);
   (c) ``ssmred_torch.reduce_model`` on the same parameters (batched torch path).
   Analysis (HSVs + orders) and full reduction are timed separately; medians over ``--repeats``,
   the three routes interleaved within each repeat, and the ratios;
2. the re-trace cost, reported apart: the first call of the two reduction programs for a new set of
   shapes (trace + XLA compile, what every reduction during training pays once), and the re-trace of
   a jitted train step (``eqx.filter_jit`` of loss + gradient + optax AdamW update through the layers)
   for the reduced model, both as first call minus steady call.

Threads: BLAS/LAPACK (threadpoolctl), torch and XLA's CPU thread pool are all limited to ``--threads``
(default 1, see docs/benchmarks.md). Usage: ``python benchmarks/jax_reduction.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time


def _threads_from_argv(default: int = 1) -> int:
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return default


# XLA reads its thread settings when the CPU client starts: before jax is imported
_THREADS = _threads_from_argv()
if _THREADS == 1 and "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import scipy.linalg as spla  # noqa: E402
import ssmred_jax  # noqa: E402
from ssmred_jax import reduce as jax_reduce  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from ssmred import hsv_diagonal  # noqa: E402
from ssmred.bounds import order_from_energy  # noqa: E402
from ssmred.selection import select_orders, tolerance  # noqa: E402


# ---------------------------------------------------------------------------------------------- published route
def _host_system(layer: ssmred_jax.LRU) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-layer host copy the published route starts from (complex128 numpy)."""
    p = {k: np.asarray(jax.device_get(getattr(layer, k)), dtype=np.float64) for k in ssmred_jax.LRU_FIELDS}
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    B = (p["B_re"] + 1j * p["B_im"]) * np.exp(p["gamma_log"])[:, None]
    C = p["C_re"] + 1j * p["C_im"]
    return lam, B, C


def _published_hsv(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    g = np.sqrt(spla.eigvals(P @ Q).real)  # the published HSVs: dense eigvals, NaN -> 0, sorted
    return np.sort(np.where(np.isnan(g), 0.0, g))[::-1]


def published_layer(layer: ssmred_jax.LRU, tau: float, *, full: bool, gramians: str = "closed") -> int:
    lam, B, C = _host_system(layer)
    n = lam.size
    if gramians == "closed":
        P = (B @ B.conj().T) / (1.0 - np.outer(lam, lam.conj()))
        Q = (C.conj().T @ C) / (1.0 - np.outer(lam.conj(), lam))
    else:  # per-layer scipy Lyapunov solves
        P = spla.solve_discrete_lyapunov(np.diag(lam), B @ B.conj().T)
        Q = spla.solve_discrete_lyapunov(np.diag(lam).conj().T, C.conj().T @ C)
    g = _published_hsv(P, Q)
    r = int(np.argmax(np.cumsum(g) / np.sum(g) >= 1.0 - tau) + 1)  # keep a fraction 1 - tau of sum(g)
    if not full:
        return r
    P_half = spla.sqrtm(P + 1e-9 * np.eye(n))  # the published balancing ("sqrtm" method)
    U, Sd, _ = spla.svd(P_half @ Q @ P_half)
    T = P_half @ U @ np.diag(1.0 / np.sqrt(np.sqrt(Sd)))
    Ti = spla.inv(T)
    A_r = (Ti * lam[None, :]) @ T
    A_r, B_r, C_r = A_r[:r, :r], (Ti @ B)[:r], (C @ T)[:, :r]
    mu, V = spla.eig(A_r)  # lti_to_lru: diagonalise, then the LRU parameters
    Vi = spla.inv(V)
    Bd, Cd = Vi @ B_r, C_r @ V
    gamma = np.sqrt(1 - np.abs(mu) ** 2)
    _ = (np.log(-np.log(np.abs(mu))), np.log(np.angle(mu) % (2 * np.pi)), Bd / gamma[:, None], Cd, np.log(gamma))
    return r


# ---------------------------------------------------------------------------------------------- ours
def jax_analysis(layers: list[ssmred_jax.LRU], tau: float) -> list[int]:
    """HSVs of all layers in the one jitted call, then the host orders (the first half of plan_reduction)."""
    adapter = ssmred_jax.adapter_for(layers[0])
    with jax.enable_x64(True):
        out = jax_reduce._analyse((tuple(layers),), (adapter,))
        hsv = np.asarray(jax.device_get(out[0][3].hsv))
    return list(select_orders(tolerance(tau), list(hsv)))


def jax_full(layers: list[ssmred_jax.LRU], tau: float) -> list[int]:
    new, report = ssmred_jax.reduce_model(layers, tolerance(tau), gate=1.0)
    jax.block_until_ready(new)
    return list(report.sizes_after)


def timed(fn) -> tuple[float, float, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def make_layers(n_layers: int, H: int, n: int, seed: int) -> list[ssmred_jax.LRU]:
    return [ssmred_jax.LRU(H, n, key=jax.random.key(seed + i)) for i in range(n_layers)]


# ---------------------------------------------------------------------------------------------- re-trace
def retrace(layers: list[ssmred_jax.LRU], tau: float, length: int) -> None:
    H = layers[0].d_model
    x = jnp.asarray(np.random.default_rng(0).normal(size=(length, H)).astype(np.float32))
    optimizer = optax.adamw(1e-3)

    def loss_fn(model: list[ssmred_jax.LRU]) -> jax.Array:
        z = x
        for layer in model:
            z = jax.nn.gelu(layer(z))
        return jnp.mean(z**2)

    @eqx.filter_jit
    def step(model, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    def first_and_steady(model, state) -> tuple[float, float, float, float]:
        t_first, c_first, _ = timed(lambda: jax.block_until_ready(step(model, state)))
        steady = [timed(lambda: jax.block_until_ready(step(model, state)))[:2] for _ in range(2)]
        return t_first, c_first, statistics.median(w for w, _ in steady), statistics.median(c for _, c in steady)

    state = optimizer.init(eqx.filter(layers, eqx.is_array))
    w0, c0, sw0, sc0 = first_and_steady(layers, state)
    ctl = ssmred_jax.CompreSSM(100, mode=tolerance(tau), schedule=[1])
    t_red, c_red, (new, new_state, _) = timed(lambda: ctl.step(1, layers, state, optimizer))
    w1, c1, sw1, sc1 = first_and_steady(new, new_state)
    print(
        f"    train step (length {length}, batch 1, {len(layers)} layers, loss+grad+AdamW), wall seconds "
        "(process CPU seconds):"
    )
    print(
        f"      original n={layers[0].d_state}: first call {w0:.2f} ({c0:.2f}), steady {sw0:.3f} ({sc0:.3f}) -> "
        f"compile ~{w0 - sw0:.2f} ({c0 - sc0:.2f})"
    )
    sizes = [layer.d_state for layer in new]
    print(
        f"      reduced {sizes}: first call {w1:.2f} ({c1:.2f}), steady {sw1:.3f} ({sc1:.3f}) -> re-trace + compile "
        f"~{w1 - sw1:.2f} ({c1 - sc1:.2f}) per reduction"
    )
    print(f"      (the controller step, reduction + optax rebuild incl. their compilation: {t_red:.2f} ({c_red:.2f}))")


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="BLAS, torch and XLA threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--n", type=int, default=384)
    parser.add_argument("--H", type=int, default=512)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--length", type=int, default=1024, help="sequence length of the re-trace train step")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-lyapunov", action="store_true", help="skip the per-layer scipy Lyapunov baseline")
    parser.add_argument("--skip-retrace", action="store_true")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads):
        print(
            f"jax {jax.__version__} ({jax.default_backend()}), equinox {eqx.__version__}, optax {optax.__version__}; "
            f"threads {args.threads} (BLAS, XLA{', torch' if not args.skip_torch else ''})"
        )
        print(f"load average at start: {load()}")
        layers = make_layers(args.layers, args.H, args.n, args.seed)
        jax.block_until_ready(layers)
        t_layers = None
        if not args.skip_torch:
            import ssmred_torch
            import torch

            torch.set_num_threads(args.threads)
            t_layers = torch.nn.ModuleList([ssmred_torch.LRU(args.H, args.n) for _ in layers])
            for t_layer, layer in zip(t_layers, layers, strict=True):
                t_layer.load_state_dict(
                    {k: torch.from_numpy(np.array(getattr(layer, k))) for k in ssmred_jax.LRU_FIELDS}
                )
        print(
            f"\n[1] one reduction of {args.layers} LRU layers, n={args.n}, H={args.H}, float32, "
            f"tolerance tau={args.tau}"
        )
        # first calls: trace + compile of the two jitted programs for these shapes (reported in [2])
        t_first_a, c_first_a, _ = timed(lambda: jax_analysis(layers, args.tau))
        t_first_f, c_first_f, _ = timed(lambda: jax_full(layers, args.tau))
        rows: dict[str, list[tuple[float, float]]] = {}
        out: dict[str, object] = {}
        routes = [
            ("jax_a", lambda: jax_analysis(layers, args.tau)),
            ("pub_a", lambda: [published_layer(la, args.tau, full=False) for la in layers]),
            ("jax_f", lambda: jax_full(layers, args.tau)),
            ("pub_f", lambda: [published_layer(la, args.tau, full=True) for la in layers]),
        ]
        if not args.skip_lyapunov:
            routes.append(
                ("lyap_a", lambda: [published_layer(la, args.tau, full=False, gramians="lyapunov") for la in layers])
            )
        for _ in range(args.repeats):
            repeat_routes = list(routes)
            if t_layers is not None:
                fresh = copy.deepcopy(t_layers)
                repeat_routes.append(
                    (
                        "torch_f",
                        lambda m=fresh: list(ssmred_torch.reduce_model(m, tolerance(args.tau), gate=1.0).sizes_after),
                    )
                )
            for key, fn in repeat_routes:
                wall, cpu, out[key] = timed(fn)
                rows.setdefault(key, []).append((wall, cpu))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
        print(
            f"    orders: jax {out['jax_f']}, published recipe {out['pub_f']}"
            + (f", torch {out['torch_f']}" if "torch_f" in out else "")
        )
        with jax.enable_x64(True):
            systems = [_host_system(la) for la in layers]
        s_core = hsv_diagonal(
            np.stack([s[0] for s in systems]),
            np.stack([s[1] for s in systems]),
            np.stack([s[2] for s in systems]),
            dt=1.0,
        )
        plan = ssmred_jax.plan_reduction(layers, tolerance(args.tau), gate=1.0)
        err = max(float(np.max(np.abs(lr.hsv - s_core[i]) / s_core[i, 0])) for i, lr in enumerate(plan.report.layers))
        lam, B, C = systems[0]
        P = (B @ B.conj().T) / (1.0 - np.outer(lam, lam.conj()))
        Q = (C.conj().T @ C) / (1.0 - np.outer(lam.conj(), lam))
        err_pub = float(np.max(np.abs(_published_hsv(P, Q) - s_core[0]) / s_core[0, 0]))
        core_orders = [order_from_energy(s, args.tau) for s in s_core]
        print(
            f"    check: max |sigma - sigma_core| / sigma_1 = {err:.1e} (jax, all layers), {err_pub:.1e} "
            f"(published recipe, layer 0); core orders {core_orders}"
        )
        print(
            f"    medians of {args.repeats}; wall seconds (process CPU seconds); ratio = other / jax, of wall time and "
            "(in parentheses) of CPU time — on a shared machine the CPU ratio is the one to read"
        )
        print(
            f"    {'':28s}{'ssmred_jax':>17s}{'published numpy':>19s}{'ratio':>16s}{'ssmred_torch':>18s}{'ratio':>16s}"
        )

        def ratio(o: tuple[float, float], j: tuple[float, float]) -> str:
            return f"{o[0] / j[0]:7.2f}x ({o[1] / j[1]:5.2f}x)"

        for label, j, p, t in (
            ("analysis (HSVs + orders)", med["jax_a"], med["pub_a"], None),
            ("full reduction", med["jax_f"], med["pub_f"], med.get("torch_f")),
        ):
            torch_cols = f"{t[0]:10.3f} ({t[1]:6.2f}){ratio(t, j)}" if t is not None else ""
            print(f"    {label:28s}{j[0]:8.3f} ({j[1]:6.2f}){p[0]:10.3f} ({p[1]:6.2f}){ratio(p, j)}{torch_cols}")
        if "lyap_a" in med:
            ly = med["lyap_a"]
            print(f"    {'analysis, scipy Lyapunov':28s}{'':17s}{ly[0]:10.3f} ({ly[1]:6.2f}){ratio(ly, med['jax_a'])}")
        print("\n[2] re-trace cost (apart from [1])")
        compile_a = t_first_a - med["jax_a"][0]
        compile_t = t_first_f - med["jax_f"][0]  # the analysis program is already compiled by then
        cpu_a = c_first_a - med["jax_a"][1]
        cpu_t = c_first_f - med["jax_f"][1]
        print(
            f"    reduction programs, first calls for these shapes, wall (CPU) seconds: analysis {t_first_a:.2f} "
            f"({c_first_a:.2f}), steady {med['jax_a'][0]:.2f} ({med['jax_a'][1]:.2f}); then full reduction "
            f"{t_first_f:.2f} ({c_first_f:.2f}), steady {med['jax_f'][0]:.2f} ({med['jax_f'][1]:.2f})"
        )
        print(
            f"    -> ~{compile_a + compile_t:.2f} ({cpu_a + cpu_t:.2f}) s trace + compile per reduction "
            f"({compile_a:.2f} ({cpu_a:.2f}) analysis, {compile_t:.2f} ({cpu_t:.2f}) truncation and slices)"
        )
        if not args.skip_retrace:
            retrace(layers, args.tau, args.length)
        print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
