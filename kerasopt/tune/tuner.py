"""Keras Tuner drives the search; kerasopt's own trainer runs each trial.

``kt.Tuner``'s build/fit path rejects tf_keras models when Keras 3 is installed
beside them, so :class:`KerasoptTuner` subclasses ``BaseTuner`` and implements
``run_trial`` with :class:`~kerasopt.tune.trial.TrialExecutor` (ARCHITECTURE.md
§1). Importing this module imports Keras Tuner and TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import kerasopt._keras  # noqa: F401 - TF_USE_LEGACY_KERAS=1 before Keras Tuner imports TensorFlow

# isort: split
import keras_tuner as kt
from keras_tuner.engine.base_tuner import BaseTuner

from kerasopt.config.schema import ExperimentConfig
from kerasopt.tune.space import max_epochs
from kerasopt.tune.trial import ObjectiveMissing, TrialExecutor, TrialFailed, TrialInterrupted

_DEFAULT_MAX_TRIALS = 10


def build_oracle(cfg: ExperimentConfig, hyperparameters: kt.HyperParameters) -> kt.Oracle:
    """The oracle of ``tune.algorithm`` over the declared space, seeded by ``cfg.seed``.

    Keras Tuner's own failure limit is off (``max_consecutive_failed_trials=None``):
    :class:`KerasoptTuner` counts failures after each trial is saved, so a stopped
    search resumes cleanly.
    """
    t = cfg.tune
    common = dict(
        objective=kt.Objective(t.objective.metric, direction=t.objective.direction),
        hyperparameters=hyperparameters, allow_new_entries=False, tune_new_entries=True,
        seed=cfg.seed or 10_007,  # Keras Tuner reads a seed of 0 as "pick one at random"
        max_retries_per_trial=0, max_consecutive_failed_trials=None,
    )
    if t.algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(max_trials=t.max_trials or _DEFAULT_MAX_TRIALS, **common)
    elif t.algorithm == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(
            max_trials=t.max_trials or _DEFAULT_MAX_TRIALS, num_initial_points=t.num_initial_points, **common)
    elif t.algorithm == "grid":
        oracle = kt.oracles.GridSearchOracle(max_trials=t.max_trials, **common)
    elif t.algorithm == "hyperband":
        oracle = kt.oracles.HyperbandOracle(max_epochs=max_epochs(cfg), factor=t.factor,
                                            hyperband_iterations=t.hyperband_iterations, **common)
        oracle.max_trials = t.max_trials  # an optional cap on top of the brackets
    else:  # pragma: no cover - the schema allows only the four above
        raise ValueError(f"unknown tune.algorithm. Received: {t.algorithm}")
    oracle.verbose = 0  # kerasopt prints its own table
    return oracle


class FatalConfigError(kt.errors.FatalError):
    """Carries a ``ConfigError`` out of ``run_trial`` (Keras Tuner re-raises only fatal errors)."""

    def __init__(self, error) -> None:
        self.error = error
        super().__init__(str(error))


class SearchInterrupted(kt.errors.FatalError):
    """Ctrl-C or SIGTERM stopped a trial's training after a checkpoint was saved."""


class SearchStopped(RuntimeError):
    """Too many trials failed in a row (``tune.max_consecutive_failures``)."""


class KerasoptTuner(BaseTuner):
    """A ``BaseTuner`` whose trials are full kerasopt training runs.

    Hyperband's ``tuner/epochs``, ``tuner/initial_epoch`` and ``tuner/trial_id``
    become the trial's ``train.epochs`` and a resume from the promoted trial's checkpoint.

    Example:
        >>> tuner = KerasoptTuner(oracle, executor, tune_dir)  # doctest: +SKIP
        >>> tuner.search()  # doctest: +SKIP
    """

    def __init__(self, oracle, executor: TrialExecutor, tune_dir: Path, *,
                 on_begin: Optional[Callable] = None, on_end: Optional[Callable] = None) -> None:
        self.executor = executor
        self.on_begin = on_begin
        self.on_end = on_end
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..." - the CLI says it its way
            super().__init__(oracle=oracle, hypermodel=None, directory=str(tune_dir), project_name="kt",
                             overwrite=False)

    def search(self, *args, **kwargs):
        """Keras Tuner's loop, without its traceback on stderr per failed trial (the log and trials.csv
        have the reason; a traceback would tear the live table)."""
        from keras_tuner.src import config as kt_config  # no public switch for this

        old, kt_config.DEBUG = kt_config.DEBUG, False
        try:
            return super().search(*args, **kwargs)
        finally:
            kt_config.DEBUG = old

    def run_trial(self, trial, *args, **kwargs):
        try:
            return {self.oracle.objective.name: self.executor(trial)}
        except TrialFailed as e:
            raise kt.errors.FailedTrialError(str(e)) from None
        except ObjectiveMissing as e:  # a config mistake: stop, do not count it as a failed trial
            raise FatalConfigError(e.error) from None
        except TrialInterrupted as e:  # the trial stays "running" in the oracle: a rerun retries it
            raise SearchInterrupted(str(e)) from None

    def on_trial_begin(self, trial):
        if self.on_begin:
            self.on_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle records the trial and both are saved: a stop resumes cleanly
        if self.on_end:
            self.on_end(trial)
        limit = self.executor.tune.max_consecutive_failures
        run = 0
        for tid in reversed(self.oracle.end_order):
            if self.oracle.trials[tid].status != kt.engine.trial.TrialStatus.FAILED:
                break
            run += 1
        if run >= limit:
            last = self.executor.records.get(trial.trial_id, {}).get("reason") or "see the trial's log"
            raise SearchStopped(f"{run} trials failed in a row (tune.max_consecutive_failures={limit}); "
                                f"last: {last}")

    def save_model(self, trial_id, model, step=0):  # the run directory holds checkpoints and exports
        pass
