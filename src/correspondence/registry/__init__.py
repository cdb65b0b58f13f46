"""Local registries: resources (owner), parties (names), contacts (like KRR), delegations."""
