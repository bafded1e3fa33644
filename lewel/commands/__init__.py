"""The handlers of the ``lewel`` commands (``lewel/cli.py`` wires them to its parser): each takes the parsed
arguments, calls the library and prints what it did, and returns the exit status. Every module is torch-free at
import, so that building the parser (``lewel --help``) loads no torch; a handler imports what it needs when it runs.

- ``checkpoints.py``: ``lewel info``, ``lewel export``
- ``measurement.py``: ``lewel data scenes``, ``eval-maps``, ``profile``, ``cache``, ``maps``, ``atlas``
- ``training.py``: ``lewel train``, ``knn``, ``linear``
"""
