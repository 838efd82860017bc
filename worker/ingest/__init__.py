"""The write path: from a message on the broker to a JobTask in the store.

In the worker's main process, ``transport`` fetches messages, ``intake``
decodes them and ``batching`` groups them into batches; in a pool process,
``consume`` settles a batch through store outages (``retry``) and
``processor`` applies it: ``store`` keeps each task's event log and the
document folded from it, ``history`` every delivery and the dead letters; ``feed`` then announces
the changed JobTasks and Jobs on the broker's change stream.
May import: ``worker.contract``, ``worker.observe`` (to report), ``worker.settings``.
"""
