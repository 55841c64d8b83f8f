"""Pure parsing of Telegram's public channel preview pages (`https://t.me/s/<channel>`).

No network here: `parse_page` turns one saved page into posts, so every quirk of the
markup is testable from files. Hostile pages are part of the markup's quirks: a page is
decoded as its Content-Type, byte-order mark or `<meta charset>` says; nesting deeper than
libxml2 builds is flattened so the text survives; a message whose id the store cannot hold
is skipped and named in `PreviewPage.skipped`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin

from lxml import etree
from lxml import html as lxml_html
from w3lib.encoding import html_to_unicode

from vigie.errors import MarkupChangedError, SourceUnavailableError
from vigie.records import MAX_INTEGER, Post
from vigie.sanitize import web_url

CANONICAL = "https://t.me"
_BG_URL = re.compile(r"background-image\s*:\s*url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")
_VIEWS = re.compile(r"^\s*([0-9]{1,15}(?:[.,][0-9]{1,6})?)\s*([KkMm]?)\s*$")
_EMOJI_IMG = re.compile(r"/emoji/\d+/([0-9A-Fa-f]+)\.png")
_ASCII_DIGITS = re.compile(r"[0-9]+")
# libxml2 stops building a tree 2048 levels deep even with huge_tree, and drops the rest of
# the page with it; a page nested deeper is re-parsed with deeper elements unwrapped.
_FLAT_DEPTH = 256
_VOID = frozenset(
    (
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    )
)


def _has_class(cls: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')"


@dataclass(slots=True)
class PreviewPage:
    channel: str | None
    title: str | None
    posts: list[Post] = field(default_factory=list)
    before: int | None = None  # the "load older" link's data-before, when present
    skipped: list[str] = field(default_factory=list)  # messages that are not readable posts, and why


class _Unreadable(Exception):
    """One message cannot become a post; the rest of the page can."""


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _integer(raw: str) -> int | None:
    """ASCII digits within what the store holds, else None ('²' is a digit to str.isdigit)."""
    if not _ASCII_DIGITS.fullmatch(raw) or len(raw) > 19:
        return None
    value = int(raw)
    return value if value <= MAX_INTEGER else None


def parse_views(raw: str | None) -> int | None:
    """'845' -> 845, '1.2K' -> 1200, '2.05K' -> 2050, '1.5M' -> 1500000."""
    if not raw:
        return None
    match = _VIEWS.match(raw)
    if not match:
        return None
    number = float(match.group(1).replace(",", "."))
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    views = round(number * scale)
    return views if views <= MAX_INTEGER else None


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
    parts: list[str] = [node.text or ""]
    # Depth first, without recursion: a post may nest thousands of elements deep.
    # Each entry is (element, whether its children are done and only its tail is left).
    stack = [(child, False) for child in reversed(node)]
    while stack:
        el, done = stack.pop()
        if done:
            parts.append(el.tail or "")
            continue
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "i" and "emoji" in (el.get("class") or "").split():
            inner = el.text_content()
            parts.append(inner if inner.strip() else _emoji_from_image(el.get("style") or ""))
            parts.append(el.tail or "")
            continue
        if tag == "br":
            parts.append("\n")
        elif el.text and tag:
            parts.append(el.text)
        stack.append((el, True))
        if tag:
            stack.extend((child, False) for child in reversed(el))
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
    """The http(s) URL `href` leads to, or None: a `javascript:`, `data:` or other link is
    not kept as one (the text around it stays in the post)."""
    try:
        return web_url(urljoin(page_url, href.strip()))
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
    if not _ASCII_DIGITS.fullmatch(raw_id):
        raise MarkupChangedError(
            f"Telegram preview markup changed: data-post {_short(data_post)!r} ({page_url})"
        )
    if "service_message" in (msg.get("class") or ""):
        return None  # "channel created", "photo updated": not posts
    post_id = _integer(raw_id)
    if not post_id:
        raise _Unreadable(f"message {_short(data_post)!r}: id out of range (1 to {MAX_INTEGER}) ({page_url})")
    channel = channel.lower()

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
    if preview is not None and (url := _absolute(page_url, str(preview))) and url not in links:
        links.append(url)

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


class _Flattener(HTMLParser):
    """Re-emits markup with the elements nested deeper than `depth` unwrapped: their tags
    go, their text and everything else stay where they were."""

    def __init__(self, depth: int) -> None:
        super().__init__(convert_charrefs=False)
        self.depth = depth
        self.out: list[str] = []
        self.open: list[tuple[str, bool]] = []  # (tag, kept); the kept ones come first
        self.kept = 0
        self.count: dict[str, int] = {}  # open elements per tag, so stray end tags cost nothing

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        text = self.get_starttag_text() or ""
        if tag in _VOID:
            self.out.append(text)
            return
        keep = self.kept < self.depth
        self.open.append((tag, keep))
        self.count[tag] = self.count.get(tag, 0) + 1
        if keep:
            self.kept += 1
            self.out.append(text)

    # libxml2 opens a non-void element written as <div/>: count it as open too.
    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if not self.count.get(tag):
            self.out.append(f"</{tag}>")  # stray: libxml2 ignores it as well
            return
        at = len(self.open) - 1
        while self.open[at][0] != tag:
            at -= 1
        closed = self.open[at:]
        del self.open[at:]
        for name, kept in closed:
            self.count[name] -= 1
            self.kept -= kept
        if closed[0][1]:
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")


def _flatten(markup: str, depth: int = _FLAT_DEPTH) -> str:
    flattener = _Flattener(depth)
    flattener.feed(markup)
    flattener.close()
    return "".join(flattener.out)


def _too_deep(parser: lxml_html.HTMLParser) -> bool:
    return any(e.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for e in parser.error_log)


def _document(markup: str, page_url: str) -> lxml_html.HtmlElement:
    try:
        parser = lxml_html.HTMLParser(huge_tree=True)
        root = lxml_html.document_fromstring(markup, parser=parser)
        if _too_deep(parser):
            parser = lxml_html.HTMLParser(huge_tree=True)
            root = lxml_html.document_fromstring(_flatten(markup), parser=parser)
    except (ValueError, etree.ParserError) as exc:
        raise MarkupChangedError(f"Telegram preview page cannot be parsed ({page_url}): {exc}") from None
    if _too_deep(parser):
        raise MarkupChangedError(f"Telegram preview page is nested too deeply to read ({page_url})")
    return root


def parse_page(
    body: str | bytes, page_url: str, captured_at: str = "", content_type: str | None = None
) -> PreviewPage:
    """Parse one preview page. Bytes are decoded as `content_type` (the Content-Type
    header), else a byte-order mark or `<meta charset>`, else UTF-8. Raises
    SourceUnavailableError for a channel page without a public preview and
    MarkupChangedError when the page is not a preview page at all."""
    if isinstance(body, bytes):
        _, body = html_to_unicode(content_type, body)
    if not body.strip():
        raise MarkupChangedError(f"Telegram preview page is empty ({page_url})")
    root = _document(body, page_url)

    messages = root.xpath(f"//div[{_has_class('tgme_widget_message')}]")
    info = _first(root, f"//*[{_has_class('tgme_channel_info')}]")
    more = root.xpath(f"//a[{_has_class('tme_messages_more')}][@data-before]/@data-before")
    if not messages and info is None and not more:
        if root.xpath(f"//*[{_has_class('tgme_page')}]"):
            raise SourceUnavailableError(f"channel has no public preview ({page_url})")
        raise MarkupChangedError(
            f"Telegram preview markup changed: no messages and no channel header ({page_url})"
        )

    posts: list[Post] = []
    skipped: list[str] = []
    for message in messages:
        try:
            post = _parse_message(message, page_url, captured_at)
        except _Unreadable as exc:
            skipped.append(str(exc))
            continue
        if post is not None:
            posts.append(post)
    title_node = _first(root, f"//*[{_has_class('tgme_channel_info_header_title')}]")
    before = next((b for v in more if (b := _integer(str(v)))), None)
    channel = posts[0].channel if posts else None
    return PreviewPage(
        channel=channel,
        title=title_node.text_content().strip() if title_node is not None else None,
        posts=posts,
        before=before,
        skipped=skipped,
    )
