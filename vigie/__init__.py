"""Vigie: find migrant-smuggling service adverts on public social media and refer them."""

__version__ = "0.1.0"
