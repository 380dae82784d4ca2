"""``ssmred demo --quick`` end to end: files exist and parse, sizes shrink, report = metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ssmred_app.cli import main

    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out


def test_demo_files_exist_and_parse(demo_dir: Path) -> None:
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    assert metrics["kind"] == "demo"
    assert set(metrics["runs"]) == {"full", "compressm", "scratch"}
    html = (demo_dir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "</html>" in html
    for name in ("hsv_spectra", "state_sizes", "acc_vs_dim", "acc_vs_time"):
        png = demo_dir / "plots" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG", name
        assert f"plots/{name}.png" in (demo_dir / "report.md").read_text()
    for run in ("full", "compressm", "scratch"):
        assert (demo_dir / "runs" / run / "checkpoints" / "last.pt").is_file()


def test_demo_state_sizes_shrink(demo_dir: Path) -> None:
    runs = json.loads((demo_dir / "metrics.json").read_text())["runs"]
    comp = runs["compressm"]
    assert all(f < i for f, i in zip(comp["final_dims"], comp["initial_dims"], strict=True))
    assert runs["scratch"]["initial_dims"] == comp["final_dims"] == runs["scratch"]["final_dims"]
    assert runs["full"]["final_dims"] == runs["full"]["initial_dims"]
    steps = [rec["step"] for rec in comp["reductions"]]
    assert len(steps) == 4
    assert steps == sorted(steps)


def test_report_numbers_equal_metrics(demo_dir: Path) -> None:
    from ssmred_app.demo import DEMO_COLUMNS
    from ssmred_app.report import fmt, markdown_tables

    metrics = json.loads((demo_dir / "metrics.json").read_text())
    tables = markdown_tables((demo_dir / "report.md").read_text())
    summary = tables[0]
    assert summary[0] == [h for _, h in DEMO_COLUMNS]
    assert len(summary) == 1 + len(metrics["table"])
    for row, rec in zip(summary[1:], metrics["table"], strict=True):
        assert row == [fmt(rec[k]) for k, _ in DEMO_COLUMNS]
        # and the table's numbers are the runs' numbers, rounded
    comp = metrics["runs"]["compressm"]
    rec = metrics["table"][1]
    assert rec["test_acc_pct"] == round(100 * comp["test_acc"], 2)
    assert rec["mean_final_dim"] == round(sum(comp["final_dims"]) / len(comp["final_dims"]), 1)
    assert rec["train_cpu_s"] == round(comp["train_cpu_s"], 1)


def test_demo_summary_names_missing_runs() -> None:
    import pytest
    from ssmred_app.demo import demo_summary

    with pytest.raises(ValueError, match=r"no run labelled 'CompreSSM\.\.\.', 'scratch\.\.\.'"):
        demo_summary({"table": [{"run": "full (n=32)"}]})
