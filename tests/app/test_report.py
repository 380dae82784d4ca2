"""Reports: the HTML page is the Markdown document rendered by markdown-it-py (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("markdown_it")


def test_html_renders_the_markdown(tmp_path: Path) -> None:
    from ssmred_app.report import Doc, markdown_tables, write_report

    doc = Doc("Run <1>")
    doc.p("**full** beats `scratch` when a < b & c")
    doc.h("Results")
    doc.table(["run", "acc (%)"], [["full", 66.3], ["CompreSSM τ=0.1", None]])
    doc.bullets(["`metrics.json` — numbers", "plots"])
    doc.image("plots/a.png", "HSV spectra")
    doc.code("x = 1\n")
    md, ht = write_report(doc, tmp_path)
    assert markdown_tables(md.read_text()) == [[["run", "acc (%)"], ["full", "66.3"], ["CompreSSM τ=0.1", "n/a"]]]
    html = ht.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.rstrip().endswith("</html>")
    assert "<title>Run &lt;1&gt;</title>" in html
    assert "<h1>Run &lt;1&gt;</h1>" in html
    assert "<strong>full</strong> beats <code>scratch</code> when a &lt; b &amp; c" in html
    assert "<table>" in html
    assert "<th>acc (%)</th>" in html
    assert "<td>CompreSSM τ=0.1</td>" in html
    assert "<li><code>metrics.json</code> — numbers</li>" in html
    assert '<img src="plots/a.png" alt="HSV spectra" />' in html
    assert "<pre><code>x = 1\n</code></pre>" in html


def test_experiment_report_says_how_many_threads_the_cpu_time_covers() -> None:
    from ssmred_app.experiment._report import _thread_note

    assert "one thread" in _thread_note(1)
    assert "4 threads" in _thread_note(4)
    assert "one thread" not in _thread_note(4)
    assert "default number of threads" in _thread_note(None)


def test_aggregate_speedup_of_a_run_without_cpu_time_is_nan() -> None:
    import math

    from ssmred_app.experiment import _Run, aggregate
    from ssmred_app.trainer import RunResult

    def run(variant: str, cpu: float) -> _Run:
        res = RunResult(name=variant, config={}, test_acc=0.5, final_dims=[4], train_cpu_s=cpu)
        return _Run(variant=variant, group="g", seed=0, result=res)

    rows = {r["variant"]: r for r in aggregate([run("full", 2.0), run("cut", 0.5), run("empty", 0.0)])}
    assert rows["cut"]["speedup_vs_full"] == 4.0
    assert math.isnan(rows["empty"]["speedup_vs_full"])  # was a ZeroDivisionError
