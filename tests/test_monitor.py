"""The one "improved?" rule (kerasopt.monitor) and the callbacks, report and tuner that use it."""

import doctest
import math

import pytest

import kerasopt.monitor
from kerasopt.monitor import Monitor, resolve_mode

NAN = float("nan")


def test_docstring_examples():
    result = doctest.testmod(kerasopt.monitor)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("key, mode, min_delta, value, best, improved", [
    ("val_loss", "auto", 0.0, 0.5, None, True),       # no best yet: anything is an improvement
    ("val_loss", "auto", 0.0, NAN, None, True),       # ... even NaN (early stopping's first epoch, as before)
    ("val_loss", "auto", 0.0, 0.5, 0.6, True),
    ("val_loss", "auto", 0.0, 0.6, 0.6, False),       # equal is not better
    ("val_loss", "auto", 0.1, 0.55, 0.6, False),      # must beat best - min_delta
    ("val_loss", "auto", -0.1, 0.45, 0.6, True),      # min_delta's sign is ignored (Keras)
    ("val_accuracy", "auto", 0.01, 0.905, 0.9, False),
    ("val_accuracy", "auto", 0.01, 0.92, 0.9, True),
    ("val_accuracy", "min", 0.0, 0.92, 0.9, False),   # an explicit mode wins over the name
    ("val_accuracy", "auto", 0.0, NAN, 0.9, False),   # NaN never beats a number
    ("val_accuracy", "auto", 0.0, 0.1, -math.inf, True),  # plateau's "worst" start
])
def test_improved(key, mode, min_delta, value, best, improved):
    assert Monitor(key, mode, min_delta).improved(value, best) is improved


def test_best_skips_non_finite_values_and_takes_the_first_on_a_tie():
    assert Monitor("val_accuracy").best_of([0.5, NAN, 0.9, math.inf, 0.9]) == (0.9, 2)
    assert Monitor("val_loss").best_of([NAN, NAN]) is None
    assert Monitor("x", "max").best_item([{"v": 1}, {"v": NAN}, {"v": 3}], lambda r: r["v"]) == {"v": 3}
    assert Monitor("x", "min").ranked([(2, "a"), (1, "b"), (2, "c")], lambda t: t[0]) == [(1, "b"), (2, "a"), (2, "c")]


def test_bad_mode_and_min_delta():
    with pytest.raises(ValueError, match="`mode` must be auto, min or max. Received: mode='best'"):
        resolve_mode("val_loss", "best")
    with pytest.raises(ValueError, match="`min_delta` must be a number. Received: min_delta=nan"):
        Monitor("val_loss", min_delta=NAN)


def test_callbacks_share_the_rule_and_the_missing_metric_error():
    from kerasopt.callbacks.checkpoint import AtomicCheckpoint
    from kerasopt.callbacks.early_stopping import ResumableEarlyStopping
    from kerasopt.callbacks.monitor import MonitorCallback
    from kerasopt.callbacks.plateau import ReduceLROnPlateau

    from kerasopt.errors import ConfigError

    for cb, key in ((ResumableEarlyStopping("val_auc"), "callbacks.early_stopping.monitor"),
                    (ReduceLROnPlateau(monitor="val_auc"), "train.schedule.monitor"),
                    (AtomicCheckpoint("/nonexistent", monitor="val_auc"), "callbacks.checkpoint.monitor")):
        assert isinstance(cb, MonitorCallback) and cb.mode == "max"
        with pytest.raises(ConfigError, match="'val_auc' is not among the logged metrics: loss, val_loss") as e:
            cb.monitored({"loss": 1.0, "val_loss": 1.0})
        assert e.value.key == key
    for make in (lambda: ResumableEarlyStopping("val_loss", mode="best"),
                 lambda: ReduceLROnPlateau(monitor="val_loss", mode="best"),
                 lambda: AtomicCheckpoint("/nonexistent", mode="best")):
        with pytest.raises(ValueError, match="`mode` must be auto, min or max"):
            make()


def test_tuner_scoring_uses_the_rule():
    from kerasopt.tune.results import best_record, ranked, running_best

    recs = [{"status": "COMPLETED", "objective": v, "n": i} for i, v in enumerate([0.3, NAN, 0.9, 0.9, 0.1])]
    assert best_record(recs, "max")["n"] == 2 and best_record(recs, "min")["n"] == 4
    assert [r["n"] for r in ranked(recs, "max")] == [2, 3, 0, 4]
    assert running_best([3, 1, 2], "min") == [3, 1, 1] and running_best([3, 1, 4], "max") == [3, 3, 4]
