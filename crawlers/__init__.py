"""Collectors of public posts: Scrapy spiders and importers of platform exports."""
