"""Alerts: rules over the store (`rules`), raised once each, delivered by webhook
(`webhook`) and email (`email`) with retries and a dead letter (`deliver`)."""

from vigie.errors import VigieError


class DeliveryError(VigieError):
    """Raised by a channel's sender (`webhook.send`, `email.send`) when one attempt to
    deliver an alert failed; `reason` is a short phrase without secrets. The delivery loop
    records it and tries again later, or keeps the alert as a dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
