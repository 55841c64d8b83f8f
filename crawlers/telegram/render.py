"""Telegram's preview markup written from sample posts: the messages and pages the local
mirror serves, every post type included (photos, videos, voice, documents, stickers, polls,
locations, contacts, "Media is too big", "Please open Telegram to view this post")."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

_URL = re.compile(r"(https?://[^\s<>\"]+|(?:wa\.me|t\.me)/[^\s<>\"]+|@[A-Za-z][A-Za-z0-9_]{3,31})")
_EDGE_SPACES = re.compile(r"(?m)^ +| +$")
_INNER_SPACES = re.compile(r" {2,}")
# Files a post's "images" name, served under /media/<name> when not given to Mirror(media=…).
_MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
_MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_EMOJI = re.compile("[\U0001f1e6-\U0001f1ff]{2}|[\u2600-\u27bf\U0001f300-\U0001faff]\ufe0f?")


_URL = re.compile(r"(https?://[^\s<>\"]+|(?:wa\.me|t\.me)/[^\s<>\"]+|@[A-Za-z][A-Za-z0-9_]{3,31})")


_EDGE_SPACES = re.compile(r"(?m)^ +| +$")


_INNER_SPACES = re.compile(r" {2,}")


_EMOJI = re.compile("[\U0001f1e6-\U0001f1ff]{2}|[\u2600-\u27bf\U0001f300-\U0001faff]\ufe0f?")


def _emoji_html(match: re.Match[str]) -> str:
    char = match.group(0)
    code = char.encode("utf-8").hex().upper()
    return (
        f'<i class="emoji" style="background-image:url(\'//telegram.org/img/emoji/40/{code}.png\')">'
        f"<b>{char}</b></i>"
    )


def render_text(text: str) -> str:
    out = []
    for piece in _URL.split(text):
        if not piece:
            continue
        if _URL.fullmatch(piece):
            href = (
                piece
                if piece.startswith("http")
                else (f"https://t.me/{piece[1:]}" if piece.startswith("@") else f"https://{piece}")
            )
            out.append(
                f'<a href="{html.escape(href)}" target="_blank" rel="noopener">{html.escape(piece)}</a>'
            )
        else:
            out.append(_EMOJI.sub(_emoji_html, html.escape(piece)))
    # A browser collapses runs of spaces and drops them at a line's ends; no-break spaces
    # keep the text as written.
    rendered = _EDGE_SPACES.sub(lambda m: "&nbsp;" * len(m.group(0)), "".join(out))
    rendered = _INNER_SPACES.sub(lambda m: " " + "&nbsp;" * (len(m.group(0)) - 1), rendered)
    return rendered.replace("\n", "<br/>")


def _views(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 1_000:
        return f"{n / 1_000:.2f}".rstrip("0").rstrip(".") + "K"
    return str(n)


def _media_url(channel: str, post_id: int, n: int, ext: str, media_base: str = "") -> str:
    """A sample post's photo or video file: Telegram's CDN on a saved page; on a served page,
    the mirror itself, which draws a placeholder for it (`placeholder_image`)."""
    digest = hashlib.sha1(f"{channel}/{post_id}/{n}".encode()).hexdigest()
    if media_base:
        return f"{media_base}/media/{PLACEHOLDER_PREFIX}{digest}.{ext}"
    return f"https://cdn4.telesco.pe/file/{digest}.{ext}"


PLACEHOLDER_PREFIX = "cdn-"


def _duration(seconds: int) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _not_supported(label: str, extra_class: str = "") -> str:
    cls = f"message_media_not_supported_wrap {extra_class}".strip()
    return (
        f'<div class="{cls}"><div class="message_media_not_supported">'
        f'<div class="message_media_not_supported_label">{label}</div>'
        '<span class="message_media_view_in_telegram">VIEW IN TELEGRAM</span></div></div>'
    )


def _render_attachments(name: str, pid: int, post: dict[str, Any], media_base: str) -> list[str]:
    """The media blocks of the post types beyond photos and a playable video, in Telegram's
    markup: named images, voice, round video, documents, audio, stickers, polls, locations,
    contacts, a video too big for the preview, and the "open Telegram" notice."""
    parts = []
    for image in post.get("images", []):
        url = html.escape(f"{media_base}/media/{quote(image)}")
        parts.append(
            f'<a class="tgme_widget_message_photo_wrap blured" href="https://t.me/{name}/{pid}?single" '
            f"style=\"width:800px;background-image:url('{url}')\">"
            '<div class="tgme_widget_message_photo" style="padding-top:75%"></div></a>'
        )
    if post.get("too_big_video"):
        # true, or the video's length in seconds
        seconds = 300 if post["too_big_video"] is True else int(post["too_big_video"])
        parts.append(
            f'<a class="tgme_widget_message_video_player not_supported js-message_video_player" href="https://t.me/{name}/{pid}">'
            f'<i class="tgme_widget_message_video_thumb" style="background-image:url(\'{_media_url(name, pid, 8, "jpg")}\')"></i>'
            '<div class="tgme_widget_message_video_wrap"></div>'
            f'<time class="message_video_duration js-message_video_duration">{_duration(seconds)}</time>'
            f"{_not_supported('Media is too big')}</a>"
        )
    if post.get("round_video"):
        parts.append(
            '<div class="tgme_widget_message_roundvideo_player js-message_roundvideo_player"><div class="tgme_widget_message_roundvideo_wrap">'
            f'<i class="tgme_widget_message_roundvideo_thumb" style="background-image:url(\'{_media_url(name, pid, 7, "jpg")}\')"></i>'
            f'<video class="tgme_widget_message_roundvideo js-message_roundvideo" src="{_media_url(name, pid, 7, "mp4")}"></video></div>'
            f"{_not_supported('This media is not supported in your browser', 'js-message_roundvideo_not_supported')}"
            f'<time class="tgme_widget_message_roundvideo_duration js-message_roundvideo_duration">{_duration(post["round_video"])}</time></div>'
        )
    if post.get("voice"):
        parts.append(
            f'<a class="tgme_widget_message_voice_player js-message_voice_player" href="https://t.me/{name}/{pid}">'
            f'<audio class="tgme_widget_message_voice js-message_voice" src="{_media_url(name, pid, 6, "ogg")}" data-ogg></audio>'
            '<div class="tgme_widget_message_voice_wrap">'
            f'<time class="tgme_widget_message_voice_duration js-message_voice_duration">{_duration(post["voice"])}</time></div></a>'
        )
    for kind in ("document", "audio"):
        doc = post.get(kind)
        if not doc:
            continue
        title = doc.get("name") if kind == "document" else doc.get("title")
        extra = (
            _size(int(doc["size"]))
            if kind == "document" and doc.get("size") is not None
            else doc.get("performer", "")
        )
        icon = " audio" if kind == "audio" else ""
        parts.append(
            f'<a class="tgme_widget_message_document_wrap" href="https://t.me/{name}/{pid}">'
            f'<div class="tgme_widget_message_document_icon accent_bg{icon}"></div><div class="tgme_widget_message_document">'
            f'<div class="tgme_widget_message_document_title accent_color" dir="auto">{html.escape(title or "")}</div>'
            f'<div class="tgme_widget_message_document_extra" dir="auto">{html.escape(extra or "")}</div></div></a>'
        )
    if post.get("sticker"):
        parts.append(
            f"{_not_supported('This media is not supported in your browser', 'media_not_supported_cont')}"
            '<div class="tgme_widget_message_sticker_wrap media_supported_cont"><i class="tgme_widget_message_sticker js-sticker_image" '
            f'style="background-image:url(\'data:image/svg+xml;base64,PHN2Zy8+\');width:256px;" data-webp="{_media_url(name, pid, 5, "webp")}">'
            '<div style="padding-top:100%"></div></i></div>'
        )
    poll = post.get("poll")
    if poll:
        options = "".join(
            '<div class="tgme_widget_message_poll_option"><div class="tgme_widget_message_poll_option_percent">0%</div>'
            f'<div class="tgme_widget_message_poll_option_value"><div class="tgme_widget_message_poll_option_text">{render_text(o)}</div>'
            '<div class="tgme_widget_message_poll_option_bar accent_bg" style="width:0%"></div></div></div>'
            for o in poll.get("options", [])
        )
        parts.append(
            '<div class="tgme_widget_message_poll js-poll">'
            f'<div class="tgme_widget_message_poll_question">{render_text(poll.get("question", ""))}</div>'
            '<div class="tgme_widget_message_poll_type">Anonymous Poll</div>'
            f'<a class="tgme_widget_message_poll_options" href="https://t.me/{name}/{pid}">{options}</a></div>'
        )
    location = post.get("location")
    if location:
        lat, lon = location["latitude"], location["longitude"]
        info = ""
        if location.get("title"):
            info = (
                '<div class="tgme_widget_message_location_info">'
                f'<div class="tgme_widget_message_location_title" dir="auto">{html.escape(location["title"])}</div>'
                f'<div class="tgme_widget_message_location_address" dir="auto">{html.escape(location.get("address", ""))}</div></div>'
            )
        parts.append(
            f'<a class="tgme_widget_message_location_wrap" href="https://maps.google.com/maps?q={lat},{lon}&amp;ll={lat},{lon}&amp;z=16">'
            f'<div class="tgme_widget_message_location" style="background-image:url(\'{_media_url(name, pid, 4, "png")}\')"></div>{info}</a>'
        )
    contact = post.get("contact")
    if contact:
        parts.append(
            '<div class="tgme_widget_message_contact_wrap"><div class="tgme_widget_message_contact">'
            f'<div class="tgme_widget_message_contact_name" dir="auto">{html.escape(contact.get("name", ""))}</div>'
            f'<div class="tgme_widget_message_contact_phone">{html.escape(contact.get("phone", ""))}</div></div></div>'
        )
    if post.get("partial"):
        parts.append(_not_supported("Please open Telegram to view this post"))
    return parts


def render_message(
    channel: dict[str, Any], post: dict[str, Any], by_id: dict[int, dict[str, Any]], media_base: str = ""
) -> str:
    """One message of a preview page. `media_base` is the absolute URL the page's own media
    (a post's "images") are served under; empty, they are page-relative."""
    name, pid = channel["username"], post["id"]
    title = html.escape(channel.get("title", name))
    parts = [
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'text_not_supported_wrap js-widget_message" data-post="{name}/{pid}" data-view="x">',
        f'<div class="tgme_widget_message_user"><a href="https://t.me/{name}"><i class="tgme_widget_message_user_photo bgcolor1" data-content="{title[:1]}"></i></a></div>',
        '<div class="tgme_widget_message_bubble"><i class="tgme_widget_message_bubble_tail"></i>',
        f'<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" href="https://t.me/{name}"><span dir="auto">{title}</span></a></div>',
    ]
    if post.get("forwarded_from"):
        src = html.escape(post["forwarded_from"])
        shown = (
            html.escape(post["forwarded_from_name"])
            if post.get("forwarded_from_name")
            else src.split("/")[-2]
        )
        parts.append(
            f'<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
            f'<a class="tgme_widget_message_forwarded_from_name" href="{src}"><span dir="auto">{shown}</span></a></div>'
        )
    elif post.get("forwarded_from_name"):
        # An author without a public link: Telegram names them in a <span>.
        parts.append(
            '<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;<span class="tgme_widget_message_forwarded_from_name" '
            f'dir="auto">{html.escape(post["forwarded_from_name"])}</span></div>'
        )
    if post.get("reply_to"):
        quoted = by_id.get(post["reply_to"], {}).get("text", "")[:80]
        parts.append(
            f'<a class="tgme_widget_message_reply" href="https://t.me/{name}/{post["reply_to"]}">'
            f'<div class="tgme_widget_message_author accent_color"><span class="tgme_widget_message_author_name">{title}</span></div>'
            f'<div class="tgme_widget_message_text js-message_reply_text" dir="auto">{render_text(quoted)}</div></a>'
        )
    for n in range(post.get("photos", 0)):
        parts.append(
            f'<a class="tgme_widget_message_photo_wrap blured {pid}{n}" href="https://t.me/{name}/{pid}?single" '
            f"style=\"width:800px;background-image:url('{_media_url(name, pid, n, 'jpg', media_base)}')\">"
            '<div class="tgme_widget_message_photo" style="padding-top:75%"></div></a>'
        )
    if post.get("video"):
        parts.append(
            f'<a class="tgme_widget_message_video_player blured js-message_video_player" href="https://t.me/{name}/{pid}">'
            f'<i class="tgme_widget_message_video_thumb" style="background-image:url(\'{_media_url(name, pid, 9, "jpg", media_base)}\')"></i>'
            f'<div class="tgme_widget_message_video_wrap"><video src="{_media_url(name, pid, 0, "mp4")}" '
            'class="tgme_widget_message_video js-message_video" width="100%" height="100%"></video></div></a>'
        )
    parts.extend(_render_attachments(name, pid, post, media_base))
    if post.get("text"):
        parts.append(
            f'<div class="tgme_widget_message_text js-message_text" dir="auto">{render_text(post["text"])}</div>'
        )
    preview = post.get("link_preview")
    if preview:
        parts.append(
            f'<a class="tgme_widget_message_link_preview" href="{html.escape(preview["url"])}">'
            f'<div class="link_preview_site_name accent_color" dir="auto">{html.escape(preview.get("site", ""))}</div>'
            f'<div class="link_preview_title" dir="auto">{html.escape(preview.get("title", ""))}</div>'
            f'<div class="link_preview_description" dir="auto">{html.escape(preview.get("description", ""))}</div></a>'
        )
    when = datetime.fromisoformat(post["date"])
    edited = "edited " if post.get("edited") else ""
    parts.append(
        '<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info short js-message_info">'
        f'<span class="tgme_widget_message_views">{_views(int(post.get("views", 0)))}</span>'
        f'<span class="copyonclick"><span class="tgme_widget_message_meta">{edited}<a class="tgme_widget_message_date" '
        f'href="https://t.me/{name}/{pid}"><time datetime="{when.isoformat()}" class="time">{when:%H:%M}</time></a></span></span>'
        "</div></div></div></div></div>"
    )
    return "".join(parts)


def render_page(
    channel: dict[str, Any], before: int | None, page_size: int, more_link: bool = True, media_base: str = ""
) -> str:
    posts = [p for p in channel["posts"] if not p.get("deleted")]
    by_id = {p["id"]: p for p in posts}
    older = [p for p in posts if before is None or p["id"] < before]
    shown = older[-page_size:]
    name = channel["username"]
    head = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(channel.get('title', name))} – Telegram</title></head>"
        '<body class="widget_frame_base tgme_webpreview"><main class="tgme_main"><div class="tgme_container">'
        '<section class="tgme_channel_history js-message_history">'
    )
    more = ""
    if shown and more_link and len(older) > len(shown):
        low = shown[0]["id"]
        more = (
            '<div class="tgme_widget_message_centered js-messages_more_wrap">'
            f'<a href="/s/{name}?before={low}" class="tme_messages_more js-messages_more" data-before="{low}"></a></div>'
        )
    body = "".join(render_message(channel, p, by_id, media_base) for p in shown)
    info = (
        '<div class="tgme_channel_info"><div class="tgme_channel_info_header">'
        f'<div class="tgme_channel_info_header_title"><span dir="auto">{html.escape(channel.get("title", name))}</span></div>'
        f'<div class="tgme_channel_info_header_username"><a href="https://t.me/{name}">@{name}</a></div></div>'
        f'<div class="tgme_channel_info_description">{render_text(channel.get("description", ""))}</div>'
        f'<div class="tgme_channel_info_counters"><div class="tgme_channel_info_counter"><span class="counter_value">'
        f'{_views(int(channel.get("subscribers", 0)))}</span> <span class="counter_type">subscribers</span></div></div></div>'
    )
    return head + more + body + "</section>" + info + "</div></main></body></html>"


def landing_page(name: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Telegram: Contact @'
        + html.escape(name)
        + '</title></head><body><div class="tgme_page_wrap"><div class="tgme_page">'
        f'<div class="tgme_page_title"><span dir="auto">{html.escape(name)}</span></div>'
        '<div class="tgme_page_description">If you have <strong>Telegram</strong>, you can contact '
        f"@{html.escape(name)} right away.</div></div></div></body></html>"
    )
