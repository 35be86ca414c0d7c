"""kerasopt: a Keras-first training application.

From Python and Jupyter::

    import kerasopt
    result = kerasopt.fit("configs/digits_cnn.yaml", overrides={"train.epochs": 3})
    result.metrics["final"]["val_accuracy"]

Importing kerasopt does not import TensorFlow; ``fit``, ``evaluate`` and ``predict`` do.
"""

from kerasopt.config import ExperimentConfig, load_config
from kerasopt.errors import ConfigError
from kerasopt.version import __version__

__all__ = ["ConfigError", "ExperimentConfig", "evaluate", "fit", "load_config", "predict", "__version__"]


def fit(*args, **kwargs):
    """Train an experiment, then report and prune as its config asks; see :func:`kerasopt.training.fit.fit`."""
    from kerasopt.workflow import fit as _fit

    return _fit(*args, **kwargs)


def evaluate(*args, **kwargs):
    """Evaluate a run or model; see :func:`kerasopt.evaluation.evaluate`."""
    from kerasopt.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def predict(*args, **kwargs):
    """Predict with a run's model on new data; see :func:`kerasopt.prediction.predict`."""
    from kerasopt.prediction import predict as _predict

    return _predict(*args, **kwargs)
