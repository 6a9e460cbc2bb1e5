"""YAML, text or dict -> ``${VAR}`` -> presets -> validated ``StackConfig`` (pure steps)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bruno_memory.config.models import StackConfig, TierConfig
from bruno_memory.core.errors import BrunoMemoryConfigError

Source = str | os.PathLike[str] | Mapping[str, Any] | None

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
PRESETS_ENV = "BRUNO_MEMORY_POLICIES"
M = TypeVar("M", bound=BaseModel)


def load_config(source: Source = None, *, env: Mapping[str, str] | None = None) -> StackConfig:
    """Load and validate a stack configuration.

    Args:
        source: a YAML file path, YAML text, a mapping, or ``None`` for the embedded default.
        env: variables for ``${VAR}``; defaults to ``os.environ``.
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
    text, origin, base = _text_of(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BrunoMemoryConfigError(f"{where}invalid YAML: {problem}", source=origin) from exc
    if not isinstance(data, dict):
        raise BrunoMemoryConfigError(
            f"expected a mapping with a 'tiers' list, got {type(data).__name__}", source=origin
        )
    return data, origin, base


def _text_of(source: str | os.PathLike[str]) -> tuple[str, str, Path | None]:
    text = os.fspath(source)
    path = Path(text) if "\n" not in text else None
    if path is not None and (path.suffix in (".yaml", ".yml") or path.is_file()):
        if not path.is_file():
            raise BrunoMemoryConfigError(f"config file not found: {text}")
        return path.read_text(encoding="utf-8"), str(path), path.resolve().parent
    return text, "<yaml>", None


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


def preset_dirs(base: Path | None) -> list[Path]:
    """Where named policy presets are looked up, first match wins."""
    dirs = [Path(p) for p in os.environ.get(PRESETS_ENV, "").split(os.pathsep) if p]
    if base is not None:
        dirs += [base / "policies", base.parent / "policies"]
    dirs += [Path.cwd() / "policies", Path(__file__).resolve().parents[2] / "policies"]
    return dirs


def expand_presets(raw: dict[str, Any], dirs: list[Path], origin: str) -> dict[str, Any]:
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


def _preset(policy: Any, dirs: list[Path], origin: str, path: str) -> dict[str, Any]:
    if isinstance(policy, dict):
        return policy
    if not isinstance(policy, str):
        raise BrunoMemoryConfigError(
            f"expected a preset name or a mapping, got {policy!r}", path=path, source=origin
        )
    for folder in dirs:
        file = folder / f"{policy}.yaml"
        if file.is_file():
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise BrunoMemoryConfigError("a preset must be a mapping", source=str(file))
            return data
    known = sorted({f.stem for d in dirs if d.is_dir() for f in d.glob("*.yaml")})
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
    kind, value = err["type"], err.get("input")
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


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
