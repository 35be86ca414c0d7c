"""Elastic Horovod's pure parts, which need no horovodrun (the processes are in test_elastic_horovod.py)."""

import pytest


@pytest.mark.parametrize("saved, now, expected", [(2.0, 1.0, 0.25), (0.5, 1.0, 1.0), (None, 1.0, 0.5), (1.0, 2.0, 1.0)])
def test_a_resumed_run_replaces_the_saved_world_size_factor_of_its_lr(saved, now, expected):
    """The checkpoint's LR scale holds the world-size factor of the size it was saved at (the commit
    callback saves that factor); a ``--resume`` at another size swaps it for the factor of the size now."""
    from kerasopt.distribute.horovod_elastic import ElasticCommit, resumed_scale

    commit = ElasticCommit(world_factor=lambda: now)
    assert commit.get_state() == {"lr_world_factor": now}
    commit.set_state({} if saved is None else {"lr_world_factor": saved})
    assert commit.saved_factor == saved
    assert resumed_scale(0.5, commit.saved_factor, now) == pytest.approx(expected)
