"""Config/data mismatches: each raises ConfigError with the key to change and a way out."""

import numpy as np
import pytest

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models import build_model


def _spec(shape, classes=3, **kw):
    return DataSpec(tuple(shape), "classification", classes, 1, 1, **kw)


TOKENS = _spec((20,), classes=2, input_dtype="int32", vocab_size=50)


@pytest.mark.parametrize(
    "config, spec, key, words",
    [
        (dict(type="cnn"), _spec((4,)), "model.type",
         ["cnn needs (height, width, channels) images and got shape (4,)", "mlp", "data.reshape"]),
        (dict(type="resnet"), _spec((8, 8)), "model.type", ["data.reshape: [8, 8, 1]"]),
        (dict(type="efficientnet"), _spec((16, 16, 3)), "model.type", ["at least 32x32", "data.resize"]),
        (dict(type="mobilenet_v2"), _spec((13,)), "model.type", ["(13,)"]),
        (dict(type="lstm"), _spec((13,)), "model.type", ["(timesteps, features)", "got shape (13,)"]),
        (dict(type="transformer"), _spec((32, 32, 1)), "model.type", ["type: cnn"]),
        (dict(type="gru"), _spec((20, 2), input_dtype="int32", vocab_size=50), "model.type",
         ["token ids of shape (timesteps,)"]),
        (dict(type="mlp"), TOKENS, "model.type", ["token ids", "lstm, gru or transformer"]),
        (dict(type="lstm", vocab_size=20), TOKENS, "model.vocab_size",
         ["config says 20", "vocabulary of 50", "vocab_size=20"]),
        (dict(type="transformer"), _spec((20,), input_dtype="int32"), "model.vocab_size",
         ["Set model.vocab_size"]),
        (dict(type="mlp", activation="relux"), _spec((4,)), "model.activation",
         ["unknown activation 'relux'", "Did you mean 'relu'?"]),
        (dict(type="lstm", activation="gelu"), TOKENS, "model.activation", ["does not apply to type 'lstm'"]),
        (dict(type="transformer", batch_norm=True), TOKENS, "model.batch_norm", ["LayerNormalization"]),
        (dict(type="efficientnet", batch_norm=False), _spec((32, 32, 3)), "model.batch_norm",
         ["always uses BatchNorm"]),
        (dict(type="custom", builder="x:y", dropout=0.5), _spec((4,)), "model.dropout", ["model.kwargs"]),
    ],
)
def test_mismatch_errors(config, spec, key, words):
    with pytest.raises(ConfigError) as e:
        build_model(ModelConfig(**config), spec)
    assert e.value.key == key
    for w in words:
        assert w in str(e.value), str(e.value)


def test_vocab_from_config_wins_when_larger():
    model = build_model(ModelConfig(type="gru", units=4, vocab_size=64), TOKENS)
    assert model.get_layer("embedding").input_dim == 64


def test_vocab_size_in_config_makes_float_data_tokens():
    model = build_model(ModelConfig(type="lstm", units=4, vocab_size=10), _spec((6,)))
    assert model.inputs[0].dtype == "int32"


@pytest.mark.parametrize("config", [dict(type="lstm", units=4, embedding_dim=4),
                                    dict(type="transformer", embedding_dim=4, num_heads=2, ff_dim=8)])
def test_padding_is_masked(config):
    """Changing the padding token's embedding must not change the prediction."""
    from kerasopt._keras import keras

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(**config), TOKENS)
    x = np.zeros((2, 20), "int32")
    x[0, :5], x[1, :12] = np.arange(1, 6), np.arange(3, 15)
    before = model(x, training=False).numpy()
    emb = model.get_layer("embedding")
    table = emb.embeddings.numpy()
    table[0] += 3.0
    emb.embeddings.assign(table)
    np.testing.assert_allclose(model(x, training=False).numpy(), before, rtol=1e-5, atol=1e-6)
    table[1] += 3.0  # a real token: the prediction must move
    emb.embeddings.assign(table)
    assert not np.allclose(model(x, training=False).numpy(), before, atol=1e-6)
