"""RandAugment: each operation equals PIL's (which timm calls) on real pixels, the magnitudes follow
timm's increasing recipe, the draws are seeded by the batch number, and what cannot take it is one
line naming the key. (A fit with RandAugment resuming exactly mid-epoch: tests/data/test_mixing.py.)"""

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

import kerasopt
from kerasopt._keras import tf
from kerasopt.config.data_schema import RandAugmentConfig
from kerasopt.data import randaugment as R
from kerasopt.errors import ConfigError


def _images():
    """Two 12x10 RGB images: one with full-range noise, one low-contrast (values 40..125)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 12, 10, 3)).astype(np.uint8)
    img[1] = img[1] // 3 + 40
    return img


def _pil(img, fn):
    return np.stack([np.asarray(fn(Image.fromarray(i))) for i in img]).astype(np.float32)


def _op(name, img, level, sign=1.0):
    x = tf.constant(img, tf.float32)
    n = len(img)
    return R.OPS[name](x, tf.fill([n], float(level)), tf.fill([n], float(sign))).numpy()


@pytest.mark.parametrize("name, level, pil", [
    ("equalize", 5, ImageOps.equalize),
    ("invert", 5, ImageOps.invert),
    ("posterize", 5, lambda im: ImageOps.posterize(im, 2)),  # 4 - int(4 * 5 / 10) bits
    ("posterize", 0, lambda im: ImageOps.posterize(im, 4)),
    ("solarize", 5, lambda im: ImageOps.solarize(im, 128)),  # threshold 256 - 256 * 5 / 10
    ("solarize", 2.5, lambda im: ImageOps.solarize(im, 192)),
], ids=["equalize", "invert", "posterize-m5", "posterize-m0", "solarize-m5", "solarize-m2.5"])
def test_pixel_operations_equal_pil_exactly(name, level, pil):
    img = _images()
    np.testing.assert_array_equal(_op(name, img, level), _pil(img, pil))


def test_auto_contrast_equals_pil_to_rounding_and_solarize_add_to_the_value():
    img = _images()
    assert np.abs(_op("auto_contrast", img, 5) - _pil(img, ImageOps.autocontrast)).max() <= 1.0
    # solarize_add at m=5 adds 55 to values below 128, clipped at 255
    expected = np.where(img < 128, np.minimum(img.astype(np.int32) + 55, 255), img)
    np.testing.assert_array_equal(_op("solarize_add", img, 5), expected)
    flat = np.full((1, 4, 4, 3), 77, np.uint8)  # a flat image: autocontrast and equalize leave it
    np.testing.assert_array_equal(_op("auto_contrast", flat, 5), flat)
    np.testing.assert_array_equal(_op("equalize", flat, 5), flat)


@pytest.mark.parametrize("name, enhancer", [
    ("color", ImageEnhance.Color), ("contrast", ImageEnhance.Contrast),
    ("brightness", ImageEnhance.Brightness), ("sharpness", ImageEnhance.Sharpness),
])
def test_enhancements_equal_pil_to_its_uint8_rounding_both_ways(name, enhancer):
    img = _images()
    # m=5: factor 1 + 0.45 with sign +1, 1 - 0.45 with sign -1 (timm's increasing enhance level)
    for sign, factor in ((1.0, 1.45), (-1.0, 0.55)):
        ours = _op(name, img, 5, sign)
        theirs = np.stack([np.asarray(enhancer(Image.fromarray(i)).enhance(factor)) for i in img]).astype(np.float32)
        assert np.abs(ours - theirs).max() <= 1.5, (name, sign)  # PIL rounds its grey and its result
        assert np.abs(ours - img).max() > 5  # it did change the image


def test_geometric_operations_move_pixels_as_pil_does():
    img = np.random.default_rng(1).integers(0, 256, (2, 10, 10, 3)).astype(np.uint8)
    fill = (128, 128, 128)
    # rotate by 30 * m / 10 degrees: m = 30 gives 90, counter-clockwise for +1 as PIL's rotate
    for sign in (1.0, -1.0):
        ours = _op("rotate", img, 30, sign)
        theirs = _pil(img, lambda im, s=sign: im.rotate(90 * s, resample=Image.BILINEAR, fillcolor=fill))
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # translate by 0.45 * m / 10 of the width: m = 40/9 is exactly 2 pixels, the 2 uncovered columns filled
    ours = _op("translate_x", img, 40 / 9)
    np.testing.assert_allclose(ours[:, :, :8], img[:, :, 2:], atol=1e-3)
    np.testing.assert_allclose(ours[:, :, 8:], 128.0)
    ours = _op("translate_y", img, 40 / 9, -1.0)
    np.testing.assert_allclose(ours[:, 2:], img[:, :8], atol=1e-3)
    # shear by 0.3 * m / 10: row y moves 0.1 * y pixels; row 0 stays, row 9 is 0.9 of a pixel on
    ours = _op("shear_x", img, 10 / 3)
    np.testing.assert_allclose(ours[:, 0], img[:, 0], atol=1e-3)
    np.testing.assert_allclose(ours[:, 9, :8], 0.1 * img[:, 9, :8] + 0.9 * img[:, 9, 1:9], atol=1e-2)


def test_a_batch_is_seeded_by_its_number_and_stays_in_its_value_range():
    # digits-like values 0..16: the operations act on the range mapped to 0..255 and mapped back
    x = tf.constant(np.random.default_rng(2).integers(0, 17, (16, 8, 8, 1)).astype(np.float32))
    ra = RandAugmentConfig()
    a = R.rand_augment(x, tf.constant([5, 0], tf.int64), ra, (0.0, 16.0)).numpy()
    b = R.rand_augment(x, tf.constant([5, 0], tf.int64), ra, (0.0, 16.0)).numpy()
    c = R.rand_augment(x, tf.constant([5, 1], tf.int64), ra, (0.0, 16.0)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 16.0 + 1e-4
    changed = [not np.array_equal(a[i], x.numpy()[i]) for i in range(16)]
    # each of 2 operations applies with probability 0.5: 3 in 4 images change (some ops can be no-ops)
    assert 6 <= sum(changed) < 16
    off = R.rand_augment(x, tf.constant([5, 0], tf.int64), RandAugmentConfig(prob=0.0), (0.0, 16.0))
    np.testing.assert_array_equal(off.numpy(), x.numpy())
    # one operation, always applied: invert in 0..16 is 16 - x for every image
    inv = R.rand_augment(x, tf.constant([5, 0], tf.int64), RandAugmentConfig(ops=["invert"], num_ops=1, prob=1.0),
                         (0.0, 16.0))
    np.testing.assert_allclose(inv.numpy(), 16.0 - x.numpy(), atol=1e-4)


QUIET = {"train.precision": "float32", "train.jit_compile": False, "train.verbose": 0,
         "callbacks.tensorboard.enabled": False, "report": False, "export.formats": ["keras"]}
DIGITS = {"name": "ra", "data": {"source": "sklearn", "name": "digits", "resize": [16, 16], "normalize": "minmax"},
          "model": {"type": "cnn"}, "train": {"epochs": 1}}


def _tfrecord_of_float_images(path):
    with tf.io.TFRecordWriter(str(path)) as w:
        for i in range(20):
            feats = {"image": tf.train.Feature(float_list=tf.train.FloatList(value=np.full(64, i / 20.0))),
                     "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2]))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    return {"source": "tfrecord", "path": str(path),
            "reshape": [8, 8, 1],
            "features": {"image": {"dtype": "float32", "shape": [64]}, "label": {"dtype": "int64"}}}


def test_what_randaugment_cannot_take_is_one_line_naming_the_key(tmp_path):
    cases = [
        ({"data.augment.randaugment": {"ops": ["rotate", "blur"]}}, "data.augment.randaugment.ops", "'blur'"),
        ({"data.augment.randaugment": {"value_range": [1, 0]}}, "data.augment.randaugment.value_range", "low < high"),
        ({"data": {"source": "sklearn", "name": "wine", "augment": {"randaugment": True}}, "model.type": "mlp"},
         "data.augment.randaugment", "applies to images"),
        ({"data": {**_tfrecord_of_float_images(tmp_path / "f.tfrecord"), "augment": {"randaugment": {}}}},
         "data.augment.randaugment.value_range", "set data.augment.randaugment.value_range"),
    ]
    for overrides, key, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            kerasopt.fit(DIGITS, {**QUIET, **overrides}, run_dir=str(tmp_path / "bad"), print_fn=lambda s: None)
        assert err.value.key == key, overrides
        assert not (tmp_path / "bad" / "checkpoints").exists()


def test_randaugment_true_is_timms_recipe_and_a_table_refuses_it_at_config_time():
    from kerasopt.config import load_config

    cfg = load_config({**DIGITS, "data": {**DIGITS["data"], "augment": {"randaugment": True}}})
    assert cfg.data.augment.randaugment == RandAugmentConfig(num_ops=2, magnitude=9, magnitude_std=0.5, prob=0.5)
    with pytest.raises(Exception, match="applies to images"):
        load_config({**DIGITS, "data": {"source": "csv", "path": "x.csv", "label_column": "y",
                                        "augment": {"randaugment": True}}})


def test_flip_rotation_translation_zoom_contrast_keep_their_keras_meanings():
    """The batch-number-seeded replacements of the Keras layers, measured on a single bright pixel."""
    from kerasopt.config.data_schema import AugmentConfig
    from kerasopt.data.transforms import build_augmenter

    size, n = 41, 64
    dot = np.zeros((n, size, size, 1), np.float32)
    dot[:, 20, 30] = 255.0  # 10 pixels right of the centre (20, 20)

    def where(images):
        flat = images.reshape(n, -1).argmax(axis=1)
        return np.stack([flat // size - 20, flat % size - 20], axis=1).astype(np.float64)

    def run(**aug):
        return build_augmenter(AugmentConfig(**aug))(tf.constant(dot), tf.constant([2, 9], tf.int64)).numpy()

    rotated = where(run(rotation=0.05))  # +-0.05 * 360 = +-18 degrees about the centre
    radius, angle = np.hypot(*rotated.T), np.degrees(np.arctan2(rotated[:, 0], rotated[:, 1]))
    assert np.all(np.abs(radius - 10) <= 1.0) and np.abs(angle).max() <= 18 + 6 and np.ptp(angle) > 18
    shifted = where(run(translation=0.1))  # +-4.1 pixels each way
    assert np.abs(shifted - [0, 10]).max() <= 4.6 and np.ptp(shifted[:, 1]) >= 5
    zoomed = where(run(zoom=0.2))  # the dot's distance from the centre scales by 1 / (1 +- 0.2)
    assert zoomed[:, 0].max() == 0 and 10 / 1.2 - 1 <= zoomed[:, 1].min() and zoomed[:, 1].max() <= 10 / 0.8 + 1
    flipped = where(run(flip="horizontal"))
    assert set(flipped[:, 1]) == {10.0, -10.0} and set(where(run(flip="vertical"))[:, 1]) == {10.0}
    dot[:] = 0.0
    dot[:, 25, 20] = 255.0  # 5 rows below the centre: a vertical flip moves it 5 rows above
    assert set(where(run(flip="vertical"))[:, 0]) == {5.0, -5.0}
    both = where(run(flip="horizontal_and_vertical"))
    assert set(both[:, 0]) == {5.0, -5.0} and set(both[:, 1]) == {0.0}
    # contrast about each image's mean: the mean stays (no clipping here), the spread scales by 1 +- 0.3
    grey = np.random.default_rng(0).uniform(60, 190, (n, 8, 8, 3)).astype(np.float32)
    out = build_augmenter(AugmentConfig(contrast=0.3))(tf.constant(grey), tf.constant([2, 9], tf.int64)).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), grey.mean(axis=(1, 2)), atol=1e-3)
    ratio = out.std(axis=(1, 2, 3)) / grey.std(axis=(1, 2, 3))
    assert ratio.min() >= 0.7 - 1e-4 and ratio.max() <= 1.3 + 1e-4 and np.ptp(ratio) > 0.2
