"""One cut after training, optionally fine-tuned: post-training BT, LAST and the Hankel nuclear-norm runs.

Owns :class:`PostTraining` (``post_bt``, ``last``, ``hnn``) and :func:`finetune_`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ssmred_app.config import RunConfig
from ssmred_app.methods._base import Method, record_outside_loop
from ssmred_app.methods._compressm import selection_mode
from ssmred_app.methods._selection import _layer_records, rule_orders
from ssmred_app.models import state_sizes


def finetune_(trainer: Any, epochs: int, lr: float) -> list[float]:
    """Fine-tune ``trainer.model`` for ``epochs`` epochs at a constant learning rate (AdamW, SPEC §6 groups).

    A fresh AdamW (no warm-up, no schedule) with the SSM parameters at ``lr * optim.ssm_lr_factor``
    without weight decay, the other weights at ``lr`` with ``optim.weight_decay`` and the rest at ``lr``
    without; plain cross-entropy, batches of ``optim.batch_size``, gradients clipped at
    ``optim.grad_clip`` when set. Batches are drawn from ``SeedSequence([seed, 10_000 + epoch])``:
    reproducible and different from the training epochs. Under DDP every rank takes its share of each
    epoch's permutation (:func:`~ssmred_app.distributed.shard_indices`, ``optim.batch_size`` per rank)
    and the forward passes run through ``trainer.train_module`` (the DDP wrapper, rebuilt after the
    cut), so the gradients are averaged over the ranks and every rank keeps the same weights.

    Parameters
    ----------
    trainer
        The trainer (or :class:`~ssmred_app.baselines.PosthocContext`) holding the model, its ``cfg``
        and the ``train`` tensors.
    epochs
        Number of fine-tuning epochs (``0``: nothing is done).
    lr
        Learning rate of the non-SSM parameter groups.

    Returns
    -------
    list of float
        The validation accuracy (in :math:`[0, 1]`) after each epoch.
    """
    import torch

    from ssmred_app.models import param_groups

    cfg = trainer.cfg
    o = cfg.optim
    ssm, decay, no_decay = param_groups(trainer.model)
    groups = [
        {"params": ssm, "lr": lr * o.ssm_lr_factor, "weight_decay": 0.0},
        {"params": decay, "lr": lr, "weight_decay": o.weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    X, y = trainer.tensors["train"]
    dist = getattr(trainer, "dist", None)  # a PosthocContext runs in one process
    accs = []
    for ep in range(epochs):
        trainer.model.train()
        perm = np.random.default_rng(np.random.SeedSequence([cfg.seed, 10_000 + ep])).permutation(len(y))
        if dist is not None:
            from ssmred_app.distributed import shard_indices

            perm = shard_indices(perm, dist.rank, trainer.world_size)
        module = trainer.train_module if dist is not None else trainer.model
        for i in range(0, len(perm), o.batch_size):
            idx = torch.as_tensor(perm[i : i + o.batch_size], device=y.device)
            loss = torch.nn.functional.cross_entropy(module(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if o.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), o.grad_clip)
            opt.step()
        trainer.model.eval()
        accs.append(trainer.evaluate("val"))
    return accs


class PostTraining(Method):
    r"""Train at full size, cut once after the last epoch, optionally fine-tune (``post_bt``, ``hnn``, ``last``).

    ``hnn`` adds :math:`\lambda\sum\sigma` (:func:`ssmred_torch.hankel_nuclear_norm`, all layers) to
    every training loss. The cut: ``last`` — :func:`ssmred_torch.plans.plan_last` to
    ``method.target_total`` states; ``post_bt``/``hnn`` — balanced truncation to ``target_total``
    states shared by one global threshold on the normalised HSVs (``Rank(total=...)``), or, without a
    target, the ``compression`` rule applied once (``hnn`` without either keeps the full size).
    ``min_order`` floors every layer's order. The cut and the fine-tuning are timed and added to the
    run's training time.

    Parameters
    ----------
    cfg
        The run configuration.
    """

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.name = cfg.method.resolved(cfg.compression)

    def loss(self, trainer: Any, logits: Any, targets: Any, inputs: Any) -> Any:
        r"""Cross-entropy, plus :math:`\lambda\sum\sigma` for ``hnn``.

        Parameters
        ----------
        trainer
            The calling trainer (its ``model``, for the Hankel nuclear norm).
        logits
            The model's output on the batch, shape ``(batch, classes)``.
        targets
            The class labels, shape ``(batch,)``.
        inputs
            The input batch (unused).

        Returns
        -------
        torch.Tensor
            The scalar loss; plain cross-entropy unless the method is ``hnn`` with
            ``method.hnn_lambda`` :math:`= \lambda \ne 0`.
        """
        ce = super().loss(trainer, logits, targets, inputs)
        if self.name != "hnn" or self.cfg.method.hnn_lambda == 0:
            return ce
        from ssmred_torch import hankel_nuclear_norm

        return ce + self.cfg.method.hnn_lambda * hankel_nuclear_norm(trainer.model).to(ce.dtype)

    def _plan(self, model: Any) -> tuple[Any, list[int]] | None:
        from ssmred_torch.plans import last_orders, plan_selection

        from ssmred.selection import Rank

        m = self.cfg.method
        if self.name == "last":
            raw = last_orders(model, int(m.target_total))  # type: ignore[arg-type]
            orders = [min(n, max(r, m.min_order)) for r, n in zip(raw, state_sizes(model), strict=True)]
            return plan_selection(model, orders, keep="largest", basis="modal", projections=False), raw
        if m.target_total is not None:
            raw, orders = rule_orders(model, Rank(total=int(m.target_total)), min_order=m.min_order)
        else:
            mode = selection_mode(self.cfg.compression)
            if mode is None:
                return None
            raw, orders = rule_orders(model, mode, hsv=m.hsv, min_order=m.min_order)
        return plan_selection(model, orders, keep="largest", basis="balanced", projections=False), raw

    def finish(self, trainer: Any) -> None:
        """The post-training cut (and fine-tuning), timed into the run's training time.

        Under DDP rank 0 plans the cut and every rank applies it. Nothing is cut or recorded when there
        is no rule (``post_bt`` or ``hnn`` without ``method.target_total`` and with compression mode
        ``none``). With
        ``method.finetune_epochs`` the cut model is fine-tuned (:func:`finetune_`) and the record gets a
        ``finetune`` entry.

        Parameters
        ----------
        trainer
            The calling trainer, or the :class:`~ssmred_app.baselines.PosthocContext` of a post-hoc cut.
        """
        from ssmred_torch import apply_reduction_, decide

        dims_before = state_sizes(trainer.model)
        acc_before = trainer.evaluate("val")
        t0, c0 = time.perf_counter(), time.process_time()
        planned = decide(lambda: self._plan(trainer.model))  # under DDP: rank 0's plan on every rank
        if planned is None:
            return
        sel, raw = planned
        report = apply_reduction_(trainer.model, sel.plan)
        record = {
            "kind": f"post-training {self.name}",
            "layers": _layer_records(report, sel, raw, self.cfg.method.hsv if self.name != "last" else "last"),
            "note": "; ".join(report.warnings),
        }
        cut_s, cut_c = time.perf_counter() - t0, time.process_time() - c0
        epochs = self.cfg.method.finetune_epochs
        if epochs:
            acc_cut = trainer.evaluate("val")
            t1, c1 = time.perf_counter(), time.process_time()
            accs = finetune_(trainer, epochs, self.cfg.method.finetune_lr)
            ft_s, ft_c = time.perf_counter() - t1, time.process_time() - c1
            record["finetune"] = {"epochs": epochs, "val_acc_after_cut": acc_cut, "val_acc": accs, "time_s": ft_s}
            record["note"] = "; ".join(
                [
                    x
                    for x in (record["note"], f"fine-tuned {epochs} epoch(s) at lr {self.cfg.method.finetune_lr:g}")
                    if x
                ]
            )
            trainer.result.train_time_s += ft_s
            trainer.result.train_cpu_s += ft_c
        record_outside_loop(
            trainer, record, seconds=cut_s, cpu_seconds=cut_c, acc_before=acc_before, dims_before=dims_before
        )
