"""Offline data sets: deterministic splits, user .npz files, ListOps generator, missing extras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch


def test_digits_split_is_deterministic_and_disjoint() -> None:
    from ssmred_app.data import DataConfig, load_dataset

    a = load_dataset(DataConfig(name="digits", split_seed=3))
    b = load_dataset(DataConfig(name="digits", split_seed=3))
    c = load_dataset(DataConfig(name="digits", split_seed=4))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_train, c.y_train)
    assert a.X_train.shape[1:] == (64, 1)
    assert float(a.X_train.min()) >= 0.0
    assert float(a.X_train.max()) <= 1.0
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797


def test_mnist1d_is_generated_locally() -> None:
    from ssmred_app.data import DataConfig, load_dataset

    d = load_dataset(DataConfig(name="mnist1d", n_samples=200))
    assert d.X_train.shape[1:] == (40, 1)
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 200


def test_listops_values() -> None:
    from ssmred_app.data import make_listops

    X, y = make_listops(50, seq_len=48, seed=2)
    X2, y2 = make_listops(50, seq_len=48, seed=2)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    # an expression that is a single digit has that digit as its value
    single = (X[:, 1] == 0) & (X[:, 0] >= 1) & (X[:, 0] <= 10)
    np.testing.assert_array_equal(y[single], X[single, 0] - 1)


def test_npz_floats_tokens_and_test_split(tmp_path: Path) -> None:
    from ssmred_app.data import DataConfig, load_dataset

    rng = np.random.default_rng(0)
    p = tmp_path / "f.npz"
    np.savez(p, X=rng.standard_normal((100, 12, 3)), y=rng.integers(0, 4, 100))
    d = load_dataset(DataConfig(name="npz", path=str(p)))
    assert (d.kind, d.d_input, d.n_classes) == ("continuous", 3, 4)
    t = tmp_path / "t.npz"
    np.savez(
        t,
        X=rng.integers(0, 7, (80, 10)),
        y=rng.integers(0, 3, 80),
        X_test=rng.integers(0, 7, (20, 10)),
        y_test=rng.integers(0, 3, 20),
    )
    d = load_dataset(DataConfig(name="npz", path=str(t)))
    assert d.kind == "tokens"
    assert len(d.y_test) == 20
    assert len(d.y_train) + len(d.y_val) == 80


def test_bad_npz_is_a_clear_error(tmp_path: Path) -> None:
    from ssmred_app.data import DataConfig, load_dataset

    p = tmp_path / "bad.npz"
    np.savez(p, X=np.zeros((10, 5, 2)))
    with pytest.raises(ValueError, match="missing array 'y'"):
        load_dataset(DataConfig(name="npz", path=str(p)))
    np.savez(p, X=np.zeros((10, 5, 2)), y=np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="labels of shape"):
        load_dataset(DataConfig(name="npz", path=str(p)))


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssmred_app.data as data

    from ssmred.errors import BackendUnavailableError

    real = data.importlib.import_module

    def fake(name: str, package: str | None = None):  # noqa: ANN202
        if name.startswith("mnist1d"):
            raise ImportError("No module named 'mnist1d'")
        return real(name, package)

    monkeypatch.setattr(data.importlib, "import_module", fake)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'ssmred\[data\]'"):
        data.load_dataset(data.DataConfig(name="mnist1d"))


@pytest.mark.parametrize(
    ("compression", "expected"),
    [
        ({"mode": "fraction", "fraction": 0.25}, None),
        ({"mode": "rank", "rank_total": 3}, 3),
    ],
)
def test_train_on_token_npz(tmp_path: Path, compression: dict, expected: int | None) -> None:
    from ssmred_app.config import parse_config
    from ssmred_app.data import load_dataset
    from ssmred_app.trainer import train_run

    rng = np.random.default_rng(1)
    p = tmp_path / "tok.npz"
    X = rng.integers(0, 5, (120, 16))
    np.savez(p, X=X, y=(X[:, 0] > 2).astype(int))
    cfg = parse_config(
        {
            "data": {"name": "npz", "path": str(p)},
            "model": {"d_model": 8, "d_state": 8, "n_layers": 2},
            "optim": {"epochs": 2, "batch_size": 4},
            "compression": compression,
        }
    )
    res = train_run(cfg, tmp_path / "run", data=load_dataset(cfg.data), progress=False, log=lambda s: None)
    assert all(n < 8 for n in res.final_dims)
    if expected is not None:
        assert sum(res.final_dims) == expected
    assert len(res.epochs) == 2
