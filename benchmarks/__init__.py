"""routilux benchmarks: ``python -m benchmarks`` (``make bench``) runs them all.

See README.md, section Benchmarks, and ``benchmarks/run_all.py``.
"""
