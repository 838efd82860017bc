"""The write path: from a message on the broker to a JobTask and its Job in the store.

In the worker's main process, ``transport`` fetches messages, ``intake``
makes each a ``Delivery`` (``worker.contract.delivery``) and ``batching``
groups them into batches (``waiting`` decides which go together); in a pool
process, ``consume`` runs a batch through store outages and says what to
ack, ``processor`` applies it (``items`` are its valid events, ``jobs``
derives its Jobs), and ``feed`` announces the changed JobTasks and Jobs on
the broker's change stream; ``sweep`` sends the events that time out what
stopped reporting. Every read and write goes through ``worker.store``.
May import: ``worker.contract``, ``worker.store``, ``worker.observe`` (to
report), ``worker.settings``.
"""
