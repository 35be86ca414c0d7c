"""Old import path of :func:`kerasopt.export.verify.export_run`, kept only for ``kerasopt/cli/compress.py``.

Its owner switches that line to ``from kerasopt.export.verify import export_run``; then this module goes.
Nothing else may import it.
"""

from kerasopt.export.verify import export_run

__all__ = ["export_run"]
