"""The command-line face: ``jobtask`` for operators.

``jobtask`` parses the command line and runs the read commands (JobTasks,
and Jobs under ``jobtask job``), ``cancel`` a Job's cancel, ``audit`` the
history and dead-letter commands, ``output`` prints tables and JSON.
May import: ``worker.commands``, ``worker.read``, ``worker.store`` (the dead
letters), ``worker.contract``, ``worker.client`` (to send events),
``worker.settings``.
"""

from worker.cli.jobtask import main

__all__ = ["main"]
