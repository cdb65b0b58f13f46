"""Sandbox outcomes: reserved addresses and parties that behave in a known way, so integrators
can test the unhappy paths of their code (README "Sandbox")."""
