"""Fault tests: real worker, Redis and API processes broken on purpose.

Run them all with `python -m tests.faults`, or `pytest -m faults`.
"""
