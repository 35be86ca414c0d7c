"""kerasopt callbacks (installed as ``kerasopt.callbacks``). Relative imports only inside this folder."""
