"""Knowledge distillation from a trained teacher.

Owns :func:`distillation_loss` and the method :class:`Distillation` (``distill``).
"""

from __future__ import annotations

from typing import Any

from ssmred_app.config import ConfigError, RunConfig
from ssmred_app.methods._base import Method


def distillation_loss(student: Any, teacher: Any, targets: Any, *, alpha: float = 0.5, temperature: float = 2.0) -> Any:
    r"""Knowledge-distillation loss :math:`(1-\alpha)\,\mathrm{CE}(s, y) + \alpha T^2\,\mathrm{KL}(p_t^T \| p_s^T)`.

    :math:`p^T = \mathrm{softmax}(z/T)`; the KL divergence is averaged over the batch
    (``reduction="batchmean"``), the teacher's logits carry no gradient.

    Parameters
    ----------
    student, teacher
        Logits, shape ``(batch, classes)``.
    targets
        Class labels.
    alpha
        Weight of the distillation term.
    temperature
        Softmax temperature T.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(2, 3)
    >>> float(distillation_loss(z, z, torch.tensor([0, 1]), alpha=1.0))
    0.0
    """
    import torch.nn.functional as F

    ce = F.cross_entropy(student, targets)
    T = float(temperature)
    kl = F.kl_div(
        F.log_softmax(student / T, dim=-1),
        F.log_softmax(teacher.detach() / T, dim=-1),
        log_target=True,
        reduction="batchmean",
    )
    return (1.0 - alpha) * ce + alpha * T * T * kl


class Distillation(Method):
    """Knowledge distillation from a trained teacher (``method.teacher``, in eval mode, no gradients).

    The teacher's forward pass runs on every training batch and is part of the run's training time.

    Parameters
    ----------
    cfg
        The run configuration.
    """

    name = "distill"

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.teacher: Any = None

    def setup(self, trainer: Any) -> None:
        """Load the teacher onto the trainer's device (eval mode, gradients off).

        Parameters
        ----------
        trainer
            The calling trainer (its ``device``).

        Raises
        ------
        ConfigError
            When ``method.teacher`` is not an existing file.
        """
        from pathlib import Path

        from ssmred_app.models import load_model_file

        path = Path(str(self.cfg.method.teacher))
        if not path.is_file():
            raise ConfigError(f"method.teacher: file {str(path)!r} does not exist")
        self.teacher, _ = load_model_file(path, device=trainer.device)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def loss(self, trainer: Any, logits: Any, targets: Any, inputs: Any) -> Any:
        """:func:`distillation_loss` against the teacher's logits on the same batch.

        Parameters
        ----------
        trainer
            The calling trainer (unused).
        logits
            The student's logits, shape ``(batch, classes)``.
        targets
            The class labels, shape ``(batch,)``.
        inputs
            The input batch; the teacher runs on it under :func:`torch.no_grad`.

        Returns
        -------
        torch.Tensor
            The scalar loss with ``alpha = method.alpha`` and ``temperature = method.temperature``.
        """
        import torch

        with torch.no_grad():
            t = self.teacher(inputs)
        m = self.cfg.method
        return distillation_loss(logits, t, targets, alpha=m.alpha, temperature=m.temperature)
