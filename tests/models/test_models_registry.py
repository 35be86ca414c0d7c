"""The registry holds exactly the schema's types; build_model wires config + data to a builder."""

import pytest

from kerasopt.config.model_schema import MODEL_TYPES, ModelConfig
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models import MODELS, build_model


def test_registry_names_equal_schema_types():
    assert MODELS.names() == sorted(MODEL_TYPES)


def test_unknown_type_lists_choices_and_suggests():
    with pytest.raises(ConfigError) as e:
        MODELS.get("resnett")
    assert e.value.key == "model.type"
    assert "Did you mean 'resnet'?" in str(e.value) and "transformer" in str(e.value)


def test_registering_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        MODELS.register("mlp")(lambda *a, **k: None)


@pytest.mark.parametrize("as_experiment", [True, False])
def test_build_model_names_model_by_type(as_experiment):
    mcfg = ModelConfig(type="mlp", hidden_units=[4])
    cfg = ExperimentConfig(data={"source": "sklearn", "name": "wine"}, model=mcfg) if as_experiment else mcfg
    model = build_model(cfg, DataSpec((13,), "classification", 3, 10, 2))
    assert model.name == "mlp"
    assert model.output_shape == (None, 3)
    assert [layer.name for layer in model.layers[-2:]] == ["head", "predictions"]
