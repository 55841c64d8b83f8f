"""Importers of what analysts get from platforms and research tools: researcher capture
tools' files (Zeeschuimer, 4CAT), the platforms' research access (Meta Content Library,
TikTok Research API, X API v2) and plain CSV/JSON Lines. Each reads its files into posts
(`vigie.records.Post`) with `common.ImportResult`; the CLI stores them."""
