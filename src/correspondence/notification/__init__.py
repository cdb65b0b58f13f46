"""The notification slice: order rules at Initialize, and sending them by e-mail and SMS."""
