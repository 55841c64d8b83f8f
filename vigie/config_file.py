"""Reading a configuration file: YAML bounded before anything is built from it (a value
that contains itself, or aliases that expand past `YAML_MAX_VALUES` values, are refused),
secrets refused in the file, and validation errors as one line per field that never repeat
the value of a field Vigie does not know."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vigie.config import CONFIG_ENV, VigieConfig
from vigie.errors import ConfigurationError

# Keys that look like credentials are refused in files: they belong in the environment.
_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api_?key|credential)s?$", re.IGNORECASE)
# The password of a URL (scheme://user:PASSWORD@host): never shown in a message. Up to
# the last "@": a password may hold "/" or "@" itself, and masking too much is harmless.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")
# A configuration holds a few hundred values; aliases may not multiply them past this.
YAML_MAX_VALUES = 10_000


def _find_secret_keys(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SECRET_KEY.search(key):
                found.append(where)
            found.extend(_find_secret_keys(value, where))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_find_secret_keys(value, f"{path}[{i}]"))
    return found


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expected(error: Any) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "no such field (check the spelling against config/example.yaml)"
    if error["type"] == "missing":
        return "this field is required"
    msg = msg.removeprefix("Value error, ")
    for words, sign in (
        ("greater than or equal to", ">="),
        ("less than or equal to", "<="),
        ("greater than", ">"),
        ("less than", "<"),
    ):
        msg = msg.replace(f"Input should be {words}", f"Input should be a value {sign}")
    if sized := re.match(r"^(String|List|Dictionary) should have (.*)$", msg):
        return f"expected a {sized.group(1).lower()} with {sized.group(2)}"
    return re.sub(r"^Input should be ", "expected ", msg) if msg.startswith("Input") else "expected " + msg


def _got(error: Any) -> str:
    """The bad value, as the message shows it. Never the value of a field Vigie does not know
    (it may be a secret under a name the secret check misses), nor what a section holds."""
    if error["type"] in ("missing", "extra_forbidden"):
        return ""
    value = error["input"]
    if isinstance(value, dict):
        return " (a mapping)"
    if isinstance(value, list):
        return " (a list)"
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1***@", value)
    return f" = {value!r}"


def describe_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = _field_path(tuple(error["loc"]))
        lines.append(f"{source}: {where}{_got(error)}: {_expected(error)}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> VigieConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{source}: (top level): expected a mapping of sections, got {type(data).__name__}"
        )
    secrets = _find_secret_keys(data)
    if secrets:
        raise ConfigurationError(
            f"{source}: {secrets[0]}: secrets are not read from files; set them in the "
            "environment (for example VIGIE_ES_API_KEY) and remove this field"
        )
    try:
        return VigieConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(source, exc)) from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_size(root: yaml.Node, file: Path) -> None:
    """Count the values the document expands to, aliases included, without expanding them:
    each node once, depth first. Refuse a node that contains itself and a document larger
    than YAML_MAX_VALUES (a "billion laughs" is a few lines of aliases)."""
    size: dict[int, int] = {}
    path: set[int] = set()  # nodes whose children are being counted
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        mark = node.start_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        if counted:
            path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in _children(node))
            if size[id(node)] > YAML_MAX_VALUES:
                raise ConfigurationError(
                    f"{file}: {where}: aliases expand this value to more than {YAML_MAX_VALUES} "
                    "values; write the values out instead"
                )
            continue
        if id(node) in size:
            continue
        if id(node) in path:
            raise ConfigurationError(
                f"{file}: {where}: an alias refers to a value that contains it; a configuration "
                "cannot be recursive"
            )
        path.add(id(node))
        if isinstance(node, yaml.MappingNode):
            _check_unique_keys(node, file)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _check_unique_keys(node: yaml.MappingNode, file: Path) -> None:
    """A key written twice in one mapping: YAML loaders keep the last silently, so a setting
    the operator reads at the top of the file may not be the one in force."""
    seen: dict[str, yaml.Mark] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        mark = key.start_mark
        if key.value in seen:
            first = seen[key.value]
            raise ConfigurationError(
                f"{file}: line {mark.line + 1}, column {mark.column + 1}: key {key.value!r} is "
                f"already set at line {first.line + 1}; keep one"
            )
        seen[key.value] = mark


def _safe_load(text: str, file: Path) -> Any:
    """yaml.safe_load, checking the size of the document before building it."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, file)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigurationError(f"{file}: values are nested too deeply") from None
    finally:
        loader.dispose()


def load_config(path: str | Path | None = None) -> VigieConfig:
    """Load FILE, else $VIGIE_CONFIG, else ./vigie.yaml if present, else the defaults."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        if env:
            path = env
        elif Path("vigie.yaml").is_file():
            path = "vigie.yaml"
        else:
            return VigieConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read configuration: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{file}: configuration is not valid UTF-8") from None
    try:
        data = _safe_load(text, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{file}: YAML syntax error at {where}: {problem}") from None
    return parse_config(data, str(file))
