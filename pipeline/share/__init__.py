"""Sharing with intelligence partners: what is shared (`selection`), how it is marked
(`markings`), and the two formats partners load, a MISP event (`misp`) and a STIX 2.1
bundle (`stix`), written by `export`."""

from pipeline.share.export import Export, export_misp, export_stix
from pipeline.share.selection import Selection, select

__all__ = ["Export", "Selection", "export_misp", "export_stix", "select"]
