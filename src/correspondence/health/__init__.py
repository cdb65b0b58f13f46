"""Health: the service answers when its database answers."""
