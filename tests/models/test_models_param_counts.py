"""Parameter counts against hand-computed and published numbers."""

import numpy as np
import pytest

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models import build_model


def _counts(model) -> tuple[int, int]:
    """(trainable, non-trainable); Keras counts BatchNorm's moving mean/variance as non-trainable."""
    size = lambda ws: sum(int(np.prod(w.shape)) for w in ws)  # noqa: E731
    return size(model.trainable_weights), size(model.non_trainable_weights)


def _spec(shape, classes=10, **kw):
    return DataSpec(tuple(shape), "classification", classes, 1, 1, **kw)


def test_mlp_without_batchnorm():
    model = build_model(ModelConfig(type="mlp", hidden_units=[128, 64], batch_norm=False), _spec((64,)))
    assert _counts(model) == (64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10, 0)


def test_mlp_with_batchnorm_drops_the_dense_bias():
    model = build_model(ModelConfig(type="mlp", hidden_units=[128, 64]), _spec((8, 8)))  # flattened to 64
    # Dense without bias, BN gamma+beta trainable, moving mean+variance not.
    trainable = 64 * 128 + 2 * 128 + 128 * 64 + 2 * 64 + 64 * 10 + 10
    assert _counts(model) == (trainable, 2 * 128 + 2 * 64)


def test_cnn_by_hand():
    model = build_model(ModelConfig(type="cnn", filters=[8, 16], kernel_size=3, dense_units=32), _spec((32, 32, 1)))
    convs = 3 * 3 * 1 * 8 + 3 * 3 * 8 * 8 + 3 * 3 * 8 * 16 + 3 * 3 * 16 * 16  # no bias: BN follows
    bn_channels = 8 + 8 + 16 + 16 + 32
    trainable = convs + 2 * bn_channels + 16 * 32 + 32 * 10 + 10
    assert _counts(model) == (trainable, 2 * bn_channels)


def test_binary_head_has_one_unit():
    model = build_model(ModelConfig(type="mlp", hidden_units=[4], batch_norm=False), _spec((3,), classes=2))
    assert model.count_params() == 3 * 4 + 4 + 4 * 1 + 1


def test_lstm_and_gru_by_hand():
    tok = _spec((20,), classes=2, input_dtype="int32", vocab_size=50)
    lstm = build_model(ModelConfig(type="lstm", units=16, embedding_dim=8), tok)
    assert lstm.count_params() == 50 * 8 + 4 * (16 * (8 + 16) + 16) + 16 + 1
    gru = build_model(ModelConfig(type="gru", units=16, bidirectional=True), _spec((8, 8)))
    # reset_after=True (the cuDNN-compatible GRU) has two bias vectors per gate
    assert gru.count_params() == 2 * 3 * (16 * (8 + 16) + 2 * 16) + 32 * 10 + 10


def test_transformer_by_hand():
    d, ff, heads, length, vocab = 16, 32, 2, 20, 50
    model = build_model(
        ModelConfig(type="transformer", embedding_dim=d, num_heads=heads, ff_dim=ff, num_layers=2),
        _spec((length,), classes=3, input_dtype="int32", vocab_size=vocab),
    )
    attention = 4 * (d * d + d)  # query, key, value, output projections (heads * key_dim == d)
    block = attention + (d * ff + ff) + (ff * d + d) + 2 * (2 * d)  # + two LayerNorms
    assert model.count_params() == vocab * d + length * d + 2 * block + d * 3 + 3


@pytest.mark.parametrize(
    "depth, trainable, non_trainable",
    [
        # torchvision resnet18 / resnet50 parameter counts (BN running stats are buffers there).
        (18, 11_689_512, 9_600),
        (50, 25_557_032, 53_120),  # keras.applications.ResNet50 has the same 53,120 BN statistics
    ],
)
def test_resnet_matches_published_counts(depth, trainable, non_trainable):
    model = build_model(ModelConfig(type="resnet", depth=depth), _spec((224, 224, 3), classes=1000))
    assert _counts(model) == (trainable, non_trainable)
    assert model.output_shape == (None, 1000)


def test_resnet_v15_downsamples_on_the_3x3():
    model = build_model(ModelConfig(type="resnet", depth=50, width=8, small_image_stem=True), _spec((32, 32, 3)))
    assert model.get_layer("stage2_block1_1_conv").strides == (1, 1)
    assert model.get_layer("stage2_block1_2_conv").strides == (2, 2)
    assert model.get_layer("stage2_block1_proj_conv").strides == (2, 2)
    # small stem: 3x3/1 conv, no max-pool, so stage 1 still sees 32x32
    assert model.get_layer("stem_conv").kernel_size == (3, 3)
    assert model.get_layer("stage1_block1_out").output.shape[1:3] == (32, 32)
    # the last BN of each residual branch starts at zero (block = identity at init)
    assert not np.any(model.get_layer("stage1_block1_3_bn").gamma.numpy())


def test_resnet_without_batchnorm_has_conv_biases():
    model = build_model(ModelConfig(type="resnet", depth=18, width=8, batch_norm=False), _spec((32, 32, 3)))
    assert model.get_layer("stem_conv").use_bias
    assert _counts(model)[1] == 0
