"""How ``ssmred train`` runs in several processes: ``--nproc N`` through torchrun's launcher, and the ranks of a job.

:func:`train_command` is the ``train`` command's entry: one process, ``N`` processes started here
(:func:`launch_train`, torchrun ``--standalone``), or one rank of a job that torchrun started (rank 0 runs
the whole command and writes everything; the other ranks train and write nothing). What a rank does
during training is :mod:`ssmred_app.distributed`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssmred_app.config import ConfigError
from ssmred_app.distributed import Distributed, launched_by_torchrun
from ssmred_app.errors import RunError

__all__ = ["launch_train", "train_command"]


def _train_argv(args: Any) -> list[str]:
    """The ``train`` arguments to hand on to each process (``--nproc`` left out)."""
    argv = ["--config", str(args.config)]
    if args.out:
        argv += ["--out", str(args.out)]
    if args.device:
        argv += ["--device", str(args.device)]
    for flag in ("no_resume", "force", "no_progress"):
        if getattr(args, flag):
            argv.append("--" + flag.replace("_", "-"))
    return argv + list(args.overrides)


def launch_train(args: Any, nproc: int) -> int:
    """Run ``ssmred train`` in ``nproc`` processes on this machine (torchrun's launcher, ``--standalone``).

    Parameters
    ----------
    args
        The parsed ``train`` arguments (``config``, ``out``, ``device``, ``overrides`` and the flags).
    nproc
        Number of processes (``>= 1``; with CUDA, at most the number of CUDA devices).

    Returns
    -------
    int
        The exit status: 0, or that of the first process that failed (2: configuration or run folder,
        3: diverged, 130: interrupted; the state at the last step is saved; ``128 + k``: killed by signal
        ``k``).

    Raises
    ------
    ~ssmred_app.config.ConfigError
        If the configuration is invalid, or CUDA is used with more processes than devices.
    """
    import torch
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from ssmred_app.cli import _overrides
    from ssmred_app.config import load_config
    from ssmred_app.runresult import resolve_device

    cfg = load_config(args.config, _overrides(args))  # one message before N processes start
    device = resolve_device(cfg.device)
    if device.startswith("cuda") and nproc > torch.cuda.device_count():
        raise ConfigError(f"--nproc: {nproc} processes need {nproc} CUDA devices; {torch.cuda.device_count()} found")
    # each process runs cfg.threads torch threads anyway; saying so keeps torchrun from printing a banner
    os.environ.setdefault("OMP_NUM_THREADS", str(cfg.threads or 1))
    launcher = ["--standalone", f"--nproc-per-node={nproc}", "-m", "ssmred_app", "train", *_train_argv(args)]
    try:
        run(parse_args(launcher))
    except ChildFailedError as exc:
        _rank, failure = exc.get_first_failure()
        code = int(failure.exitcode)
        return code if code > 0 else 128 - code  # killed by signal k: 128 + k, like a shell
    except SignalException:
        return 130
    return 0


def train_command(args: Any, run_train: Callable[[Any], int]) -> int:
    """``ssmred train``: one process (``run_train``), ``--nproc N`` processes, or one rank of a torchrun job.

    Parameters
    ----------
    args
        The parsed ``train`` arguments.
    run_train
        The single-process command (rank 0 of a job runs it too: it writes the reports).

    Returns
    -------
    int
        The exit status (that of ``run_train`` on rank 0; on other ranks 0, 2, 3 or 130, the same).

    Raises
    ------
    ~ssmred_app.config.ConfigError
        If ``args.nproc < 1``, or ``args.nproc > 1`` in a process torchrun started.
    """
    nproc = int(getattr(args, "nproc", 1) or 1)
    if nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {nproc}")
    if not launched_by_torchrun():
        return run_train(args) if nproc == 1 else launch_train(args, nproc)
    if nproc > 1:
        raise ConfigError("--nproc: this process was started by torchrun already; give --nproc-per-node to torchrun")
    main = int(os.environ["RANK"]) == 0
    if main:
        ctx = Distributed.from_env()
        try:
            return run_train(args)
        finally:
            ctx.close()
    try:  # other ranks: no output (rank 0 reports); the same exit status
        ctx = Distributed.from_env()
        try:
            return _follow(args)
        finally:
            ctx.close()
    except KeyboardInterrupt:
        return 130
    except (RunError, ConfigError) as exc:
        return int(getattr(exc, "exit_code", 2))
    except (FileNotFoundError, ModuleNotFoundError):
        return 2


def _follow(args: Any) -> int:
    """A rank other than 0: train, write nothing."""
    from ssmred_app.cli import _overrides
    from ssmred_app.config import load_config, with_sections
    from ssmred_app.trainer import Trainer

    cfg = with_sections(load_config(args.config, _overrides(args)), out=None)
    out = Path(args.out or cfg.out or ".")  # a label only: the trainer takes rank 0's folder name
    Trainer(cfg, out, progress=False, log=lambda s: None).run(resume=not args.no_resume, force=args.force)
    return 0
