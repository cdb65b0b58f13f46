WRITE = "altinn:correspondence.write"
READ = "altinn:correspondence.read"
SERVICE_OWNER = "altinn:serviceowner"
FORWARD_CHECK = "altinn:correspondence.forward.check"
# Asked by a notification service just before it sends (api.md §2.2, policy NotificationCheck).
NOTIFICATION_CHECK = "altinn:system/notifications.condition.check"
