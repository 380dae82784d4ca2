"""Mechanics of the training methods (tiny models; tests, not results).

Hankel nuclear-norm regulariser and its gradient, the distillation loss value, LAST scores of a known
system, post-training BT = the core's balanced truncation, random selection reproducible by seed,
BT at step 0, the post-hoc shortcut = training with the method, paired statistics against a
hand-computed example, the experiment's cache key and ``experiment.*`` overrides.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch

TINY = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "data": {"name": "digits", "n_samples": 300},
    "model": {"d_model": 4, "d_state": 12, "n_layers": 1},
    "optim": {"epochs": 2, "batch_size": 8},
}


def _cfg(**sections):
    from ssmred_app.config import parse_config

    raw = json.loads(json.dumps(TINY))
    raw.update(sections)
    return parse_config(raw)


@pytest.fixture(scope="module")
def data():
    from ssmred_app.data import load_dataset

    return load_dataset(_cfg().data)


def _lru(mu, B, C):
    """An LRU layer with the given diagonal system (mu, B~ = diag(gamma) B, C), float64."""
    import torch
    from ssmred_torch import LRU
    from ssmred_torch.layers.lru import lru_parameters_from_diagonal

    mu, B, C = (torch.as_tensor(np.asarray(x), dtype=torch.complex128) for x in (mu, B, C))
    layer = LRU(B.shape[1], mu.shape[0], dtype=torch.float64)
    params, _ = lru_parameters_from_diagonal(mu[None], B[None], C[None], dtype=torch.float64)
    layer.replace_parameters_(**{k: v[0] for k, v in params.items()})
    return layer


# ---------------------------------------------------------------------------------------------- losses
def test_hnn_loss_adds_lambda_times_hsv_sum_and_its_gradient(data) -> None:
    import torch
    from ssmred_app.methods import PostTraining
    from ssmred_torch import hankel_nuclear_norm

    from ssmred import hsv_diagonal

    torch.manual_seed(0)
    layer = _lru(
        [0.5 + 0.2j, -0.3 + 0.6j, 0.8], np.arange(6).reshape(3, 2) / 5 + 0.1j, np.ones((2, 3)) - 0.3j * np.eye(2, 3)
    )
    value = hankel_nuclear_norm(layer)
    lam = np.array([0.5 + 0.2j, -0.3 + 0.6j, 0.8])
    B = np.arange(6).reshape(3, 2) / 5 + 0.1j
    C = np.ones((2, 3)) - 0.3j * np.eye(2, 3)
    assert float(value.detach()) == pytest.approx(float(np.sum(hsv_diagonal(lam, B, C, dt=1.0))), rel=1e-10)
    value.backward()
    g = layer.B_re.grad[1, 0].item()
    eps = 1e-6
    with torch.no_grad():
        layer.B_re[1, 0] += eps
        up = float(hankel_nuclear_norm(layer).detach())
        layer.B_re[1, 0] -= 2 * eps
        down = float(hankel_nuclear_norm(layer).detach())
        layer.B_re[1, 0] += eps
    assert g == pytest.approx((up - down) / (2 * eps), rel=1e-5)
    # the method's loss is CE + lambda * sum(sigma), with gradients of both
    cfg = _cfg(method={"name": "hnn", "hnn_lambda": 0.25, "target_total": 4})
    logits, targets = torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])

    class T:
        model = layer

    loss = PostTraining(cfg).loss(T(), logits, targets, None)
    ce = torch.nn.functional.cross_entropy(logits, targets)
    reg = float(hankel_nuclear_norm(layer).detach())
    assert float(loss.detach()) == pytest.approx(float(ce) + 0.25 * reg, rel=1e-12)


def test_distillation_loss_value() -> None:
    import torch
    from ssmred_app.methods import distillation_loss

    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 2])

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    sn, tn = s.numpy(), t.numpy()
    ce = -np.mean(np.log(softmax(sn)[[0, 1], [0, 2]]))
    ps, pt = softmax(sn / 2), softmax(tn / 2)
    kl = np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), -1))
    expected = 0.5 * ce + 0.5 * 4 * kl
    assert float(distillation_loss(s, t, y, alpha=0.5, temperature=2.0)) == pytest.approx(expected, rel=1e-12)
    assert float(distillation_loss(s, t, y, alpha=0.0)) == pytest.approx(ce, rel=1e-12)


# ---------------------------------------------------------------------------------------------- plans
def test_last_scores_of_a_known_system_and_the_global_threshold() -> None:
    from ssmred_torch.plans import last_orders, last_scores, plan_last

    mu = [0.5, 0.9j, -0.8]
    B = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])  # |b| = 5, 1, 2
    C = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 1.5]])  # |c| = 1, 2, 1.5
    a = _lru(mu, B, C)
    raw, norm = last_scores(a)[0]
    expected = np.array([(1 * 5 / 0.5) ** 2, (2 * 1 / 0.1) ** 2, (1.5 * 2 / 0.2) ** 2])  # 100, 400, 225
    np.testing.assert_allclose(raw[0], expected, rtol=1e-10)
    # sorted 400, 225, 100 -> 1, 225/625, 100/725 (each over the scores at least as large)
    np.testing.assert_allclose(norm[0], [100 / 725, 1.0, 225 / 625], rtol=1e-10)
    b = _lru([0.5, 0.5], np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 0.1]]))  # 4, 0.04
    # layer b: 1, 0.04/4.04 ~ 0.0099; global top-3 after one state each: a's 0.36 -> orders (2, 1)
    assert last_orders([*_entries(a), *_entries(b, "b")], 3) == [2, 1]
    sel = plan_last(a, 2)
    assert sel.kept[0].tolist() == [[1, 2]]
    assert sel.plan.layers[0].report.error_bound == pytest.approx(10.0, rel=1e-10)  # the dropped mode's H-inf norm


def _entries(layer, name="a"):
    from ssmred_torch import SSMLayer, adapter_for

    return [SSMLayer(name, layer, adapter_for(layer))]


def test_random_selection_is_reproducible_by_seed_and_smallest_keeps_the_tail() -> None:
    import torch
    from ssmred_torch import LRUModel, apply_reduction_
    from ssmred_torch.plans import layer_hsvs, plan_selection

    torch.manual_seed(0)
    model = LRUModel(1, 3, 12, 2, 3, dtype=torch.float64)
    pick = [plan_selection(model, [4, 5], keep="random", rng=np.random.default_rng(s)) for s in (7, 7, 8)]
    assert [k.tolist() for k in pick[0].kept] == [k.tolist() for k in pick[1].kept]
    assert [k.tolist() for k in pick[0].kept] != [k.tolist() for k in pick[2].kept]
    for a, b in zip(pick[0].plan.layers, pick[1].plan.layers, strict=True):
        assert torch.equal(a.reduced.mu, b.reduced.mu)
    hsv = layer_hsvs(model)
    small = plan_selection(model, [4, 5], keep="smallest")
    assert small.kept[0].tolist() == [[8, 9, 10, 11]]
    assert small.kept_energy[0] == pytest.approx(hsv[0][0, 8:].sum() / hsv[0].sum())
    report = apply_reduction_(model, small.plan)
    assert report.sizes_after == (4, 5)
    # every kept subset of a balanced discrete-time realization is stable
    assert all(bool((lay.reduced.mu.abs() < 1).all()) for lay in small.plan.layers)


def test_largest_balanced_plan_is_plan_reduction() -> None:
    import torch
    from ssmred_torch import LRUModel, plan_reduction, rank
    from ssmred_torch.plans import plan_selection

    torch.manual_seed(1)
    model = LRUModel(1, 3, 10, 2, 3, dtype=torch.float64)
    a = plan_selection(model, [3, 4]).plan
    b = plan_reduction(model, rank([3, 4]))
    for x, y in zip(a.layers, b.layers, strict=True):
        assert torch.equal(x.reduced.mu, y.reduced.mu)
        assert torch.equal(x.reduced.B, y.reduced.B)


# ---------------------------------------------------------------------------------------------- methods in the trainer
def test_post_training_bt_is_the_core_balanced_truncation(tmp_path: Path, data) -> None:
    import torch
    from ssmred_app.models import load_model_file
    from ssmred_app.trainer import Trainer
    from ssmred_torch import ssm_layers, to_statespace

    from ssmred import BalancedTruncation, hinf_norm

    cfg = _cfg(method={"name": "post_bt", "target_total": 5})
    trainer = Trainer(cfg, tmp_path / "run", data=data, progress=False, log=lambda s: None)
    res = trainer.run()
    assert res.final_dims == [5]
    assert res.reductions[-1]["step"] == res.total_steps
    assert res.reductions[-1]["kind"] == "post-training post_bt"
    trained, _ = load_model_file(tmp_path / "run" / "checkpoints" / "epoch_002.pt")
    sys_full = to_statespace(ssm_layers(trained)[0].module)
    core = BalancedTruncation(sys_full).reduce(5, method="sr").reduced
    ours = to_statespace(ssm_layers(trainer.model)[0].module)
    assert hinf_norm(core - ours) <= 1e-5 * hinf_norm(sys_full)  # float32 parameters after the write-back
    # everything else of the model is untouched
    for (k, v), (k2, w) in zip(trained.state_dict().items(), trainer.model.state_dict().items(), strict=True):
        if ".ssm." not in k:
            assert k == k2
            assert torch.equal(v, w)


def test_posthoc_shortcut_equals_training_with_the_method(tmp_path: Path, data) -> None:
    from ssmred_app.baselines import posthoc_run
    from ssmred_app.config import with_sections
    from ssmred_app.trainer import train_run

    full = train_run(_cfg(), tmp_path / "full", data=data, progress=False, log=lambda s: None)
    cfg = _cfg(method={"name": "last", "target_total": 4, "finetune_epochs": 1})
    direct = train_run(cfg, tmp_path / "direct", data=data, progress=False, log=lambda s: None)
    post = posthoc_run(
        with_sections(cfg, name="x"), tmp_path / "full", tmp_path / "post", data=data, log=lambda s: None
    )
    assert direct.final_dims == post.final_dims == [4]
    assert direct.test_acc == post.test_acc
    assert direct.val_acc == post.val_acc
    assert post.train_cpu_s > full.train_cpu_s  # the source's training + the cut + the fine-tuning
    assert post.reductions[-1]["finetune"]["epochs"] == 1


def test_bt_init_reduces_before_the_first_step_and_resumes(tmp_path: Path, data) -> None:
    from ssmred_app.trainer import train_run

    cfg = _cfg(compression={"mode": "tolerance", "tau": 0.2}, method={"name": "bt_init", "init_repeats": 2})
    res = train_run(cfg, tmp_path / "bt", data=data, progress=False, log=lambda s: None)
    assert [r["step"] for r in res.reductions] == [0, 0]
    assert res.dims_trace[0] == [0, [12]]
    assert res.dims_trace[1][0] == 0
    assert res.final_dims == res.reductions[-1]["dims_after"]
    assert res.final_dims[0] < 12
    assert all(lay["kept_energy"] >= 0.8 - 1e-12 for r in res.reductions for lay in r["layers"])
    again = train_run(cfg, tmp_path / "bt", data=data, progress=False, log=lambda s: None)  # finished: resumes at end
    assert again.final_dims == res.final_dims
    assert len(again.reductions) == 2
    matched = _cfg(method={"name": "bt_init", "cut_orders": [[3]]})
    assert train_run(matched, tmp_path / "m", data=data, progress=False, log=lambda s: None).final_dims == [3]


def test_random_method_cuts_to_the_given_sizes_reproducibly(tmp_path: Path, data) -> None:
    from ssmred_app.trainer import train_run

    cfg = _cfg(
        compression={"mode": "tolerance", "tau": 0.2, "schedule": [0.25, 0.5]},
        method={"name": "random", "cut_orders": [[8], [5]]},
    )
    a = train_run(cfg, tmp_path / "a", data=data, progress=False, log=lambda s: None)
    b = train_run(cfg, tmp_path / "b", data=data, progress=False, log=lambda s: None)
    assert [r["dims_after"] for r in a.reductions] == [[8], [5]]
    assert a.test_acc == b.test_acc
    assert a.reductions[0]["layers"][0]["hsv"] == b.reductions[0]["layers"][0]["hsv"]


def test_selection_and_post_training_methods_plan_through_decide(tmp_path: Path, data) -> None:
    """Under DDP every plan must be rank 0's: the baselines' cuts go through ssmred_torch.decide."""
    from ssmred_app.trainer import train_run
    from ssmred_torch.reduce import shared_decisions

    decided: list[object] = []

    def hook(thunk):
        decided.append(value := thunk())
        return value

    for name, method in (("random", {"name": "random", "cut_orders": [[8], [5]]}), ("post", {"name": "post_bt"})):
        cfg = _cfg(compression={"mode": "tolerance", "tau": 0.2, "schedule": [0.25, 0.5]}, method=method)
        before = len(decided)
        with shared_decisions(hook):
            result = train_run(cfg, tmp_path / name, data=data, progress=False, log=lambda s: None)
        assert len(decided) - before == (2 if name == "random" else 1), name
        assert result.final_dims[0] < result.initial_dims[0]


# ---------------------------------------------------------------------------------------------- statistics
def test_paired_statistics_against_a_hand_computed_example() -> None:
    from ssmred_app.stats import paired

    r = paired([3.0, 5.0, 4.0, 6.0], [1.0, 2.0, 3.0, 4.0])  # d = 2, 3, 1, 2
    assert r["mean"] == 2.0
    assert r["sd"] == pytest.approx(math.sqrt(2 / 3))
    assert r["t"] == pytest.approx(2.0 / (math.sqrt(2 / 3) / 2))  # mean / (sd / sqrt(n))
    assert (r["better"], r["equal"], r["worse"]) == (4, 0, 0)
    assert r["p_exact"] == pytest.approx(2 / 16)  # only all-plus and all-minus reach |mean| >= 2
    assert r["p_floor"] == pytest.approx(2 / 16)
    # d = 1, -1, 0, 2: sign patterns with |mean| >= 0.5 are those with |±1 ±1 ±2| >= 2 (the zero flips freely)
    r = paired([2.0, 0.0, 5.0, 4.0], [1.0, 1.0, 5.0, 2.0])
    assert (r["better"], r["equal"], r["worse"]) == (2, 1, 1)
    sums = [abs(a + b + 2 * c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]
    assert r["p_exact"] == pytest.approx(sum(s >= 2 for s in sums) / len(sums))


# ---------------------------------------------------------------------------------------------- experiment plumbing
def test_cache_key_ignores_what_a_method_does_not_read() -> None:
    from ssmred_app.experiment import cache_key

    a = _cfg(name="a", compression={"mode": "none", "tau": 0.3})
    b = _cfg(name="b", compression={"mode": "none", "tau": 0.04, "gate": 0.9})
    assert cache_key(a) == cache_key(b)
    c1 = _cfg(compression={"mode": "tolerance", "tau": 0.3})
    c2 = _cfg(compression={"mode": "tolerance", "tau": 0.04})
    assert cache_key(c1) != cache_key(c2)
    assert cache_key(c1) == cache_key(_cfg(compression={"mode": "tolerance", "tau": 0.3}, method={"name": "compressm"}))


def test_cache_key_names_the_teacher_file_not_its_spelling(tmp_path, monkeypatch) -> None:
    from ssmred_app.experiment import cache_key

    monkeypatch.chdir(tmp_path)
    relative = _cfg(method={"name": "distill", "teacher": "runs/full/seed0/checkpoints/epoch_003.pt"})
    absolute = _cfg(method={"name": "distill", "teacher": str(tmp_path / "runs/full/seed0/checkpoints/epoch_003.pt")})
    other = _cfg(method={"name": "distill", "teacher": "runs/full/seed1/checkpoints/epoch_003.pt"})
    assert cache_key(relative) == cache_key(absolute)
    assert cache_key(relative) != cache_key(other)


def test_keys_ignore_other_families_sections_and_later_defaults() -> None:
    from ssmred_app.config import config_to_dict
    from ssmred_app.experiment import _base_key, cache_key

    lru = _cfg()
    other = _cfg(model={**TINY["model"], "s5": {"blocks": 2}, "mamba": {"expand": 3}})
    assert cache_key(lru) == cache_key(other)
    assert _base_key(lru) == _base_key(other)
    s5 = _cfg(model={**TINY["model"], "layer": "s5", "d_state": 12})
    assert _base_key(s5) != _base_key(_cfg(model={**TINY["model"], "layer": "s5", "d_state": 12, "s5": {"blocks": 2}}))
    stored = config_to_dict(s5)  # as written by an older version that had no s5.clip_eigs option
    del stored["model"]["s5"]["clip_eigs"]
    assert _base_key(stored) == _base_key(s5)
    assert cache_key(stored) == cache_key(s5)


def test_an_experiment_folder_of_another_base_names_the_difference(tmp_path) -> None:
    from ssmred_app.config import ConfigError
    from ssmred_app.experiment import _open_index, parse_experiment

    def spec(d_model: int):
        return parse_experiment({**TINY, "model": {**TINY["model"], "d_model": d_model}, "experiment": {}})

    _open_index(tmp_path, spec(4), ["first"])
    _open_index(tmp_path, spec(4), ["again"])  # the same base: accepted, the invocation logged
    with pytest.raises(ConfigError, match=r"another base configuration \(model.d_model: 4 -> 6\)"):
        _open_index(tmp_path, spec(6), ["other"])


def test_a_stale_cached_run_is_named_not_retrained_over(tmp_path) -> None:
    from ssmred_app.config import ConfigError, config_to_dict
    from ssmred_app.experiment import train_cached

    old = _cfg(optim={"epochs": 2, "batch_size": 8})
    (tmp_path / "result.json").write_text(json.dumps({"name": "tiny", "config": config_to_dict(old)}))
    with pytest.raises(ConfigError, match=r"different configuration \(optim.epochs: 2 -> 3\); delete that folder"):
        train_cached(_cfg(optim={"epochs": 3, "batch_size": 8}), tmp_path, log=lambda _: None)
    assert json.loads((tmp_path / "result.json").read_text())["config"]["optim"]["epochs"] == 2


def test_experiment_overrides_and_methods() -> None:
    from ssmred_app.config import ConfigError
    from ssmred_app.experiment import parse_experiment

    raw = {**TINY, "experiment": {"taus": [0.1], "methods": ["scratch"]}}
    spec = parse_experiment(raw, ["experiment.taus=[0.04,0.2]", "experiment.orders=[3]", "optim.epochs=3"])
    assert spec.taus == [0.04, 0.2]
    assert spec.orders == [3]
    assert spec.base.optim.epochs == 3
    assert spec.method_list == ["compressm", "scratch"]
    assert [lab for lab, _ in spec.levels] == ["τ=0.04", "τ=0.2", "r=3"]
    with pytest.raises(ConfigError, match="experiment.methods"):
        parse_experiment({**TINY, "experiment": {"methods": ["bogus"]}})


def test_experiment_accumulates_and_pairs(tmp_path: Path) -> None:
    from ssmred_app.experiment import parse_experiment, run_experiment
    from ssmred_app.report import markdown_tables

    raw = {**TINY, "experiment": {"taus": [0.2], "methods": ["scratch", "post_bt"], "seeds": [0]}}
    m1 = run_experiment(parse_experiment(raw), tmp_path, progress=False, log=lambda s: None)
    m2 = run_experiment(parse_experiment(raw, ["experiment.taus=[0.3]"]), tmp_path, progress=False, log=lambda s: None)
    variants = [r["variant"] for r in m2["table"]]
    assert {"CompreSSM τ=0.2", "CompreSSM τ=0.3", "post-BT τ=0.2", "scratch τ=0.3"} <= set(variants)
    assert len(m2["invocations"]) == 2
    assert len(m1["table"]) < len(m2["table"])
    comp = {(c["a"], c["b"]) for c in m2["comparisons"]}
    assert ("CompreSSM τ=0.3", "scratch τ=0.3") in comp
    assert ("CompreSSM τ=0.2", "full") in comp
    text = (tmp_path / "report.md").read_text()
    assert "per attempt" in text
    assert any(t[0][0] == "level" for t in markdown_tables(text))
    sizes = {r["variant"]: r["final_dims"] for r in m2["table"]}
    assert sizes["scratch τ=0.2"] == sizes["CompreSSM τ=0.2"]
    assert [sum(d) for d in sizes["post-BT τ=0.2"]] == [sum(d) for d in sizes["CompreSSM τ=0.2"]]


def test_real_output_hsvs_are_the_cores_hsvs_of_the_real_system() -> None:
    import torch
    from ssmred_torch import LRUModel, fraction, rank, ssm_layers, to_statespace
    from ssmred_torch.plans import real_output_hsvs, real_output_orders

    from ssmred import BalancedTruncation

    torch.manual_seed(0)
    model = LRUModel(1, 4, 10, 1, 3, dtype=torch.float64)
    ours = real_output_hsvs(model)[0][0]
    core = np.asarray(BalancedTruncation(to_statespace(ssm_layers(model)[0].module).to_real()).hsv)
    np.testing.assert_allclose(ours, core, rtol=0, atol=1e-12 * core[0])
    assert real_output_orders(model, fraction(0.5)) == [5]  # 10 of 20 real states = 5 complex ones
    assert real_output_orders(model, rank(3)) == [3]  # an explicit order is in complex states


def test_run_results_of_other_versions_load() -> None:
    from ssmred_app.runresult import RunResult

    stored = RunResult(name="a", config={}, test_acc=91.0, final_dims=[3, 2]).to_dict()
    newer = {**stored, "field_of_a_newer_version": 1}
    older = {k: v for k, v in stored.items() if k != "world_size"}
    assert RunResult.from_dict(newer) == RunResult.from_dict(stored) == RunResult.from_dict(older)
    assert RunResult.from_dict(older).world_size == 1
    assert RunResult.from_dict(stored).mean_final_dim == 2.5
