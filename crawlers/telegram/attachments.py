"""A preview message's attachments: photos, videos, round videos, voice messages, audio,
documents, stickers, polls, locations, contacts and link previews, in page order, with what
the markup says of each (size, duration, question and options, title)."""

from __future__ import annotations

import re

from lxml import html as lxml_html

from crawlers.telegram.markup import BG_URL, absolute, first, has_class, text_of
from vigie.records import MAX_INTEGER, Attachment

_SIZE = re.compile(r"([0-9]{1,12}(?:[.,][0-9]{1,6})?)\s*(B|KB|MB|GB|TB)\b", re.IGNORECASE)
# Telegram counts file sizes in powers of 1024 ("1.2 MB" is 1.2 × 1024²).
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_DURATION = re.compile(r"^\s*(?:([0-9]{1,3}):)?([0-9]{1,3}):([0-5][0-9])\s*$")
_LAT_LON = re.compile(r"(-?[0-9]{1,3}(?:\.[0-9]+)?),\s*(-?[0-9]{1,3}(?:\.[0-9]+)?)")
# The nodes a message's attachments start at. Sticker nodes are the inner images; a sticker
# wrap also holds a fallback notice that only shows when the image fails.
_STICKERS = frozenset(
    ("tgme_widget_message_sticker", "tgme_widget_message_tgsticker", "tgme_widget_message_videosticker")
)
_ATTACHMENT_CLASSES = _STICKERS | {
    "tgme_widget_message_photo_wrap",
    "tgme_widget_message_video_player",
    "tgme_widget_message_roundvideo_player",
    "tgme_widget_message_voice_player",
    "tgme_widget_message_document_wrap",
    "tgme_widget_message_poll",
    "tgme_widget_message_location_wrap",
    "tgme_widget_message_contact_wrap",
    "tgme_widget_message_link_preview",
}
# Subtrees that hold no attachment of this message: a quoted reply, and the fallback
# ("not supported in your browser") beside a sticker.
_SKIPPED_CLASSES = frozenset(("tgme_widget_message_reply", "media_not_supported_cont"))
_NOTICE = "message_media_not_supported"


def parse_size(raw: str | None) -> int | None:
    """'1.2 MB' -> 1258291, '113.9 KB' -> 116634, '4.5 MB · 5 Jan 2024' -> 4718592."""
    match = _SIZE.search(raw or "")
    if not match:
        return None
    size = round(float(match.group(1).replace(",", ".")) * _SIZE_UNITS[match.group(2).lower()])
    return size if size <= MAX_INTEGER else None


def parse_duration(raw: str | None) -> int | None:
    """'0:35' -> 35, '1:02:05' -> 3725; anything else -> None."""
    match = _DURATION.match(raw or "")
    if not match:
        return None
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _classes(el: lxml_html.HtmlElement) -> list[str]:
    return (el.get("class") or "").split()


def _inner(node: lxml_html.HtmlElement, cls: str) -> lxml_html.HtmlElement | None:
    return first(node, f".//*[{has_class(cls)}]")


def words(node: lxml_html.HtmlElement, cls: str) -> str | None:
    """The collapsed text of the first descendant with class `cls`, or None when empty."""
    found = _inner(node, cls)
    text = text_of(found) if found is not None else ""
    return text or None


def _background(page_url: str, node: lxml_html.HtmlElement | None) -> str | None:
    if node is None:
        return None
    found = BG_URL.search(node.get("style") or "")
    return absolute(page_url, found.group(1)) if found else None


def _src(page_url: str, node: lxml_html.HtmlElement, xpath: str) -> str | None:
    for value in node.xpath(xpath):
        if url := absolute(page_url, str(value)):
            return url
    return None


def _label(node: lxml_html.HtmlElement) -> str:
    found = _inner(node, "message_media_not_supported_label")
    return text_of(found).lower() if found is not None else ""


def _too_big(node: lxml_html.HtmlElement) -> bool:
    return "too big" in _label(node)


def _video(page_url: str, el: lxml_html.HtmlElement) -> Attachment:
    url = _src(page_url, el, ".//video/@src | .//video/source/@src")
    return Attachment(
        type="video",
        url=url,
        duration=parse_duration(words(el, "message_video_duration")),
        thumbnail_url=_background(page_url, _inner(el, "tgme_widget_message_video_thumb")),
        unavailable="too_big" if url is None and _too_big(el) else None,
    )


def _file(page_url: str, el: lxml_html.HtmlElement) -> Attachment:
    """A file or, when its icon says so, a music track (its extra line is the performer)."""
    title = words(el, "tgme_widget_message_document_title")
    extra = words(el, "tgme_widget_message_document_extra")
    size = parse_size(extra)
    icon = _inner(el, "tgme_widget_message_document_icon")
    url = _src(page_url, el, ".//audio/@src")
    if icon is not None and "audio" in _classes(icon):
        performer = extra if size is None else None
        return Attachment(
            type="audio",
            url=url,
            size=size,
            title=" – ".join(t for t in (title, performer) if t) or None,
            duration=parse_duration(words(el, "tgme_widget_message_audio_duration")),
        )
    return Attachment(type="document", url=url, name=title, size=size)


def _sticker(page_url: str, el: lxml_html.HtmlElement) -> Attachment:
    # A still sticker is a background image (a data: placeholder until the script runs) with
    # the file in data-webp; an animated one offers its .tgs and a still preview, a video
    # one its .webm and a thumbnail image.
    preview = _src(page_url, el, ".//img/@src") or _srcset(page_url, el, "image/webp")
    url = (
        _src(page_url, el, "@data-webp")
        or _background(page_url, el)
        or _srcset(page_url, el, "application/x-tgsticker")
        or _src(page_url, el, ".//video/@src")
        or preview
    )
    return Attachment(type="sticker", url=url, thumbnail_url=preview if preview != url else None)


def _srcset(page_url: str, node: lxml_html.HtmlElement, mime: str) -> str | None:
    """The first candidate of a <source type=mime srcset="url 2x, …">."""
    for srcset in node.xpath(".//source[@type=$mime]/@srcset", mime=mime):
        first = str(srcset).split(",")[0].split()
        if first and (url := absolute(page_url, first[0])):
            return url
    return None


def _location(page_url: str, el: lxml_html.HtmlElement) -> Attachment:
    href = el.get("href") or ""
    named = [
        t
        for t in (
            words(el, "tgme_widget_message_location_title"),
            words(el, "tgme_widget_message_location_address"),
        )
        if t
    ]
    where = _LAT_LON.search(href.replace("%2C", ","))
    return Attachment(
        type="location",
        url=absolute(page_url, href) if href else None,
        title=", ".join(named) if named else (f"{where.group(1)},{where.group(2)}" if where else None),
        thumbnail_url=_background(page_url, _inner(el, "tgme_widget_message_location")),
    )


def _attachment(page_url: str, el: lxml_html.HtmlElement) -> Attachment | None:
    classes = _classes(el)
    if "tgme_widget_message_photo_wrap" in classes:
        return Attachment(type="photo", url=_background(page_url, el))
    if "tgme_widget_message_video_player" in classes:
        return _video(page_url, el)
    if "tgme_widget_message_roundvideo_player" in classes:
        return Attachment(
            type="round_video",
            url=_src(page_url, el, ".//video/@src"),
            duration=parse_duration(words(el, "tgme_widget_message_roundvideo_duration")),
            thumbnail_url=_background(page_url, _inner(el, "tgme_widget_message_roundvideo_thumb")),
        )
    if "tgme_widget_message_voice_player" in classes:
        return Attachment(
            type="voice",
            url=_src(page_url, el, ".//audio/@src"),
            duration=parse_duration(words(el, "tgme_widget_message_voice_duration")),
        )
    if "tgme_widget_message_document_wrap" in classes:
        return _file(page_url, el)
    if {
        "tgme_widget_message_sticker",
        "tgme_widget_message_tgsticker",
        "tgme_widget_message_videosticker",
    } & set(classes):
        return _sticker(page_url, el)
    if "tgme_widget_message_poll" in classes:
        options = [
            text
            for node in el.xpath(f".//*[{has_class('tgme_widget_message_poll_option_text')}]")
            if (text := text_of(node))
        ]
        return Attachment(
            type="poll", question=words(el, "tgme_widget_message_poll_question"), options=options or None
        )
    if "tgme_widget_message_location_wrap" in classes:
        return _location(page_url, el)
    if "tgme_widget_message_contact_wrap" in classes:
        return Attachment(
            type="contact",
            title=words(el, "tgme_widget_message_contact_name"),
            name=words(el, "tgme_widget_message_contact_phone"),
        )
    if "tgme_widget_message_link_preview" in classes:
        return Attachment(
            type="link_preview",
            url=absolute(page_url, el.get("href") or "") if el.get("href") else None,
            title=words(el, "link_preview_title") or words(el, "link_preview_site_name"),
            thumbnail_url=_background(page_url, _inner(el, "link_preview_image")),
        )
    return None


def attachments_of(msg: lxml_html.HtmlElement, page_url: str) -> tuple[list[Attachment], bool]:
    """A message's attachments in page order, and whether the preview withheld part of it.

    One walk of the message, depth first and without recursion; an attachment's own
    subtree is not entered, so the fallback notice every player carries ("not supported in
    your browser") and a sticker's inner picture are not counted again. A notice standing
    alone says what the preview left out: a video too big, or the whole post."""
    found: list[Attachment] = []
    partial = False
    stack = list(reversed(msg))
    while stack:
        el = stack.pop()
        if not isinstance(el.tag, str):
            continue  # comments and processing instructions
        classes = set(_classes(el))
        if classes & _SKIPPED_CLASSES:
            continue
        if classes & _ATTACHMENT_CLASSES:
            if (attachment := _attachment(page_url, el)) is not None:
                found.append(attachment)
            continue
        if _NOTICE in classes:
            label = _label(el)
            if "too big" in label:
                found.append(Attachment(type="video", unavailable="too_big"))
            elif "in your browser" not in label:
                partial = True  # "Please open Telegram to view this post"
            continue
        stack.extend(reversed(el))
    return found, partial


def media_urls(attachments: list[Attachment]) -> list[str]:
    """`Post.media` as before attachments: each picture's or video's file, else its thumbnail."""
    urls = []
    for a in attachments:
        if a.type in ("photo", "video", "round_video") and (url := a.url or a.thumbnail_url):
            urls.append(url)
    return urls
