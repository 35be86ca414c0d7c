"""Exported models: the formats a run writes, the load-back check of ``kerasopt export``, serving signatures.

* :mod:`kerasopt.export.formats`: ``.keras``, SavedModel, TFLite, ONNX (and TF-TRT) written atomically;
  ``fit`` writes the run's ``model/`` folder with it;
* :mod:`kerasopt.export.verify`: ``kerasopt export``, which loads every format back and compares its
  predictions with the Keras model's;
* :mod:`kerasopt.export.serving`: the SavedModel's ``serving_default`` and ``serving_raw`` signatures.

Importing this package imports no TensorFlow; writing a format does. It offers the writers of
:mod:`~kerasopt.export.formats` (``from kerasopt.export import export_model``); ``kerasopt export`` is
``from kerasopt.export.verify import export_run``, not re-exported here: verify sits above
``compress`` (it reuses its validation batch), which itself writes exports, so re-exporting it would
close an import cycle through this ``__init__``.
"""

from kerasopt.export.formats import export_model, export_tftrt, find_exported_model

__all__ = ["export_model", "export_tftrt", "find_exported_model"]
