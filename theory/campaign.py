"""Numeric campaign: how often do the BT bound and the Weyl bound hold on random systems?

Run ``python -m theory.campaign --systems 10000 --seed 0 [--jobs 2]``. For each index ``i`` a system is
drawn from its own generator ``default_rng([seed, i])`` (results do not depend on ``--jobs``), cycling
through eight categories: {real, complex} × {CT, DT} × {dense (``random_stable``), diagonal (LRU/S4D
style)}, with n in [n_min, n_max], 1–3 inputs and outputs, stability margins from 0.01 to 0.5 (DT
diagonal: |λ| up to 0.998). Per system:

* **BT**: a random order r with a clear gap (σ_r > σ_{r+1}(1 + 1e-6), σ_{r+1} > 1e-8 σ_1) — systems
  without one are counted as skipped; measured ‖G − G_r‖∞ (``hinf_norm``, rtol 1e-10) against the
  upper bound 2 Σ_{i>r} σ_i and the lower bound σ_{r+1} (tolerance: relative 1e-8 plus 1e-10 σ_1 —
  computed HSVs are accurate to about n·eps·σ_1·κ in *absolute* terms, and in CT the bound is attained
  exactly for r = n − 1 (at ω = 0), so a purely relative tolerance would flag rounding in a tiny tail);
* **real output** (complex systems): ‖G_R − G_R,r‖∞ ≤ ‖G − G_r‖∞ (relative 1e-8);
* **Weyl**: a random perturbation of relative size ε ∈ [1e-8, 1e-1] (log-uniform; diagonal systems
  perturb the eigenvalues, as training does), ``hsv_perturbation(...).holds``, the ratio
  max |Δσ_i| / ‖ΔH‖₂, and the coordinate-free bound max |Δσ_i| ≤ ‖ΔG‖_H (``hankel_distance``,
  absolute tolerance 1e-9 σ_1).

Any violation, exception or accuracy warning is listed after the table; the exit code is 1 if a bound
was violated or an exception occurred. Results for the full campaign are recorded in docs/theory.md.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["CATEGORIES", "Outcome", "format_table", "main", "run_campaign", "run_one"]

CATEGORIES: tuple[tuple[bool, bool, str], ...] = tuple(
    (cplx, disc, kind) for kind in ("dense", "diagonal") for cplx in (False, True) for disc in (False, True)
)
BT_RTOL = 1e-8
BT_ATOL = 1e-10  # relative to sigma_1: the absolute accuracy of double-precision HSVs is ~ n eps sigma_1 kappa
REAL_RTOL = 1e-8
HANKEL_ATOL = 1e-9


def category_name(cat: tuple[bool, bool, str]) -> str:
    cplx, disc, kind = cat
    return f"{'complex' if cplx else 'real'} {'DT' if disc else 'CT'} {kind}"


@dataclass(frozen=True)
class Outcome:
    """What happened for one random system (NaN where a check did not apply)."""

    index: int
    category: str
    n: int
    bt_tested: bool
    bt_held: bool
    bt_ratio: float
    lower_held: bool
    real_tested: bool
    real_held: bool
    real_ratio: float
    weyl_held: bool
    weyl_ratio: float
    hankel_held: bool
    hankel_ratio: float
    warnings: int
    error: str
    warning: str = ""

    @property
    def violated(self) -> bool:
        return bool(self.error) or not (
            self.bt_held and self.lower_held and self.real_held and self.weyl_held and self.hankel_held
        )


def _draw_system(rng: np.random.Generator, cat: tuple[bool, bool, str], n_range: tuple[int, int]):
    from ssmred import from_diagonal, random_stable

    cplx, disc, kind = cat
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    m, p = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dt = float(rng.choice([0.1, 1.0])) if disc else None
    if kind == "dense":
        margin = float(10 ** rng.uniform(-2.0, math.log10(0.5)))
        return random_stable(n, m, p, dt=dt, complex_=cplx, rng=rng, margin=margin, with_d=bool(rng.random() < 0.3))

    def draw(*shape: int) -> np.ndarray:
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if cplx else x

    if disc:
        mod = np.sqrt(rng.uniform(0.0001, 0.998**2, n))
        lam = mod * np.exp(2j * np.pi * rng.uniform(size=n)) if cplx else mod * rng.choice([-1.0, 1.0], n)
    else:
        decay = 10 ** rng.uniform(-2.0, 0.5, n)
        lam = -decay + 1j * rng.uniform(-5.0, 5.0, n) if cplx else -decay
    return from_diagonal(lam, draw(n, m), draw(p, n), dt=dt)


def _perturb(rng: np.random.Generator, sys, kind: str, eps: float):
    def noise(M: np.ndarray) -> np.ndarray:
        E = rng.standard_normal(M.shape)
        if np.iscomplexobj(M):
            E = E + 1j * rng.standard_normal(M.shape)
        return E / max(float(np.max(np.abs(E))), 1e-300) * float(np.max(np.abs(M)))

    for _ in range(30):
        if kind == "diagonal":
            lam = np.diag(sys.A)
            g = rng.standard_normal(lam.shape) + (1j * rng.standard_normal(lam.shape) if sys.is_complex else 0.0)
            A = np.diag(lam * np.exp(eps * g))
        else:
            A = sys.A + eps * noise(sys.A)
        other = sys.with_(A=A, B=sys.B + eps * noise(sys.B), C=sys.C + eps * noise(sys.C))
        if other.is_stable():
            return other
        eps /= 2.0
    return sys.with_(B=sys.B + eps * noise(sys.B))


def run_one(seed: int, index: int, n_range: tuple[int, int] = (2, 12)) -> Outcome:
    """Draw system ``index`` of the campaign with ``seed`` and run all checks on it."""
    from ssmred import (
        AccuracyWarning,
        balanced_truncation,
        hankel_distance,
        hankel_singular_values,
        hinf_norm,
        hsv_perturbation,
    )

    rng = np.random.default_rng([seed, index])
    cat = CATEGORIES[index % len(CATEGORIES)]
    name = category_name(cat)
    nan = float("nan")
    fields = dict(bt_tested=False, bt_held=True, bt_ratio=nan, lower_held=True, real_tested=False, real_held=True)
    fields.update(real_ratio=nan, weyl_held=True, weyl_ratio=nan, hankel_held=True, hankel_ratio=nan)
    n = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AccuracyWarning)
        try:
            sys = _draw_system(rng, cat, n_range)
            n = sys.n_states
            hsv = hankel_singular_values(sys)
            ok = [r for r in range(1, n) if hsv[r - 1] > hsv[r] * (1 + 1e-6) and hsv[r] > 1e-8 * hsv[0]]
            if ok:
                r = int(rng.choice(ok))
                res = balanced_truncation(sys, r)
                err_sys = sys - res.reduced
                err = hinf_norm(err_sys)
                fields.update(
                    bt_tested=True,
                    bt_held=err <= res.error_bound * (1 + BT_RTOL) + BT_ATOL * hsv[0],
                    bt_ratio=err / res.error_bound,
                    lower_held=err >= hsv[r] * (1 - BT_RTOL) - BT_ATOL * hsv[0],
                )
                if sys.is_complex:
                    err_real = hinf_norm(err_sys.to_real())
                    fields.update(
                        real_tested=True, real_held=err_real <= err * (1 + REAL_RTOL), real_ratio=err_real / err
                    )
            eps = float(10 ** rng.uniform(-8.0, -1.0))
            other = _perturb(rng, sys, cat[2], eps)
            rep = hsv_perturbation(sys, other)
            dist = hankel_distance(sys, other)
            scale = max(float(rep.hsv_a[0]), float(rep.hsv_b[0]))
            fields.update(
                weyl_held=rep.holds,
                weyl_ratio=rep.ratio,
                hankel_held=rep.max_delta <= dist + HANKEL_ATOL * scale,
                hankel_ratio=rep.max_delta / dist if dist > 0 else 0.0,
            )
            error = ""
        except Exception as exc:  # a campaign records failures instead of stopping
            error = f"{type(exc).__name__}: {exc}"
    first = f"{caught[0].category.__name__}: {caught[0].message}" if caught else ""
    return Outcome(index, name, n, warnings=len(caught), error=error, warning=first, **fields)  # type: ignore[arg-type]


def _init_worker() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return
    threadpool_limits(1)


def _run_chunk(args: tuple[int, Sequence[int], tuple[int, int]]) -> list[Outcome]:
    seed, indices, n_range = args
    return [run_one(seed, i, n_range) for i in indices]


def run_campaign(n_systems: int, seed: int = 0, *, jobs: int = 1, n_range: tuple[int, int] = (2, 12)) -> list[Outcome]:
    """Run the campaign on ``n_systems`` systems (deterministic for a given ``seed``)."""
    indices = list(range(n_systems))
    if jobs <= 1:
        _init_worker()
        return [run_one(seed, i, n_range) for i in indices]
    chunk = max(1, n_systems // (jobs * 20))
    tasks = [(seed, indices[k : k + chunk], n_range) for k in range(0, n_systems, chunk)]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
        return [o for part in pool.map(_run_chunk, tasks) for o in part]


def _maxf(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    return f"{max(vals):.6f}" if vals else "-"


def format_table(outcomes: Sequence[Outcome]) -> str:
    """The summary table (one row per category and a total row)."""
    header = (
        f"{'category':<22}{'systems':>8}{'BT held':>12}{'max err/bnd':>12}{'lower held':>12}"
        f"{'Weyl held':>12}{'max Δσ/‖ΔH‖':>13}{'‖ΔG‖_H held':>13}{'max Δσ/‖ΔG‖_H':>15}"
        f"{'Re-out held':>13}{'max ratio':>11}"
    )
    lines = [header, "-" * len(header)]
    groups = [category_name(c) for c in CATEGORIES] + ["total"]
    for g in groups:
        rows = [o for o in outcomes if g == "total" or o.category == g]
        if not rows:
            continue
        bt = [o for o in rows if o.bt_tested]
        re_ = [o for o in rows if o.real_tested]
        ok = [o for o in rows if not o.error]

        def frac(held: int, total: int) -> str:
            return f"{held}/{total}" if total else "-"

        lines.append(
            f"{g:<22}{len(rows):>8}"
            f"{frac(sum(o.bt_held for o in bt), len(bt)):>12}{_maxf([o.bt_ratio for o in bt]):>12}"
            f"{frac(sum(o.lower_held for o in bt), len(bt)):>12}"
            f"{frac(sum(o.weyl_held for o in ok), len(ok)):>12}{_maxf([o.weyl_ratio for o in ok]):>13}"
            f"{frac(sum(o.hankel_held for o in ok), len(ok)):>13}{_maxf([o.hankel_ratio for o in ok]):>15}"
            f"{frac(sum(o.real_held for o in re_), len(re_)):>13}{_maxf([o.real_ratio for o in re_]):>11}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theory.campaign", description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=1000, help="number of random systems (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--n-min", type=int, default=2, help="smallest state dimension (default 2)")
    parser.add_argument("--n-max", type=int, default=12, help="largest state dimension (default 12)")
    args = parser.parse_args(argv)
    if args.systems < 1 or not 1 <= args.n_min <= args.n_max:
        parser.error("need --systems >= 1 and 1 <= --n-min <= --n-max")
    t0 = time.perf_counter()
    outcomes = run_campaign(args.systems, args.seed, jobs=args.jobs, n_range=(args.n_min, args.n_max))
    elapsed = time.perf_counter() - t0
    print(format_table(outcomes))
    skipped = sum(not o.bt_tested for o in outcomes if not o.error)
    n_warn = sum(o.warnings for o in outcomes)
    bad = [o for o in outcomes if o.violated]
    print(
        f"\n{len(outcomes)} systems (seed {args.seed}, n in [{args.n_min}, {args.n_max}]) in {elapsed:.1f} s; "
        f"BT skipped (no clear HSV gap): {skipped}; accuracy warnings: {n_warn}; violations/errors: {len(bad)}"
    )
    for o in bad[:20]:
        print(f"  VIOLATION index={o.index} ({o.category}, n={o.n}): {o}")
    for o in [o for o in outcomes if o.warnings][:20]:
        print(f"  WARNING index={o.index} ({o.category}, n={o.n}): {o.warning}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
