"""Under mixed_bfloat16 the hidden layers compute in bfloat16 and the output stays float32."""

import pytest

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models import build_model

IMG = DataSpec((32, 32, 1), "classification", 10, 1, 1)
TOKENS = DataSpec((20,), "classification", 2, 1, 1, input_dtype="int32", vocab_size=50)
SEQ = DataSpec((8, 8), "regression", None, 1, 1)
CASES = [
    (dict(type="mlp", hidden_units=[8]), DataSpec((13,), "classification", 3, 1, 1)),
    (dict(type="cnn", filters=[8], dense_units=8), IMG),
    (dict(type="resnet", depth=18, width=8, small_image_stem=True), IMG),
    (dict(type="efficientnet"), IMG),
    (dict(type="mobilenet_v2", alpha=0.35), IMG),
    (dict(type="lstm", units=8), TOKENS),
    (dict(type="gru", units=8, bidirectional=True), SEQ),
    (dict(type="transformer", embedding_dim=8, num_heads=2, ff_dim=16), TOKENS),
    (dict(type="transformer", embedding_dim=8, num_heads=2, ff_dim=16), SEQ),
]


@pytest.mark.parametrize("config, spec", CASES, ids=[f"{c['type']}-{i}" for i, (c, _) in enumerate(CASES)])
def test_mixed_bfloat16_output_is_float32(config, spec):
    from kerasopt._keras import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_model(ModelConfig(**config), spec)
    assert model.outputs[0].dtype == "float32"
    head = model.get_layer("head")
    assert head.compute_dtype == "float32" and model.get_layer("predictions").compute_dtype == "float32"
    # the last hidden activations (the head's input) were computed in bfloat16
    assert head.input.dtype == "bfloat16"
    weighted = [layer for layer in model.layers if layer.weights and layer.name != "head"]
    assert weighted and all(layer.compute_dtype == "bfloat16" for layer in weighted)
    assert all(w.dtype == "float32" for w in model.trainable_weights)  # trainable variables stay float32
