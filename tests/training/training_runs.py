"""Shared by the training tests: a small tabular experiment on scikit-learn's bundled data."""


def tabular_config(tmp_path, **sections) -> dict:
    """Wine, an MLP of 16 units, 2 epochs, keras export only; ``sections`` merge into (or replace) a section."""
    base = {
        "name": "e2e",
        "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "wine", "batch_size": 32, "normalize": "standard"},
        "model": {"type": "mlp", "hidden_units": [16]},
        "train": {"epochs": 2, "optimizer": {"type": "adam", "learning_rate": 0.01}, "verbose": 0},
        "callbacks": {"tensorboard": {"enabled": False}},
        "export": {"formats": ["keras"]},
    }
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return base
