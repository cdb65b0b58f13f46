"""The notification slice: order rules at initialize (sending comes later)."""
