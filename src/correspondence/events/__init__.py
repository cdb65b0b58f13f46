"""Events: CloudEvents 1.0 from a transactional outbox, delivered to webhook subscribers."""
