"""``model.freeze`` and ``train.unfreeze_at_epoch``: which layers train in which epoch.

The rules (the Keras transfer-learning guide's, and timm's / Model Garden's two-phase fine-tune):

* A frozen layer has ``trainable = False``: no gradient, no update. A frozen
  ``BatchNormalization`` also runs in inference mode (tf_keras does this for a
  non-trainable BN), so its moving statistics stay those of the pretraining.
* ``unfreeze_at_epoch: N`` trains the frozen layers from epoch N+1 on (the first N
  epochs are the head-only phase). BatchNorm layers stay frozen, in inference
  mode: updating ImageNet statistics from small fine-tuning batches is what
  ruins a fine-tune (the guide's advice).
* The switch happens between two ``model.fit`` segments (the loop splits there)
  and the train step is traced again. tf_keras' ``fit`` restores the flags
  ``compile`` recorded, so the new flags are recorded the way ``compile`` does. The optimizer was built for every
  variable before the first freeze, so its slots, its step count, and so the
  LR schedule (``FactorFrom`` applies ``unfreeze_lr_factor``) just continue, and
  a checkpoint has the same structure in both phases: a resume in either phase
  is exact. Which phase an epoch is in is a function of the epoch alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Optional, Union

from kerasopt._keras import keras
from kerasopt.errors import ConfigError
from kerasopt.models.pretrained import is_backbone, load_backbone_file, warm_start


def _weighted_layers(model: keras.Model) -> Iterable[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _weighted_layers(layer)
        elif layer.weights:
            yield layer


def select_layers(model: keras.Model, freeze: Union[str, list[str]]) -> list[keras.layers.Layer]:
    """The layers ``model.freeze`` names: ``'backbone'`` or name patterns (fnmatch, case-sensitive).

    A pattern that matches no layer with weights is an error naming it (a typo would otherwise
    silently train everything).

    Example:
        >>> [l.name for l in select_layers(model, ["conv_*"])]  # doctest: +SKIP
        ['conv_1', 'conv_2']
    """
    layers = list(_weighted_layers(model))
    if freeze == "backbone":
        return [layer for layer in layers if is_backbone(layer)]
    chosen = []
    for pattern in freeze:
        hits = [layer for layer in layers if fnmatchcase(layer.name, pattern)]
        if not hits:
            names = ", ".join(layer.name for layer in layers[:8]) + (", ..." if len(layers) > 8 else "")
            raise ConfigError(f"pattern '{pattern}' matches no layer with weights (layers: {names})",
                              key="model.freeze")
        chosen += [layer for layer in hits if layer not in chosen]
    return chosen


@dataclass
class FreezePlan:
    """The frozen layers and the epoch (0-based) from which they train; ``None``: never."""

    layers: list[keras.layers.Layer]
    unfreeze_epoch: Optional[int] = None

    @classmethod
    def from_config(cls, cfg, model: keras.Model) -> Optional[FreezePlan]:
        if cfg.model.freeze is None:
            return None
        return cls(select_layers(model, cfg.model.freeze), cfg.train.unfreeze_at_epoch)

    def frozen_in(self, epoch: int) -> bool:
        return self.unfreeze_epoch is None or epoch < self.unfreeze_epoch

    def apply(self, model: keras.Model, epoch: int) -> bool:
        """Set ``trainable`` for ``epoch``'s phase; True when anything changed (the step is traced again)."""
        frozen = self.frozen_in(epoch)
        changed = False
        for layer in self.layers:
            want = not frozen and not isinstance(layer, keras.layers.BatchNormalization)
            if layer.trainable != want:
                layer.trainable = want
                changed = True
        if changed:
            model.train_function = None  # Keras builds it again, over the new trainable variables
            # fit() puts back the trainable flags recorded by compile(); record the new ones (as compile does)
            model.__dict__["_compiled_trainable_state"] = model._get_trainable_state()  # no tracking
        return changed

    def segment_end(self, epoch: int, end: int) -> int:
        """Where a ``model.fit`` segment starting at ``epoch`` must stop so the switch falls between two."""
        if self.unfreeze_epoch is not None and epoch < self.unfreeze_epoch < end:
            return self.unfreeze_epoch
        return end

    def describe(self, lr_factor: float) -> str:
        n = sum(int(w.shape.num_elements()) for layer in self.layers for w in layer.weights)
        bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in self.layers)
        out = f"freeze: {len(self.layers)} layers ({n:,} weights) frozen"
        if bn:
            out += f", {bn} BatchNorm in inference mode"
        if self.unfreeze_epoch is not None:
            out += (f"; trained from epoch {self.unfreeze_epoch + 1} on at LR x{lr_factor:g}"
                    + (" (BatchNorm stays frozen)" if bn else ""))
        return out


def prepare_transfer(cfg, model: keras.Model, say, *, resume: bool) -> Optional[FreezePlan]:
    """After ``build_model``: load ``model.weights`` (a file) and ``model.init_from``, then plan the freeze.

    A resumed run skips the loading (its checkpoint holds every weight). A plan without an unfreeze
    epoch is applied at once, so the optimizer, the accumulators and the EMA cover only what trains.
    """
    m = cfg.model
    if m.pretrained == "imagenet":
        say("weights: imagenet (keras.applications); the model takes raw 0..255 RGB pixels")
    elif m.pretrained is not None and not resume:
        say(f"weights: {m.pretrained}: {load_backbone_file(model, m.pretrained).describe()}")
    if m.init_from is not None and not resume:
        say(f"init_from {m.init_from}: {warm_start(model, m.init_from).describe()}")
    plan = FreezePlan.from_config(cfg, model)
    if plan is not None:
        say(plan.describe(cfg.train.unfreeze_lr_factor))
        if plan.unfreeze_epoch is None:
            plan.apply(model, 0)
    return plan


__all__ = ["FreezePlan", "select_layers", "prepare_transfer"]
