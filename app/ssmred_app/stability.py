r"""HSV rank stability (SPEC §5): does the order of the Hankel singular values settle early in training?

Two measures over checkpoints of one unreduced run: :func:`hsv_rank_stability` matches balanced
modes between two checkpoints by linear assignment, :func:`hsv_tracking_stability` follows the HSVs
through every checkpoint inside their Weyl bounds (:mod:`ssmred.tracking`). ``scripts/results.py``
reports both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssmred_app.models import layer_statespaces, load_model_file, state_sizes

__all__ = ["hsv_rank_stability", "hsv_tracking_stability"]


def hsv_rank_stability(early: str | os.PathLike[str], late: str | os.PathLike[str]) -> list[dict[str, Any]]:
    r"""Kendall τ between the HSV order of every LRU layer at two checkpoints of one (unreduced) run.

    Balanced modes are identified across the two checkpoints by linear assignment: mode ``i`` is the
    direction :math:`x_i = L_c v_i` in the layer's own state coordinates (the same parameters at both
    times when nothing was reduced), and modes are matched to maximise :math:`\sum |\cos(x_i, x'_{\pi(i)})|`.
    The Kendall τ (``scipy.stats.kendalltau``) compares the early σ of each mode with the late σ of its
    match: 1 means the HSV order did not change.

    Parameters
    ----------
    early, late
        Checkpoints (e.g. ``epoch_003.pt`` at 10 % of a 30-epoch run, and the last one).

    Returns
    -------
    list of dict
        Per layer: ``kendall_tau``, ``p_value``, ``mean_match_cosine``, the fraction of the HSV sum in the
        bottom half of the states at both times, and the order kept by τ = 0.1 at both times.
    """
    import scipy.linalg as spla
    import scipy.optimize
    import scipy.stats

    from ssmred import order_from_energy
    from ssmred.hsv import hankel_svd

    m1, _ = load_model_file(early)
    m2, _ = load_model_file(late)
    n1, n2 = state_sizes(m1), state_sizes(m2)
    if n1 != n2:
        raise ValueError(f"state sizes differ ({n1} vs {n2}): use a run without reduction")
    out = []
    for i, (sys1, sys2) in enumerate(zip(layer_statespaces(m1), layer_statespaces(m2), strict=True)):
        h1, h2 = hankel_svd(sys1), hankel_svd(sys2)
        X1 = h1.Lc @ h1.Vh.conj().T
        X2 = h2.Lc @ h2.Vh.conj().T
        X1 = X1 / np.maximum(spla.norm(X1, axis=0), 1e-300)
        X2 = X2 / np.maximum(spla.norm(X2, axis=0), 1e-300)
        cos = np.abs(X1.conj().T @ X2)
        rows, cols = scipy.optimize.linear_sum_assignment(-cos)
        s1, s2 = h1.hsv[rows], h2.hsv[cols]
        kt = scipy.stats.kendalltau(s1, s2)
        half = s1.size // 2
        out.append(
            {
                "layer": i,
                "n": int(s1.size),
                "kendall_tau": float(kt.statistic),
                "p_value": float(kt.pvalue),
                "mean_match_cosine": float(cos[rows, cols].mean()),
                "bottom_half_energy_early": float(np.sort(h1.hsv)[:half].sum() / h1.hsv.sum()),
                "bottom_half_energy_late": float(np.sort(h2.hsv)[:half].sum() / h2.hsv.sum()),
                "r_tau0.1_early": order_from_energy(h1.hsv, 0.1),
                "r_tau0.1_late": order_from_energy(h2.hsv, 0.1),
            }
        )
    return out


def hsv_tracking_stability(
    checkpoints: Sequence[str | os.PathLike[str]], early: int, *, tau: float = 0.1
) -> list[dict[str, Any]]:
    """Rank stability from HSV trajectories tracked through every checkpoint (``ssmred.tracking``).

    Each layer's HSVs are followed from checkpoint to checkpoint by :func:`ssmred.tracking.track_hsvs`
    (identities matched by linear assignment inside the Weyl bound ‖H_k − H_{k−1}‖₂ of SPEC §5), then
    :func:`ssmred.tracking.rank_stability` compares position ``early`` with the last checkpoint, the kept
    set being the order the tolerance rule picks at ``early``.

    Parameters
    ----------
    checkpoints
        Checkpoints of one unreduced run, in training order (e.g. every epoch).
    early
        Position of the early checkpoint in ``checkpoints``.
    tau
        Tolerance defining the kept set.

    Returns
    -------
    list of dict
        Per layer: Kendall τ, top-k overlap, tail energies, carried tail energy, k, and whether every
        tracked move stayed within its Weyl bound.
    """
    from ssmred.tracking import rank_stability, track_hsvs

    systems = [layer_statespaces(load_model_file(p)[0]) for p in checkpoints]
    out = []
    for i in range(len(systems[0])):
        traj = track_hsvs([layers[i] for layers in systems])
        rs = rank_stability(traj, early, -1, energy=tau)
        out.append(
            {
                "layer": i,
                "k": rs.k,
                "kendall_tau": rs.kendall_tau,
                "top_k_overlap": rs.top_k_overlap,
                "tail_energy_early": rs.tail_energy_a,
                "tail_energy_late": rs.tail_energy_b,
                "carried_tail_energy": rs.carried_tail_energy,
                "all_moves_within_weyl_bound": bool(traj.admissible.all()),
            }
        )
    return out
