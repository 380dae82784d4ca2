r"""Resuming a :class:`~ssmred_app.trainer.Trainer`: reading a run folder's state back and restoring it.

:meth:`ResumeMixin._read_state` takes the newest intact state of ``checkpoints/`` (through
:func:`ssmred_app.runstate.read_run_state`) and refuses one of a different configuration or number of
processes; :meth:`ResumeMixin._load_state` rebuilds the model at the saved state sizes, a fresh
optimizer and scheduler, and restores their states, the method's, the RNG, the position in the epoch
and the result so far, so that the resumed run reproduces the uninterrupted one. Writing the state
stays in :mod:`ssmred_app.trainer`, with every other write to the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ssmred_app.config import ConfigError, config_to_dict, same_config
from ssmred_app.errors import RunError
from ssmred_app.models import build_model
from ssmred_app.runresult import RunResult
from ssmred_app.runstate import clear_run_folder, read_run_state, run_folder_has_state

__all__ = ["ResumeMixin"]


class ResumeMixin:
    """The resume half of :class:`~ssmred_app.trainer.Trainer` (a base class; uses the trainer's attributes).

    Its methods are private: :meth:`~ssmred_app.trainer.Trainer.try_resume` and
    :meth:`~ssmred_app.trainer.Trainer.run` call them.
    """

    def _read_state(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest intact state (checked against this run's configuration and number of processes)."""
        found = read_run_state(self.ckpt_dir, map_location=self.device, log=self.log)
        if found is None:
            return None
        path, payload = found
        extra = payload["extra"]
        if not same_config(extra.get("config"), self.cfg):
            raise ConfigError(
                f"{self.out}: holds a checkpoint of a different configuration; "
                "choose another --out, or start over with --no-resume --force"
            )
        saved = int(extra.get("world_size", 1))
        if saved != self.world_size:
            raise ConfigError(
                f"{self.out}: this run was trained by {saved} process(es), now there are {self.world_size}; "
                f"resume it with {saved} (ssmred train --nproc {saved}), or start over with --no-resume --force"
            )
        return path, payload

    def _load_state(self, path: Path, payload: dict[str, Any]) -> None:
        extra = payload["extra"]
        from ssmred_torch import load

        sizes = [max(v) for v in payload["state_sizes"].values()]
        self.model = build_model(self.cfg.model, self.data, state_sizes=sizes).to(self.device)
        # the scheduler is built before the optimizer state is loaded: LambdaLR's constructor resets every
        # group's lr to its step-0 value, which a later optimizer.load_state_dict then overwrites correctly
        self.optimizer, self.scheduler = self._make_optimizer()
        load(payload, self.model, optimizer=self.optimizer, controller=self._method_state())
        self.scheduler.load_state_dict(extra["scheduler"])
        self.epoch, self.batch, self.step = int(extra["epoch"]), int(extra["batch"]), int(extra["step"])
        self._epoch_stats = dict(extra["epoch_stats"])
        restored = json.loads(extra["result"])
        self.result = RunResult.from_dict(restored)
        self.result.config = config_to_dict(self.cfg)
        rngs = extra.get("torch_rng_ranks") if self.dist is not None else None
        self.torch.set_rng_state((rngs[self.dist.rank] if rngs else extra["torch_rng"]).cpu())
        self.log(
            f"[{self.cfg.name}] resumed from {path} at step {self.step} (epoch {self.epoch + 1}, "
            f"{self.batch} of {self.steps_per_epoch} steps done)"
        )

    def _method_state(self) -> Any:
        """The method, when it has progress to checkpoint (its ``state_dict`` is not ``None``)."""
        return self.method if self.method.state_dict() is not None else None

    def _prepare_folder(self, resume: bool, force: bool) -> None:
        if not resume and run_folder_has_state(self.out):
            if not force:
                raise RunError(
                    f"{self.out} holds an earlier run; --no-resume starts from an empty folder: add --force to "
                    "delete it, or choose another --out"
                )
            clear_run_folder(self.out)
