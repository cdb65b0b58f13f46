"""The correspondence slice: initialize, publish, and the sender's view."""
