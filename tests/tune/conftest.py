"""Shared settings for the tune tests: the digits recipe, shrunk so a trial trains in a few seconds."""


import pytest
from tune_common import RECIPE, fast


@pytest.fixture(scope="session")
def default_objective(tmp_path_factory) -> float:
    """val_accuracy of the recipe's own (bad, 3e-5) learning rate after the same 5 epochs: near chance."""
    import kerasopt

    tmp = tmp_path_factory.mktemp("default")
    res = kerasopt.fit(RECIPE, overrides=fast(tmp), run_dir=str(tmp / "run"), print_fn=lambda s: None)
    return res.metrics["final"]["val_accuracy"]
