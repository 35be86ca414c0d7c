"""Hyperparameter search over a YAML space with Keras Tuner; each trial is a kerasopt training run.

From Python and Jupyter::

    from kerasopt.tune import tune, load_results, plot_search
    result = tune("configs/digits_tune.yaml", overrides={"tune.max_trials": 6})
    result.best["values"], result.best["objective"]
    records = load_results(result.tune_dir)          # every trial, as dicts

Importing this package does not import TensorFlow or Keras Tuner; :func:`tune` does.
"""

from kerasopt.tune.plot import plot_search
from kerasopt.tune.results import load_records as load_results
from kerasopt.tune.search import TuneResult, default_tune_dir, tune
from kerasopt.tune.space import build_hyperparameters, check_space, trial_config

__all__ = [
    "TuneResult", "build_hyperparameters", "check_space", "default_tune_dir", "load_results", "plot_search",
    "trial_config", "tune",
]
