"""One call that seeds Python, NumPy and TensorFlow for a run."""

from __future__ import annotations

from kerasopt._keras import keras, tf

# TensorFlow treats the (graph seed, op seed) pair (0, 0) as "unseeded" and tests for it with ``==``,
# which raises on the tensor-valued per-epoch shuffle seed of the data pipeline. Seed 0 therefore
# gives TensorFlow this graph seed instead (Python and NumPy still get 0).
TF_SEED_FOR_ZERO = 2_147_483_629


def set_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``, except that TensorFlow's graph seed is never 0.

    Example:
        >>> set_seed(0)
        >>> tf.random.get_global_generator() is not None
        True
    """
    keras.utils.set_random_seed(seed)
    if seed == 0:
        tf.random.set_seed(TF_SEED_FOR_ZERO)
