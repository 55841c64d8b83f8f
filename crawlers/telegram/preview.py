"""Pure parsing of Telegram's public channel preview pages (`https://t.me/s/<channel>`).

No network here: `parse_page` turns one saved page into posts, so every quirk of the
markup is testable from files. Hostile pages are part of the markup's quirks: a page is
decoded as its Content-Type, byte-order mark or `<meta charset>` says; nesting deeper than
libxml2 builds is flattened so the text survives; a message whose id the store cannot hold
is skipped and named in `PreviewPage.skipped`.

Every photo, video, round video, voice message, audio track, document, sticker, poll,
location, contact and link preview of a post becomes an `Attachment`, in page order; a video
the preview will not play ("Media is too big") keeps an attachment without a URL, and a post
the preview withholds ("Please open Telegram to view this post") is marked `partial`. Text is
read as a browser shows it: the page source's line breaks and indentation are spaces, only
`<br>` breaks a line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser

from lxml import etree
from lxml import html as lxml_html
from w3lib.encoding import html_to_unicode

from crawlers.telegram.attachments import attachments_of, media_urls, words
from crawlers.telegram.markup import absolute, first, has_class, text_of
from vigie.errors import MarkupChangedError, SourceUnavailableError
from vigie.records import MAX_INTEGER, Post

CANONICAL = "https://t.me"
_VIEWS = re.compile(r"^\s*([0-9]{1,15}(?:[.,][0-9]{1,6})?)\s*([KkMm]?)\s*$")
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


def _iso(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).isoformat()
    except ValueError:
        return None


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

    text_node = first(
        msg,
        f".//div[{has_class('tgme_widget_message_text')} and not({has_class('js-message_reply_text')})"
        f" and not(ancestor::a[{has_class('tgme_widget_message_reply')}])]",
    )
    text = text_of(text_node) if text_node is not None else ""
    links: list[str] = []
    if text_node is not None:
        for a in text_node.xpath(".//a[@href]"):
            href = absolute(page_url, a.get("href"))
            if href and href.startswith(("http://", "https://")) and "?q=" not in href and href not in links:
                links.append(href)
    preview = first(msg, f".//a[{has_class('tgme_widget_message_link_preview')}]/@href")
    if preview is not None and (url := absolute(page_url, str(preview))) and url not in links:
        links.append(url)

    attachments, partial = attachments_of(msg, page_url)

    date = first(msg, f".//a[{has_class('tgme_widget_message_date')}]/time/@datetime")
    views = first(msg, f".//*[{has_class('tgme_widget_message_views')}]")
    forward = first(msg, f".//*[{has_class('tgme_widget_message_forwarded_from')}]")
    # A forward's author with a public link is an <a>; one without is a <span>.
    forwarded = first(forward, ".//a/@href") if forward is not None else None
    forwarded_name = (
        words(forward, "tgme_widget_message_forwarded_from_name") if forward is not None else None
    )
    reply = first(msg, f".//a[{has_class('tgme_widget_message_reply')}]/@href")
    meta = first(msg, f".//*[{has_class('tgme_widget_message_meta')}]")
    edited = meta is not None and "edited" in meta.text_content().lower()

    return Post(
        platform="telegram",
        channel=channel,
        post_id=post_id,
        url=f"{CANONICAL}/{channel}/{post_id}",
        text=text,
        published_at=_iso(str(date)) if date is not None else None,
        views=parse_views(views.text_content()) if views is not None else None,
        forwarded_from=absolute(page_url, str(forwarded)) if forwarded is not None else None,
        reply_to=absolute(page_url, str(reply)) if reply is not None else None,
        edited=edited,
        media=media_urls(attachments),
        links=links,
        attachments=attachments,
        partial=partial,
        forwarded_from_name=forwarded_name,
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

    messages = root.xpath(f"//div[{has_class('tgme_widget_message')}]")
    info = first(root, f"//*[{has_class('tgme_channel_info')}]")
    more = root.xpath(f"//a[{has_class('tme_messages_more')}][@data-before]/@data-before")
    if not messages and info is None and not more:
        if root.xpath(f"//*[{has_class('tgme_page')}]"):
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
    title_node = first(root, f"//*[{has_class('tgme_channel_info_header_title')}]")
    before = next((b for v in more if (b := _integer(str(v)))), None)
    channel = posts[0].channel if posts else None
    return PreviewPage(
        channel=channel,
        title=title_node.text_content().strip() if title_node is not None else None,
        posts=posts,
        before=before,
        skipped=skipped,
    )
