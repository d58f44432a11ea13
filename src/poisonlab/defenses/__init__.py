"""Defenses, by pipeline stage: ``data`` (before training), ``federated`` (per round)."""
