from __future__ import annotations

import click


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
def mirror(port: int) -> None:
    """Serve the bundled sample channels on 127.0.0.1 as Telegram preview pages."""
    from crawlers.mirror import serve_forever

    serve_forever(port)
