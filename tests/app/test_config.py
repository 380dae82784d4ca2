"""The run-config schema (pydantic): strict types, unknown keys, every problem in one message."""

from __future__ import annotations

import pytest

pytest.importorskip("pydantic")


def _problems(raw: dict) -> list[str]:
    from ssmred_app.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    text = str(exc.value)
    assert text.startswith("invalid configuration:\n  - ")
    assert text.splitlines()[1:] == [f"  - {p}" for p in exc.value.problems]
    return exc.value.problems


def test_types_are_strict_and_floats_accept_ints() -> None:
    from ssmred_app.config import parse_config

    cfg = parse_config({"optim": {"lr": 1, "grad_clip": 2}, "compression": {"schedule": [10, 0.5]}})
    assert isinstance(cfg.optim.lr, float)
    assert isinstance(cfg.optim.grad_clip, float)
    assert cfg.compression.schedule == [10, 0.5]
    assert isinstance(cfg.compression.schedule[0], int)  # a step number stays a step number
    assert _problems({"optim": {"epochs": True}}) == ["optim.epochs: expected int, got True"]
    assert _problems({"model": {"d_state": [8, "8"]}}) == ["model.d_state: expected int or a list of int, got [8, '8']"]
    assert _problems({"compression": {"mode": "fast"}}) == [
        "compression.mode: expected one of 'none', 'tolerance', 'fraction', 'rank', 'pragmatic', got 'fast'"
    ]


def test_non_finite_floats_are_named_as_such() -> None:
    # pydantic's allow_inf_nan=False error: the message says what is wrong (was "expected float, got inf")
    assert _problems({"optim": {"lr": float("inf"), "weight_decay": float("nan")}}) == [
        "optim.lr: expected a finite number, got inf",
        "optim.weight_decay: expected a finite number, got nan",
    ]


def test_every_problem_at_once() -> None:
    problems = _problems(
        {
            "bogus": 1,
            "data": {"n_samples": 5},
            "model": {"d_sate": 8, "n_layers": 2, "d_state": [8, 8, 8], "r_min": 0.99, "r_max": 0.9},
            "optim": {"epochs": 0, "lr": "fast"},
            "compression": {"tau": 1.5, "schedule": [1.5, 0]},  # step 0 is valid (reduce at initialisation)
        }
    )
    assert problems == [
        "data.n_samples: must be >= 20, got 5",
        "model.d_sate: unknown key (valid keys: layer, d_model, d_state, n_layers, dropout, r_min, r_max, s4d, s5, "
        "mamba)",
        "optim.epochs: must be >= 1, got 0",
        "optim.lr: expected float, got 'fast'",
        "compression.tau: tau must be in [0, 1); got 1.5",
        "compression.schedule: schedule[0] = 1.5: a fraction must be in (0, 1]",
        "bogus: unknown key (valid keys: name, seed, device, threads, out, data, model, optim, compression, method)",
    ]
    # rules that tie fields together are checked once the fields themselves are valid
    assert _problems({"model": {"n_layers": 2, "d_state": [8, 8, 8], "r_min": 0.99, "r_max": 0.9}}) == [
        "model.d_state: 3 sizes given for 2 layers",
        "model.r_min/r_max: need 0 < r_min < r_max < 1, got 0.99, 0.9",
    ]
    assert _problems({"model": {"d_state": 4}, "compression": {"mode": "rank", "rank": 5}}) == [
        "compression.rank: each rank must lie in [1, d_state]; got 5 for [4, 4]"
    ]


def test_sections_and_round_trip() -> None:
    from ssmred_app.config import config_to_dict, parse_config, same_config, with_sections

    assert _problems({"model": [1]}) == ["model: expected a mapping, got list"]
    cfg = parse_config({"model": None, "compression": {"mode": "tolerance", "tau": 0.1}})
    assert cfg.model.state_sizes() == [64, 64]
    assert parse_config(config_to_dict(cfg)) == cfg
    smaller = with_sections(cfg, name="small", model={"d_state": [8, 4]})
    assert (smaller.name, smaller.model.d_state, cfg.model.d_state) == ("small", [8, 4], 64)
    assert same_config(config_to_dict(smaller), smaller)
    assert not same_config({"bogus": 1}, smaller)
    with pytest.raises(ValueError, match="frozen"):
        cfg.seed = 3


def test_a_missing_stored_config_is_not_the_defaults() -> None:
    # a run state without a config must not pass for a run of the default configuration (resume refuses it)
    from ssmred_app.config import parse_config, same_config

    defaults = parse_config({})
    assert same_config({}, defaults)
    assert not same_config(None, defaults)
    assert not same_config({"optim": {"epochs": "x"}}, defaults)
