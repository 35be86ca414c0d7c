"""Exported models: the formats a run writes, the load-back check of ``kerasopt export``, serving signatures.

* :mod:`kerasopt.export.formats`: ``.keras``, SavedModel, TFLite, ONNX (and TF-TRT) written atomically;
  ``fit`` writes the run's ``model/`` folder with it;
* :mod:`kerasopt.export.verify`: ``kerasopt export``, which loads every format back and compares its
  predictions with the Keras model's;
* :mod:`kerasopt.export.serving`: the SavedModel's ``serving_default`` and ``serving_raw`` signatures.

Importing this package imports no TensorFlow; writing a format does.
"""

from kerasopt.export.formats import export_model, export_tftrt, find_exported_model
from kerasopt.export.verify import ExportMismatch, export_run

__all__ = ["ExportMismatch", "export_model", "export_run", "export_tftrt", "find_exported_model"]
