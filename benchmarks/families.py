"""Layer-family benchmark (issue 11): LRU vs S4D vs S5 — training step time vs state size, and reduction cost.

Prints, in one run:

1. the time of one training step (forward + backward + AdamW, CPU) of a small classifier (2 blocks,
   ``H = --H``, sequences of ``--length``, batch ``--batch``) for each family and state size ``n``
   (stored complex states: LRU ``n``, S4D ``d_state = 2n``, S5 ``d_state = 2n``), and the ratio to the
   largest ``n`` — where a smaller state buys time. S4D is timed with its convolution kernel
   (``mode="conv"``) and with its scan; for the kernel also the kernel generation alone (forward +
   backward of ``S4D.kernel``), the part of the convolution path whose cost grows with ``n``;
2. the reduction of a 6-layer S5 model (``P = 256`` i.e. 128 stored states, ``H = 256``) and a 6-layer
   S4D model (``H = 256``, ``N = 64`` i.e. 32 half-states, 1536 SISO systems) by ssmred_torch's
   batched path (``reduce_model``: Gramians, factors, Hankel SVD, orders, truncation,
   re-diagonalisation, write-back with continuous-parameter recovery) vs two per-layer (S5) /
   per-channel (S4D) host loops, one system at a time: (a) the same mathematics written directly in
   numpy/scipy (closed-form Gramians, Cholesky, SVD, square-root truncation, eigen-decomposition, ZOH
   parameter recovery) — the fastest a host loop can be — and (b) the ssmred core's API
   (``from_diagonal``, ``BalancedTruncation``, then eigen-decomposition and ZOH parameters) — what a
   user of the core would write; all at tolerance ``--tau`` with the one-order-per-layer rule;
   medians of ``--repeats``;
3. the reduction overhead as a share of a training run: (a) measured in real CompreSSM runs on the
   scikit-learn digits (2 blocks, 4 attempts in the first 10 % of ``--digits-steps`` steps) per
   family, (b) for the 6-layer models of [2]: 4 reductions against a 1000-step run of the measured
   step time (batch ``--big-batch``, length ``--big-length``).

Usage: ``python benchmarks/families.py [--threads 1] [--repeats 3] [--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import scipy.linalg as spla
import torch
from ssmred_torch import (
    S4D,
    S5,
    CompreSSM,
    LRUModel,
    S4DModel,
    S5Model,
    reduce_model,
    tolerance,
)
from ssmred_torch.layers.s4d import s4d_matrices
from ssmred_torch.layers.s5 import s5_matrices
from threadpoolctl import threadpool_limits

from ssmred import BalancedTruncation, from_diagonal
from ssmred.selection import numerical_rank, select_orders


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


# ---------------------------------------------------------------------------------------------- [1] steps
def make_model(family: str, n: int, H: int, gen: torch.Generator) -> torch.nn.Module:
    if family == "LRU":
        return LRUModel(1, H, n, 2, 10, generator=gen)
    if family.startswith("S4D"):
        return S4DModel(1, H, 2 * n, 2, 10, mode="scan" if "scan" in family else "conv", generator=gen)
    return S5Model(1, H, 2 * n, 2, 10, generator=gen)


def step_fn(model: torch.nn.Module, batch: int, length: int, gen: torch.Generator) -> Callable[[], None]:
    """One training step of ``model`` on fixed random data (forward, cross-entropy, backward, AdamW)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, length, 1, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)

    def one() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return one


def kernel_fn(n: int, H: int, length: int, gen: torch.Generator) -> Callable[[], None]:
    """Forward + backward of the S4D kernel generation alone (the n-dependent part of the conv path)."""
    layer = S4D(H, 2 * n, generator=gen)

    def one() -> None:
        layer.zero_grad()
        layer.kernel(length).square().sum().backward()

    return one


# ---------------------------------------------------------------------------------------------- [2] baseline
def _factor(P: np.ndarray) -> np.ndarray:
    try:
        return spla.cholesky(P, lower=True)
    except spla.LinAlgError:  # numerically semidefinite: a square root from the eigen-decomposition
        w, V = spla.eigh(P)
        return V * np.sqrt(np.clip(w, 0.0, None))


def scipy_hsv(lam: np.ndarray, B: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, tuple]:
    den = 1.0 - lam[:, None] * lam.conj()[None, :]
    P = (B @ B.conj().T) / den
    Q = (C.conj().T @ C) / den.conj()
    Lc, Lo = _factor(P), _factor(Q)
    U, s, Vh = spla.svd(Lo.conj().T @ Lc)
    return s, (Lc, Lo, U, s, Vh)


def scipy_truncate(lam, B, C, data, r: int, step: np.ndarray) -> dict[str, np.ndarray]:
    """Square-root BT to r, re-diagonalisation, ZOH parameters with the step kept (one system)."""
    Lc, Lo, U, s, Vh = data
    scale = 1.0 / np.sqrt(s[:r])
    T = (Lc @ Vh[:r].conj().T) * scale[None, :]
    Ti = scale[:, None] * (U[:, :r].conj().T @ Lo.conj().T)
    Ar, Br, Cr = (Ti * lam[None, :]) @ T, Ti @ B, C @ T
    mu, V = spla.eig(Ar)
    Bd, Cd = spla.solve(V, Br), Cr @ V
    if np.ndim(step):  # one step per state (S5): the step of the nearest old state
        step = step[np.abs(mu[:, None] - lam[None, :]).argmin(-1)]
    ell = np.log(mu)  # principal branch (the batched path also matches branches)
    a = ell / step
    phi = np.expm1(ell) / a
    return {"a": a, "B": Bd / phi[:, None], "C": Cd}


def scipy_reduce_s5(model: torch.nn.ModuleList, tau: float) -> list[int]:
    orders = []
    for layer in model:
        with torch.no_grad():
            lam, _, B, C = (t.numpy() for t in s5_matrices(layer))  # the host copy is part of the loop
            step = torch.exp(layer.log_step.detach().double()).numpy()
        s, data = scipy_hsv(lam, B, C)
        (r,) = select_orders(tolerance(tau), [s])
        r = min(r, numerical_rank(s))
        scipy_truncate(lam, B, C, data, r, step)
        orders.append(r)
    return orders


def scipy_reduce_s4d(model: torch.nn.ModuleList, tau: float) -> list[int]:
    orders = []
    for layer in model:
        with torch.no_grad():
            lam, _, Bbar, C = (t.numpy() for t in s4d_matrices(layer))
            step = torch.exp(layer.log_dt.detach().double()).numpy()
        per = [scipy_hsv(lam[h], Bbar[h][:, None], C[h][None, :]) for h in range(lam.shape[0])]
        hsv = [s for s, _ in per]
        r = min(max(select_orders(tolerance(tau), hsv)), min(numerical_rank(s) for s in hsv))
        for h, (_, data) in enumerate(per):
            scipy_truncate(lam[h], Bbar[h][:, None], C[h][None, :], data, r, step[h])
        orders.append(r)
    return orders


def _core_finish(bt: BalancedTruncation, lam: np.ndarray, r: int, step) -> None:
    """Truncate with the core, re-diagonalise, ZOH parameters (steps as the batched path keeps them)."""
    rom = bt.reduce(r).reduced
    mu, V = spla.eig(rom.A)
    Bd, Cd = spla.solve(V, rom.B), rom.C @ V
    if np.ndim(step):
        step = step[np.abs(mu[:, None] - lam[None, :]).argmin(-1)]
    ell = np.log(mu)
    a = ell / step
    _ = (a, Bd / (np.expm1(ell) / a)[:, None], Cd)


def core_reduce_s5(model: torch.nn.ModuleList, tau: float) -> list[int]:
    orders = []
    for layer in model:
        with torch.no_grad():
            lam, _, B, C = (t.numpy() for t in s5_matrices(layer))
            step = torch.exp(layer.log_step.detach().double()).numpy()
        bt = BalancedTruncation(from_diagonal(lam, B, C, dt=1.0))
        (r,) = select_orders(tolerance(tau), [bt.hsv])
        r = min(r, numerical_rank(bt.hsv))
        _core_finish(bt, lam, r, step)
        orders.append(r)
    return orders


def core_reduce_s4d(model: torch.nn.ModuleList, tau: float) -> list[int]:
    orders = []
    for layer in model:
        with torch.no_grad():
            lam, _, Bbar, C = (t.numpy() for t in s4d_matrices(layer))
            step = torch.exp(layer.log_dt.detach().double()).numpy()
        systems = [from_diagonal(lam[h], Bbar[h][:, None], C[h][None, :], dt=1.0) for h in range(len(lam))]
        bts = [BalancedTruncation(sys) for sys in systems]
        hsv = [bt.hsv for bt in bts]
        r = min(max(select_orders(tolerance(tau), hsv)), min(numerical_rank(s) for s in hsv))
        for h, bt in enumerate(bts):
            _core_finish(bt, lam[h], r, step[h])
        orders.append(r)
    return orders


def reduction_rows(name: str, layers: torch.nn.ModuleList, baselines, tau: float, repeats: int) -> float:
    times: dict[str, list[float]] = {"ours": [], **{k: [] for k in baselines}}
    sizes: dict[str, object] = {}
    for _ in range(repeats):  # interleaved, so load from other processes hits all alike
        fresh = copy.deepcopy(layers)
        t0 = time.perf_counter()
        sizes["ours"] = list(reduce_model(fresh, tolerance(tau), gate=1.0).sizes_after)
        times["ours"].append(time.perf_counter() - t0)
        for key, fn in baselines.items():
            t0 = time.perf_counter()
            sizes[key] = fn(layers, tau)
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    cells = "".join(f"{med[k]:10.3f} s ({med[k] / med['ours']:4.1f}x)" for k in baselines)
    same = all(v == sizes["ours"] for v in sizes.values())
    print(f"    {name:44s}{med['ours']:9.3f} s{cells}   orders {sizes['ours']}{'' if same else ' (differ!)'}")
    return med["ours"]


# ---------------------------------------------------------------------------------------------- [3] training
def digits_run(family: str, steps: int) -> tuple[float, float, list[int]]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)[:, :, None]
    y = torch.tensor(y)
    gen = torch.Generator().manual_seed(0)
    model = make_model(family, 32, 32, gen)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ctl = CompreSSM(steps, mode=tolerance(0.1))
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(X), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctl.step(step, model, opt)
    total = time.perf_counter() - t0
    return total, sum(r.seconds for r in ctl.history), model.state_sizes


def part_steps(args: argparse.Namespace, gen: torch.Generator) -> None:
    families = ["LRU", "S4D conv", "S4D scan", "S5"]
    print(
        f"\n[1] training step (forward + backward + AdamW), 2 blocks, H={args.H}, length {args.length}, "
        f"batch {args.batch}, float32; median ms per step over {args.repeats} rounds (ratio to n={max(args.sizes)}; "
        f"S4D scan up to n={args.scan_max_n})"
    )
    jobs: dict[tuple[str, int], Callable[[], None]] = {}
    for n in args.sizes:
        for f in families:
            if f == "S4D scan" and n > args.scan_max_n:
                continue
            jobs[(f, n)] = step_fn(make_model(f, n, args.H, gen), args.batch, args.length, gen)
        jobs[("kernel", n)] = kernel_fn(n, args.H, args.length, gen)
    for fn in jobs.values():
        fn()  # warm-up
    samples: dict[tuple[str, int], list[float]] = {k: [] for k in jobs}
    for _ in range(args.repeats):  # round robin: load from other processes hits every cell alike
        for key, fn in jobs.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in samples.items()}
    top = max(args.sizes)
    head = "".join(f"{f:>20s}" for f in families) + f"{'S4D kernel gen.':>20s}"
    print(f"    {'n':>5s}{head}")
    for n in args.sizes:
        cells = ""
        for f in [*families, "kernel"]:
            ref = med.get((f, top)) or med.get((f, max(m for g, m in med if g == f)))
            cells += f"{1e3 * med[(f, n)]:11.1f} ({med[(f, n)] / ref:4.2f})" if (f, n) in med else f"{'-':>20s}"
        print(f"    {n:5d}{cells}")
    print(
        "    (S4D conv: the FFT convolution costs the same for every n, only its kernel generation grows; the scans "
        "grow with n — S4D's scan carries H * n states, S5's and the LRU's n)"
    )


def big_models() -> tuple[torch.nn.ModuleList, torch.nn.ModuleList]:
    mk = torch.Generator().manual_seed(1)
    s5_layers = torch.nn.ModuleList([S5(256, 256, generator=mk) for _ in range(6)])
    s4d_layers = torch.nn.ModuleList([S4D(256, 64, generator=mk) for _ in range(6)])
    return s5_layers, s4d_layers


def part_reduction(args: argparse.Namespace, s5_layers, s4d_layers) -> tuple[float, float]:
    print(f"\n[2] reduction of 6-layer models, tau={args.tau}, medians of {args.repeats} (ratio = loop / ours)")
    print(f"    {'':44s}{'batched torch':>11s}{'same-math scipy loop':>22s}{'core API loop':>19s}")
    t_s5 = reduction_rows(
        "S5  P=256 (128 stored), H=256: 6 systems",
        s5_layers,
        {"scipy": scipy_reduce_s5, "core": core_reduce_s5},
        args.tau,
        args.repeats,
    )
    t_s4d = reduction_rows(
        "S4D N=64 (32 half-states), H=256: 1536 sys.",
        s4d_layers,
        {"scipy": scipy_reduce_s4d, "core": core_reduce_s4d},
        args.tau,
        args.repeats,
    )
    return t_s5, t_s4d


def part_training(args: argparse.Namespace, gen: torch.Generator, s5_layers, s4d_layers, t_s5, t_s4d) -> None:
    print("\n[3] reduction overhead in training")
    for f in ("LRU", "S4D conv", "S5"):
        total, spent, sizes = digits_run(f, args.digits_steps)
        print(
            f"    digits, {f:9s} 2 blocks H=32 n=32 -> {sizes}, {args.digits_steps} steps (CompreSSM tau=0.1): "
            f"training {total:.1f} s, reductions {spent:.3f} s = {100 * spent / total:.2f} %"
        )
    for name, layers, t_red in (("S5 ", s5_layers, t_s5), ("S4D", s4d_layers, t_s4d)):
        model = torch.nn.Sequential(*copy.deepcopy(layers))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(args.big_batch, args.big_length, 256, generator=gen)

        def one(model=model, opt=opt, x=x) -> None:
            loss = model(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        one()
        t_step = median_time(one, max(1, args.repeats - 1))[0]
        run = 1000
        share = 4 * t_red / (run * t_step + 4 * t_red)
        print(
            f"    6-layer {name} of [2]: one step (batch {args.big_batch}, length {args.big_length}) "
            f"{t_step:.2f} s; 4 reductions of {t_red:.2f} s in a {run}-step run = {100 * share:.2f} %"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--H", type=int, default=64)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--scan-max-n", type=int, default=64, help="largest n for the (slow) S4D scan")
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--digits-steps", type=int, default=400)
    parser.add_argument("--big-batch", type=int, default=8)
    parser.add_argument("--big-length", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="fewer sizes, steps and repeats (a smoke run)")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3], help="which parts to run")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.digits_steps, args.length = [8, 32, 128], 1, 120, 128
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    with threadpool_limits(limits=args.threads):
        print(f"torch {torch.__version__}, threads {args.threads} (torch and BLAS), load average {load()}")
        if 1 in args.parts:
            part_steps(args, gen)
        if 2 in args.parts or 3 in args.parts:
            s5_layers, s4d_layers = big_models()
            t_s5, t_s4d = part_reduction(args, s5_layers, s4d_layers)
            if 3 in args.parts:
                part_training(args, gen, s5_layers, s4d_layers, t_s5, t_s4d)
        print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
