"""Scrapy spiders, one module per platform."""
