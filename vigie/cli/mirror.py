from __future__ import annotations

import re

import click

_POST = re.compile(r"^(?:(?:https?://)?t\.me/(?:s/)?)?([A-Za-z][A-Za-z0-9_]{3,31})/(\d+)/?$")


def _post(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, int]]:
    from crawlers.telegram.mirror import load_channels

    channels = load_channels()
    posts = []
    for value in values:
        match = _POST.match(value.strip())
        if not match:
            raise click.BadParameter(f"{value!r}: expected a post URL such as https://t.me/<channel>/<id>")
        name, post_id = match.group(1).lower(), int(match.group(2))
        if not any(p["id"] == post_id for p in channels.get(name, {}).get("posts", [])):
            raise click.BadParameter(f"{value!r}: no such post in the sample channels")
        posts.append((name, post_id))
    return posts


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--remove",
    "removed",
    multiple=True,
    callback=_post,
    metavar="URL",
    help="Serve without this post, as if the platform had taken it down (repeatable).",
)
def mirror(port: int, removed: list[tuple[str, int]]) -> None:
    """Serve the bundled sample channels on 127.0.0.1 as Telegram preview pages."""
    from crawlers.telegram.mirror import serve_forever

    try:
        serve_forever(port, removed)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
