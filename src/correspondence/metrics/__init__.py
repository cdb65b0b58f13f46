"""Operational metrics in the Prometheus text format."""
