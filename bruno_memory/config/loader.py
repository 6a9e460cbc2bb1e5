"""YAML, text or dict -> ``${VAR}`` -> presets -> validated ``StackConfig`` (pure steps).

The policy presets (``presets/*.yaml``) and the shipped stacks (``stacks/*.yaml``) are
package data of this package, read with :mod:`importlib.resources`, so they work from a
wheel as well as from a checkout (whose ``policies/`` and ``tiers/`` link to them).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bruno_memory.config.models import (
    StackConfig,
    TierConfig,
    is_secret_key,
    mask_password,
    redact,
)
from bruno_memory.core.errors import BrunoMemoryConfigError

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

Source = str | os.PathLike[str] | Mapping[str, Any] | None

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PRESETS_ENV = "BRUNO_MEMORY_POLICIES"
YAML_SUFFIXES = (".yaml", ".yml")
M = TypeVar("M", bound=BaseModel)


def load_config(source: Source = None, *, env: Mapping[str, str] | None = None) -> StackConfig:
    """Load and validate a stack configuration.

    Args:
        source: a YAML file path, YAML text, the name of a shipped stack (``"laptop"``, see
            :func:`shipped_stacks`), a mapping, or ``None`` for the embedded default. A string
            holding a newline is YAML text; a path ending in ``.yaml``/``.yml`` is a file (it
            must exist); another path is a file if it exists; otherwise a bare name is looked
            up among the shipped stacks. An ``os.PathLike`` is always a file.
        env: variables for ``${VAR}``; defaults to ``os.environ``.

    Relative paths inside a config (an SQLite ``path:``, a file journal) are the process's:
    they resolve against the current directory, whichever file or shipped stack they came from.
    """
    raw, origin, base = read(source)
    raw = interpolate(raw, os.environ if env is None else env, origin)
    raw = expand_presets(raw, preset_dirs(base), origin)
    return validate(raw, origin)


def read(source: Source) -> tuple[dict[str, Any], str, Path | None]:
    """Parse the source; returns the raw mapping, a name for errors and its folder."""
    if source is None:
        return default_config(), "<default>", None
    if isinstance(source, Mapping):
        return dict(source), "<dict>", None
    if not isinstance(source, (str, os.PathLike)):
        raise BrunoMemoryConfigError(
            "expected a YAML file path, YAML text, a shipped stack's name, a mapping or None, "
            f"got {type(source).__name__}"
        )
    text, origin, base = _text_of(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BrunoMemoryConfigError(f"{where}invalid YAML: {problem}", source=origin) from exc
    if isinstance(data, str) and origin == "<yaml>":
        raise BrunoMemoryConfigError(
            f"{mask_password(text)[:200]!r} is no file, no shipped stack and no YAML mapping; "
            f"shipped stacks: {', '.join(shipped_stacks())}",
            source=origin,
        )
    if not isinstance(data, dict):
        raise BrunoMemoryConfigError(
            f"expected a mapping with a 'tiers' list, got {type(data).__name__}", source=origin
        )
    return data, origin, base


def _text_of(source: str | os.PathLike[str]) -> tuple[str, str, Path | None]:
    """The text of a source, a name for errors, and the folder of its file (if any)."""
    if not isinstance(source, str):
        return _read_file(Path(os.fspath(source)))
    if "\n" in source or not source.strip():
        return source, "<yaml>", None
    path = Path(source)
    if path.suffix in YAML_SUFFIXES or _exists(path):
        return _read_file(path)
    if _NAME.fullmatch(source):
        return shipped_stack(source), f"{source} (shipped stack)", None
    return source, "<yaml>", None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte: not a file
        return False


def _read_file(path: Path) -> tuple[str, str, Path | None]:
    if not path.exists():
        raise BrunoMemoryConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise BrunoMemoryConfigError(f"expected a YAML file, got a directory: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BrunoMemoryConfigError(
            f"cannot read the config file: {exc}", source=str(path)
        ) from exc
    return text, str(path), path.resolve().parent


def _package_folder(name: str) -> Traversable:
    return files("bruno_memory.config").joinpath(name)


def shipped_stacks() -> dict[str, Traversable]:
    """The stacks shipped in the package, by name (``laptop``, ``production``, ...)."""
    found = (f for f in _package_folder("stacks").iterdir() if f.name.endswith(".yaml"))
    return {f.name.removesuffix(".yaml"): f for f in sorted(found, key=lambda f: f.name)}


def shipped_stack(name: str) -> str:
    """The YAML text of the shipped stack ``name``; an unknown name lists the shipped ones."""
    stacks = shipped_stacks()
    if name not in stacks:
        raise BrunoMemoryConfigError(
            f"unknown stack {name!r}: no such file, and no shipped stack of that name; "
            f"shipped stacks: {', '.join(stacks)}"
        )
    return stacks[name].read_text(encoding="utf-8")


def describe(text: str) -> str:
    """A YAML file's one-line description: its first comment line."""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            return line.lstrip().lstrip("#").strip()
    return ""


def default_config() -> dict[str, Any]:
    """The embedded default: an LRU over SQLite in ``./bruno-memory.db``; no server needed."""
    return {
        "tiers": [
            {"name": "local", "kind": "lru", "maxsize": 10000, "ttl": "10m"},
            {"name": "durable", "kind": "sqlite", "path": "${BRUNO_MEMORY_DB:-bruno-memory.db}"},
        ]
    }


def interpolate(node: Any, env: Mapping[str, str], origin: str, path: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in scalar strings only."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, origin, _join(path, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, origin, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def sub(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise BrunoMemoryConfigError(
            f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
            path=path,
            source=origin,
        )

    return _VAR.sub(sub, node)


def preset_dirs(base: Path | None) -> list[Traversable]:
    """Where named policy presets are looked up, first match wins.

    The config file's folder's ``policies/`` and its parent's (a checkout's ``tiers/`` next to
    ``policies/``), then each folder of ``$BRUNO_MEMORY_POLICIES``, then ``./policies``, then
    the presets shipped in the package.
    """
    dirs: list[Traversable] = []
    if base is not None:
        dirs += [base / "policies", base.parent / "policies"]
    dirs += [Path(p) for p in os.environ.get(PRESETS_ENV, "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "policies", _package_folder("presets")]
    return dirs


def expand_presets(raw: dict[str, Any], dirs: list[Traversable], origin: str) -> dict[str, Any]:
    """Merge each tier's ``policy:`` (a preset name or a mapping) beneath the tier's own keys."""
    tiers = raw.get("tiers")
    if not isinstance(tiers, list):
        return raw
    out = []
    for i, tier in enumerate(tiers):
        if isinstance(tier, dict) and "policy" in tier:
            tier = dict(tier)
            policy = tier.pop("policy")
            preset = _preset(policy, dirs, origin, f"tiers[{i}].policy")
            tier = {**preset, **tier}
        out.append(tier)
    return {**raw, "tiers": out}


def _preset(policy: Any, dirs: list[Traversable], origin: str, path: str) -> dict[str, Any]:
    if isinstance(policy, dict):
        return policy
    if not isinstance(policy, str):
        raise BrunoMemoryConfigError(
            f"expected a preset name or a mapping, got {policy!r}", path=path, source=origin
        )
    for folder in dirs if _NAME.fullmatch(policy) else []:
        file = folder / f"{policy}.yaml"
        if file.is_file():
            where = str(file)
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise BrunoMemoryConfigError(f"invalid YAML: {exc}", source=where) from exc
            if not isinstance(data, dict):
                raise BrunoMemoryConfigError("a preset must be a mapping", source=where)
            return data
    known = sorted(
        {
            f.name.removesuffix(".yaml")
            for d in dirs
            if d.is_dir()
            for f in d.iterdir()
            if f.name.endswith(".yaml")
        }
    )
    raise BrunoMemoryConfigError(
        f"unknown policy preset {policy!r}; known presets: {', '.join(known) or 'none'}",
        path=path,
        source=origin,
    )


def validate(raw: dict[str, Any], origin: str) -> StackConfig:
    """Validate the stack, then each tier against its kind's own model."""
    from bruno_memory.config.registry import tier_config_model

    tiers = raw.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        raise BrunoMemoryConfigError(
            "expected a non-empty list of tiers", path="tiers", source=origin
        )
    stack = _validated(StackConfig, {**raw, "tiers": []}, origin, "")
    models: list[TierConfig] = []
    for i, tier in enumerate(tiers):
        path = f"tiers[{i}]"
        if not isinstance(tier, dict):
            raise BrunoMemoryConfigError(
                f"expected a mapping, got {tier!r}", path=path, source=origin
            )
        if "kind" not in tier:
            raise BrunoMemoryConfigError("missing key 'kind'", path=path, source=origin)
        model = tier_config_model(str(tier["kind"]), path=f"{path}.kind", source=origin)
        models.append(_validated(model, tier, origin, path))
    _check_names(models, origin)
    for i, m in enumerate(models):
        try:
            m.check_namespace(stack.namespace)
        except ValueError as exc:
            raise BrunoMemoryConfigError(
                f"{exc}: tier {m.name or m.kind!r} (tiers[{i}]) would use it; choose another "
                "namespace or set the tier's 'schema'",
                path="namespace",
                source=origin,
            ) from None
    return stack.model_copy(update={"tiers": models})


def _check_names(models: list[TierConfig], origin: str) -> None:
    seen: set[str] = set()
    for i, m in enumerate(models):
        name = m.name or m.kind
        if name in seen:
            raise BrunoMemoryConfigError(
                f"duplicate tier name {name!r}; give each tier a distinct 'name'",
                path=f"tiers[{i}].name",
                source=origin,
            )
        seen.add(name)


def _validated(model: type[M], data: dict[str, Any], origin: str, path: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        raise BrunoMemoryConfigError(
            _explain(err, model), path=where.lstrip("."), source=origin
        ) from None


def _explain(err: Any, model: type[BaseModel]) -> str:
    """What is wrong, and the value given, unless the key may hold a secret (a DSN, a URL, a
    password, an API key: whatever its type, it is never echoed)."""
    text = _explain_all(err, model)
    if any(is_secret_key(p) for p in err["loc"]):
        text = redact(text, err.get("input"))
    return text


def _explain_all(err: Any, model: type[BaseModel]) -> str:
    kind, value = err["type"], err.get("input")
    if any(is_secret_key(p) for p in err["loc"]) and kind not in ("extra_forbidden", "missing"):
        value = _Hidden(value)
    if kind == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return f"unknown key; known keys: {known}"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return msg
    return f"expected {msg[0].lower()}{msg[1:]}, got {value!r}".replace(
        "expected input should be ", "expected "
    )


class _Hidden:
    """A secret's stand-in in a message: its type, never its value."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"a {self.kind} (not shown: the key may hold a secret)"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
