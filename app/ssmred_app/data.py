r"""Offline sequence-classification data sets for the ``ssmred`` command (no network access).

Four sources, all returned as a :class:`SequenceData` with deterministic train / validation / test
splits drawn from ``split_seed``:

* ``digits`` -- scikit-learn's 8x8 handwritten digits read row by row as 64-step sequences of one
  pixel each, scaled to :math:`[0, 1]` (1797 samples, 10 classes).
* ``mnist1d`` -- MNIST-1D generated locally with ``mnist1d.data.make_dataset`` (40 steps, one
  channel, 10 classes; ``n_samples`` configurable). The package's ``get_dataset`` (which downloads)
  is never called.
* ``listops`` -- a synthetic ListOps-style generator: nested prefix expressions over the digits
  0-9 with the operators ``MIN``, ``MAX``, ``MED`` and ``SM`` (sum modulo 10); the label is the value
  of the expression. Token ids, padded with 0 to ``seq_len``.
* ``npz`` -- user arrays from an ``.npz`` file: ``X`` of shape ``(N, L, d)`` (floats) or ``(N, L)``
  (integer token ids) and integer labels ``y`` of shape ``(N,)``. Optional ``X_test``/``y_test``
  replace the random test split.

Examples
--------
>>> data = load_dataset(DataConfig(name="digits"))
>>> data.X_train.shape[1:], data.n_classes, data.kind
((64, 1), 10, 'continuous')
>>> len(data.y_train) + len(data.y_val) + len(data.y_test)
1797
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np

from ssmred.errors import BackendUnavailableError
from ssmred_app.config import DATASETS, DataConfig
from ssmred_app.errors import DataError

__all__ = [
    "DATASETS",
    "MAX_INFERRED_CLASSES",
    "MAX_INFERRED_VOCAB",
    "DataConfig",
    "SequenceData",
    "load_dataset",
    "make_listops",
]

#: largest class count inferred from the labels (above it, give data.n_classes)
MAX_INFERRED_CLASSES = 1000
#: largest token vocabulary inferred from the ids (above it, give data.vocab_size)
MAX_INFERRED_VOCAB = 65536


# ListOps vocabulary: 0 = padding, 1..10 = digits 0..9, then operators and the closing bracket.
_LISTOPS_OPS = ("MIN", "MAX", "MED", "SM")
_PAD, _DIGIT0, _OP0 = 0, 1, 11
_CLOSE = _OP0 + len(_LISTOPS_OPS)
LISTOPS_VOCAB = _CLOSE + 1


def _require_data(module: str) -> ModuleType:
    """Import a data-set dependency or raise an error naming the ``data`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the data set needs the optional package {module!r}, which is not installed. "
            "Install it with: pip install 'ssmred[data]'"
        ) from exc


@dataclass(frozen=True)
class SequenceData:
    """A split sequence-classification data set.

    Attributes
    ----------
    X_train, X_val, X_test
        ``float32`` arrays of shape ``(N, L, d)`` (``kind == "continuous"``) or ``int64`` token ids
        of shape ``(N, L)`` (``kind == "tokens"``).
    y_train, y_val, y_test
        ``int64`` labels in ``0..n_classes-1``.
    kind
        ``"continuous"`` or ``"tokens"``.
    d_input
        Channels per step (``continuous``) or vocabulary size (``tokens``).
    n_classes
        Number of classes.
    name
        Data set name.
    warnings
        Things worth knowing that do not stop a run (e.g. test classes never seen in training).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    kind: Literal["continuous", "tokens"]
    d_input: int
    n_classes: int
    name: str
    warnings: tuple[str, ...] = ()

    @property
    def seq_len(self) -> int:
        """Sequence length L."""
        return int(self.X_train.shape[1])

    def describe(self) -> str:
        """One line: name, sizes, length, channels."""
        what = f"vocab {self.d_input}" if self.kind == "tokens" else f"{self.d_input} channel(s)"
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val / {len(self.y_test)} test, "
            f"length {self.seq_len}, {what}, {self.n_classes} classes"
        )


def _split(
    X: np.ndarray, y: np.ndarray, cfg: DataConfig, *, test: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(cfg.split_seed)
    idx = rng.permutation(len(y))
    n = len(y)
    n_test = 0 if test is not None else round(cfg.test_fraction * n)
    n_val = max(1, round(cfg.val_fraction * n))
    if n - n_test - n_val < 1:
        raise DataError(f"data set {cfg.name!r} has {n} samples: too few for the requested val/test fractions")
    te, va, tr = idx[:n_test], idx[n_test : n_test + n_val], idx[n_test + n_val :]
    X_test, y_test = (X[te], y[te]) if test is None else test
    return X[tr], y[tr], X[va], y[va], X_test, y_test


def _subsample(X: np.ndarray, y: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.n_samples is None or cfg.n_samples >= len(y):
        return X, y
    idx = np.sort(np.random.default_rng(cfg.split_seed + 1).permutation(len(y))[: cfg.n_samples])
    return X[idx], y[idx]


def _digits(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    datasets = _require_data("sklearn.datasets")
    d = datasets.load_digits()
    X = (np.asarray(d.data, dtype=np.float32) / 16.0)[:, :, None]
    return _subsample(X, np.asarray(d.target, dtype=np.int64), cfg)


def _mnist1d(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    mdata = _require_data("mnist1d.data")
    args = mdata.get_dataset_args()
    args.num_samples = int(cfg.n_samples or 4000)
    args.seed = int(cfg.split_seed) + 42
    ds = mdata.make_dataset(args)  # generates locally; get_dataset would download
    X = np.concatenate([ds["x"], ds["x_test"]]).astype(np.float32)[:, :, None]
    y = np.concatenate([ds["y"], ds["y_test"]]).astype(np.int64)
    return X, y


def make_listops(
    n_samples: int, *, seq_len: int = 64, max_depth: int = 3, max_args: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ListOps-style expressions as token ids with their values as labels.

    Parameters
    ----------
    n_samples
        Number of expressions.
    seq_len
        Token length; expressions are generated to fit and padded with 0.
    max_depth
        Maximum nesting depth.
    max_args
        Maximum number of arguments of an operator.
    seed
        Seed of the generator.

    Returns
    -------
    X : numpy.ndarray
        ``int64`` token ids, shape ``(n_samples, seq_len)``: 0 pad, 1-10 digits, 11-14 ``MIN MAX MED
        SM`` (each opens a bracket), 15 the closing bracket.
    y : numpy.ndarray
        The value of each expression, ``0..9``.

    Examples
    --------
    >>> X, y = make_listops(5, seq_len=32, seed=1)
    >>> X.shape, bool(((0 <= y) & (y <= 9)).all())
    ((5, 32), True)
    """
    rng = np.random.default_rng(seed)

    def gen(depth: int) -> tuple[list[int], int]:
        if depth >= max_depth or rng.random() < 0.25 * depth:
            v = int(rng.integers(10))
            return [_DIGIT0 + v], v
        op = int(rng.integers(len(_LISTOPS_OPS)))
        toks, vals = [_OP0 + op], []
        for _ in range(int(rng.integers(2, max_args + 1))):
            t, v = gen(depth + 1)
            toks += t
            vals.append(v)
        toks.append(_CLOSE)
        name = _LISTOPS_OPS[op]
        if name == "MIN":
            val = min(vals)
        elif name == "MAX":
            val = max(vals)
        elif name == "MED":
            val = int(np.median(vals))
        else:
            val = sum(vals) % 10
        return toks, val

    X = np.zeros((n_samples, seq_len), dtype=np.int64)
    y = np.zeros(n_samples, dtype=np.int64)
    i = 0
    while i < n_samples:
        toks, val = gen(0)
        if len(toks) > seq_len:
            continue
        X[i, : len(toks)] = toks
        y[i] = val
        i += 1
    return X, y


def _npz(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None, str]:
    if cfg.path is None:
        raise DataError("data.name 'npz' needs data.path (an .npz file with arrays X and y)")
    path = Path(cfg.path)
    if not path.is_file():
        raise DataError(f"data.path {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # not an npz, damaged, object arrays (pickle refused), ...
        raise DataError(f"{path}: not a readable .npz file of plain arrays ({type(exc).__name__}: {exc})") from exc
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (found {sorted(arrays)})")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: give both X_test and y_test, or neither (found {sorted(arrays)})")
    X, y = _check_xy(arrays["X"], arrays["y"], str(path))
    test = None
    if "X_test" in arrays or "y_test" in arrays:
        test = _check_xy(arrays["X_test"], arrays["y_test"], f"{path} (test)")
    kind = "tokens" if np.issubdtype(X.dtype, np.integer) else "continuous"
    return X, y, test, kind


def _check_xy(X: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if X.size == 0 or len(X) == 0:
        raise DataError(f"{where}: X is empty (shape {X.shape})")
    if np.issubdtype(X.dtype, np.integer):
        if X.ndim != 2:
            raise DataError(f"{where}: integer token ids X must have shape (N, L), got {X.shape}")
        if X.min() < 0:
            raise DataError(f"{where}: token ids must be >= 0, got {X.min()}")
        X = X.astype(np.int64)
    elif np.issubdtype(X.dtype, np.floating):
        if X.ndim == 2:
            X = X[:, :, None]
        if X.ndim != 3:
            raise DataError(f"{where}: float X must have shape (N, L, d) or (N, L), got {X.shape}")
        if not np.isfinite(X).all():
            bad = int(np.count_nonzero(~np.isfinite(X)))
            raise DataError(f"{where}: X contains {bad} non-finite value(s) (NaN/inf); clean or impute them first")
        X = X.astype(np.float32)
    else:
        raise DataError(f"{where}: X must hold floats or integer token ids, got dtype {X.dtype}")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X) or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(f"{where}: y must be non-negative integer labels of shape ({len(X)},), got {y.dtype} {y.shape}")
    return X, y.astype(np.int64)


def _class_count(cfg: DataConfig, y_all: np.ndarray) -> int:
    """``data.n_classes`` checked against the labels, or inferred with the documented sanity rules."""
    top = int(y_all.max()) + 1
    if cfg.n_classes is not None:
        if top > cfg.n_classes:
            raise DataError(f"labels must lie in [0, data.n_classes={cfg.n_classes}); found label {top - 1}")
        return int(cfg.n_classes)
    present = len(np.unique(y_all))
    if top > MAX_INFERRED_CLASSES or present < top / 2:
        raise DataError(
            f"the labels imply {top} classes (largest label {top - 1}) but only {present} distinct labels occur: "
            f"refusing to build a {top}-way classifier from a sparse label set (inferred class counts must be <= "
            f"{MAX_INFERRED_CLASSES} with at least half of the classes present); relabel to 0..K-1 or set "
            "data.n_classes"
        )
    return top


def _vocabulary(cfg: DataConfig, top_id: int) -> int:
    if cfg.vocab_size is not None:
        if top_id >= cfg.vocab_size:
            raise DataError(f"token ids must lie in [0, data.vocab_size={cfg.vocab_size}); found id {top_id}")
        return int(cfg.vocab_size)
    if top_id + 1 > MAX_INFERRED_VOCAB:
        raise DataError(
            f"the token ids imply a vocabulary of {top_id + 1} (largest id {top_id}), above the {MAX_INFERRED_VOCAB} "
            "inferred at most: remap the ids or set data.vocab_size"
        )
    return top_id + 1


def load_dataset(cfg: DataConfig) -> SequenceData:
    """Load (or generate) a data set and split it deterministically.

    Parameters
    ----------
    cfg
        The data configuration.

    Returns
    -------
    SequenceData
        Train / validation / test arrays and metadata.

    Raises
    ------
    BackendUnavailableError
        When scikit-learn or mnist1d is missing (names the ``data`` extra).
    DataError
        For a missing or malformed ``.npz`` file (missing keys, wrong shapes or dtypes, empty or
        non-finite arrays), labels or token ids outside their range or implausibly sparse, or too
        few samples.

    Examples
    --------
    >>> d = load_dataset(DataConfig(name="listops", n_samples=200, seq_len=32))
    >>> d.kind, d.d_input, d.X_train.dtype
    ('tokens', 16, dtype('int64'))
    """
    test = None
    if cfg.name == "digits":
        X, y = _digits(cfg)
        kind = "continuous"
    elif cfg.name == "mnist1d":
        X, y = _mnist1d(cfg)
        kind = "continuous"
    elif cfg.name == "listops":
        X, y = make_listops(int(cfg.n_samples or 4000), seq_len=int(cfg.seq_len or 64), seed=cfg.split_seed)
        kind = "tokens"
    elif cfg.name == "npz":
        X, y, test, kind = _npz(cfg)
        X, y = _subsample(X, y, cfg)
    else:
        raise DataError(f"unknown data set {cfg.name!r}; choose one of {', '.join(DATASETS)}")
    if test is not None and test[0].dtype != X.dtype:
        raise DataError(f"X_test holds {test[0].dtype} but X holds {X.dtype}: both token ids or both features")
    X_tr, y_tr, X_va, y_va, X_te, y_te = _split(X, y, cfg, test=test)
    if kind == "tokens":
        if cfg.name == "listops":
            d_input = LISTOPS_VOCAB
        else:
            d_input = _vocabulary(cfg, int(max(X.max(), X_te.max())))
    else:
        d_input = int(X.shape[2])
    if X_te.shape[1:] != X.shape[1:]:
        raise DataError(f"test arrays have shape {X_te.shape[1:]} per sample, expected {X.shape[1:]}")
    n_classes = _class_count(cfg, np.concatenate([y, y_te]))
    unseen = sorted(set(np.unique(y_te).tolist()) - set(np.unique(y_tr).tolist()))
    notes = ()
    if unseen:
        notes = (
            f"test labels {unseen[:10]}{' ...' if len(unseen) > 10 else ''} never occur in the training split: "
            "the test accuracy on them can only be 0",
        )
    return SequenceData(X_tr, y_tr, X_va, y_va, X_te, y_te, kind, d_input, n_classes, cfg.name, notes)  # type: ignore[arg-type]
