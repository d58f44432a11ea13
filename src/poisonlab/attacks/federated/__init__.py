"""Federated model-poisoning attacks: what malicious clients send instead of their honest updates."""
