"""Enrich stored posts: classify in batches, extract contacts, prices and routes, group reposts."""
