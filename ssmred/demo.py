"""Core demonstration: ``python -m ssmred.demo`` (what ``make demo`` runs).

On three shipped systems it prints the Hankel singular values, the order chosen by the CompreSSM
energy rule, the a-priori bound ``2 Σ tail`` and the measured H-infinity error of the reduced model.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ssmred.balanced import BalancedTruncation
from ssmred.examples import lru_layer, mass_spring_damper, slicot_ab09ad
from ssmred.norms import hinf_norm
from ssmred.statespace import StateSpace


def _rows(energy: float) -> list[tuple[str, StateSpace]]:
    lru = lru_layer(64, 16, rng=0)
    return [
        ("SLICOT AB09AD example (CT, MIMO 2x3)", slicot_ab09ad()),
        ("mass-spring-damper chain (CT, SISO)", mass_spring_damper(50)),
        ("LRU layer at init (DT, complex 16x16)", lru),
        ("LRU layer, real output Re(Cx) (DT, 2n)", lru.to_real()),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the demonstration and print the table.

    Parameters
    ----------
    argv
        Command-line arguments (``--energy TAU``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m ssmred.demo", description=__doc__)
    parser.add_argument("--energy", type=float, default=0.05, help="τ: discarded fraction of the HSV sum (0..1)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.energy < 1.0:
        parser.error(f"--energy must be in [0, 1); got {args.energy}")
    print(
        f"Balanced truncation with the CompreSSM energy rule, tau = {args.energy} (discarded fraction of sum sigma)\n"
    )
    header = (
        f"{'system':42s} {'n':>4s} {'r':>4s} {'sigma_1':>10s} {'sigma_r+1':>10s} "
        f"{'bound 2*tail':>12s} {'||G-Gr||inf':>12s} {'err/bound':>9s} {'time s':>7s}"
    )
    print(header)
    print("-" * len(header))
    for name, sys in _rows(args.energy):
        t0 = time.perf_counter()
        bt = BalancedTruncation(sys)
        res = bt.reduce(energy=args.energy)
        err = hinf_norm(sys - res.reduced)
        elapsed = time.perf_counter() - t0
        lower = res.lower_bound
        ratio = err / res.error_bound if res.error_bound else 0.0
        print(
            f"{name:42s} {sys.n_states:4d} {res.r:4d} {res.hsv[0]:10.4g} {lower:10.3g} "
            f"{res.error_bound:12.4g} {err:12.4g} {ratio:9.3f} {elapsed:7.2f}"
        )
        if not (lower <= err * (1 + 1e-8) + 1e-14 and err <= res.error_bound * (1 + 1e-8) + 1e-14):
            raise RuntimeError(f"{name}: measured error {err:.6g} outside [{lower:.6g}, {res.error_bound:.6g}]")
    hsv = BalancedTruncation(slicot_ab09ad()).hsv
    print("\nHSVs of the SLICOT example:", np.array2string(hsv, precision=4))
    print("published:                   [2.5139 2.0846 1.9178 0.7666 0.5473 0.0253 0.0246]")
    print("Every measured error lies between sigma_{r+1} and the bound 2*sum(sigma_i, i>r).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
