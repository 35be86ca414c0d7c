"""keras.applications backbones: our input scaling, BN momentum, regularizers and saving."""

import json

import numpy as np

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models import build_model

IMG1 = DataSpec((32, 32, 1), "classification", 10, 1, 1)


def test_efficientnet_takes_inputs_as_given_and_uses_our_bn_momentum():
    from kerasopt._keras import keras

    model = build_model(ModelConfig(type="efficientnet", bn_momentum=0.8), IMG1)
    rescaling = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    assert rescaling and all(layer.scale == 1.0 for layer in rescaling)  # no /255 on 0..1 data
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == 0.8 for layer in bns)
    assert model.get_layer("stem_conv").kernel.shape == (3, 3, 1, 32)  # 1 channel, no adapter
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)  # backbone inlined


def test_mobilenet_v2_l2_reaches_every_kernel_and_survives_the_config():
    from kerasopt._keras import keras

    model = build_model(ModelConfig(type="mobilenet_v2", alpha=0.35, l2=1e-4), IMG1)
    kernels = [layer for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense))]
    assert len(model.losses) == len(kernels) > 50
    assert json.dumps(model.get_config()).count('"L1L2"') == len(kernels)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.momentum == 0.9 for layer in bns)  # schema default, not MobileNetV2's 0.999


def test_transformer_round_trips_through_keras_format(tmp_path):
    from kerasopt._keras import keras

    spec = DataSpec((10,), "classification", 3, 1, 1, input_dtype="int32", vocab_size=20)
    model = build_model(ModelConfig(type="transformer", embedding_dim=8, num_heads=2, ff_dim=8), spec)
    x = np.random.default_rng(0).integers(0, 20, size=(3, 10)).astype("int32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
