"""model.type: custom -- a user's 'module:function' from a module written to tmp_path."""

import sys
import textwrap

import pytest

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models import build_model

MODULE = "kerasopt_test_user_models"
SOURCE = '''
import tf_keras as keras

calls = []


def tiny(input_shape, num_classes, width=8):
    calls.append(dict(input_shape=input_shape, num_classes=num_classes, width=width))
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(width, activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x), name="tiny")


def with_head(input_shape, num_classes, head):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(head.units, activation=head.activation)(x))


def fixed_input(input_shape, num_classes):
    inputs = keras.Input((28, 28, 1))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs)))


def keras3(input_shape, num_classes):
    import keras  # Keras 3: the mistake this test is about

    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Flatten()(inputs)))


def not_a_model(input_shape, num_classes):
    return {"layers": []}


NOT_CALLABLE = 3
'''

IMG = DataSpec((8, 8, 1), "classification", 10, 1, 1)
BINARY = DataSpec((5,), "classification", 2, 1, 1)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    (tmp_path / "broken_user_models.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in (MODULE, "broken_user_models"):
        sys.modules.pop(name, None)


def _cfg(fn, **kw):
    return ModelConfig(type="custom", builder=f"{MODULE}:{fn}", **kw)


def test_custom_builder_is_called_with_shape_classes_and_kwargs(user_module):
    model = build_model(_cfg("tiny", kwargs={"width": 4}), IMG)
    calls = sys.modules[MODULE].calls
    assert calls == [dict(input_shape=(8, 8, 1), num_classes=10, width=4)]
    assert model.name == "custom"
    assert model.count_params() == 64 * 4 + 4 + 4 * 10 + 10


def test_module_is_imported_only_when_asked(user_module):
    assert MODULE not in sys.modules
    build_model(ModelConfig(type="mlp", hidden_units=[2]), BINARY)
    assert MODULE not in sys.modules


def test_mixed_precision_output_is_cast_to_float32(user_module):
    from kerasopt._keras import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_model(_cfg("tiny"), IMG)
    assert model.outputs[0].dtype == "float32"
    assert model.layers[-1].name == "float32_output"
    assert model.get_layer("float32_output").input.dtype == "bfloat16"


def test_head_is_passed_when_the_function_takes_it(user_module):
    model = build_model(_cfg("with_head"), BINARY)
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_binary_head_mismatch_says_to_use_multiclass(user_module):
    with pytest.raises(ConfigError) as e:
        build_model(_cfg("tiny"), BINARY)
    assert e.value.key == "model.head"
    assert "outputs 2 values" in str(e.value) and "head: multiclass" in str(e.value)
    assert build_model(_cfg("tiny", head="multiclass"), BINARY).output_shape == (None, 2)


@pytest.mark.parametrize(
    "builder, key, words",
    [
        ("no_such_module_xyz:build", "model.builder", ["cannot import module 'no_such_module_xyz'"]),
        ("broken_user_models:build", "model.builder", ["importing module 'broken_user_models' failed",
                                                       "no_such_dependency_xyz"]),
        (f"{MODULE}:nope", "model.builder", ["has no function 'nope'", "It defines:", "tiny"]),
        (f"{MODULE}:NOT_CALLABLE", "model.builder", ["is a int, not a function"]),
        (f"{MODULE}:not_a_model", "model.builder", ["must return a tf_keras Model", "Received: dict"]),
        (f"{MODULE}:keras3", "model.builder", ["Keras 3 model", "import tf_keras as keras",
                                               "from kerasopt._keras import keras"]),
        (f"{MODULE}:fixed_input", "model.builder", ["(28, 28, 1)", "(8, 8, 1)"]),
    ],
)
def test_custom_errors(user_module, builder, key, words):
    with pytest.raises(ConfigError) as e:
        build_model(ModelConfig(type="custom", builder=builder), IMG)
    assert e.value.key == key
    for w in words:
        assert w in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "kwargs, words",
    [({"depth": 3}, ["unexpected keyword argument 'depth'"]), ({"num_classes": 3}, ["passed by kerasopt"])],
)
def test_bad_kwargs(user_module, kwargs, words):
    with pytest.raises(ConfigError) as e:
        build_model(_cfg("tiny", kwargs=kwargs), IMG)
    assert e.value.key == "model.kwargs"
    for w in words:
        assert w in str(e.value)
