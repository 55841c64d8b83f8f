"""Every error Vigie raises on purpose derives from VigieError.

The CLI (`vigie.cli.main`) turns a VigieError, and the errors of the operating system,
the store, Elasticsearch and the downloader, into a one-line message and exit status 1.
Anything else is a bug: one line saying so, and the traceback with `--debug`.
"""


class VigieError(Exception):
    """Base class: a problem the user or operator can act on."""


class ConfigurationError(VigieError):
    """Raised by `vigie.config.load_config` when a YAML file is unreadable or a field
    is invalid. The message names the file, the field path, the bad value and what
    was expected; nothing runs with a bad configuration."""


class StoreError(VigieError):
    """Raised by `vigie.store.Store` when the embedded database cannot be opened, fails
    its integrity check (the message says how to recover it), or was written by an
    incompatible version. Nothing is written after it."""


class MarkupChangedError(VigieError):
    """Raised by a page parser when the platform's markup no longer looks as expected
    (for example a message node without `data-post`). The page is skipped, the source
    is reported as failed and its cursor does not move."""


class SourceUnavailableError(VigieError):
    """A source cannot be crawled (no public preview, not found, blocked). Reported per
    source; the rest of the run goes on."""


class InputFormatError(VigieError):
    """Raised by importers and JSONL readers for a malformed input file; the message
    names the file and the line or field."""
