"""Seeing the worker work: metrics, Celery task events for Flower, log lines.

``report`` is what a pool process tells the main process about a batch (each
message's outcome, its lag, the store retries), ``batches`` turns that into
``metrics``, ``task_events`` (Flower) and ``logs`` lines in the main process,
``gauges`` reads the queue and the store for the gauges, ``peers`` tells
whether each peer answers (probes whose notes a scrape reads), ``http`` counts the
API's requests and serves its ``/metrics``. The ingest path and the API call
in; nothing here imports them. May import: ``worker.contract``,
``worker.settings``, ``worker.store.client``.
"""
