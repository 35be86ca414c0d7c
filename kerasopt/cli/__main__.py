"""``python -m kerasopt.cli ...`` is the ``kerasopt`` command."""

from kerasopt.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
