"""Pure parsing of Telegram's public channel preview pages (`https://t.me/s/<channel>`).

No network here: `parse_page` turns one saved page into posts, so every quirk of the
markup is testable from files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin

from lxml import html as lxml_html

from crawlers.items import Post
from vigie.errors import MarkupChangedError, SourceUnavailableError

CANONICAL = "https://t.me"
_BG_URL = re.compile(r"background-image\s*:\s*url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
_VIEWS = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*([KkMm]?)\s*$")
_EMOJI_IMG = re.compile(r"/emoji/\d+/([0-9A-Fa-f]+)\.png")


def _has_class(cls: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')"


@dataclass(slots=True)
class PreviewPage:
    channel: str | None
    title: str | None
    posts: list[Post] = field(default_factory=list)
    before: int | None = None  # the "load older" link's data-before, when present


def parse_views(raw: str | None) -> int | None:
    """'845' -> 845, '1.2K' -> 1200, '2.05K' -> 2050, '1.5M' -> 1500000."""
    if not raw:
        return None
    match = _VIEWS.match(raw)
    if not match:
        return None
    number = float(match.group(1).replace(",", "."))
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return round(number * scale)


def _emoji_from_image(style: str) -> str:
    # Emoji drawn as images carry their UTF-8 bytes in hex in the file name.
    match = _EMOJI_IMG.search(style)
    if not match:
        return ""
    try:
        return bytes.fromhex(match.group(1)).decode("utf-8")
    except ValueError:
        return ""


def _text_of(node: lxml_html.HtmlElement) -> str:
    parts: list[str] = []

    def walk(el: lxml_html.HtmlElement) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "br":
            parts.append("\n")
        elif tag == "i" and "emoji" in (el.get("class") or "").split():
            inner = el.text_content()
            parts.append(inner if inner.strip() else _emoji_from_image(el.get("style") or ""))
            if el.tail:
                parts.append(el.tail)
            return
        elif el.text and tag:
            parts.append(el.text)
        if tag:
            for child in el:
                walk(child)
        if el.tail:
            parts.append(el.tail)

    if node.text:
        parts.append(node.text)
    for child in node:
        walk(child)
    text = "".join(parts).replace("\r\n", "\n").replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _iso(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).isoformat()
    except ValueError:
        return None


def _absolute(page_url: str, href: str) -> str | None:
    try:
        return urljoin(page_url, href.strip())
    except ValueError:  # garbled markup, e.g. "http://[broken"
        return None


def _first(node: lxml_html.HtmlElement, xpath: str) -> lxml_html.HtmlElement | None:
    found = node.xpath(xpath)
    return found[0] if found else None


def _parse_message(msg: lxml_html.HtmlElement, page_url: str, captured_at: str) -> Post | None:
    data_post = msg.get("data-post")
    if not data_post or "/" not in data_post:
        raise MarkupChangedError(
            f"Telegram preview markup changed: no data-post on message node ({page_url})"
        )
    channel, _, raw_id = data_post.rpartition("/")
    if not raw_id.isdigit():
        raise MarkupChangedError(f"Telegram preview markup changed: data-post {data_post!r} ({page_url})")
    if "service_message" in (msg.get("class") or ""):
        return None  # "channel created", "photo updated": not posts
    channel, post_id = channel.lower(), int(raw_id)

    text_node = _first(
        msg,
        f".//div[{_has_class('tgme_widget_message_text')} and not({_has_class('js-message_reply_text')})"
        f" and not(ancestor::a[{_has_class('tgme_widget_message_reply')}])]",
    )
    text = _text_of(text_node) if text_node is not None else ""
    links: list[str] = []
    if text_node is not None:
        for a in text_node.xpath(".//a[@href]"):
            href = _absolute(page_url, a.get("href"))
            if href and href.startswith(("http://", "https://")) and "?q=" not in href and href not in links:
                links.append(href)
    preview = _first(msg, f".//a[{_has_class('tgme_widget_message_link_preview')}]/@href")
    if preview is not None and str(preview) not in links:
        links.append(str(preview))

    media: list[str] = []
    for wrap in msg.xpath(f".//*[{_has_class('tgme_widget_message_photo_wrap')}]"):
        found = _BG_URL.search(wrap.get("style") or "")
        if found and (url := _absolute(page_url, found.group(1))):
            media.append(url)
    for src in msg.xpath(".//video/@src"):
        if url := _absolute(page_url, str(src)):
            media.append(url)

    date = _first(msg, f".//a[{_has_class('tgme_widget_message_date')}]/time/@datetime")
    views = _first(msg, f".//*[{_has_class('tgme_widget_message_views')}]")
    forwarded = _first(msg, f".//*[{_has_class('tgme_widget_message_forwarded_from')}]//a/@href")
    reply = _first(msg, f".//a[{_has_class('tgme_widget_message_reply')}]/@href")
    meta = _first(msg, f".//*[{_has_class('tgme_widget_message_meta')}]")
    edited = meta is not None and "edited" in meta.text_content().lower()

    return Post(
        platform="telegram",
        channel=channel,
        post_id=post_id,
        url=f"{CANONICAL}/{channel}/{post_id}",
        text=text,
        published_at=_iso(str(date)) if date is not None else None,
        views=parse_views(views.text_content()) if views is not None else None,
        forwarded_from=_absolute(page_url, str(forwarded)) if forwarded is not None else None,
        reply_to=_absolute(page_url, str(reply)) if reply is not None else None,
        edited=edited,
        media=media,
        links=links,
        payload_sha256=hashlib.sha256(lxml_html.tostring(msg)).hexdigest(),
        captured_at=captured_at,
    )


def parse_page(body: str | bytes, page_url: str, captured_at: str = "") -> PreviewPage:
    """Parse one preview page. Raises SourceUnavailableError for a channel page without a
    public preview and MarkupChangedError when the page is not a preview page at all."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not body.strip():
        raise MarkupChangedError(f"Telegram preview page is empty ({page_url})")
    try:
        root = lxml_html.document_fromstring(body)
    except (ValueError, lxml_html.etree.ParserError) as exc:
        raise MarkupChangedError(f"Telegram preview page cannot be parsed ({page_url}): {exc}") from None

    messages = root.xpath(f"//div[{_has_class('tgme_widget_message')}]")
    info = _first(root, f"//*[{_has_class('tgme_channel_info')}]")
    more = root.xpath(f"//a[{_has_class('tme_messages_more')}][@data-before]/@data-before")
    if not messages and info is None and not more:
        if root.xpath(f"//*[{_has_class('tgme_page')}]"):
            raise SourceUnavailableError(f"channel has no public preview ({page_url})")
        raise MarkupChangedError(
            f"Telegram preview markup changed: no messages and no channel header ({page_url})"
        )

    posts = [p for m in messages if (p := _parse_message(m, page_url, captured_at)) is not None]
    title_node = _first(root, f"//*[{_has_class('tgme_channel_info_header_title')}]")
    before = next((int(str(v)) for v in more if str(v).isdigit()), None)
    channel = posts[0].channel if posts else None
    return PreviewPage(
        channel=channel,
        title=title_node.text_content().strip() if title_node is not None else None,
        posts=posts,
        before=before,
    )
