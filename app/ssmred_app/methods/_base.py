"""The hooks every method has and the records they share.

Owns :class:`Method` (plain training; the base of every method), :func:`record_outside_loop` (a
reduction made at step 0 or after the last epoch, timed into the run's training time) and the
per-layer numbers of a reduction record (:func:`leading_hsv`, :func:`kept_share`, the bound relative to
σ₁).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ssmred_app.models import state_sizes
from ssmred_app.report import pct


class Method:
    """Plain training (the ``full`` and from-scratch runs); subclasses override the hooks they need.

    Takes no parameters. Every hook receives the calling trainer (a
    :class:`~ssmred_app.trainer.Trainer`, or the :class:`~ssmred_app.baselines.PosthocContext` of a
    post-hoc cut), which the hooks use only through its public attributes (``model``, ``optimizer``,
    ``step``, ``total_steps``, ``cfg``, ``result``, ``evaluate``, ``evaluate_untimed``,
    ``record_reduction``, ``log``).
    """

    name = "full"

    def setup(self, trainer: Any) -> None:
        """Called once the trainer's model and optimizer are final (after a resume), before training.

        Parameters
        ----------
        trainer
            The calling trainer. The base class does nothing.
        """

    def loss(self, trainer: Any, logits: Any, targets: Any, inputs: Any) -> Any:
        """The training loss of one batch (cross-entropy).

        Parameters
        ----------
        trainer
            The calling trainer (unused by the base class).
        logits
            The model's output on the batch, a tensor of shape ``(batch, classes)``.
        targets
            The class labels, an integer tensor of shape ``(batch,)``.
        inputs
            The input batch the logits were computed from (unused by the base class).

        Returns
        -------
        torch.Tensor
            The scalar mean cross-entropy :func:`torch.nn.functional.cross_entropy`.
        """
        import torch

        return torch.nn.functional.cross_entropy(logits, targets)

    def after_step(self, trainer: Any) -> None:
        """Called after every optimizer step (``trainer.step`` steps are done).

        Parameters
        ----------
        trainer
            The calling trainer. The base class does nothing.
        """

    def finish(self, trainer: Any) -> None:
        """Called after the last epoch, before the final evaluation.

        Parameters
        ----------
        trainer
            The calling trainer. The base class does nothing.
        """

    def state_dict(self) -> dict[str, Any] | None:
        """Progress to save in a resumable checkpoint (``None``: nothing).

        Returns
        -------
        dict or None
            The base class is stateless and returns ``None``.
        """
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Parameters
        ----------
        state
            What :meth:`state_dict` returned when the checkpoint was written (never called with
            ``None``). The base class ignores it.
        """


def leading_hsv(hsv: Any) -> list[float]:
    """The HSVs reported for a layer: its own, or for a layer of several systems (per-channel families)
    those of the system with the largest σ₁.

    Parameters
    ----------
    hsv
        The layer's Hankel singular values, array-like of shape ``(n,)`` (one system) or
        ``(systems, n)`` (one row per system, each sorted in decreasing order, so that column 0 is σ₁).

    Returns
    -------
    list of float
        The ``n`` HSVs of the one system, or of the row with the largest σ₁.
    """
    h = np.asarray(hsv, dtype=float)
    return (h if h.ndim == 1 else h[int(np.argmax(h[:, 0]))]).tolist()


def kept_share(hsv: Any, r: int) -> float:
    r"""The share :math:`\sum_{i\le r}\sigma_i / \sum_i\sigma_i` kept by the leading ``r`` states of a layer.

    For a layer of several systems (shape ``(systems, n)``) both sums run over every system: the share
    is :math:`\sum_k\sum_{i\le r}\sigma_{k,i} / \sum_k\sum_i\sigma_{k,i}`.

    Parameters
    ----------
    hsv
        The layer's Hankel singular values, array-like of shape ``(n,)`` or ``(systems, n)``, each row
        sorted in decreasing order.
    r
        Number of leading states kept, ``0 <= r``; ``r >= n`` keeps everything.

    Returns
    -------
    float
        The kept share in :math:`[0, 1]`; ``1.0`` when the HSVs sum to zero (nothing to lose).

    Examples
    --------
    >>> kept_share([3.0, 1.0], 1)
    0.75
    """
    h = np.atleast_2d(np.asarray(hsv, dtype=float))
    total = float(h.sum())
    return float(h[:, :r].sum() / total) if total > 0 else 1.0


def layer_record(
    index: int, report: Any, *, kept_energy: float, r_rule: int | None = None, hsv_rule: str | None = None
) -> dict[str, Any]:
    """The per-layer entry of a reduction record (``record["layers"]``) from the layer's report.

    Parameters
    ----------
    index
        Position of the layer among the model's SSM layers.
    report
        Its :class:`ssmred_torch.LayerReport` of the reduction.
    kept_energy
        The kept share of its HSV sum (:func:`kept_share`, or the selection's own share).
    r_rule, hsv_rule
        For rule-driven selections: the order the rule chose and which HSVs it used (left out when
        ``None``).

    Returns
    -------
    dict
        ``layer``, ``name``, ``n``, ``r`` (, ``r_rule``), ``r_applied``, ``status``, ``bound``, ``hsv``
        (:func:`leading_hsv`), ``systems``, ``message``, ``kept_energy``, ``bound_rel`` (, ``hsv_rule``),
        in that order.
    """
    lr = report
    rec: dict[str, Any] = {"layer": index, "name": lr.name, "n": lr.n, "r": lr.r}
    if r_rule is not None:
        rec["r_rule"] = r_rule
    rec.update(
        {
            "r_applied": lr.n_after,
            "status": lr.status,
            "bound": lr.error_bound,
            "hsv": leading_hsv(lr.hsv),
            "systems": 1 if lr.hsv.ndim == 1 else int(lr.hsv.shape[0]),
            "message": lr.message,
            "kept_energy": kept_energy,
            "bound_rel": _bound_rel(lr.error_bound, lr.hsv),
        }
    )
    if hsv_rule is not None:
        rec["hsv_rule"] = hsv_rule
    return rec


def _bound_rel(bound: float, hsv: Any) -> float | None:
    h = np.atleast_2d(np.asarray(hsv, dtype=float))
    s1 = float(h[:, 0].max()) if h.size else 0.0
    return float(bound / s1) if s1 > 0 and bound is not None and math.isfinite(bound) else None


def record_outside_loop(
    trainer: Any,
    record: dict[str, Any],
    *,
    seconds: float,
    cpu_seconds: float,
    acc_before: float | None,
    dims_before: list[int],
) -> None:
    """Log a reduction made outside the training loop (at step 0 or after the last epoch).

    Like :meth:`~ssmred_app.trainer.Trainer.record_reduction` (the record is completed with the step,
    sizes and the validation accuracy before and after), and the reduction's wall and CPU time are added
    to the run's training time, which the loop does not measure there. Uses only the trainer's public
    ``model``, ``step``, ``total_steps``, ``cfg``, ``result``, ``evaluate`` and ``log``.

    Parameters
    ----------
    trainer
        The trainer (or :class:`~ssmred_app.baselines.PosthocContext`) whose model was reduced.
    record
        What the method did (``kind``, per-layer ``layers``, optional ``note``); completed in place with
        ``step``, ``fraction``, ``dims_before``, ``dims_after``, ``val_acc_before``, ``val_acc_after``
        and ``time_s``, then appended to ``trainer.result.reductions``.
    seconds
        Wall time of the reduction in seconds, evaluations excluded; added to the result's
        ``reduction_time_s`` and ``train_time_s``.
    cpu_seconds
        CPU time of the reduction in seconds; added to the result's ``train_cpu_s``.
    acc_before
        Validation accuracy in :math:`[0, 1]` right before the reduction (``None``: not measured).
        Also reported as the accuracy after when the state sizes did not change (no new evaluation).
    dims_before
        Per-layer state sizes before the reduction; the validation accuracy after it is measured only
        when the sizes changed.
    """
    dims_after = state_sizes(trainer.model)
    after = trainer.evaluate("val") if dims_after != dims_before else acc_before
    log_reduction(
        trainer,
        record,
        dims_before=dims_before,
        dims_after=dims_after,
        acc_before=acc_before,
        acc_after=after,
        seconds=seconds,
    )
    trainer.result.train_time_s += seconds
    trainer.result.train_cpu_s += cpu_seconds


def log_reduction(
    trainer: Any,
    record: dict[str, Any],
    *,
    dims_before: list[int],
    dims_after: list[int],
    acc_before: float | None,
    acc_after: float | None,
    seconds: float,
) -> None:
    """Complete a reduction record, append it to ``trainer.result`` and log its one line.

    Shared by :meth:`~ssmred_app.trainer.Trainer.record_reduction` (in the loop) and
    :func:`record_outside_loop`; the callers measure the accuracy after and account the time.

    Parameters
    ----------
    trainer
        The trainer (or :class:`~ssmred_app.baselines.PosthocContext`): its ``step``, ``total_steps``,
        ``cfg``, ``result`` and ``log`` are used.
    record
        What the method did (``kind``, per-layer ``layers``, optional ``note``); completed in place with
        ``step``, ``fraction``, ``dims_before``, ``dims_after``, ``val_acc_before``, ``val_acc_after``
        and ``time_s``.
    dims_before, dims_after
        Per-layer state sizes before and after; a change is appended to ``result.dims_trace``.
    acc_before, acc_after
        Validation accuracy in :math:`[0, 1]` before and after (``None``: not measured).
    seconds
        Wall time of the reduction, added to ``result.reduction_time_s``.
    """
    record.update(
        {
            "step": trainer.step,
            "fraction": trainer.step / trainer.total_steps,
            "dims_before": list(dims_before),
            "dims_after": list(dims_after),
            "val_acc_before": acc_before,
            "val_acc_after": acc_after,
            "time_s": seconds,
        }
    )
    res = trainer.result
    res.reductions.append(record)
    res.reduction_time_s += seconds
    if dims_after != dims_before:
        res.dims_trace.append([trainer.step, list(dims_after)])
    trainer.log(
        f"[{trainer.cfg.name}] step {trainer.step} ({100 * trainer.step / trainer.total_steps:.1f} %): state sizes "
        f"{dims_before} -> {dims_after}; val acc {pct(acc_before)} -> {pct(acc_after)}; {1000 * seconds:.1f} ms"
        f"{'; ' + record['note'] if record.get('note') else ''}"
    )
