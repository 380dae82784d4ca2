"""Mamba (selective SSM) under CompreSSM on CPU: training runs, the reduction rules side by side, step cost (issue 12).

Standalone (no ``ssmred`` application wiring needed): data from ``ssmred_app.data.load_dataset``, a plain
training loop, the :class:`ssmred_torch.CompreSSM` controller. Every run is cached as JSON under
``--out`` (a second call reuses it). One torch thread per process; CPU time is ``time.process_time`` of
the optimizer steps and the reductions (evaluation excluded).

    python benchmarks/mamba.py train   --dataset digits --seeds 0 1 2   # full, CompreSSM per rule, scratch
    python benchmarks/mamba.py rules   --dataset digits --seed 0         # rule comparison on held-out inputs
    python benchmarks/mamba.py cost                                      # cost breakdown of a training step
    python benchmarks/mamba.py report                                    # markdown tables of what is cached

Recipe (as configs/digits.yaml, SPEC §9 sizes): MambaModel with 2 blocks, d_model 16 (d_inner 32),
d_state 64, AdamW lr 0.01 (A_log, D: x 0.5, no weight decay), weight decay 0.05, batch 64, warm-up 10 %
then cosine; reductions at 2.5/5/7.5/10 % of the steps in tolerance mode; the surrogate comes from each
layer's running statistics of the last 8 training batches (512 sequences).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import ssmred_torch as st
import torch
from ssmred_app.config import DataConfig
from ssmred_app.data import load_dataset
from ssmred_app.models import param_groups
from ssmred_app.trainer import lr_lambda

RULES = ("modal_shared", "modal_channel", "balanced")
EPOCHS = {"digits": 20, "mnist1d": 10, "listops": 10}  # the default recipe
LR = 0.01
DATA = {
    "digits": DataConfig(name="digits"),
    "mnist1d": DataConfig(name="mnist1d", n_samples=4000),
    "listops": DataConfig(name="listops", n_samples=4000, seq_len=64),
}


# ---------------------------------------------------------------------------------------------- helpers
def _data(name: str):
    d = load_dataset(DATA[name])
    conv = (lambda a: torch.as_tensor(a, dtype=torch.long)) if d.kind == "tokens" else torch.as_tensor
    return (
        d,
        {k: conv(getattr(d, f"X_{k}")) for k in ("train", "val", "test")},
        {k: torch.as_tensor(getattr(d, f"y_{k}"), dtype=torch.long) for k in ("train", "val", "test")},
    )


def _model(d, n_state, *, rule: str, seed: int, d_model: int = 16, **kw) -> st.MambaModel:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return st.MambaModel(
        d.d_input,
        d_model,
        n_state,
        2,
        d.n_classes,
        vocab_size=d.d_input if d.kind == "tokens" else None,
        rule=rule,
        generator=gen,
        **kw,
    )


@torch.no_grad()
def _accuracy(model, X, y, batch: int = 512) -> float:
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(X), batch):
        correct += int((model(X[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
    model.train(was)
    return 100.0 * correct / len(X)


def train_run(
    dataset: str,
    seed: int,
    *,
    n_state: int | list[int] = 64,
    rule: str = "modal_shared",
    tau: float | None = None,
    epochs: int | None = None,
    lr: float = LR,
    batch_size: int = 64,
    calibration: int = 0,
    log_curve: bool = True,
) -> dict[str, Any]:
    """One training run; ``tau`` = CompreSSM in tolerance mode, ``calibration`` > 0 = explicit calibrate_.

    ``curve`` records per epoch the training loss and accuracy (train mode, over the epoch's batches), the
    largest gradient norm and (``log_curve``) the validation accuracy; ``train_acc`` is the final model's
    accuracy on the whole training set in eval mode. Neither evaluation counts in ``cpu_s``.
    """
    torch.set_num_threads(1)
    d, X, y = _data(dataset)
    epochs = epochs or EPOCHS[dataset]
    model = _model(d, n_state, rule=rule, seed=seed)
    ssm, decay, no_decay = param_groups(model)
    opt = torch.optim.AdamW(
        [
            {"params": ssm, "lr": lr * 0.5, "weight_decay": 0.0},
            {"params": decay, "weight_decay": 0.05},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    steps_per_epoch = math.ceil(len(X["train"]) / batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, 0.1))
    ctl = st.CompreSSM(total, mode=st.tolerance(tau)) if tau is not None else None
    rng = np.random.default_rng(seed)
    cpu = wall = red_cpu = 0.0
    step = 0
    events = []
    curve = []  # per epoch: training loss and accuracy (train mode, running), gradient norm, validation accuracy
    for epoch in range(epochs):
        order = torch.as_tensor(rng.permutation(len(X["train"])))
        ep_loss = ep_correct = ep_n = 0.0
        ep_gmax = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            t0, w0 = time.process_time(), time.perf_counter()
            logits = model(X["train"][idx])
            loss = torch.nn.functional.cross_entropy(logits, y["train"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf))
            opt.step()
            ep_loss += float(loss.detach()) * len(idx)
            ep_correct += float((logits.argmax(-1) == y["train"][idx]).sum())
            ep_n += len(idx)
            ep_gmax = max(ep_gmax, gnorm)
            sched.step()
            step += 1
            cpu += time.process_time() - t0
            wall += time.perf_counter() - w0
            if ctl is not None and step in ctl.attempt_steps:
                before = _accuracy(model, X["val"], y["val"])
                t1 = time.process_time()
                if calibration:
                    st.calibrate_(model, X["train"][order[:calibration]])
                res = ctl.step(step, model, opt)
                dt = time.process_time() - t1
                red_cpu += dt
                cpu += dt
                after = _accuracy(model, X["val"], y["val"])
                rec = res.records[-1] if res.records else None
                events.append(
                    {
                        "step": step,
                        "val_before": before,
                        "val_after": after,
                        "sizes": list(model.state_sizes),
                        "bounds": [lr_.error_bound for lr_ in rec.layers] if rec else [],
                        "status": [lr_.status for lr_ in rec.layers] if rec else [],
                        "seconds": dt,
                    }
                )
            elif ctl is not None:
                ctl.step(step, model, opt)
        curve.append(
            {
                "epoch": epoch + 1,
                "train_loss": ep_loss / ep_n,
                "train_acc_running": 100.0 * ep_correct / ep_n,
                "grad_norm_max": ep_gmax,
                "val_acc": _accuracy(model, X["val"], y["val"]) if log_curve else None,
            }
        )
    return {
        "dataset": dataset,
        "seed": seed,
        "rule": rule,
        "tau": tau,
        "n0": n_state,
        "epochs": epochs,
        "steps": total,
        "test_acc": _accuracy(model, X["test"], y["test"]),
        "val_acc": _accuracy(model, X["val"], y["val"]),
        "sizes": list(model.state_sizes),
        "cpu_s": cpu,
        "reduce_cpu_s": red_cpu,
        "wall_s": wall,
        "events": events,
        "calibration": calibration,
        "lr": lr,
        "train_acc": _accuracy(model, X["train"], y["train"]),  # eval mode, the final model
        "curve": curve,
    }


def _cached(out: Path, key: str, fn, *args, **kw) -> dict[str, Any]:
    path = out / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    res = fn(*args, **kw)
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, path)
    print(f"{key}: test {res['test_acc']:.2f} % sizes {res.get('sizes')} cpu {res['cpu_s']:.0f} s", flush=True)
    return res


def _recipe(dataset: str, epochs: int | None, lr: float) -> str:
    """Cache-key prefix: the data set, plus ``@lr<lr>-e<epochs>`` when the recipe differs from the default."""
    epochs = epochs or EPOCHS[dataset]
    return dataset if (epochs, lr) == (EPOCHS[dataset], LR) else f"{dataset}@lr{lr:g}-e{epochs}"


def cmd_train(args) -> None:
    out = Path(args.out)
    pre = _recipe(args.dataset, args.epochs, args.lr)
    kw = {"epochs": args.epochs, "lr": args.lr}
    for seed in args.seeds:
        if not args.no_full:
            _cached(out, f"{pre}-full-s{seed}", train_run, args.dataset, seed, **kw)
        for rule in args.rules:
            key = f"{pre}-{rule}-tau{args.tau}-s{seed}"
            res = _cached(out, key, train_run, args.dataset, seed, rule=rule, tau=args.tau, **kw)
            if args.no_scratch:
                continue
            _cached(
                out,
                f"{pre}-scratch-{'-'.join(map(str, res['sizes']))}-s{seed}",
                train_run,
                args.dataset,
                seed,
                n_state=res["sizes"],
                **kw,
            )


def cmd_sizes(args) -> None:
    """Fixed-size models from scratch (no reduction) at several d_state: how accuracy depends on the size."""
    out = Path(args.out)
    pre = _recipe(args.dataset, args.epochs, args.lr)
    for seed in args.seeds:
        for n in args.sizes:
            key = f"{pre}-full-s{seed}" if n == 64 else f"{pre}-scratch-{n}-{n}-s{seed}"
            _cached(out, key, train_run, args.dataset, seed, n_state=n, epochs=args.epochs, lr=args.lr)


# ---------------------------------------------------------------------------------------------- rules
def _layer_io(model, X) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Input and output of every Mamba layer of ``model`` for the model input ``X``."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [
        e.module.register_forward_hook(lambda m, a, o, name=e.name: seen.__setitem__(name, (a[0].detach(), o.detach())))
        for e in st.ssm_layers(model)
    ]
    with torch.no_grad():
        model.eval()
        model(X)
    for h in hooks:
        h.remove()
    return seen


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def cmd_rules(args) -> None:
    """Reduce one trained model with every rule and order; errors on held-out inputs vs the surrogate's bound."""
    torch.set_num_threads(1)
    out = Path(args.out)
    d, X, y = _data(args.dataset)
    rows = []
    base = None
    for rule in RULES:
        model = _model(d, 64, rule=rule, seed=args.seed)
        path = out / f"rules-{args.dataset}-s{args.seed}-e{args.epochs}.pt"
        if base is None and path.is_file():
            base = torch.load(path, weights_only=True)
        if base is None:
            res_model = _train_plain(model, d, X, y, args.epochs, args.seed)
            base = {k: v for k, v in res_model.state_dict().items()}
            out.mkdir(parents=True, exist_ok=True)
            torch.save(base, path)
        missing, unexpected = model.load_state_dict(base, strict=False)  # rule buffers start empty
        assert not unexpected
        assert all(k.endswith(("mode_index", "A_imag", "_map_re", "_map_im")) for k in missing)
        calib = X["train"][: args.calibration]
        st.calibrate_(model, calib)
        held = X["val"]
        io = _layer_io(model, held)
        logits = model.eval()(held).detach()
        acc_full = _accuracy(model, held, y["val"])
        for e in st.ssm_layers(model):
            if rule == RULES[0]:
                spread = st.frozen_time_hsvs(
                    model, held[:256], positions=128, generator=torch.Generator().manual_seed(0)
                )
                sp = {x.name: x for x in spread}[e.name]
                print(
                    f"{e.name}: surrogate sigma_1 median over channels {float(sp.surrogate[:, 0].median()):.3g}; "
                    f"frozen-time sigma_1 q10/q50/q90 (median over channels) "
                    + "/".join(f"{float(v):.3g}" for v in sp.frozen[:, :, 0].median(-1).values),
                    flush=True,
                )
        if rule == RULES[0]:
            rows.extend(_averaging_study(model, X["train"], held))
        for r in args.orders:
            m = copy.deepcopy(model)
            layers = st.ssm_layers(m)
            with torch.no_grad():
                before = [e.adapter.systems(e.module) for e in layers]
            plan = st.plan_reduction(m, st.rank(r), gate=1.0)
            t0 = time.process_time()
            rep = st.apply_reduction_(m, plan)
            t_apply = time.process_time() - t0
            modal = []
            for s, lp in zip(before, plan.layers, strict=True):
                if rule == "balanced" or lp.report.status != "reduced":
                    modal.append(float("nan"))
                    continue
                energy = st.mode_energies(s)  # the selection write_back_ makes (same inputs, same rule)
                if rule == "modal_shared":
                    idx = torch.topk(energy.sum(0), r).indices.expand(energy.shape[0], r)
                else:
                    idx = torch.topk(energy, r, dim=1).indices
                keep = torch.zeros(s.lam.shape, dtype=torch.bool).scatter_(1, idx, True)
                modal.append(float(st.modal_error_bound(s, keep).max()))
            io_r = _layer_io(m, held)
            for (name, (_, y_full)), lp, s, mb in zip(io.items(), rep.layers, before, modal, strict=True):
                gain = float(
                    (s.C[:, 0, :].abs() * s.B[:, :, 0].abs() / (1 - s.lam.abs())).sum(-1).max()
                )  # an upper bound of the largest channel H-inf norm of the surrogate
                rows.append(
                    {
                        "rule": rule,
                        "r": r,
                        "layer": name,
                        "status": lp.status,
                        "rel_block_error": _rel(io_r[name][1], y_full),
                        "bound_2tail": lp.error_bound,
                        "bound_rel": lp.error_bound / gain,
                        "modal_bound": mb,
                        "cond": lp.condition,
                    }
                )
            rows.append(
                {
                    "rule": rule,
                    "r": r,
                    "layer": "model",
                    "rel_logit_error": _rel(m.eval()(held).detach(), logits),
                    "acc_full": acc_full,
                    "acc_reduced": _accuracy(m, held, y["val"]),
                    "apply_cpu_s": t_apply,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    (out / f"rules-{args.dataset}-s{args.seed}-e{args.epochs}.json").write_text(json.dumps(rows, indent=1))


@torch.no_grad()
def _averaging_study(model, X_train, held) -> list[dict[str, Any]]:
    """Surrogate HSVs and tolerance orders under the four averaging rules and several calibration-set sizes."""
    import ssmred.selection as sel

    rows = []
    for size in (64, 256, 1024):
        st.calibrate_(model, X_train[:size])
        for e in st.ssm_layers(model):
            for transition in ("exp_mean", "mean_exp"):
                for drive in ("mean_product", "product_of_means"):
                    e.module.transition, e.module.drive = transition, drive
                    s = e.adapter.systems(e.module)
                    h = st.kernels.hsv_diagonal(s.lam, s.B, s.C, log_lam=s.log_lam).numpy()
                    orders = sel.select_orders(st.tolerance(0.01), list(h))
                    rows.append(
                        {
                            "study": "averaging",
                            "calibration": size,
                            "layer": e.name,
                            "transition": transition,
                            "drive": drive,
                            "sigma1_median": float(np.median(h[:, 0])),
                            "sum_sigma_median": float(np.median(h.sum(-1))),
                            "order_tau0.01": int(max(orders)),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
            e.module.transition, e.module.drive = "exp_mean", "mean_product"
    st.calibrate_(model, X_train[:512])
    spread = st.frozen_time_hsvs(model, held[:256], positions=256, generator=torch.Generator().manual_seed(0))
    for sp in spread:
        for k in range(4):
            rows.append(
                {
                    "study": "spread",
                    "layer": sp.name,
                    "k": k + 1,
                    "surrogate_median": float(sp.surrogate[:, k].median()),
                    "frozen_q10_q50_q90_median": [float(v) for v in sp.frozen[:, :, k].median(-1).values],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _train_plain(model, d, X, y, epochs, seed, lr=0.01, batch_size=64):
    ssm, decay, no_decay = param_groups(model)
    opt = torch.optim.AdamW(
        [
            {"params": ssm, "lr": lr * 0.5, "weight_decay": 0.0},
            {"params": decay, "weight_decay": 0.05},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    total = epochs * math.ceil(len(X["train"]) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, 0.1))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(X["train"])))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(X["train"][idx]), y["train"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model


# ---------------------------------------------------------------------------------------------- step cost
def cmd_cost(args) -> None:
    """Where the time of one training step goes, at several state sizes (CPU time, one thread)."""
    torch.set_num_threads(1)
    from torch.profiler import ProfilerActivity, profile

    rows = []
    for rule in ("modal_shared", "balanced"):
        for n in args.sizes:
            model = st.MambaModel(1, 16, 64, 2, 10, rule=rule, generator=torch.Generator().manual_seed(0))
            if n < 64:
                x = torch.randn(256, 64, 1)
                st.calibrate_(model, x)
                st.reduce_model(model, st.rank(n), gate=1.0)
            opt = torch.optim.AdamW(model.parameters(), 1e-3)
            x, yb = torch.randn(64, 64, 1), torch.randint(0, 10, (64,))

            def step(model=model, opt=opt, x=x, yb=yb):
                loss = torch.nn.functional.cross_entropy(model(x), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()

            for _ in range(2):
                step()
            ts = []
            for _ in range(args.repeats):
                t0 = time.process_time()
                step()
                ts.append(time.process_time() - t0)
            # per-part forward times of one layer (forward only, no autograd), then a profile of a full step
            layer = st.ssm_layers(model)[0].module
            z = torch.randn(64, 64, 16)
            parts = _forward_parts(layer, z, args.repeats)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            total_self = sum(ev.self_cpu_time_total for ev in prof.key_averages())
            top = sorted(prof.key_averages(), key=lambda ev: -ev.self_cpu_time_total)[:6]
            rows.append(
                {
                    "rule": rule,
                    "d_state": n,
                    "step_ms": 1e3 * float(np.median(ts)),
                    "forward_parts_ms": parts,
                    "top_ops": [(ev.key, round(100 * ev.self_cpu_time_total / total_self, 1)) for ev in top],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cost.json").write_text(json.dumps(rows, indent=1))


@torch.no_grad()
def _forward_parts(layer: st.Mamba, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Forward CPU time (ms) of the parts of one Mamba layer."""
    import torch.nn.functional as F

    def timed(fn):
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.process_time()
            out = fn()
            ts.append(time.process_time() - t0)
        return 1e3 * float(np.median(ts)), out

    t_sel, s = timed(lambda: layer.selection(x))
    a = layer.rates()
    dt = s.delta.unsqueeze(-1)
    if a.is_complex():  # as Mamba.core does
        t_disc, dA = timed(lambda: torch.polar(torch.exp(dt * a.real), dt * a.imag))
    else:
        t_disc, dA = timed(lambda: torch.exp(dt * a))
    if layer.projected:
        Bm, _ = layer._maps()
        t_drive, Bt = timed(
            lambda: torch.complex(
                torch.einsum("bln,drn->bldr", s.B, Bm.real.float()), torch.einsum("bln,drn->bldr", s.B, Bm.imag.float())
            )
        )
    else:
        t_drive, Bt = timed(lambda: s.B.unsqueeze(-2))
    t_in, xin = timed(lambda: (s.delta * s.u).unsqueeze(-1) * Bt)
    t_scan, h = timed(lambda: st.diagonal_scan_varying(dA, xin, dim=-3))
    t_core, yc = timed(lambda: layer.core(s.u, s.delta, s.B, s.C))
    t_out, _ = timed(lambda: layer.out_proj(yc * F.silu(s.z)))
    return {
        "in_proj+conv+x_proj+dt_proj": t_sel,
        "exp(delta A)": t_disc,
        "B(x) per channel": t_drive,
        "delta B u": t_in,
        "scan": t_scan,
        "core total": t_core,
        "gate+out_proj": t_out,
    }


# ---------------------------------------------------------------------------------------------- report
def cmd_report(args) -> None:
    """Markdown tables of the cached runs: per data set and rule, paired by seed with full and same-size scratch."""
    out = Path(args.out)
    runs = {
        p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*-s[0-9]*.json")) if not p.name.startswith("rules")
    }
    for path in sorted(out.glob("rules-*.json")):
        _report_rules(path)
    if (out / "cost.json").is_file():
        _report_cost(out / "cost.json")
    prefixes = sorted({k.split("-")[0] for k in runs})
    for ds in prefixes:
        full = {r["seed"]: r for k, r in runs.items() if k.startswith(f"{ds}-full-")}
        if not full:
            continue
        f0 = next(iter(full.values()))
        print(
            f"\n#### {ds} (seeds {', '.join(map(str, sorted(full)))}; {f0['epochs']} epochs, lr {f0.get('lr', LR):g})\n"
        )
        print(
            "| run | test acc mean (%) | ± std | same-size scratch (%) | CompreSSM − scratch (per seed) "
            "| CompreSSM − full | final d_state per layer (per seed) | mean final d_state | CPU time (s) "
            "| speedup vs full (CPU) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        acc = np.array([r["test_acc"] for r in full.values()])
        cpu = np.array([r["cpu_s"] for r in full.values()])
        print(f"| full (64) | {acc.mean():.2f} | {acc.std():.2f} | | | | 64 64 | 64 | {cpu.mean():.0f} | 1 |")
        for rule in RULES:
            rs = sorted((r for k, r in runs.items() if k.startswith(f"{ds}-{rule}-")), key=lambda r: r["seed"])
            if not rs:
                continue
            scratch = [runs.get(f"{ds}-scratch-{'-'.join(map(str, r['sizes']))}-s{r['seed']}") for r in rs]
            acc = np.array([r["test_acc"] for r in rs])
            sc = np.array([x["test_acc"] if x else np.nan for x in scratch])
            diff = acc - sc
            vs_full = acc - np.array([full[r["seed"]]["test_acc"] for r in rs])
            sp = np.array([full[r["seed"]]["cpu_s"] / r["cpu_s"] for r in rs])
            sizes = "; ".join(" ".join(map(str, r["sizes"])) for r in rs)
            dims = np.mean([np.mean(r["sizes"]) for r in rs])
            print(
                f"| CompreSSM {rule} τ={rs[0]['tau']} | {acc.mean():.2f} | {acc.std():.2f} | {np.nanmean(sc):.2f} | "
                f"{np.nanmean(diff):+.2f} ({', '.join(f'{v:+.1f}' for v in diff)}) | {vs_full.mean():+.2f} | {sizes} | "
                f"{dims:.1f} | {np.mean([r['cpu_s'] for r in rs]):.0f} | "
                f"{sp.mean():.1f}× ({sp.min():.1f}–{sp.max():.1f}) |"
            )
        for rule in RULES:
            rs = sorted((r for k, r in runs.items() if k.startswith(f"{ds}-{rule}-")), key=lambda r: r["seed"])
            ev = [r["events"] for r in rs]
            if ev and all(ev):
                first = np.mean([e[0]["val_before"] for e in ev]), np.mean([e[0]["val_after"] for e in ev])
                last = np.mean([e[-1]["val_before"] for e in ev]), np.mean([e[-1]["val_after"] for e in ev])
                print(
                    f"\n- {rule}: validation accuracy before/after the first reduction "
                    f"{first[0]:.1f} / {first[1]:.1f} %, "
                    f"the last {last[0]:.1f} / {last[1]:.1f} % (mean over seeds); sizes after each attempt: "
                    + "; ".join(" → ".join("/".join(map(str, e["sizes"])) for e in es) for es in ev)
                )
        fits = [(k, r) for k, r in runs.items() if k.startswith(f"{ds}-") and "train_acc" in r]
        if fits:
            print(
                "\n| run | train acc (eval mode) | train acc (last epoch, train mode) | val acc | test acc "
                "| final train loss | max grad norm (epoch) | val acc per epoch |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for k, r in fits:
                c = r["curve"]
                gmax = max(range(len(c)), key=lambda i: c[i]["grad_norm_max"])
                vals = " ".join(f"{e['val_acc']:.0f}" for e in c if e.get("val_acc") is not None)
                print(
                    f"| {k} | {r['train_acc']:.2f} | {c[-1]['train_acc_running']:.2f} | {r['val_acc']:.2f} "
                    f"| {r['test_acc']:.2f} | {c[-1]['train_loss']:.3f} | {c[gmax]['grad_norm_max']:.2g} ({gmax + 1}) "
                    f"| {vals} |"
                )


def _report_rules(path: Path) -> None:
    """The tables of one ``rules`` run: errors per rule and order, averaging study, frozen-time spread."""
    rows = json.loads(path.read_text())
    print(f"\n#### {path.stem}\n")
    print(
        "| rule | r | rel. block error, block 0 / 1 | surrogate bound, block 0 / 1 | bound / gain, block 0 / 1 "
        "| rel. logit error | val acc after (full {:.1f} %) |".format(
            next(r["acc_full"] for r in rows if r.get("layer") == "model")
        )
    )
    print("|---|---|---|---|---|---|---|")
    for rule in RULES:
        for r in sorted({x["r"] for x in rows if x.get("rule") == rule}):
            ls = [x for x in rows if x.get("rule") == rule and x["r"] == r and x["layer"] != "model"]
            m = next(x for x in rows if x.get("rule") == rule and x["r"] == r and x["layer"] == "model")
            bound = [x["modal_bound"] if x["modal_bound"] == x["modal_bound"] else x["bound_2tail"] for x in ls]
            err = " / ".join(f"{x['rel_block_error']:.3f}" for x in ls)
            bnd = " / ".join(f"{b:.2g}" for b in bound)
            rel = " / ".join(f"{x['bound_rel']:.2g}" for x in ls)
            print(f"| {rule} | {r} | {err} | {bnd} | {rel} | {m['rel_logit_error']:.3f} | {m['acc_reduced']:.1f} |")
    avg = [x for x in rows if x.get("study") == "averaging"]
    if avg:
        print(
            "\n| calibration sequences | transition | drive | σ₁ block 0 | Σσ block 0 | σ₁ block 1 | Σσ block 1 "
            "| order at τ = 0.01 (block 0 / 1) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        keys = sorted({(x["calibration"], x["transition"], x["drive"]) for x in avg})
        for c, t, d in keys:
            ls = sorted(
                (x for x in avg if (x["calibration"], x["transition"], x["drive"]) == (c, t, d)),
                key=lambda x: x["layer"],
            )
            print(
                f"| {c} | {t} | {d} | "
                + " | ".join(f"{x['sigma1_median']:.3f} | {x['sum_sigma_median']:.3f}" for x in ls)
                + f" | {' / '.join(str(x['order_tau0.01']) for x in ls)} |"
            )
    spread = [x for x in rows if x.get("study") == "spread"]
    if spread:
        print("\n| block | k | surrogate σ_k | frozen-time σ_k q10 / q50 / q90 |")
        print("|---|---|---|---|")
        for x in spread:
            q = " / ".join(f"{v:.3g}" for v in x["frozen_q10_q50_q90_median"])
            print(f"| {x['layer']} | {x['k']} | {x['surrogate_median']:.3g} | {q} |")


def _report_cost(path: Path) -> None:
    rows = json.loads(path.read_text())
    parts = list(rows[0]["forward_parts_ms"])
    print(f"\n#### {path.stem} (ms of CPU time)\n")
    print("| rule | d_state | training step | " + " | ".join(parts) + " | top ops of the step (self CPU %) |")
    print("|---" * (len(parts) + 4) + "|")
    for r in rows:
        ops = ", ".join(f"{k.removeprefix('aten::')} {v:.0f}" for k, v in r["top_ops"][:4])
        print(
            f"| {r['rule']} | {r['d_state']} | {r['step_ms']:.1f} | "
            + " | ".join(f"{r['forward_parts_ms'][k]:.2f}" for k in parts)
            + f" | {ops} |"
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--dataset", default="digits", choices=sorted(DATA))
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    t.add_argument("--tau", type=float, default=0.05)
    t.add_argument("--epochs", type=int, default=None, help="default: EPOCHS[dataset]")
    t.add_argument("--lr", type=float, default=LR)
    t.add_argument("--no-full", action="store_true", help="skip the full-size run")
    t.add_argument("--no-scratch", action="store_true", help="skip the same-size-from-scratch runs")
    t.add_argument("--out", default="runs/mamba")
    z = sub.add_parser("sizes")
    z.add_argument("--dataset", default="digits", choices=sorted(DATA))
    z.add_argument("--seeds", type=int, nargs="+", default=[0])
    z.add_argument("--sizes", type=int, nargs="+", default=[4, 16])
    z.add_argument("--epochs", type=int, default=None, help="default: EPOCHS[dataset]")
    z.add_argument("--lr", type=float, default=LR)
    z.add_argument("--out", default="runs/mamba")
    r = sub.add_parser("rules")
    r.add_argument("--dataset", default="digits", choices=sorted(DATA))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--epochs", type=int, default=5)
    r.add_argument("--calibration", type=int, default=512)
    r.add_argument("--orders", type=int, nargs="+", default=[2, 4, 8, 16])
    r.add_argument("--out", default="runs/mamba")
    c = sub.add_parser("cost")
    c.add_argument("--sizes", type=int, nargs="+", default=[64, 16, 8, 4])
    c.add_argument("--repeats", type=int, default=5)
    c.add_argument("--out", default="runs/mamba")
    rp = sub.add_parser("report")
    rp.add_argument("--out", default="runs/mamba")
    args = p.parse_args(argv)
    {"train": cmd_train, "sizes": cmd_sizes, "rules": cmd_rules, "cost": cmd_cost, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
