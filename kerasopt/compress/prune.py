"""Magnitude pruning with TF-MOT: which layers, which schedule, and stripping before export."""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from kerasopt._keras import keras
from kerasopt.config.compress_schema import PruneConfig
from kerasopt.errors import ConfigError
from kerasopt.registry import suggest


def _tfmot():
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise ConfigError("pruning needs TensorFlow Model Optimization: pip install 'kerasopt[compress]'") from None
    return tfmot


@dataclass(frozen=True)
class PruneSteps:
    """The schedule in optimizer steps, from the config's epochs.

    Example (12 steps an epoch, 6 epochs, defaults):
        >>> PruneSteps.from_config(PruneConfig(), 12)
        PruneSteps(begin=0, end=50, frequency=3)
    """

    begin: int
    end: int
    frequency: int

    @classmethod
    def from_config(cls, p: PruneConfig, steps_per_epoch: int) -> PruneSteps:
        begin = int(round(p.begin_epoch * steps_per_epoch))
        end_epoch = p.end_epoch if p.end_epoch is not None else max(p.begin_epoch + 1e-9, 0.7 * p.epochs)
        end = max(begin + 1, int(round(end_epoch * steps_per_epoch)))
        freq = p.frequency if isinstance(p.frequency, int) else max(1, steps_per_epoch // 4)
        return cls(begin, end, freq)


def pruning_schedule(p: PruneConfig, steps: PruneSteps):
    sparsity = _tfmot().sparsity.keras
    target = 0.5 if p.structured else p.target_sparsity
    if p.schedule == "constant_sparsity" or p.structured:
        return sparsity.ConstantSparsity(target, begin_step=steps.begin, frequency=steps.frequency)
    return sparsity.PolynomialDecay(initial_sparsity=p.initial_sparsity, final_sparsity=target,
                                    begin_step=steps.begin, end_step=steps.end, frequency=steps.frequency)


def plan_layers(model: keras.Model, p: PruneConfig) -> tuple[list[str], list[str]]:
    """(layers to prune, layers left dense). Raises ``ConfigError`` for a pattern that matches no
    layer, and for a layer with weights that TF-MOT cannot prune (naming it, suggesting ``exclude``)."""
    tfmot = _tfmot()
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry as registry
    names = [layer.name for layer in model.layers]
    for pattern in p.exclude:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            hint = suggest(pattern, names)
            raise ConfigError(f"exclude pattern '{pattern}' matches no layer of the model.{hint} "
                              f"Layers: {', '.join(names)}", key="prune.exclude")
    prune, keep = [], []
    for layer in model.layers:
        excluded = any(fnmatch.fnmatchcase(layer.name, pat) for pat in p.exclude)
        if excluded:
            keep.append(layer.name)
            continue
        if not layer.weights:
            continue
        if isinstance(layer, keras.Model):
            raise ConfigError(
                f"layer '{layer.name}' is a nested model ({type(layer).__name__}); TF-MOT prunes the layers of "
                f"one flat model only. Add '{layer.name}' to prune.exclude to keep it dense", key="prune.exclude")
        supported = isinstance(layer, tfmot.sparsity.keras.PrunableLayer) or registry.supports(layer) \
            or registry._is_mha_layer(layer)
        if not supported:
            raise ConfigError(
                f"TF-MOT cannot prune layer '{layer.name}' ({type(layer).__name__}). Add it to prune.exclude, "
                f"e.g. exclude: [{layer.name}]", key="prune.exclude")
        if registry._LAYERS_WEIGHTS_MAP.get(layer.__class__) == []:
            continue  # supported with nothing to prune (BatchNormalization, ...): leave unwrapped
        if p.structured and not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            keep.append(layer.name)
            continue
        prune.append(layer.name)
    if not prune:
        raise ConfigError("no layer left to prune: every layer with weights is excluded", key="prune.exclude")
    return prune, keep


def apply_pruning(model: keras.Model, p: PruneConfig,
                  steps_per_epoch: int) -> tuple[keras.Model, list[str], PruneSteps]:
    """Wrap the chosen layers of ``model`` (sharing its weights) in ``prune_low_magnitude``.

    Returns the prunable model, the names of the pruned layers and the schedule in steps.
    """
    tfmot = _tfmot()
    chosen, _ = plan_layers(model, p)
    steps = PruneSteps.from_config(p, steps_per_epoch)
    schedule = pruning_schedule(p, steps)
    kwargs = {"pruning_schedule": schedule}
    if p.structured:
        kwargs["sparsity_m_by_n"] = (2, 4)
    wanted = set(chosen)

    def wrap(layer):
        if layer.name not in wanted:
            return layer
        try:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"cannot prune layer '{layer.name}' ({type(layer).__name__}): "
                              f"{str(e).splitlines()[0]}. Add it to prune.exclude", key="prune.exclude") from None

    try:
        pruned = keras.models.clone_model(model, clone_function=wrap)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"cannot rebuild the model for pruning: {str(e).splitlines()[0]}", key="prune") from None
    return pruned, chosen, steps


def strip(model: keras.Model) -> keras.Model:
    """Remove the pruning wrappers (masks applied): a plain Keras model for export."""
    return _tfmot().sparsity.keras.strip_pruning(model)


def pruning_callbacks(log_dir: str | None) -> list:
    """``UpdatePruningStep`` (required: advances the masks) and, with a log dir, ``PruningSummaries``."""
    sp = _tfmot().sparsity.keras
    cbs = [sp.UpdatePruningStep()]
    if log_dir:
        cbs.append(sp.PruningSummaries(log_dir=log_dir))
    return cbs


def epochs_for(p: PruneConfig) -> int:
    """Fine-tuning epochs (at least the epoch where the schedule ends)."""
    end = p.end_epoch if p.end_epoch is not None else 0.0
    return max(p.epochs, math.ceil(end))
