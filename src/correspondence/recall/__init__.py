"""Recall and pause (issue 13, part 2): a service owner stops what is still pending for one
correspondence, a set of them or a whole resource, and may pause a resource so nothing of it is
published or notified until it is resumed. Routes live under /ext/api/v1/, apart from the real
service's."""
