"""The version, in a module of its own: the package metadata (setup.cfg), ``kerasopt --version`` and
the records a run writes read it from here without importing the Python API in ``kerasopt/__init__``."""

__version__ = "0.1.0"
