"""Payment arrangements that identify a network: the names of hawala and "guarantee" offices
that hold the money until arrival, and cryptocurrency wallet addresses.

INTERFACE STUB: the signatures below are what `entities` calls; the bodies are being written.
"""

from __future__ import annotations


def payment_offices_in(text: str) -> list[str]:
    """Office names, canonical (e.g. "sarafi azadi"), in order of first mention."""
    return []


def wallets_in(text: str) -> list[str]:
    """Wallet addresses (e.g. "usdt-trc20:T…", "btc:bc1…"), in order of first mention."""
    return []
