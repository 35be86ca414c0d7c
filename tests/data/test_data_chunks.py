"""Chunked decoding and preparation (``DECODE_CHUNK``, ``PREP_CHUNK``) keep every example and its order."""

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from kerasopt._keras import tf
from kerasopt.data import build_datasets
from kerasopt.data.prepare import PREP_CHUNK
from kerasopt.data.sources_files import DECODE_CHUNK


def test_image_dir_decodes_every_file_in_order_across_chunks(tmp_path, make_cfg, collect):
    # 2 * DECODE_CHUNK + 7 files: two full chunks and a partial one. File i of class c is filled
    # with the value 3 * i + c, so the expected array is known without decoding anything.
    n = 2 * DECODE_CHUNK + 7
    for c in (0, 1):
        (tmp_path / f"c{c}").mkdir()
    expected = []
    for c in (0, 1):
        for i in range(n // 2 + c):
            value = 3 * i + c
            Image.new("L", (5, 3), value).save(tmp_path / f"c{c}" / f"{i:04d}.png")
            expected.append((value, c))
    cfg = make_cfg(source="image_dir", path=str(tmp_path), channels=1, validation_split=0.0, shuffle_buffer=0,
                   batch_size=50)
    x, y = collect(build_datasets(cfg).train)
    assert x.shape == (len(expected), 3, 5, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert np.array_equal(x[:, 0, 0, 0], [v for v, _ in expected])
    assert np.array_equal(y, [c for _, c in expected])
    assert np.array_equal(x.min(axis=(1, 2, 3)), x.max(axis=(1, 2, 3)))  # each image is one solid value


def test_chunked_reshape_and_resize_equal_one_example_at_a_time(make_cfg, collect):
    # 1,797 digits (28 chunks of 64 and a partial one): reshape 64 -> 8x8x1, resize to 12x12,
    # compared with TensorFlow's resize of each raw example on its own, in split order.
    cfg = make_cfg(source="sklearn", name="digits", reshape=[8, 8, 1], resize=[12, 12], validation_split=0.0,
                   shuffle_buffer=0, batch_size=100)
    assert len(load_digits().data) % PREP_CHUNK
    x, y = collect(build_datasets(cfg).train)
    raw = load_digits().data.astype("float32").reshape(-1, 8, 8, 1)
    want = np.stack([tf.image.resize(img, [12, 12], method="bilinear").numpy() for img in raw])
    assert x.shape == want.shape
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-5)
    assert np.array_equal(y, load_digits().target)


def test_scalar_features_become_vectors_of_one(tmp_path, make_cfg, collect):
    path = tmp_path / "one.csv"
    rows = "\n".join(f"{i * 0.5},{i % 2}" for i in range(PREP_CHUNK + 5))
    path.write_text("f,label\n" + rows + "\n")
    cfg = make_cfg(source="csv", path=str(path), label_column="label", validation_split=0.0, shuffle_buffer=0)
    x, y = collect(build_datasets(cfg).train)
    assert x.shape == (PREP_CHUNK + 5, 1)
    np.testing.assert_array_equal(x[:, 0], np.arange(PREP_CHUNK + 5) * 0.5)
