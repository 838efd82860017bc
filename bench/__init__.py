"""``make bench``: the event pipeline's and the reads' benchmark (``python -m bench``).

``main`` runs it and prints the tables; ``streams`` makes the event streams,
``runs`` drains them through a real worker (and a no-op Celery task,
``noop``) and checks the store, ``processes`` watches the processes' CPU and
memory, ``reads`` times the read API against raw queries, ``soak`` the
memory over a million events. Performance is measured here, never by timed
assertions in the tests; ``tests/system/test_bench_smoke.py`` runs each part
small to keep it working.
"""
