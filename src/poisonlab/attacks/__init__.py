"""Attacks: poison the training data (``attacks.data``) with triggers from ``attacks.triggers``."""
