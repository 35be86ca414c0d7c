"""``distribute.backend: mirrored``: MirroredStrategy over the GPUs of one process."""

from __future__ import annotations

from kerasopt.distribute.backend import Backend


class MirroredBackend(Backend):
    """One process, one replica per visible GPU; gradients are all-reduced inside the step."""

    name = "mirrored"

    def __init__(self, reason: str) -> None:
        from kerasopt._keras import tf

        strategy = tf.distribute.MirroredStrategy()
        super().__init__(reason, strategy=strategy, replicas=strategy.num_replicas_in_sync)
