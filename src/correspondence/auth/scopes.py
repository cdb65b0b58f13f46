WRITE = "altinn:correspondence.write"
READ = "altinn:correspondence.read"
SERVICE_OWNER = "altinn:serviceowner"
FORWARD_CHECK = "altinn:correspondence.forward.check"
