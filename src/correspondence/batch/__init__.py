"""Batches: one correspondence to any number of recipients, added in pages, committed as a whole."""
