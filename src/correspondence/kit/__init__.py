"""Plumbing with no domain words: database, jobs, errors, time, ids, logging."""
