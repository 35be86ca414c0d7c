"""``kerasopt evaluate``: metrics of a trained model on the validation split (module `evaluation` so that
``kerasopt.evaluate`` stays the function)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Optional, Union

from kerasopt.config.loader import ConfigLike, load_config
from kerasopt.errors import ConfigError


def locate(target: Path, config: Optional[ConfigLike]) -> tuple[Optional[Path], Optional[Path], ConfigLike]:
    """(keras file, checkpoint folder, config) for a run directory or a model file."""
    if target.is_dir():
        cfg_path = target / "config.yaml"
        if not cfg_path.is_file():
            raise ConfigError(f"{target} is not a kerasopt run directory (no config.yaml) nor a model file")
        from kerasopt.export import find_exported_model

        keras_file = find_exported_model(target)
        ckpt = None
        if keras_file is None:
            from kerasopt.callbacks.checkpoint import find_checkpoint

            ckpt = find_checkpoint(target / "checkpoints", "best") or find_checkpoint(target / "checkpoints")
            if ckpt is None:
                raise ConfigError(f"{target} has neither an exported model (model/*.keras) nor a checkpoint")
        return keras_file, ckpt, config if config is not None else cfg_path
    if target.is_file() and target.suffix == ".keras":
        if config is None:
            raise ConfigError(f"evaluating the model file {target} needs the CONFIG that describes its data")
        return target, None, config
    if not target.exists():
        raise ConfigError(f"not found: {target}")
    raise ConfigError(f"{target} is neither a run directory nor a .keras model file")


def evaluate(
    target: Union[str, Path],
    config: Optional[ConfigLike] = None,
    overrides: Union[Iterable[str], Mapping[str, Any], None] = None,
) -> dict[str, float]:
    """Evaluate a run directory (its exported model, else its best checkpoint) or a ``.keras`` file.

    Example:
        >>> kerasopt.evaluate("runs/digits_cnn")  # doctest: +SKIP
        {'loss': 0.03, 'accuracy': 0.99}
    """
    keras_file, ckpt, config = locate(Path(target), config)
    cfg = load_config(config, overrides)
    from kerasopt.training.assembly import assemble_model

    if keras_file is not None:
        a = assemble_model(cfg, lambda spec: _load(keras_file))
    else:
        from kerasopt.callbacks.checkpoint import restore_checkpoint
        from kerasopt.models import build_model
        from kerasopt.training.optimizers import build_optimizer

        # the optimizer gives the checkpoint's slots a place to go (they are read, then unused)
        a = assemble_model(cfg, lambda spec: build_model(cfg, spec),
                           optimizer=build_optimizer(cfg.train.optimizer, cfg.train.optimizer.learning_rate))
        restore_checkpoint(ckpt, a.model)
    if a.val is None:
        raise ConfigError("there is no validation split to evaluate on (it is 0)", key="data.validation_split")
    model, val = a.model, a.val
    return {k: float(v) for k, v in model.evaluate(val, verbose=0, return_dict=True).items()}


def _load(keras_file: Path):
    from kerasopt._keras import keras

    try:
        import kerasopt.models  # noqa: F401  (registers custom layers such as PositionEmbedding)

        return keras.models.load_model(keras_file, compile=False)
    except Exception as e:  # a corrupt or foreign file: name it
        raise ConfigError(f"cannot load model {keras_file}: {str(e).splitlines()[0]}") from None
