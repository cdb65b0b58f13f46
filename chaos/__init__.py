"""Fault injection: real processes killed by signal, real PostgreSQL, S3, clamd, SMTP and webhook
receivers stopped and started again; `python -m chaos` (make chaos) runs the scenarios at full size
and writes the measured table to docs/RELIABILITY.md; tests/test_chaos.py runs them small."""
