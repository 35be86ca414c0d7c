"""Numerical faults: the loss turns NaN mid-run; the NaN guard recovers and metrics.json says what it did.

The divergence is real, not injected: SGD with a linear warm-up to a peak LR far above what this
network tolerates. Training is fine at first; once the LR crosses the stability limit the loss blows
up to Inf/NaN within a few steps. The guard stops the epoch, reloads the last good checkpoint and
scales the LR down.
"""

from __future__ import annotations

import json
import math

import pytest

import kerasopt

STEPS = 9  # wine: 142 training rows / batch 16


def _cfg(tmp_path, lr_factor: float, loss_bound: float | None = None) -> dict:
    return {
        "name": "nan_mid_run", "seed": 1, "deterministic": True, "report": False,
        "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "wine", "batch_size": 16, "normalize": "standard"},
        # linear activations: nothing saturates, so too large a step overflows instead of dying quietly
        "model": {"type": "mlp", "hidden_units": [64, 64], "batch_norm": False, "activation": "linear"},
        "train": {"epochs": 10, "verbose": 0, "jit_compile": False,
                  "optimizer": {"type": "sgd", "learning_rate": 10.0, "momentum": 0.0},
                  "schedule": {"type": "constant", "warmup_epochs": 8}},
        "callbacks": {"tensorboard": {"enabled": False},
                      "nan_guard": {"max_retries": 8, "lr_factor": lr_factor, "loss_bound": loss_bound}},
        "export": {"formats": []},
    }


def _check_events(rec: list[dict], lr_factor: float, reason: str) -> None:
    for i, ev in enumerate(rec):
        assert ev["reason"] == reason
        # the step count says where in the run it happened; the last good checkpoint is the epoch before
        assert ev["step"] == (ev["epoch"] - 1) * STEPS + ev["batch"]
        assert ev["restored_epoch"] == ev["epoch"] - 1 and ev["restored_step"] == ev["restored_epoch"] * STEPS
        assert ev["lr_scale"] == pytest.approx(lr_factor ** (i + 1), rel=1e-5)  # compounds over recoveries
        assert ev["action"].startswith(f"reloaded checkpoint 'last' (epoch {ev['restored_epoch']}")


def _finished(result, rec: list[dict], saved: dict) -> None:
    assert saved["nan_guard"]["recoveries"] == len(rec) and saved["last_epoch"] == 10
    assert saved["final"]["val_accuracy"] >= 0.9
    rows = (result.run_dir.path / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(10))  # diverged epochs were rewritten
    assert all(math.isfinite(v) for v in result.history["loss"])


def test_nan_mid_run_recovers_and_metrics_json_records_it(tmp_path, fault_record):
    result = kerasopt.fit(_cfg(tmp_path, lr_factor=0.1), print_fn=lambda s: None)
    saved = json.loads((result.run_dir.path / "metrics.json").read_text())
    rec = saved["nan_recoveries"]
    assert len(rec) == 1 and rec[0]["epoch"] >= 2, rec  # mid-run: after at least one good epoch
    assert not math.isfinite(float(rec[0]["loss"]))
    _check_events(rec, 0.1, "non-finite")
    assert saved["nan_guard"] == {"recoveries": 1, "max_retries": 8, "lr_factor": 0.1, "loss_bound": None}
    _finished(result, rec, saved)
    ev = rec[0]
    print(f"NaN at epoch {ev['epoch']} batch {ev['batch']} (step {ev['step']}); {ev['action']}; "
          f"final val_accuracy {saved['final']['val_accuracy']:.4f}")
    fault_record("loss -> NaN mid-run (LR warm-up past the stability limit)",
                 "NaN guard reloaded the last good checkpoint, LR x0.1, run finished (val_acc >= 0.9); "
                 "metrics.json: nan_guard.recoveries + epoch/batch/step/loss/action of each",
                 epoch=ev["epoch"], step=ev["step"], val_accuracy=saved["final"]["val_accuracy"])


def test_exploding_loss_caught_by_loss_bound_with_compounding_lr_cuts(tmp_path, fault_record):
    """The same explosion, caught by ``loss_bound`` before NaN: the exploding epoch is never saved.

    It diverges again right after the first reload; the second reload of the same checkpoint must
    cut the LR again (0.5, then 0.25), not restore the checkpoint's scale and retry at 0.5 for ever.
    """
    result = kerasopt.fit(_cfg(tmp_path, lr_factor=0.5, loss_bound=10.0), print_fn=lambda s: None)
    saved = json.loads((result.run_dir.path / "metrics.json").read_text())
    rec = saved["nan_recoveries"]
    assert len(rec) >= 2 and rec[0]["restored_step"] == rec[1]["restored_step"], rec
    _check_events(rec, 0.5, "above loss_bound 10")
    _finished(result, rec, saved)
    print("recoveries: " + "; ".join(f"epoch {e['epoch']} batch {e['batch']} -> LR scale {e['lr_scale']:g}"
                                     for e in rec))
    fault_record("loss explodes mid-run (above nan_guard.loss_bound), again after the first reload",
                 "each reload of the last good checkpoint cut the LR again (x0.5, x0.25, ...); every recovery "
                 "in metrics.json; run finished (val_acc >= 0.9)",
                 recoveries=len(rec), lr_scales=[e["lr_scale"] for e in rec])
