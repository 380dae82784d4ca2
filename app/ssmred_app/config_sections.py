r"""The sections of a run configuration: :class:`RunConfig` and the pydantic models of its sections.

The schema is strict: every section rejects unknown keys, an int is not a bool, a float field accepts
an int, lists are typed and string options are :data:`typing.Literal` choices; value ranges and the
rules that tie fields together are checked next to the fields (with the helpers of
:mod:`ssmred_app.schema`). Reading, overriding and validating a configuration — and :class:`ConfigError`,
which lists every problem at once — live in :mod:`ssmred_app.config`, which re-exports every name here.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ssmred.selection import Fraction, Pragmatic, Tolerance, check_gate, check_schedule
from ssmred_app.families import LayerName, MambaOptions, S4DOptions, S5Options
from ssmred_app.schema import Section, invalid_combination, invalid_value, shared_rule, value_rule

__all__ = [
    "DATASETS",
    "CompressionConfig",
    "DataConfig",
    "METHODS",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
]


def _sizes(d_state: int | list[int]) -> list[int]:
    return [d_state] if isinstance(d_state, int) else list(d_state)


def _check_state_sizes(d_state: int | list[int]) -> int | list[int]:
    sizes = _sizes(d_state)
    problems = [] if all(n >= 1 for n in sizes) else [f"state sizes must be >= 1, got {d_state}"]
    if not all(n <= 4096 for n in sizes):
        problems.append(f"state sizes above 4096 are not supported, got {d_state}")
    if problems:
        invalid_value(*problems)
    return d_state


_PositiveInt = Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")]
_HalfOpenUnit = Annotated[float, value_rule(lambda v: 0 <= v < 1, "must lie in [0, 1), got {v}")]


DatasetName = Literal["digits", "mnist1d", "listops", "npz"]
DATASETS: tuple[str, ...] = typing.get_args(DatasetName)


class DataConfig(Section):
    """Which data set to load and how to split it.

    Attributes
    ----------
    name
        One of ``digits``, ``mnist1d``, ``listops``, ``npz``.
    path
        The ``.npz`` file (``npz`` only).
    n_samples
        Number of samples to generate (``mnist1d``: default 4000; ``listops``: default 4000).
        For ``digits``/``npz`` a smaller number subsamples the data set.
    seq_len
        Maximum sequence length of ``listops`` (default 64).
    val_fraction, test_fraction
        Fractions of the samples held out for validation and test.
    split_seed
        Seed of the split (and of the generators); the data do not change with the training seed.
    n_classes
        Number of classes; labels must lie in ``[0, n_classes)``. Default: inferred as the largest label
        + 1, refused when that exceeds 1000 or when fewer than half of the classes occur (give it
        explicitly for such label sets).
    vocab_size
        Token vocabulary of an ``npz`` token data set; ids must lie in ``[0, vocab_size)``. Default:
        the largest id + 1, refused above 65536 (give it explicitly).
    """

    name: DatasetName = "digits"
    path: str | None = None
    n_samples: Annotated[int | None, value_rule(lambda v: v is None or v >= 20, "must be >= 20, got {v}")] = None
    seq_len: Annotated[int | None, value_rule(lambda v: v is None or v >= 8, "must be >= 8, got {v}")] = None
    val_fraction: Annotated[float, value_rule(lambda v: 0 < v < 0.5, "must lie in (0, 0.5), got {v}")] = 0.15
    test_fraction: Annotated[float, value_rule(lambda v: 0 <= v < 0.5, "must lie in [0, 0.5), got {v}")] = 0.2
    split_seed: Annotated[int, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 0
    n_classes: Annotated[int | None, value_rule(lambda v: v is None or v >= 2, "must be >= 2, got {v}")] = None
    vocab_size: Annotated[int | None, value_rule(lambda v: v is None or v >= 2, "must be >= 2, got {v}")] = None

    @model_validator(mode="after")
    def _path_fits_name(self) -> DataConfig:
        if self.name == "npz":
            if self.path is None:
                invalid_combination("path: required for data.name 'npz' (an .npz file with arrays X and y)")
            if not Path(self.path).is_file():
                invalid_combination(f"path: file {self.path!r} does not exist")
        elif self.path is not None:
            invalid_combination(f"path: only used with data.name 'npz' (got data.name {self.name!r})")
        return self


class ModelConfig(Section):
    """The classifier: its layer family, sizes and family options (SPEC §1).

    Attributes
    ----------
    layer
        The SSM layer family: ``lru`` (default), ``s4d``, ``s5`` or ``mamba``
        (:mod:`ssmred_app.families`).
    d_model
        Width H of every block.
    d_state
        State size of every SSM layer in the family's convention (LRU n, S4D N, S5 P, Mamba d_state),
        or a list with one size per layer.
    n_layers
        Number of blocks.
    dropout
        Dropout rate inside the blocks.
    r_min, r_max
        LRU: ring of the initial eigenvalue moduli.
    s4d, s5, mamba
        Options of the other families (used when ``layer`` names them).
    """

    layer: LayerName = "lru"
    d_model: _PositiveInt = 16
    d_state: Annotated[int | list[int], AfterValidator(_check_state_sizes)] = 64
    n_layers: _PositiveInt = 2
    dropout: _HalfOpenUnit = 0.0
    r_min: float = 0.9
    r_max: float = 0.999
    s4d: S4DOptions = Field(default_factory=S4DOptions)
    s5: S5Options = Field(default_factory=S5Options)
    mamba: MambaOptions = Field(default_factory=MambaOptions)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        problems = []
        if (self.layer == "s4d" or (self.layer == "s5" and self.s5.conj_sym)) and any(
            n % 2 for n in self.state_sizes()
        ):
            problems.append(
                f"d_state: {self.layer} stores conjugate half-states: sizes must be even, got {self.d_state}"
            )
        if isinstance(self.d_state, list) and len(self.d_state) != self.n_layers:
            problems.append(f"d_state: {len(self.d_state)} sizes given for {self.n_layers} layers")
        if not 0 < self.r_min < self.r_max < 1:
            problems.append(f"r_min/r_max: need 0 < r_min < r_max < 1, got {self.r_min}, {self.r_max}")
        if problems:
            invalid_combination(*problems)
        return self

    def state_sizes(self) -> list[int]:
        """Per-layer state sizes."""
        return [self.d_state] * self.n_layers if isinstance(self.d_state, int) else list(self.d_state)


class OptimConfig(Section):
    """Optimizer and schedule (SPEC §6).

    Attributes
    ----------
    epochs
        Number of passes over the training set.
    batch_size
        Training batch size.
    lr
        Peak learning rate of AdamW.
    ssm_lr_factor
        Learning-rate factor of the SSM parameters (no weight decay on them).
    weight_decay
        AdamW weight decay of the other parameters.
    warmup_fraction
        Fraction of the steps with linear warm-up; cosine decay after it.
    grad_clip
        Gradient-norm clip (``null`` for none).
    eval_batch_size
        Batch size for evaluation.
    checkpoint_every
        Also write a resumable state every this many steps inside an epoch (0: only at epoch ends and
        on an interrupt; a ``kill -9`` then loses at most the partial epoch).
    """

    epochs: _PositiveInt = 30
    batch_size: _PositiveInt = 64
    lr: Annotated[float, value_rule(lambda v: v > 0, "must be > 0, got {v}")] = 1e-2
    ssm_lr_factor: Annotated[float, value_rule(lambda v: 0 < v <= 10, "must lie in (0, 10], got {v}")] = 0.5
    weight_decay: Annotated[float, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 0.05
    warmup_fraction: _HalfOpenUnit = 0.1
    grad_clip: Annotated[float | None, value_rule(lambda v: v is None or v > 0, "must be > 0 or null, got {v}")] = 1.0
    eval_batch_size: _PositiveInt = 1024
    checkpoint_every: Annotated[int, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 0


class CompressionConfig(Section):
    r"""In-training reduction (CompreSSM, SPEC §6).

    Every range here is the one of :mod:`ssmred.selection` (the same classes validate both).

    Attributes
    ----------
    mode
        ``none``, ``tolerance`` (discard at most ``tau`` of :math:`\sum\sigma`), ``fraction`` (cut
        ``fraction`` of the states), ``rank`` (reduce to ``rank``), ``pragmatic`` (cut ``fraction``,
        revert if validation accuracy drops by more than ``tolerance``).
    tau
        Discarded fraction of the plain HSV sum, in [0, 1) (applies per attempt: four attempts keep
        about (1 - tau)^4 of the original sum).
    fraction
        Fraction of the states removed per attempt, in (0, 1).
    rank
        Target order: one int for every layer or one per layer.
    rank_total
        Alternatively, a total state budget over all layers (shared by a common HSV-energy threshold).
    tolerance
        Allowed absolute drop of validation accuracy in ``pragmatic`` mode (finite, >= 0).
    schedule
        Attempt times: fractions of the total steps (floats in (0, 1]) or step numbers (ints >= 0;
        0 reduces at initialisation); default four attempts at 2.5, 5, 7.5 and 10 % of training.
    gate
        Reduce a layer only when ``r < gate * n``, in (0, 1].
    optimizer_policy
        Adam-moment surgery after a reduction: ``project``, ``slice`` or ``reset``.
    """

    mode: Literal["none", "tolerance", "fraction", "rank", "pragmatic"] = "none"
    tau: Annotated[float, shared_rule(Tolerance)] = 0.05
    fraction: Annotated[float, shared_rule(Fraction)] = 0.1
    rank: int | list[int] | None = None
    rank_total: int | None = None
    tolerance: Annotated[float, shared_rule(lambda v: Pragmatic(0.5, v))] = 0.02
    schedule: Annotated[list[int | float] | None, shared_rule(lambda v: v is None or check_schedule(v))] = None
    gate: Annotated[float, shared_rule(check_gate)] = 0.95
    optimizer_policy: Literal["project", "slice", "reset"] = "project"


MethodName = Literal["auto", "full", "compressm", "bt_init", "random", "smallest", "post_bt", "hnn", "distill", "last"]
METHODS: tuple[str, ...] = typing.get_args(MethodName)


class MethodConfig(Section):
    r"""The training method (:mod:`ssmred_app.methods`): CompreSSM or one of the baselines it is compared with.

    Attributes
    ----------
    name
        ``auto`` (default: ``compressm`` when ``compression.mode`` is set, else ``full``); ``full``
        (plain training; also the same-size-from-scratch runs); ``compressm`` (in-training balanced
        truncation by the ``compression`` rule and schedule); ``bt_init`` (the ``compression`` rule
        applied ``init_repeats`` times at step 0, then plain training); ``random`` / ``smallest``
        (the ``compression`` rule and schedule choose the orders, but the kept states are a random
        subset / the smallest-HSV states of the ``basis``); ``post_bt`` (train at full size, balanced
        truncation once at the end, optional fine-tune); ``hnn`` (Hankel nuclear-norm regularisation
        :math:`\lambda\sum\sigma` added to the loss every step, then the post-training cut); ``distill``
        (knowledge distillation from ``teacher``: loss :math:`(1-\alpha)\,\mathrm{CE} +
        \alpha T^2\,\mathrm{KL}`); ``last`` (LAST pruning after training: H∞ scores normalised per
        layer, one global threshold keeping ``target_total`` states).
    hsv
        Which HSVs choose the orders (``compressm``, ``bt_init``, ``random``, ``smallest``, ``post_bt``,
        ``hnn``): ``proxy`` (the complex system's, as published) or ``real`` (the exact real-output
        map's, ``2n`` values; ``⌈r_real/2⌉`` complex states are kept).
    min_order
        Floor of every layer's order at every cut (the rule's order is raised to it).
    basis
        ``random`` / ``smallest``: choose among the ``balanced`` states (square-root basis) or the
        layer's own ``modal`` states.
    selection_seed
        Seed of the random choice (default: the run's ``seed``); each cut draws from
        ``SeedSequence([selection_seed, step])``.
    init_repeats
        ``bt_init``: how many times the rule is applied at step 0 (default: the number of scheduled
        attempts, so that τ applies as often as in the CompreSSM run; 1 for ``rank`` mode).
    cut_orders
        Scheduled methods: the orders of every cut (one list of per-layer orders per attempt) instead of the
        rule's — the matched controls: ``ssmred experiment`` passes the paired CompreSSM run's sizes after
        each of its attempts, so that ``random`` / ``smallest`` cut to exactly the same sizes at the same
        steps, and ``bt_init`` to its final sizes at step 0 (one attempt per list; orders at or above
        ``gate * n`` leave a layer untouched).
    target_total
        Post-training cuts (``post_bt``, ``hnn``, ``last``): the total number of states kept over all
        layers, shared by one global threshold (normalised HSVs for BT, normalised LAST scores for LAST).
        ``null``: the ``compression`` rule, applied once (``post_bt``, ``hnn``; ``hnn`` without a rule
        keeps the full size).
    finetune_epochs
        Post-training cuts: epochs of fine-tuning after the cut (constant learning rate ``finetune_lr``).
    finetune_lr
        Learning rate of the fine-tuning (AdamW, SSM parameters at ``optim.ssm_lr_factor`` of it).
    hnn_lambda
        ``hnn``: weight λ of the Hankel nuclear norm (sum of all layers' HSVs).
    teacher
        ``distill``: the teacher's model file (e.g. the full run's ``checkpoints/epoch_030.pt``).
    alpha, temperature
        ``distill``: weight α of the distillation term and temperature T.
    """

    name: MethodName = "auto"
    hsv: Literal["proxy", "real"] = "proxy"
    min_order: _PositiveInt = 1
    basis: Literal["balanced", "modal"] = "balanced"
    selection_seed: Annotated[int | None, value_rule(lambda v: v is None or v >= 0, "must be >= 0, got {v}")] = None
    init_repeats: Annotated[int | None, value_rule(lambda v: v is None or v >= 1, "must be >= 1, got {v}")] = None
    cut_orders: Annotated[
        list[list[int]] | None,
        value_rule(
            lambda v: v is None or (bool(v) and all(v_k and all(r >= 1 for r in v_k) for v_k in v)),
            "expected a non-empty list of non-empty lists of orders >= 1, got {v!r}",
        ),
    ] = None
    target_total: Annotated[int | None, value_rule(lambda v: v is None or v >= 1, "must be >= 1, got {v}")] = None
    finetune_epochs: Annotated[int, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 0
    finetune_lr: Annotated[float, value_rule(lambda v: v > 0, "must be > 0, got {v}")] = 1e-3
    hnn_lambda: Annotated[float, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 1e-3
    teacher: str | None = None
    alpha: Annotated[float, value_rule(lambda v: 0 <= v <= 1, "must lie in [0, 1], got {v}")] = 0.5
    temperature: Annotated[float, value_rule(lambda v: v > 0, "must be > 0, got {v}")] = 2.0

    def resolved(self, compression: CompressionConfig) -> str:
        """The method that runs: ``auto`` resolved by ``compression.mode``.

        Parameters
        ----------
        compression
            The run's compression section; only its ``mode`` is read (``none`` resolves ``auto`` to
            ``full``, any other mode to ``compressm``).

        Returns
        -------
        str
            ``name`` itself unless it is ``auto``; then ``full`` or ``compressm``.
        """
        if self.name != "auto":
            return self.name
        return "full" if compression.mode == "none" else "compressm"


_SCHEDULED = ("compressm", "bt_init", "random", "smallest")


class RunConfig(Section):
    """A whole training run.

    Attributes
    ----------
    name
        Run name (used in reports).
    seed
        Seed of initialisation, data order and dropout.
    device
        ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    threads
        Torch CPU threads (default 1: these small models run fastest single-threaded, and on a busy
        2-core machine torch's default pool was 10-80x slower per step in our measurements; ``null``
        keeps torch's default).
    out
        Run folder (``null``: a new folder under ``runs/``).
    data, model, optim, compression
        The sections.
    method
        The training method (default ``auto``: CompreSSM when ``compression.mode`` is set).
    """

    name: str = "run"
    seed: Annotated[int, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 0
    device: Annotated[
        str,
        value_rule(
            lambda v: v in ("auto", "cpu") or v.startswith("cuda"), "expected auto, cpu, cuda or cuda:N, got {v!r}"
        ),
    ] = "auto"
    threads: Annotated[int | None, value_rule(lambda v: v is None or v >= 1, "must be >= 1, got {v}")] = 1
    out: str | None = None
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)

    @field_validator("data", "model", "optim", "compression", "method", mode="before")
    @classmethod
    def _empty_section_is_default(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _method_fits(self) -> RunConfig:
        m, c = self.method, self.compression
        name = m.resolved(c)
        problems = []
        if name in _SCHEDULED and m.name != "auto" and c.mode == "none" and m.cut_orders is None:
            problems.append(
                f"method.name: {name!r} takes its orders from the compression rule; set compression.mode "
                "(or method.cut_orders)"
            )
        if (
            name in _SCHEDULED
            and c.mode == "pragmatic"
            and (name != "compressm" or m.hsv != "proxy" or m.min_order > 1)
        ):
            problems.append(
                f"method: pragmatic mode runs only as plain CompreSSM (method.name {name!r}, hsv {m.hsv!r}, "
                f"min_order {m.min_order})"
            )
        if m.cut_orders is not None and any(len(o) != self.model.n_layers for o in m.cut_orders):
            problems.append(f"method.cut_orders: every cut needs one order per layer ({self.model.n_layers})")
        if name == "last" and m.target_total is None:
            problems.append("method.target_total: 'last' needs the total number of states to keep")
        if name == "distill" and not m.teacher:
            problems.append("method.teacher: 'distill' needs the teacher's model file")
        if m.target_total is not None and not self.model.n_layers <= m.target_total <= sum(self.model.state_sizes()):
            problems.append(
                f"method.target_total: must lie in [{self.model.n_layers}, {sum(self.model.state_sizes())}] (one state "
                f"per layer at least, at most all states), got {m.target_total}"
            )
        if problems:
            invalid_combination(*problems)
        return self

    @model_validator(mode="after")
    def _ranks_fit_model(self) -> RunConfig:
        c, m = self.compression, self.model
        if c.mode != "rank":
            return self
        sizes = m.state_sizes()
        if (c.rank is None) == (c.rank_total is None):
            invalid_combination("compression.rank: mode 'rank' needs exactly one of compression.rank and rank_total")
        if c.rank_total is not None:
            if not m.n_layers <= c.rank_total <= sum(sizes):
                invalid_combination(
                    f"compression.rank_total: must lie in [{m.n_layers}, {sum(sizes)}] (one state per layer at "
                    f"least, at most all states), got {c.rank_total}"
                )
            return self
        ranks = [c.rank] * m.n_layers if isinstance(c.rank, int) else list(c.rank)
        if len(ranks) != m.n_layers:
            invalid_combination(f"compression.rank: {len(ranks)} ranks given for {m.n_layers} layers")
        if any(not 1 <= r <= n for r, n in zip(ranks, sizes, strict=True)):
            invalid_combination(f"compression.rank: each rank must lie in [1, d_state]; got {c.rank} for {sizes}")
        return self
