"""--resume of a run written before the config sections became unions: its checkpoint's fingerprint hashed
every model type's keys, so the check compares the saved model section read through today's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kerasopt
from kerasopt.config import load_config
from kerasopt.config.model_schema import ModelConfig
from kerasopt.errors import ConfigError
from kerasopt.training.fingerprint import model_fingerprint, same_model


def _cfg(tmp_path, epochs, hidden=(16,)):
    return {"name": "fp", "runs_root": str(tmp_path / "runs"), "report": False,
            "data": {"source": "sklearn", "name": "iris", "batch_size": 32},
            "model": {"type": "mlp", "hidden_units": list(hidden)},
            "train": {"epochs": epochs, "verbose": 0},
            "callbacks": {"tensorboard": {"enabled": False}}, "export": {"formats": ["keras"]}}


def _flat(model: dict) -> dict:
    """The model section as the flat schema dumped it: every key of every model type, defaults filled in."""
    flat: dict = {}
    for option in ModelConfig.OPTIONS.values():
        for name, field in option.model_fields.items():
            if not field.is_required() and name not in flat:
                flat[name] = field.get_default(call_default_factory=True)
    return json.loads(json.dumps({**flat, **model}, default=str))


def test_a_flat_dump_of_the_same_model_is_the_same_model():
    cfg = load_config(_cfg(Path("."), 1))
    old = _flat(cfg.model.model_dump(mode="json"))
    assert {"depth", "variant", "num_heads", "filters"} <= set(old)  # what the flat schema wrote
    assert same_model({"model": old}, cfg)
    assert not same_model({"model": {**old, "hidden_units": [32]}}, cfg)
    assert not same_model({"model": {**old, "type": "cnn"}}, cfg)
    assert not same_model({"model": "garbage"}, cfg) and not same_model(None, cfg)


def test_resume_accepts_a_checkpoint_of_the_flat_schema_and_refuses_another_model(tmp_path):
    first = kerasopt.fit(_cfg(tmp_path, 2), print_fn=lambda s: None)
    meta_path = first.run_dir.path / "checkpoints" / "last" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["fingerprint"] == model_fingerprint(first.config)
    # what a kerasopt of the flat schema wrote: another fingerprint, every type's keys in the model section
    meta["fingerprint"] = "0123456789abcdef"
    meta["config"]["model"] = _flat(meta["config"]["model"])
    meta_path.write_text(json.dumps(meta))
    lines: list[str] = []
    resumed = kerasopt.fit(_cfg(tmp_path, 3), resume=True, print_fn=lines.append)
    assert resumed.metrics["resumed_from_epoch"] == 2 and resumed.metrics["last_epoch"] == 3
    assert any(line.startswith("resuming ") and "at epoch 3" in line for line in lines), lines
    with pytest.raises(ConfigError, match="the model section differs") as e:
        kerasopt.fit(_cfg(tmp_path, 4, hidden=(8,)), resume=True, print_fn=lambda s: None)
    assert e.value.key == "model"
