"""The review queue and analysts' decisions, audited: adverts first, then the review band."""

from __future__ import annotations

import json
from typing import Any

from classifier.cues import route_label
from pipeline.refer import ReferralError
from pipeline.refer.notices import content_type
from vigie.platforms import NOTICE_PLATFORM
from vigie.store import Store, cases, utcnow
from vigie.store import media as stored_media


def review_queue(store: Store, limit: int | None = 50, include_decided: bool = False) -> list[dict[str, Any]]:
    """Flagged clusters (a post without a cluster is its own): the sure adverts first, then the
    review band (posts the classifier is unsure of), each by score, highest first. A cluster
    with any sure advert in it is in the advert band."""
    rows = cases.flagged_posts(store)
    images = stored_media.image_hashes(store, [r["post_key"] for r in rows])
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] and not include_decided:
            continue
        g = groups.setdefault(
            r["cluster_id"] or r["post_key"],
            {
                "target": r["cluster_id"] or r["post_key"],
                "score": r["score"],
                "posts": [],
                "contacts": set(),
                "routes": set(),
                "cues": set(),
                "pdq": [],
                # A caption-only post ("DM 📩") is shown with what its image says.
                "example": " ".join(filter(None, [r["text"], r["ocr_text"] and f"[image] {r['ocr_text']}"])),
                "status": r["status"] or "new",
                "band": "advert" if r["is_advert"] else "review",
            },
        )
        g["posts"].append(
            {
                "key": r["post_key"],
                "url": r["url"],
                "platform": r["platform"],
                "channel": r["channel"],
                "lang": r["lang"],
                "score": r["score"],
                "published_at": r["published_at"],
                "band": "advert" if r["is_advert"] else "review",
                "status": r["status"] or "new",
            }
        )
        g["pdq"] += [h for h in images.get(r["post_key"], []) if h not in g["pdq"]]
        entities = json.loads(r["entities"] or "{}")
        g["contacts"] |= set(entities.get("contacts", []))
        if label := route_label(entities.get("origin"), entities.get("destination")):
            g["routes"].add(label)
        g["cues"] |= {c["cue"] for c in json.loads(r["cues"] or "[]")}
    out = sorted(groups.values(), key=lambda g: (g["band"] != "advert", -g["score"]))[:limit]
    for g in out:
        g["contacts"], g["routes"], g["cues"] = sorted(g["contacts"]), sorted(g["routes"]), sorted(g["cues"])
    return out


def decide(store: Store, target: str, decision: str, reason: str, reviewer: str) -> list[str]:
    """Confirm or reject a post (its key) or a whole repost cluster (its id). Audited."""
    if decision not in ("confirmed", "rejected"):
        raise ReferralError(f"decision {decision!r}: expected confirmed or rejected")
    if not reason.strip():
        raise ReferralError("a reason is required: it is kept with the decision")
    if not reviewer.strip():
        raise ReferralError("the reviewer's name is required")
    rows = cases.flagged_in(store, target)
    if not rows:
        raise ReferralError(f"{target}: no flagged post or repost cluster with this key or id")
    locked = [r["post_key"] for r in rows if r["status"] in cases.LOCKED]
    if locked:
        raise ReferralError(
            f"{target}: already referred ({', '.join(locked[:3])}); a referred item is not re-reviewed"
        )
    now = utcnow()
    with store.transaction():
        for r in rows:
            ctype = content_type(json.loads(r["cues"]))
            cases.record_decision(
                store,
                r["post_key"],
                r["cluster_id"],
                NOTICE_PLATFORM.get(r["platform"], r["platform"]),  # Instagram's go to Meta
                ctype,
                decision,
                reason.strip(),
                reviewer,
                now,
            )
    return [r["post_key"] for r in rows]


def reviewed_examples(store: Store) -> list[Any]:
    """Analysts' latest decisions as extra training items (train split)."""
    from classifier.corpus import Example

    rows = cases.latest_decisions(store)
    from classifier.corpus import LANGS

    out = []
    for r in rows:
        lang = r["lang"] if r["lang"] in LANGS else "en"
        if r["decision"] == "confirmed":
            kind = (
                "advert_documents"
                if content_type(json.loads(r["cues"])) == "documents"
                else "advert_crossing"
            )
            out.append(Example(r["text"], lang, 1, kind, "train"))
        else:
            out.append(Example(r["text"], lang, 0, "other", "train"))
    return out
