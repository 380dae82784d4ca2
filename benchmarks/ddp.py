"""DDP benchmark (issue 15): training throughput in 1 vs N processes, and what a reduction costs under DDP.

Trains the digits classifier of ``configs/digits.yaml`` (sizes from the flags) with the application's
trainer, each configuration in fresh processes (torchrun's launcher for DDP), and prints:

1. **Throughput** (samples per second of training time: optimizer steps and reductions, evaluation
   excluded) of plain training (``compression.mode=none``) with the same global batch in
   (a) 1 process, 1 thread, (b) 1 process, ``N`` threads, (c) ``N`` processes of 1 thread each (DDP,
   gloo, per-rank batch = global / N). The scaling figure is (c)/(a); (c)/(b) says whether DDP beats
   simply giving one process the same cores. CPU seconds per sample (all processes) are printed too:
   on a machine shared with other work they are the steadier number.
2. **Reduction cost** in CompreSSM runs (``compression.mode=tolerance``, the default schedule: 4
   attempts in the first 10 %): per attempt, on rank 0, the planning (Gramians, HSVs, orders, reduced
   systems), the broadcast of the plan plus the apply step on every rank (write-back, optimizer surgery),
   and re-building the DDP wrapper; their sum as a share of the run's training time, next to the same
   share in one process.

Usage: ``python benchmarks/ddp.py [--nproc 2] [--epochs 4] [--d-model 32] [--quick]``. On a 2-core
machine the DDP figure is the honest one for 2 cores: both processes compete with anything else
running (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
name: bench
seed: 0
threads: {threads}
device: cpu
data: {{name: digits, val_fraction: 0.15, test_fraction: 0.2, split_seed: 0}}
model: {{d_model: {d_model}, d_state: {d_state}, n_layers: {n_layers}, dropout: 0.0}}
optim: {{epochs: {epochs}, batch_size: {batch}, lr: 0.01, ssm_lr_factor: 0.5, weight_decay: 0.05,
        warmup_fraction: 0.1}}
compression: {{mode: {mode}, tau: 0.1}}
"""


# ---------------------------------------------------------------------------------------------- one run (a process)
def worker(cfg_path: str, result_path: str) -> None:
    """Train one configuration (one rank of a torchrun job, or alone) and write what was measured."""
    import ssmred_torch.reduce as R
    from ssmred_app.config import load_config, with_sections
    from ssmred_app.distributed import Distributed, launched_by_torchrun
    from ssmred_app.trainer import Trainer

    ctx = Distributed.from_env() if launched_by_torchrun() else None
    timed = {"plan_s": [], "apply_s": []}
    plan, apply = R.plan_reduction, R.apply_reduction_

    def timed_call(fn, key):
        def f(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timed[key].append(time.perf_counter() - t0)

        return f

    R.plan_reduction, R.apply_reduction_ = timed_call(plan, "plan_s"), timed_call(apply, "apply_s")
    cfg = with_sections(load_config(cfg_path), out=None)
    out = Path(result_path).with_suffix("")
    trainer = Trainer(cfg, out, progress=False, log=lambda s: None, distributed=ctx)
    cpu0 = time.process_time()
    res = trainer.run(resume=False, force=True)
    cpu = time.process_time() - cpu0
    cpus = ctx.gather(cpu) if ctx is not None else [cpu]
    train_cpu = ctx.gather(res.train_cpu_s) if ctx is not None else [res.train_cpu_s]
    if ctx is None or ctx.is_main:
        Path(result_path).write_text(
            json.dumps(
                {
                    "world_size": trainer.world_size,
                    "steps": res.total_steps,
                    "samples": res.total_steps * cfg.optim.batch_size * trainer.world_size,
                    "train_time_s": res.train_time_s,
                    "train_cpu_s_all": sum(train_cpu),
                    "process_cpu_s_all": sum(cpus),
                    "reduction_time_s": res.reduction_time_s,
                    "reductions": [
                        {"step": r["step"], "time_s": r["time_s"], "rewrap_s": r.get("ddp_rewrap_s", 0.0)}
                        for r in res.reductions
                    ],
                    "plan_s": timed["plan_s"],
                    "apply_s": timed["apply_s"],
                    "final_dims": res.final_dims,
                    "test_acc": res.test_acc,
                    "stats": ctx.stats if ctx is not None else None,
                }
            )
        )
    if ctx is not None:
        ctx.close()


# ---------------------------------------------------------------------------------------------- the driver
def _run(tmp: Path, name: str, nproc: int, threads: int, mode: str, args: argparse.Namespace) -> dict:
    batch = args.batch // nproc
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        CONFIG.format(
            threads=threads,
            d_model=args.d_model,
            d_state=args.d_state,
            n_layers=args.n_layers,
            epochs=args.epochs,
            batch=batch,
            mode=mode,
        )
    )
    result = tmp / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    here = str(Path(__file__).resolve())
    if nproc == 1:
        cmd = [sys.executable, here, "--worker", str(cfg), str(result)]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
        cmd = [*launcher, here, "--worker", str(cfg), str(result)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    data = json.loads(result.read_text())
    data["end_to_end_s"] = time.perf_counter() - t0
    return data


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes of the DDP run (and threads of run b)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=64, help="global batch (per rank: batch / nproc)")
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--d-state", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="2 epochs, d_model 16 (a smoke test)")
    p.add_argument("--json", help="also write the measurements here")
    p.add_argument("--worker", nargs=2, metavar=("CONFIG", "RESULT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    if args.quick:
        args.epochs, args.d_model = 2, 16
    n = args.nproc
    print(
        f"ssmred DDP benchmark (issue 15): digits, H={args.d_model}, n={args.d_state}, {args.n_layers} blocks, "
        f"global batch {args.batch}, {args.epochs} epochs; {os.cpu_count()} CPUs, "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    runs = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, nproc, threads, mode in [
            ("1 process, 1 thread", 1, 1, "none"),
            (f"1 process, {n} threads", 1, n, "none"),
            (f"{n} processes (DDP), 1 thread each", n, 1, "none"),
            ("CompreSSM, 1 process", 1, 1, "tolerance"),
            (f"CompreSSM, {n} processes (DDP)", n, 1, "tolerance"),
        ]:
            runs[name] = _run(tmp, name.replace(" ", "_").replace(",", ""), nproc, threads, mode, args)
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")

    print("1. Throughput, plain training (same global batch, same steps)")
    print(f"{'run':40s} {'samples/s':>10s} {'speedup':>8s} {'CPU ms/sample':>14s} {'end-to-end s':>13s}")
    base = None
    for name in list(runs)[:3]:
        r = runs[name]
        sps = r["samples"] / r["train_time_s"]
        base = base or sps
        cpu = 1000 * r["train_cpu_s_all"] / r["samples"]
        print(f"{name:40s} {sps:10.0f} {sps / base:8.2f} {cpu:14.3f} {r['end_to_end_s']:13.1f}")

    print("\n2. Reduction cost in CompreSSM runs (seconds per attempt; rank 0 under DDP)")
    print(
        f"{'run':34s} {'attempts':>8s} {'plan':>8s} {'apply':>8s} {'bcast':>8s} {'re-wrap':>8s} {'total':>8s} "
        f"{'train s':>8s} {'share':>7s} {'final n':>10s}"
    )
    for name in list(runs)[3:]:
        r = runs[name]
        k = max(1, len(r["reductions"]))
        plan, apply = sum(r["plan_s"]) / k, sum(r["apply_s"]) / k
        rewrap = sum(x["rewrap_s"] for x in r["reductions"]) / k
        step = sum(x["time_s"] for x in r["reductions"]) / k  # the controller's step: plan + broadcast + apply
        total = step + rewrap
        share = total * len(r["reductions"]) / r["train_time_s"]
        print(
            f"{name:34s} {len(r['reductions']):8d} {plan:8.4f} {apply:8.4f} {step - plan - apply:8.4f} "
            f"{rewrap:8.4f} {total:8.4f} {r['train_time_s']:8.2f} {100 * share:6.2f}% "
            f"{' '.join(map(str, r['final_dims'])):>10s}"
        )
    print(
        "plan: rank 0 only; apply: write-back + optimizer surgery (every rank); bcast: the rest of the "
        "controller step (pickling, sending, placing the plan; the verdict of a pragmatic check); "
        "re-wrap: dropping the DDP wrapper and building a new one (shape check + parameter broadcast)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
