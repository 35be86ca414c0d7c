"""Strictness, suggestions, cross-field checks and applicability of keys."""

import sys

import pytest

from kerasopt.config import load_config
from kerasopt.errors import ConfigError

BASE = {"data": {"source": "sklearn", "name": "digits"}}


def _err(d) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_config(d)
    return exc.value


@pytest.mark.parametrize(
    "cfg, key, fragment",
    [
        ({**BASE, "data": {**BASE["data"], "batchsize": 3}}, "data.batchsize", "Did you mean 'batch_size'?"),
        ({**BASE, "trian": {}}, "trian", "Did you mean 'train'?"),
        ({**BASE, "train": {"optimizer": {"lerning_rate": 1}}}, "train.optimizer.lerning_rate",
         "Did you mean 'learning_rate'?"),
        ({**BASE, "train": {"optimizer": {"type": "adamm"}}}, "train.optimizer.type", "Did you mean 'adam'?"),
        ({**BASE, "train": {"epochs": "ten"}}, "train.epochs", "Received: 'ten'"),
        ({**BASE, "train": {"epochs": 0}}, "train.epochs", "greater than 0"),
        ({"data": {"source": "sklearn", "name": "digts"}}, "data.name", "Did you mean 'digits'?"),
        ({"data": {"source": "csv", "path": "x.csv"}}, "data.label_column", "needs 'label_column'"),
        ({"data": {"source": "npz"}}, "data.path", "needs 'path'"),
        ({**BASE, "data": {**BASE["data"], "validation_split": 1.5}}, "data.validation_split", "Received: 1.5"),
        ({**BASE, "data": {**BASE["data"], "label_column": "y"}}, "data.label_column", "used by: csv"),
        ({**BASE, "model": {"type": "cnn", "units": 8}}, "model.units", "used by: lstm, gru"),
        ({**BASE, "model": {"type": "custom"}}, "model.builder", "module:function"),
        ({**BASE, "train": {"epochs": 3, "schedule": {"warmup_epochs": 3}}}, "train.schedule.warmup_epochs",
         "shorter than"),
        ({**BASE, "train": {"schedule": {"alpha": 0.1}}}, "train.schedule.alpha", "used by: cosine"),
        ({**BASE, "train": {"optimizer": {"type": "adam", "momentum": 0.9}}}, "train.optimizer.momentum",
         "used by: sgd, rmsprop"),
        ({**BASE, "model": {"head": "regression"}, "train": {"loss": "binary_crossentropy"}}, "train.loss",
         "does not fit"),
        ({**BASE, "name": "../escape"}, "name", "names a folder"),
        ({**BASE, "data": {**BASE["data"], "resize": [32]}}, "data.resize", "[height, width]"),
        ({**BASE, "data": {"source": "tfrecord", "path": "a", "features": {"x": {"dtyp": "float32"}}}},
         "data.features.x.dtyp", "Did you mean 'dtype'?"),
        ({**BASE, "train": {"precision": "fp16"}}, "train.precision", "Received: 'fp16'"),
    ],
)
def test_bad_configs_name_the_key(cfg, key, fragment):
    e = _err(cfg)
    assert e.key == key, str(e)
    assert fragment in str(e)
    assert "\n" not in str(e)


def test_defaults_fill_in_and_roundtrip():
    cfg = load_config(BASE)
    assert cfg.train.epochs == 10 and cfg.data.batch_size == 64 and cfg.model.bn_momentum == 0.9
    again = load_config(cfg.model_dump(mode="json"))
    assert again == cfg


def test_config_package_imports_no_tensorflow():
    import subprocess

    code = "import kerasopt, kerasopt.config, kerasopt.cli, sys; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_json_schema_lists_sections_and_forbids_extras():
    from kerasopt.config.schema import ExperimentConfig

    schema = ExperimentConfig.model_json_schema()
    assert {"data", "model", "train", "callbacks", "distribute", "export"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    data = schema["properties"]["data"]
    assert data["discriminator"]["propertyName"] == "source"
    assert {ref["$ref"] for ref in data["oneOf"]} == set(data["discriminator"]["mapping"].values())
    assert all(schema["$defs"][ref["$ref"].split("/")[-1]]["additionalProperties"] is False for ref in data["oneOf"])
