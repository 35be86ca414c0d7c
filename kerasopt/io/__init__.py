"""Bottom-layer file and terminal helpers shared by every package (no TensorFlow, no kerasopt imports above ``errors``).

* :mod:`kerasopt.io.atomic`: temp-then-rename writers (text, bytes, JSON, streamed files, whole folders);
* :mod:`kerasopt.io.history`: the one reader (and trimmer) of a run's ``history.csv``;
* :mod:`kerasopt.io.console`: printing to the terminal.

Import the module you need (``from kerasopt.io.atomic import write_json``); this package imports none
of them, so ``kerasopt.io.atomic`` does not pull in ``rich``.
"""
