"""Failed trials (divergence) are recorded with their reason; the search goes on up to a limit."""

import json

from click.testing import CliRunner
from tune_common import RECIPE, fast

from kerasopt.cli import main
from kerasopt.tune import tune

# AdamW at 1e4 (even 1/15 of it, warming up) blows the loss past loss_bound within two batches;
# with no retries the NaN guard raises TrainingDiverged.
DIVERGE = {"callbacks.nan_guard.max_retries": 0, "callbacks.nan_guard.loss_bound": 1000.0, "tune.algorithm": "grid"}


def _space(*lrs):
    return {"tune.space": {"train.optimizer.learning_rate": {"type": "choice", "values": list(lrs)}}}


def test_isolated_trials_fail_and_the_search_goes_on(tmp_path):
    """tune.isolate: each trial is a subprocess; a diverging one is recorded as failed with its reason."""
    result = tune(RECIPE, fast(tmp_path, **DIVERGE, **_space(1.0e4, 3.0e-3), **{"tune.isolate": True}),
                  print_fn=lambda s: None)
    bad, good = result.records
    assert bad["status"] == "FAILED" and bad["reason"].startswith("TrainingDiverged: loss diverged"), bad
    assert bad["objective"] is None
    assert good["status"] == "COMPLETED" and good["objective"] > 0.3 and result.best["trial"] == good["trial"]
    assert good["startup_s"] > 0.5 and good["time_s"] > good["fit_s"] + good["startup_s"]  # a fresh process
    tdir = tmp_path / "runs" / "digits_tune" / "tune"
    assert "Traceback" in (tdir / "logs" / f"trial_{bad['trial']}.log").read_text()
    assert "TrainingDiverged" in (tdir / "trials.csv").read_text()
    assert json.loads((tdir / "summary.json").read_text())["failed"] == 1


def test_consecutive_failures_stop_the_search(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"extends: {RECIPE}\n")
    overrides = {**fast(tmp_path, **DIVERGE, **_space(1.0e4, 2.0e4, 3.0e-3)), "tune.max_consecutive_failures": 2}
    args = ["tune", str(cfg), "--no-isolate"] + [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 1, out.output
    assert "search stopped: 2 trials failed in a row (tune.max_consecutive_failures=2)" in out.output
    # the verb's own last line, not an ImportError caught by the guard (which also exits 1)
    last = out.output.rstrip().splitlines()[-1]
    assert "ImportError" not in out.output, out.output
    assert last.startswith("error: search stopped: 2 trials failed in a row (tune.max_consecutive_failures=2)"), last
    records = json.loads((tmp_path / "runs" / "digits_tune" / "tune" / "records.json").read_text())
    assert [r["status"] for r in records.values()] == ["FAILED", "FAILED"]  # the third never ran


def test_diverged_trials_with_the_guard_off_fail_and_nothing_is_best(tmp_path):
    """Guard off, a diverging LR: every history had loss nan, yet each trial was COMPLETED at 0.1 and best."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"extends: {RECIPE}\ntrain:\n  optimizer: {{type: sgd, learning_rate: 20.0, momentum: 0.9}}\n")
    overrides = {**fast(tmp_path, **_space(1.0e8, 1.0e9)), "tune.algorithm": "grid",
                 "callbacks.nan_guard.enabled": False, "train.epochs": 2, "tune.max_consecutive_failures": 5}
    args = ["tune", str(cfg)] + [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 1, out.output
    tdir = tmp_path / "runs" / "digits_tune" / "tune"
    records = json.loads((tdir / "records.json").read_text())
    assert [r["status"] for r in records.values()] == ["FAILED", "FAILED"]
    for r in records.values():
        assert r["reason"].startswith("TrainingDiverged: training diverged at epoch"), r["reason"]
        assert r["objective"] is None
    assert not (tdir / "best.yaml").exists()
    assert json.loads((tdir / "summary.json").read_text())["best"] is None
    assert "error: no trial succeeded (2 trial(s), all failed): no best.yaml" in out.output
    assert "best trial" not in out.output
