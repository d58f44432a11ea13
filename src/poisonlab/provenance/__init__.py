"""Provenance: where every sample, model and decision came from.

The ledger (SQLAlchemy Core), snapshots and diffs, contributor reputation
(:mod:`poisonlab.provenance.reputation`) and the quarantine policy for new or low-reputation
contributors (:mod:`poisonlab.provenance.quarantine`).
"""
