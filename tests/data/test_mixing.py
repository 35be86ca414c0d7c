"""Mixup and CutMix: the targets carry exactly the mixing weights, the draws are seeded, and a fit mixes
its training batches only (and, with RandAugment on too, resumes exactly mid-epoch)."""

import os
import signal

import numpy as np
import pytest

import kerasopt
from kerasopt._keras import keras, tf
from kerasopt.config.data_schema import AugmentConfig
from kerasopt.data.mixing import mix_batch, mixed
from kerasopt.errors import ConfigError

B, H, W = 6, 10, 12


def _batch():
    """Example i is the constant image i + 1 (so every pixel says where it came from) with one-hot class i."""
    x = tf.constant(np.arange(1, B + 1, dtype=np.float32)[:, None, None, None] * np.ones((1, H, W, 2), np.float32))
    return x, tf.one_hot(np.arange(B), B)


def _seed(k):
    return tf.constant([7, k], tf.int64)


@pytest.mark.parametrize("k", range(5))
def test_mixup_targets_sum_to_one_and_carry_the_image_weights(k):
    x, y = _batch()
    mx, my = (t.numpy() for t in mix_batch(x, y, _seed(k), AugmentConfig(mixup=0.4)))
    np.testing.assert_allclose(my.sum(axis=1), 1.0, atol=1e-6)
    # x'_i = lam (i + 1) + (1 - lam) (B - i): solve for lam from example 0, check every example and target
    lam = (mx[0, 0, 0, 0] - B) / (1 - B)
    assert 0.0 <= lam <= 1.0
    for i in range(B):
        j = B - 1 - i
        np.testing.assert_allclose(mx[i], lam * (i + 1) + (1 - lam) * (j + 1), rtol=1e-5)
        expected = np.zeros(B)
        expected[i] += lam
        expected[j] += 1 - lam
        np.testing.assert_allclose(my[i], expected, atol=1e-6)


@pytest.mark.parametrize("k", range(5))
def test_cutmix_targets_equal_the_share_of_pixels_from_each_image(k):
    x, y = _batch()
    mx, my = (t.numpy() for t in mix_batch(x, y, _seed(k), AugmentConfig(cutmix=1.0)))
    np.testing.assert_allclose(my.sum(axis=1), 1.0, atol=1e-6)
    for i in range(B):
        j = B - 1 - i
        own = np.mean(mx[i] == i + 1) if i != j else 1.0
        assert set(np.unique(mx[i])) <= {i + 1, j + 1}  # pasted, not blended
        np.testing.assert_allclose(my[i, i] if i != j else my[i].max(), own, atol=1e-6)
        if i != j:
            np.testing.assert_allclose(my[i, j], np.mean(mx[i] == j + 1), atol=1e-6)


def test_the_same_seed_gives_the_same_batch_and_mix_prob_zero_leaves_it():
    x, y = _batch()
    aug = AugmentConfig(mixup=0.2, cutmix=1.0, switch_prob=0.5)
    a = [t.numpy() for t in mix_batch(x, y, _seed(3), aug)]
    b = [t.numpy() for t in mix_batch(x, y, _seed(3), aug)]
    c = [t.numpy() for t in mix_batch(x, y, _seed(4), aug)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    # both on: over 20 batches some are blended (one value per image) and some pasted (two values)
    kinds = {len(np.unique(mix_batch(x, y, _seed(k), aug)[0].numpy()[0])) for k in range(20)}
    assert kinds == {1, 2}
    off = mix_batch(x, y, _seed(3), AugmentConfig(mixup=0.2, mix_prob=0.0))
    assert np.array_equal(off[0].numpy(), x.numpy()) and np.array_equal(off[1].numpy(), y.numpy())


def test_mixed_stream_is_seeded_by_the_batch_number_so_a_resumed_stream_mixes_the_same():
    x, y = _batch()
    aug = AugmentConfig(mixup=0.3)
    # a stream from epoch 0 with 3 batches an epoch runs on into epoch 1; a resumed one starts at epoch 1
    whole = [b[0].numpy() for b in mixed(tf.data.Dataset.from_tensors((x, y)).repeat(6), aug, 1, first_batch=0)]
    resumed = [b[0].numpy() for b in mixed(tf.data.Dataset.from_tensors((x, y)).repeat(3), aug, 1, first_batch=3)]
    assert all(np.array_equal(p, q) for p, q in zip(whole[3:], resumed))
    assert not np.array_equal(whole[0], whole[3])
    ds = tf.data.Dataset.from_tensors((x, y))
    assert mixed(ds, AugmentConfig(), seed=1, first_batch=0) is ds  # off: untouched


QUIET = {"train.precision": "float32", "train.jit_compile": False, "train.verbose": 0,
         "callbacks.tensorboard.enabled": False, "report": False, "export.formats": ["keras"]}


def test_a_fit_mixes_training_targets_only_and_resumes_exactly_mid_epoch(tmp_path):
    # the recipe's translation and RandAugment too: seeded by the batch number like the mixing, they
    # must resume as exactly
    cfg = {**QUIET, "data.augment.mixup": 0.2, "data.augment.cutmix": 1.0, "train.epochs": 3,
           "data.augment.randaugment": {}, "deterministic": True}
    straight = kerasopt.fit("configs/digits_cnn.yaml", cfg, run_dir=str(tmp_path / "a"), print_fn=lambda s: None)
    # validation is not mixed: the logged val_loss is the model's loss on the plain validation split
    ev = kerasopt.evaluate(straight.run_dir.path)
    assert ev["loss"] == pytest.approx(straight.history["val_loss"][-1], rel=1e-5)
    assert ev["accuracy"] == pytest.approx(straight.history["val_accuracy"][-1], abs=1e-6)

    class SigtermAt(keras.callbacks.Callback):  # mid-epoch 2: kerasopt checkpoints and stops
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 4):
                os.kill(os.getpid(), signal.SIGTERM)

    stopped = kerasopt.fit("configs/digits_cnn.yaml", cfg, run_dir=str(tmp_path / "b"), print_fn=lambda s: None,
                           callbacks=[SigtermAt()])
    assert stopped.metrics["interrupted_by"] == "SIGTERM"
    resumed = kerasopt.fit("configs/digits_cnn.yaml", cfg, run_dir=str(tmp_path / "b"), resume=True,
                           print_fn=lambda s: None)
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(straight.model.get_weights(), resumed.model.get_weights())]
    assert max(diffs) == 0.0


@pytest.mark.parametrize("overrides, key, message", [
    ({"data.source": "sklearn", "data.name": "diabetes", "data.resize": None, "model.type": "mlp",
      "data.augment.mixup": 0.2}, "data.augment.mixup", "this run is a regression"),
    ({"data.augment.mixup": 0.2, "train.class_weight": "balanced"}, "train.class_weight",
     "a mixed example has two"),
    ({"data.augment.cutmix": 1.0, "train.loss": "sparse_categorical_crossentropy"}, "data.augment.cutmix",
     "use loss categorical_crossentropy"),
    ({"data.source": "sklearn", "data.name": "wine", "data.resize": None, "model.type": "mlp",
      "data.augment.cutmix": 1.0}, "data.augment.cutmix", "needs (height, width, channels) inputs"),
], ids=["regression", "class-weights", "sparse-loss", "cutmix-on-a-table"])
def test_what_mixing_cannot_combine_with_is_one_line_naming_the_key(tmp_path, overrides, key, message):
    base = {"name": "mix", "data": {"source": "sklearn", "name": "digits", "resize": [16, 16],
                                    "normalize": "minmax"},
            "model": {"type": "cnn"}, "train": {"epochs": 1}}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        kerasopt.fit(base, {**QUIET, **overrides}, run_dir=str(tmp_path / "bad"), print_fn=lambda s: None)
    assert err.value.key == key
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_mixing_with_a_binary_head_and_with_label_smoothing_trains(tmp_path):
    cancer = {"name": "bin", "data": {"source": "sklearn", "name": "breast_cancer", "normalize": "standard",
                                      "augment": {"mixup": 0.4}},
              "model": {"type": "mlp", "hidden_units": [16]},
              "train": {"epochs": 8, "verbose": 0, "optimizer": {"type": "adam", "learning_rate": 3e-3}},
              "callbacks": {"tensorboard": {"enabled": False}}, "report": False, "export": {"formats": ["keras"]}}
    binary = kerasopt.fit(cancer, run_dir=str(tmp_path / "bin"), print_fn=lambda s: None)
    assert binary.model.output_shape == (None, 1) and binary.metrics["final"]["val_accuracy"] >= 0.9
    smooth = kerasopt.fit("configs/digits_cnn.yaml", {**QUIET, "data.augment.mixup": 0.2, "train.epochs": 4,
                                                     "train.label_smoothing": 0.1},
                          run_dir=str(tmp_path / "smooth"), print_fn=lambda s: None)
    assert np.isfinite(smooth.history["loss"]).all()
    assert smooth.history["loss"][-1] < smooth.history["loss"][0]
