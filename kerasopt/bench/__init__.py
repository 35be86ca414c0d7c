"""Throughput measurement for ``kerasopt bench`` and the benchmarks in ``benchmarks/``.

- :mod:`kerasopt.bench.stats`: step and epoch timing on any clock, median/IQR/examples-per-second (no TensorFlow);
- :mod:`kerasopt.bench.measure`: the same as Keras callbacks (``StepTimer``, ``EpochTimer``);
- :mod:`kerasopt.bench.variants`: ``--variant key=v1,v2`` -> config overrides (no TensorFlow);
- :mod:`kerasopt.bench.runner`: one variant in this process, built as ``kerasopt fit`` builds it;
- :mod:`kerasopt.bench.session`: every variant in its own process, one table (no TensorFlow).

Importing this package imports no TensorFlow.
"""
