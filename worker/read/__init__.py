"""The read path: SpaceONE's get, list and stat over the store, for every face.

``reads`` runs the three reads, ``history`` a task's deliveries; ``models``
and ``parse`` check request bodies, ``query``, ``conditions``, ``fields``,
``language`` and ``stat_query`` translate SpaceONE's Query and
StatisticsQuery into MongoDB plans, ``resource`` describes what can be read
(the JobTask and the Job). The plans run through ``worker.store.reads``;
errors are ``worker.contract.errors``' coded ones. May import:
``worker.contract``, ``worker.store``, ``worker.settings``.
"""
