"""What reading Telegram's preview markup needs everywhere: class tests, text as a browser
shows it, absolute links, background-image URLs."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from lxml import html as lxml_html

from vigie.sanitize import web_url

BG_URL = re.compile(r"background-image\s*:\s*url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


EMOJI_IMG = re.compile(r"/emoji/\d+/([0-9A-Fa-f]+)\.png")


# What HTML collapses between words: ASCII whitespace only (not U+00A0, not other spaces).
HTML_SPACE_CHARS = " \t\n\r\f"


HTML_SPACE = re.compile(f"[{re.escape(HTML_SPACE_CHARS)}]+")


def has_class(cls: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')"


def emoji_from_image(style: str) -> str:
    # Emoji drawn as images carry their UTF-8 bytes in hex in the file name.
    match = EMOJI_IMG.search(style)
    if not match:
        return ""
    try:
        return bytes.fromhex(match.group(1)).decode("utf-8")
    except ValueError:
        return ""


def text_of(node: lxml_html.HtmlElement) -> str:
    """The text a browser shows: runs of the page source's whitespace (newlines and
    indentation included) are one space, only `<br>` breaks a line, and spaces at a
    line's ends are dropped. A no-break space is not collapsed, and is kept as a space."""
    lines: list[list[str]] = [[node.text or ""]]
    # Depth first, without recursion: a post may nest thousands of elements deep.
    # Each entry is (element, whether its children are done and only its tail is left).
    stack = [(child, False) for child in reversed(node)]
    while stack:
        el, done = stack.pop()
        if done:
            lines[-1].append(el.tail or "")
            continue
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "i" and "emoji" in (el.get("class") or "").split():
            inner = el.text_content()
            lines[-1].append(inner if inner.strip() else emoji_from_image(el.get("style") or ""))
            lines[-1].append(el.tail or "")
            continue
        if tag == "br":
            lines.append([])
        elif el.text and tag:
            lines[-1].append(el.text)
        stack.append((el, True))
        if tag:
            stack.extend((child, False) for child in reversed(el))
    shown = (HTML_SPACE.sub(" ", "".join(parts)).strip(HTML_SPACE_CHARS) for parts in lines)
    return "\n".join(shown).replace("\xa0", " ").strip()


def absolute(page_url: str, href: str) -> str | None:
    """The http(s) URL `href` leads to, or None: a `javascript:`, `data:` or other link is
    not kept as one (the text around it stays in the post)."""
    try:
        return web_url(urljoin(page_url, href.strip()))
    except ValueError:  # garbled markup, e.g. "http://[broken"
        return None


def first(node: lxml_html.HtmlElement, xpath: str) -> lxml_html.HtmlElement | None:
    found = node.xpath(xpath)
    return found[0] if found else None
