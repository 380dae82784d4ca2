r"""Post-training baselines without retraining the full model: a cut of a finished run's final weights.

``post_bt``, ``last`` and ``hnn`` train at full size and cut once at the end
(:class:`~ssmred_app.methods.PostTraining`). Their training is exactly the training of another run: the
full run of the same seed (``post_bt``, ``last``: plain cross-entropy) or the full-size ``hnn`` run
with the same λ and no cut. :func:`posthoc_cached` therefore starts from that run's final model file
(``checkpoints/epoch_<E>.pt``, written by the trainer before its ``finish`` hook), runs the method's
``finish`` on it — the same code as in ``ssmred train`` — and records the result as a run whose
training time is the source run's plus the cut's (and the fine-tuning's): what ``ssmred train`` with
that method would have measured, without training the full model again for every compression level.
``tests/app/test_methods.py`` checks that both routes give the same model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssmred_app.config import RunConfig, config_to_dict
from ssmred_app.data import SequenceData, load_dataset
from ssmred_app.runresult import RunResult
from ssmred_app.trainer_steps import count_correct, split_tensors

__all__ = ["PosthocContext", "posthoc_cached", "posthoc_run", "source_model_file"]


class PosthocContext:
    """What :meth:`~ssmred_app.methods.Method.finish` needs of a trainer, around a loaded model.

    Parameters
    ----------
    cfg
        The post-training method's run configuration.
    model
        The source run's final model.
    data
        The data set.
    result
        The new run's result (copied from the source run's; the method adds its cut).
    log
        Message sink.
    """

    def __init__(
        self, cfg: RunConfig, model: Any, data: SequenceData, result: RunResult, log: Callable[[str], None]
    ) -> None:
        import torch

        self.torch = torch
        self.cfg = cfg
        self.model = model
        self.device = result.device
        self.result = result
        self.optimizer = None
        self.total_steps = result.total_steps
        self.step = result.total_steps
        self._log = log
        self.tensors = split_tensors(data, self.device)

    def log(self, msg: str) -> None:
        """Emit one line.

        Parameters
        ----------
        msg
            The message, passed to the ``log`` sink given at construction.
        """
        self._log(msg)

    def evaluate(self, split: str) -> float:
        """Accuracy on ``split`` (the trainer's evaluation: eval mode, batches of ``optim.eval_batch_size``).

        Parameters
        ----------
        split
            ``train``, ``val`` or ``test``.

        Returns
        -------
        float
            The share of correctly classified samples, in :math:`[0, 1]` (``0.0`` for an empty split).
            The model's train/eval mode is restored afterwards.
        """
        X, y = self.tensors[split]
        return count_correct(self.model, X, y, self.cfg.optim.eval_batch_size) / max(1, len(y))

    def evaluate_untimed(self, split: str) -> float:
        """Same as :meth:`evaluate` (nothing here is timed by the context).

        Parameters
        ----------
        split
            ``train``, ``val`` or ``test``.

        Returns
        -------
        float
            The accuracy, in :math:`[0, 1]`.
        """
        return self.evaluate(split)


def source_model_file(source: str | os.PathLike[str], epochs: int) -> Path:
    """The final model file of a finished run folder (``checkpoints/epoch_<epochs>.pt``).

    Parameters
    ----------
    source
        The run folder.
    epochs
        The run's number of epochs (``optim.epochs``); written with three digits, e.g. ``epoch_010.pt``.

    Returns
    -------
    Path
        ``<source>/checkpoints/epoch_<epochs:03d>.pt`` (whether or not it exists).
    """
    return Path(source) / "checkpoints" / f"epoch_{epochs:03d}.pt"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def posthoc_run(
    cfg: RunConfig,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    data: SequenceData | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Apply a post-training method (``cfg.method``) to the final model of the finished run ``source``.

    Parameters
    ----------
    cfg
        Configuration of the post-training method (``post_bt``, ``last`` or ``hnn``); its training part
        must be the source run's.
    source
        The source run folder (its ``result.json`` and final model file).
    out
        Folder of the new run (``result.json``, ``posthoc.json``, ``model.pt``).
    data
        Pre-loaded data set.
    log
        Message sink.

    Returns
    -------
    RunResult
        Source run's training plus the cut: training time = source's + cut's + fine-tuning's.
    """
    import torch

    from ssmred_app.methods import PostTraining, build_method
    from ssmred_app.models import load_model_file, save_model_file, state_sizes

    if cfg.threads is not None:  # as the trainer: torch's default pool is much slower for these small models
        torch.set_num_threads(cfg.threads)
    src = Path(source)
    src_result = json.loads((src / "result.json").read_text())
    base = RunResult.from_dict(src_result)
    model_file = source_model_file(src, cfg.optim.epochs)
    data = data if data is not None else load_dataset(cfg.data)
    wall0 = time.perf_counter()
    model, _ = load_model_file(model_file, device=base.device)
    result = RunResult(
        name=cfg.name,
        config=config_to_dict(cfg),
        initial_dims=list(base.initial_dims),
        train_time_s=base.train_time_s,
        train_cpu_s=base.train_cpu_s,
        wall_time_s=base.wall_time_s,
        reduction_time_s=base.reduction_time_s,
        epochs=list(base.epochs),
        reductions=list(base.reductions),
        dims_trace=[list(x) for x in base.dims_trace],
        total_steps=base.total_steps,
        device=base.device,
    )
    ctx = PosthocContext(cfg, model, data, result, log)
    method = build_method(cfg, base.total_steps)
    if not isinstance(method, PostTraining):
        raise ValueError(f"posthoc_run needs a post-training method (post_bt, last, hnn); got {method.name!r}")
    method.finish(ctx)
    result.final_dims = state_sizes(model)
    if result.dims_trace[-1][0] != result.total_steps or result.dims_trace[-1][1] != result.final_dims:
        result.dims_trace.append([result.total_steps, list(result.final_dims)])
    result.val_acc = ctx.evaluate("val")
    result.test_acc = ctx.evaluate("test")
    result.wall_time_s += time.perf_counter() - wall0
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    save_model_file(o / "model.pt", model, config=result.config, reduced_from=str(model_file))
    (o / "posthoc.json").write_text(
        json.dumps({"source": str(src), "source_model": str(model_file), "source_digest": _digest(model_file)})
    )
    (o / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def posthoc_cached(
    cfg: RunConfig,
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    data: SequenceData | None = None,
    log: Callable[[str], None] = print,
    same: Callable[[Any, RunConfig], bool] | None = None,
) -> RunResult:
    """:func:`posthoc_run`, reusing ``out/result.json`` when it was made from the same source file and config.

    Parameters
    ----------
    cfg, source, out, data, log
        See :func:`posthoc_run`.
    same
        Config comparison (default :func:`ssmred_app.config.same_config`).

    Returns
    -------
    RunResult
        The stored or new result.
    """
    from ssmred_app.config import same_config

    same = same or same_config
    o = Path(out)
    done, info = o / "result.json", o / "posthoc.json"
    model_file = source_model_file(source, cfg.optim.epochs)
    if done.is_file() and info.is_file() and model_file.is_file():
        d = json.loads(done.read_text())
        meta = json.loads(info.read_text())
        if same(d.get("config"), cfg) and meta.get("source_digest") == _digest(model_file):
            log(f"[{cfg.name}] already finished: {done}")
            return RunResult.from_dict(d)
    return posthoc_run(cfg, source, out, data=data, log=log)
