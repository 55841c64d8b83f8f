"""Store rows as the pipeline writes them, for tests that start from a classified post."""

from __future__ import annotations

import json
from typing import Any


def advert_analysis(key: str, cluster: str | None, processed_at: str) -> dict[str, Any]:
    """A sure advert's analysis row (English, a crossing cue), as the classifier saves one."""
    return {
        "post_key": key,
        "content_sha256": "",
        "model_id": "test",
        "lang": "en",
        "lang_confidence": 0.9,
        "score": 0.97,
        "is_advert": 1,
        "needs_review": 0,
        "cues": json.dumps([{"cue": "crossing", "text": "boat", "weight": 1.0}]),
        "entities": "{}",
        "cluster_id": cluster,
        "processed_at": processed_at,
    }
