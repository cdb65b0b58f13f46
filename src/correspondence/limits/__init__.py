"""Per-owner limits: requests per minute and notifications per day, answered 429 with
Retry-After (README "Per-owner limits")."""
