"""Elasticsearch and Kibana: the index template, documents with their outbox and spool, dashboards."""
