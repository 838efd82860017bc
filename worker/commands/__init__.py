"""Commands: what a caller may make the worker do, the same on every face.

``cancel`` is a Job's cancel: the rules of who may cancel what, checked
against the Job as the read path shows it to the caller, and the
``job.canceled`` it sends through the face's producer. May import:
``worker.read``, ``worker.contract``, ``worker.settings``.
"""
