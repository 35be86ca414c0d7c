"""Metric names as users write them, the one name each is logged under, and which way is better.

TF-free: the config checks ``train.metrics`` with it at load time, and the callbacks, the report and the
tuner read ``higher_is_better`` from it, so "is a bigger val_auc better?" has one answer everywhere.
"""

from __future__ import annotations

import re

# canonical name -> (the tasks it fits, what it is). Logged as the canonical name (``val_`` + it on validation).
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "accuracy": (("binary", "multiclass"), "fraction of examples whose predicted class is right"),
    "auc": (("binary", "multiclass"), "area under the ROC curve (multi-class: micro-averaged over one-vs-rest)"),
    "pr_auc": (("binary", "multiclass"), "area under the precision-recall curve"),
    "precision": (("binary", "multiclass"), "binary: of the positive class at 0.5; multi-class: macro average"),
    "recall": (("binary", "multiclass"), "binary: of the positive class at 0.5; multi-class: macro average"),
    "f1": (("binary", "multiclass"), "binary: of the positive class at 0.5; multi-class: macro average"),
    "top_k_accuracy": (("multiclass",), "true class among the k most probable (top_5_accuracy, top3, ...)"),
    "crossentropy": (("binary", "multiclass"), "the cross-entropy of the predicted probabilities"),
    "mae": (("regression",), "mean absolute error"),
    "mse": (("regression",), "mean squared error"),
    "rmse": (("regression",), "root mean squared error"),
    "mape": (("regression",), "mean absolute percentage error"),
    "r2": (("regression",), "coefficient of determination"),
}

_ALIASES = {
    "acc": "accuracy", "categorical_accuracy": "accuracy", "sparse_categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy", "roc_auc": "auc", "auroc": "auc", "auc_roc": "auc", "auc_pr": "pr_auc",
    "prauc": "pr_auc", "average_precision": "pr_auc", "f1_score": "f1", "f1_macro": "f1", "macro_f1": "f1",
    "mean_absolute_error": "mae", "mean_squared_error": "mse", "root_mean_squared_error": "rmse",
    "mean_absolute_percentage_error": "mape", "r2_score": "r2", "r_squared": "r2", "log_loss": "crossentropy",
    "logloss": "crossentropy", "binary_crossentropy": "crossentropy", "categorical_crossentropy": "crossentropy",
    "sparse_categorical_crossentropy": "crossentropy", "top_k_categorical_accuracy": "top_5_accuracy",
    "sparse_top_k_categorical_accuracy": "top_5_accuracy", "top_k_accuracy": "top_5_accuracy",
}
_TOP_K = re.compile(r"^(?:sparse_)?top_?(\d+)(?:_categorical)?(?:_accuracy|_acc)?$")
_HIGHER = ("accuracy", "auc", "pr_auc", "precision", "recall", "f1", "r2")
FRACTIONS = ("accuracy", "auc", "pr_auc", "precision", "recall", "f1")  # in [0, 1]: shown as percentages
_LOWER = ("loss", "crossentropy", "mae", "mse", "rmse", "mape")


def canonical(name: str) -> str:
    """The name a metric is logged under, from the way users write it (any case, ``-`` or ``_``).

    Raises ``ValueError`` naming the choices for a name it does not know.

    Examples:
        >>> canonical("AUC"), canonical("top-5"), canonical("Top3_Accuracy"), canonical("mean_absolute_error")
        ('auc', 'top_5_accuracy', 'top_3_accuracy', 'mae')
    """
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    key = _ALIASES.get(key, key)
    m = _TOP_K.match(key)
    if m:
        k = int(m.group(1))
        if k < 1:
            raise ValueError(f"unknown metric '{name}': top-k needs k >= 1")
        return f"top_{k}_accuracy"
    if key in METRICS and key != "top_k_accuracy":
        return key
    raise ValueError(f"unknown metric '{name}'; choose from {', '.join(choices())}")


def choices() -> list[str]:
    """The names to show in an error message."""
    return [("top_5_accuracy" if n == "top_k_accuracy" else n) for n in METRICS]


def top_k(name: str) -> int | None:
    """``k`` of a canonical top-k name, else None. Example: ``top_k("top_3_accuracy") -> 3``."""
    m = re.fullmatch(r"top_(\d+)_accuracy", name)
    return int(m.group(1)) if m else None


def tasks(name: str) -> tuple[str, ...]:
    """The head kinds (binary, multiclass, regression) a canonical metric fits."""
    return METRICS["top_k_accuracy" if top_k(name) else name][0]


def base_name(key: str) -> str:
    """A logged key without its ``val_``/``val_raw_``/``raw_`` prefix. Example: ``val_raw_auc -> auc``."""
    return re.sub(r"^(val_)?(raw_)?", "", key)


def higher_is_better(key: str) -> bool:
    """Whether a larger value of a logged key (``val_auc``, ``loss``, ``val_raw_accuracy``) is better.

    Known names decide exactly; an unknown one (a custom metric) is "higher" when it reads like a
    score (accuracy, auc, precision, recall, f1, r2, iou) and "lower" otherwise (losses and errors).

    Examples:
        >>> [higher_is_better(k) for k in ("val_auc", "val_loss", "val_raw_accuracy", "rmse", "val_top_5_accuracy")]
        [True, False, True, False, True]
    """
    name = base_name(key)
    if name in _HIGHER or top_k(name):
        return True
    if name in _LOWER or name.endswith("_loss"):
        return False
    return any(s in name for s in ("acc", "auc", "precision", "recall", "f1", "iou")) or name.endswith("r2")


def logged_keys(names: list[str], *, validation: bool, ema_raw: bool = False) -> list[str]:
    """Every key ``model.fit`` logs for these canonical metric names (loss first).

    Example:
        >>> logged_keys(["accuracy", "auc"], validation=True)
        ['loss', 'accuracy', 'auc', 'val_loss', 'val_accuracy', 'val_auc']
    """
    train = ["loss", *names]
    keys = list(train)
    if validation:
        keys += [f"val_{k}" for k in train]
        if ema_raw:
            keys += [f"val_raw_{k}" for k in train]
    return keys


def unlogged(key: str, metrics: list[str] | None) -> str | None:
    """Why a monitored key (``val_auc``) is not one the run logs, or None when it is.

    ``metrics`` is ``train.metrics`` (canonical names; None means the default). Names that are not
    metric names (a custom or distillation key) are left to the run to judge.

    Examples:
        >>> unlogged("val_auc", None)
        "'val_auc' is not logged: add 'auc' to train.metrics (today: accuracy, or mae for regression)"
        >>> unlogged("val_acc", ["accuracy"]), unlogged("val_accuracy", ["accuracy"])
        ("'val_acc' is logged as 'val_accuracy'", None)
    """
    base = base_name(key)
    if base == "loss":
        return None
    try:
        canon = canonical(base)
    except ValueError:
        return None
    configured = metrics if metrics is not None else ["accuracy", "mae"]
    if canon not in configured:
        today = "accuracy, or mae for regression" if metrics is None else ", ".join(metrics)
        return f"'{key}' is not logged: add '{canon}' to train.metrics (today: {today})"
    if canon != base:
        return f"'{key}' is logged as '{key[: len(key) - len(base)]}{canon}'"
    return None
