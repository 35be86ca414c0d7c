"""Random resized crops: the boxes follow timm's rule (and its fallback), a folder's training crops are
cut from the files each epoch (validation stays cached and whole), the draws are seeded, and a fit
with crops from a JPEG folder resumes exactly mid-epoch."""

import math
import os
import signal

import numpy as np
import pytest
from PIL import Image

import kerasopt
from kerasopt._keras import keras, tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.crops import crop_batch, crop_boxes, decode_crop
from kerasopt.data.pipeline import build_datasets

SCALE, RATIO = (0.08, 1.0), (0.75, 4 / 3)


def _timm_mean_area(height, width, n=20000):
    rng = np.random.default_rng(0)
    areas = []
    for _ in range(n):
        for _ in range(10):
            target = height * width * rng.uniform(*SCALE)
            aspect = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                areas.append(w * h / (height * width))
                break
        else:
            areas.append(min(width, round(height * RATIO[1])) * height / (height * width))  # wide: trimmed
    return float(np.mean(areas))


def test_boxes_lie_inside_with_the_area_and_ratio_asked_for():
    hw = tf.constant([[120, 200]] * 400)
    boxes = crop_boxes(hw, tf.constant([4, 2], tf.int64), SCALE, RATIO).numpy()
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 120).all() and (left + w <= 200).all()
    area = h * w / (120 * 200)
    # rounding each side moves the area and ratio a little past the drawn values
    assert area.min() >= SCALE[0] * 0.9 and area.max() <= 1.0
    assert (w / h).min() >= RATIO[0] * 0.9 and (w / h).max() <= RATIO[1] * 1.1
    # the first of ten tries that fits, as timm's get_params (re-implemented in numpy): large boxes of a
    # 120x200 image rarely fit within the ratios, so the mean area is well under the scale's midpoint
    assert area.mean() == pytest.approx(_timm_mean_area(120, 200), abs=0.04)
    assert len(set(zip(top, left))) > 300  # positions vary
    again = crop_boxes(hw, tf.constant([4, 2], tf.int64), SCALE, RATIO).numpy()
    np.testing.assert_array_equal(boxes, again)


def test_when_no_try_fits_the_box_is_the_centred_image_trimmed_to_the_ratio():
    # a 10x200 strip: a box of >= 90% of the area with ratio <= 4/3 never fits, so timm's fallback:
    # full height, width round(10 * 4/3) = 13, centred: left = (200 - 13) // 2 = 93
    boxes = crop_boxes(tf.constant([[10, 200], [200, 10], [50, 60]]), tf.constant([0, 1], tf.int64), (0.9, 1.0),
                       RATIO).numpy()
    np.testing.assert_array_equal(boxes[0], [0, 93, 10, 13])
    # a 200x10 column: width 10, height round(10 / 0.75) = 13, top = (200 - 13) // 2 = 93
    np.testing.assert_array_equal(boxes[1], [93, 0, 13, 10])
    assert boxes[2, 2] * boxes[2, 3] >= 0.85 * 50 * 60  # a fitting box is drawn normally


def test_a_jpeg_is_decoded_only_inside_the_box_and_equals_decoding_it_whole_then_cropping(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 96x128
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(smooth).save(tmp_path / "a.png")
    seed = tf.constant([9, 3], tf.int64)
    top, left, h, w = crop_boxes(tf.constant([[96, 128]]), seed, SCALE, RATIO).numpy()[0]
    for name in ("a.jpg", "a.png"):
        data = tf.io.read_file(str(tmp_path / name))
        ours = decode_crop(data, [40, 40], 3, seed, SCALE, RATIO).numpy().astype(np.float32)
        whole = tf.io.decode_image(data, channels=3).numpy()[top:top + h, left:left + w]
        expected = tf.image.resize(whole, [40, 40]).numpy()
        assert ours.shape == (40, 40, 3)
        assert np.abs(ours - expected).max() <= 1.0, name  # uint8 rounding only
    # data.augment.flip on a folder: each file's crop is mirrored or not, by its own seed
    plain = [decode_crop(data, [40, 40], 3, tf.constant([9, k], tf.int64), SCALE, RATIO).numpy() for k in range(12)]
    flips = [decode_crop(data, [40, 40], 3, tf.constant([9, k], tf.int64), SCALE, RATIO, "horizontal").numpy()
             for k in range(12)]
    mirrored = [np.array_equal(f, p[:, ::-1]) and not np.array_equal(f, p) for p, f in zip(plain, flips)]
    assert all(m or np.array_equal(f, p) for m, f, p in zip(mirrored, flips, plain)) and 3 <= sum(mirrored) <= 9


def test_a_batch_crop_resizes_each_image_from_its_own_box():
    # image i holds the value of its pixel's row: a crop then shows only rows inside its box
    rows = np.arange(32, dtype=np.float32)[None, :, None, None] * np.ones((6, 1, 32, 1), np.float32)
    seed = tf.constant([1, 5], tf.int64)
    out = crop_batch(tf.constant(rows), seed, (0.2, 0.5), RATIO).numpy()
    boxes = crop_boxes(tf.constant([[32, 32]] * 6), seed, (0.2, 0.5), RATIO).numpy()
    for image, (top, _, h, _) in zip(out, boxes):
        assert image.min() == pytest.approx(top, abs=1e-3) and image.max() == pytest.approx(top + h - 1, abs=1e-3)
    assert out.shape == rows.shape


def _folder(root, n=24, size=(48, 64)):
    rng = np.random.default_rng(1)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            base = np.full((*size, 3), 60 if c == "cat" else 190, np.uint8)
            img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / c / f"{i}.{'jpg' if i % 3 else 'png'}")
    return root


def test_a_folder_crops_training_files_each_epoch_and_keeps_validation_whole_and_cached(tmp_path):
    root = _folder(tmp_path / "imgs")
    base = {"source": "image_dir", "path": str(root), "image_size": [24, 24], "batch_size": 8, "cache": True}
    plain = build_datasets(ExperimentConfig(data=base))
    crops = build_datasets(ExperimentConfig(data={**base, "augment": {"random_resized_crop": {"scale": [0.3, 0.6]},
                                                                      "flip": "horizontal"}}))
    assert crops.spec.extras["random_resized_crop"]["from"] == "each file, each epoch"
    assert crops.spec.extras["random_resized_crop"]["flip"] == "with each file's crop"
    assert "validation only" in crops.spec.extras["cache"]["reason"]
    # validation: the whole images, exactly as without crops
    for (a, ya), (b, yb) in zip(plain.val, crops.val):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    epoch0 = [x.numpy() for x, _ in crops.train_from_epoch(0).take(crops.steps_per_epoch)]
    again = [x.numpy() for x, _ in crops.train_from_epoch(0).take(crops.steps_per_epoch)]
    epoch1 = [x.numpy() for x, _ in crops.train_from_epoch(1).take(crops.steps_per_epoch)]
    assert all(np.array_equal(p, q) for p, q in zip(epoch0, again))
    assert not np.array_equal(epoch0[0], epoch1[0])
    # every training image is a crop: the whole-image decode of no file equals it
    whole = {x.tobytes() for batch, _ in plain.train_from_epoch(0).take(plain.steps_per_epoch)
             for x in batch.numpy()}
    assert not any(x.tobytes() in whole for batch in epoch0 for x in batch)
    assert crops.spec.num_train == plain.spec.num_train
    labels = sorted(int(v) for _, y in crops.train_from_epoch(0).take(crops.steps_per_epoch) for v in y.numpy())
    assert labels == sorted(int(v) for _, y in plain.train_from_epoch(0).take(plain.steps_per_epoch)
                            for v in y.numpy())  # each file once an epoch


QUIET = {"train.precision": "float32", "train.jit_compile": False, "train.verbose": 0,
         "callbacks.tensorboard.enabled": False, "report": False, "export.formats": ["keras"]}


def test_a_fit_with_file_crops_and_randaugment_learns_and_resumes_exactly_mid_epoch(tmp_path):
    root = _folder(tmp_path / "imgs")
    cfg = {"name": "crops", "seed": 3, "deterministic": True,
           "data": {"source": "image_dir", "path": str(root), "image_size": [24, 24], "batch_size": 8,
                    "normalize": "minmax",
                    # operations that keep dark dark and light light (invert would swap the classes)
                    "augment": {"random_resized_crop": {"scale": [0.25, 1.0]}, "randaugment": {
                        "magnitude": 5, "ops": ["rotate", "shear_x", "translate_y", "sharpness", "contrast"]}}},
           "model": {"type": "cnn", "filters": [8, 16], "dense_units": 16, "batch_norm": False},
           "train": {"epochs": 3, "optimizer": {"type": "adam", "learning_rate": 1e-2},
                     "schedule": {"type": "constant"}}}
    straight = kerasopt.fit(cfg, QUIET, run_dir=str(tmp_path / "a"), print_fn=lambda s: None)
    assert straight.history["val_accuracy"][-1] >= 0.9  # dark vs light survives any crop

    class SigtermAt(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 2):
                os.kill(os.getpid(), signal.SIGTERM)

    stopped = kerasopt.fit(cfg, QUIET, run_dir=str(tmp_path / "b"), print_fn=lambda s: None, callbacks=[SigtermAt()])
    assert stopped.metrics["interrupted_by"] == "SIGTERM"
    resumed = kerasopt.fit(cfg, QUIET, run_dir=str(tmp_path / "b"), resume=True, print_fn=lambda s: None)
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(straight.model.get_weights(), resumed.model.get_weights())]
    assert max(diffs) == 0.0


def test_digits_crop_each_batch_and_bad_settings_are_one_line(tmp_path):
    bundle = build_datasets(ExperimentConfig(data={
        "source": "sklearn", "name": "digits", "resize": [16, 16], "batch_size": 32,
        "augment": {"random_resized_crop": {"scale": [0.5, 1.0]}}}))
    assert bundle.spec.extras["random_resized_crop"]["from"] == "each batch"
    a = next(iter(bundle.train_from_epoch(0)))[0].numpy()
    b = next(iter(bundle.train_from_epoch(0)))[0].numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 16, 16, 1) and 0.0 <= a.min() and a.max() <= 16.0 + 1e-4
    from kerasopt.errors import ConfigError

    for bad, key in (({"random_resized_crop": {"scale": [0.5, 1.5]}}, "data.augment.random_resized_crop.scale"),
                     ({"random_resized_crop": {"ratio": [2, 1]}}, "data.augment.random_resized_crop.ratio")):
        with pytest.raises(ConfigError) as err:
            kerasopt.fit({"name": "x", "data": {"source": "sklearn", "name": "digits", "augment": bad}}, QUIET,
                         run_dir=str(tmp_path / "bad"), print_fn=lambda s: None)
        assert err.value.key == key and "low" in err.value.message
    with pytest.raises(ConfigError, match="random_resized_crop applies to images") as err:
        kerasopt.fit({"name": "x", "data": {"source": "sklearn", "name": "wine",
                                            "augment": {"random_resized_crop": True}}, "model": {"type": "mlp"}},
                     QUIET, run_dir=str(tmp_path / "bad"), print_fn=lambda s: None)
    assert err.value.key == "data.augment.random_resized_crop"
    assert math.isclose(4 / 3, RATIO[1])
