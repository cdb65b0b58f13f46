"""Server-rendered web pages: the recipients' inbox and the service owners' sent view."""
