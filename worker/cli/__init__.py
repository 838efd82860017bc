"""The command-line face: ``jobtask`` for operators.

``jobtask`` parses the command line and runs the read commands, ``audit``
the history and dead-letter commands, ``output`` prints tables and JSON.
May import: ``worker.read``, ``worker.ingest`` (to replay a dead letter),
``worker.contract``, ``worker.settings``.
"""

from worker.cli.jobtask import main

__all__ = ["main"]
