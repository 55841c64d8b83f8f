"""Identifiers that stay the same from one export to the next, so partners de-duplicate:
UUIDv5 of what the object stands for (a post's key, an account, a network id)."""

from __future__ import annotations

import uuid

# Vigie's namespace for shared identifiers; never change it, or every partner sees new objects.
NAMESPACE = uuid.UUID("5b0e7f64-3c1d-4b7a-9d0e-2f6a8c41e9b3")


def stable_uuid(kind: str, *parts: str) -> str:
    """The same UUID for the same kind of object and the same parts, in every export."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join((kind, *parts))))
