"""Altinn Correspondence API v1, self-hosted."""
