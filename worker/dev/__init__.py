"""What ``make run`` starts: the embedded Redis and store, the worker and the API.

``run`` supervises them (``python -m worker run``), ``embedded`` runs the
servers as child processes. May import anything.
"""
