"""Reproducible benchmarks: a seeded dataset generator and a runner comparing the app with raw PostgreSQL.

``python -m bench.run [--small]`` (``make bench`` / ``make bench-small``); see bench/run.py.
"""
