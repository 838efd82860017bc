"""The store layer: every collection, its documents, its indexes and every read and write of them.

``collections`` names the collections and makes their indexes (the one
``ensure_indexes``); ``tasks`` holds the JobTask documents, ``log`` each
task's numbered entries (the commit), ``summaries`` their shared state as
BSON, ``history`` every delivery and the parked events, ``dead_letters``
what an operator must look at, ``jobs`` the Job documents, ``sweep`` the
stale work's reads, ``reads`` the read API's queries with their time limit,
``documents`` how a stored document reads on every face; ``client`` makes
the connection and ``retry`` tells store errors apart and retries through
them. Nothing outside this package and the read path's query translation
speaks pymongo. May import: ``worker.contract``, ``worker.settings``.
"""
