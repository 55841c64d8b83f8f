"""Test-only infrastructure: the servers the integration tests start, and hostile data."""
