"""Referrals: review, notices platforms can act on, removal tracking, statistics.

Lifecycle of a flagged post: new → confirmed | rejected (review, audited) → referred
(export: batch id, time, evidence frozen) → removed | online (verified by re-crawling).
"""

from __future__ import annotations

from vigie.errors import VigieError


class ReferralError(VigieError):
    """Raised by review and export when an item cannot take the requested step (unknown
    target, already referred, notifier not configured). Nothing is written."""
