from __future__ import annotations

import click
import yaml


@click.group("config")
def config_group() -> None:
    """Check configuration files."""


@config_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Validate PATH; print what is wrong, or the store it would use."""
    from vigie.config_file import load_config

    config = load_config(path)
    from vigie.store.engine import locate

    store = locate(config.store_url()).shown  # the file, or the server's URL without its password
    click.echo(f"{path}: valid; store at {store}, {len(config.sources)} source(s)")


@config_group.command("defaults")
def defaults() -> None:
    """Print the built-in defaults as YAML."""
    from vigie.config import VigieConfig

    click.echo(yaml.safe_dump(VigieConfig().model_dump(), sort_keys=False, allow_unicode=True))
