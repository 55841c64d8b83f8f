"""Telegram: the public preview pages (spider and parser), Desktop exports, and a local mirror."""
