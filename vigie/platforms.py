"""The platforms Vigie keeps posts from: their names, what a handle and a post id may be
on each, a post's canonical URL, and where a platform takes notices."""

from __future__ import annotations

import re

# Post keys are `platform:channel:post_id` on Telegram and `platform:post_id` elsewhere
# (`vigie.records.post_key`), so neither a handle nor an id holds a ':'.
PLATFORMS = ("telegram", "facebook", "instagram", "threads", "tiktok", "x", "youtube")
ALIASES = {
    "twitter": "x",
    "twitter.com": "x",
    "x.com": "x",
    "tiktok.com": "tiktok",
    "instagram.com": "instagram",
    "facebook.com": "facebook",
    "threads.net": "threads",
    "threads.com": "threads",
    "youtube.com": "youtube",
    "telegram.org": "telegram",
    "t.me": "telegram",
}
# Where each platform's posts are referred (`pipeline.refer.notices.DESTINATIONS`).
NOTICE_PLATFORM = {
    "telegram": "telegram",
    "facebook": "meta",
    "instagram": "meta",
    "threads": "meta",
    "tiktok": "tiktok",
    "x": "x",
    "youtube": "youtube",
}
_TELEGRAM = re.compile(r"^[a-z][a-z0-9_]{3,31}$")
# Instagram, TikTok, X and Threads handles: letters, digits, '_' and '.'; Facebook pages
# and YouTube channels also use '-', and an account without a handle is named by its id.
_HANDLE = re.compile(r"^[a-z0-9_][a-z0-9_.\-]{0,99}$")
_POST_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,128}$")


def platform_name(value: str) -> str:
    """A platform's name in Vigie ("twitter" and "x.com" are "x")."""
    name = value.strip().lower().removeprefix("www.")
    name = ALIASES.get(name, name)
    if name not in PLATFORMS:
        raise ValueError(f"platform {value!r}: expected one of {', '.join(PLATFORMS)}")
    return name


def handle(platform: str, value: str) -> str:
    """An account's handle as the store keys it: lower case, without '@'."""
    name = value.strip().removeprefix("@").lower()
    pattern = _TELEGRAM if platform == "telegram" else _HANDLE
    if not pattern.match(name):
        raise ValueError(
            f"{platform} handle {value[:60]!r}: expected letters, digits, '_', '.' or '-' "
            "(up to 100), as the platform writes it"
            if platform != "telegram"
            else f"Telegram channel {value[:60]!r}: 4-32 letters, digits or underscores, starting with a letter"
        )
    return name


def post_id(platform: str, value: object) -> int | str:
    """A post's id: a positive integer on Telegram, a string of letters, digits, '_', '-'
    and '.' elsewhere (Instagram shortcodes, Facebook `page_post` ids, X and TikTok ids)."""
    if platform == "telegram":
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise ValueError(f"Telegram post id {str(value)[:40]!r}: expected a positive integer")
        number = int(str(value))
        if not 0 < number < 2**63:
            raise ValueError(f"Telegram post id {number}: out of range")
        return number
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _POST_ID.match(text):
        raise ValueError(
            f"{platform} post id {str(value)[:40]!r}: expected 1-128 letters, digits, '_', '-' or '.'"
        )
    return text


def post_url(platform: str, account: str, post: int | str) -> str:
    """The canonical public URL of a post, where the platform's URLs follow from handle and id."""
    urls = {
        "telegram": f"https://t.me/{account}/{post}",
        "tiktok": f"https://www.tiktok.com/@{account}/video/{post}",
        "instagram": f"https://www.instagram.com/p/{post}/",
        "threads": f"https://www.threads.net/@{account}/post/{post}",
        "x": f"https://x.com/{account}/status/{post}",
        "youtube": f"https://www.youtube.com/watch?v={post}",
        "facebook": f"https://www.facebook.com/{post}",
    }
    return urls[platform]


def account_url(platform: str, account: str) -> str:
    urls = {
        "telegram": f"https://t.me/s/{account}",
        "tiktok": f"https://www.tiktok.com/@{account}",
        "instagram": f"https://www.instagram.com/{account}/",
        "threads": f"https://www.threads.net/@{account}",
        "x": f"https://x.com/{account}",
        "youtube": f"https://www.youtube.com/@{account}",
        "facebook": f"https://www.facebook.com/{account}",
    }
    return urls[platform]
