"""Config errors name the file, the key path and what was expected."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bruno_core.utils.exceptions import ConfigError

from bruno_memory import build_memory
from bruno_memory.build import check_config
from bruno_memory.cli import main
from bruno_memory.config.loader import load_config
from bruno_memory.core.errors import BrunoMemoryConfigError, MissingDependency, UnknownKind


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def error_of(source: object, **kw: object) -> str:
    with pytest.raises(BrunoMemoryConfigError) as info:
        load_config(source, **kw)  # type: ignore[arg-type]
    assert isinstance(info.value, ConfigError)
    return str(info.value)


def test_bad_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    """Unparseable YAML is reported with the file, line and column."""
    path = write(tmp_path, "tiers:\n  - kind: lru\n   bad: [\n")
    message = error_of(path)
    assert str(path) in message and "line 3" in message and "invalid YAML" in message


def test_unknown_key_lists_the_known_keys(tmp_path: Path) -> None:
    """A misspelt key is refused with its path and the keys that exist."""
    message = error_of(write(tmp_path, "tiers:\n  - {kind: lru}\n  - {kind: sqlite, pth: x.db}\n"))
    assert "tiers[1].pth: unknown key" in message and "path" in message


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    """A value of the wrong type names the key path, the expectation and the value."""
    message = error_of(
        write(tmp_path, "tiers:\n  - {kind: lru, maxsize: big}\n  - {kind: sqlite}\n")
    )
    assert message.endswith("tiers[0].maxsize: expected a positive integer, got 'big'")
    assert "tiers[0].ttl: expected a duration" in error_of(
        {"tiers": [{"kind": "lru", "ttl": "soon"}, {"kind": "sqlite"}]}
    )


def test_durations_are_parsed() -> None:
    """Durations accept ms, s, m, h, d and plain seconds."""
    cfg = load_config(
        {"tiers": [{"kind": "lru", "ttl": "250ms"}, {"kind": "sqlite", "busy_timeout": "1h"}]}
    )
    assert cfg.tiers[0].ttl == 0.25 and cfg.tiers[1].busy_timeout == 3600  # type: ignore[attr-defined]


def test_unknown_kind_lists_known_kinds() -> None:
    """An unknown tier kind lists the kinds that exist."""
    with pytest.raises(UnknownKind) as info:
        load_config({"tiers": [{"kind": "memcached"}]})
    assert "tiers[0].kind: unknown tier kind 'memcached'; known kinds:" in str(info.value)
    assert "sqlite" in str(info.value) and "redis" in str(info.value)


def test_missing_env_var_names_variable_and_key() -> None:
    """An unset ${VAR} without default names the variable and where it is used."""
    message = error_of({"tiers": [{"kind": "sqlite", "path": "${BRUNO_TEST_UNSET_VAR}"}]}, env={})
    assert "tiers[0].path" in message and "BRUNO_TEST_UNSET_VAR is not set" in message


def test_env_defaults_and_values_are_interpolated_after_parsing() -> None:
    """${VAR:-default} applies defaults, and a value can't inject YAML structure."""
    text = "namespace: ${NS:-fallback}\ntiers:\n  - {kind: sqlite, path: '${DB}'}\n"
    cfg = load_config(text, env={"DB": "a.db\ntiers: []"})
    assert cfg.namespace == "fallback" and cfg.tiers[0].path == "a.db\ntiers: []"  # type: ignore[attr-defined]


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind whose driver is not installed names the extra to install."""
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    monkeypatch.delitem(sys.modules, "bruno_memory.tiers.sql.postgres", raising=False)
    with pytest.raises(MissingDependency) as info:
        load_config({"tiers": [{"kind": "postgres", "dsn": "postgresql://x/y"}]})
    assert "pip install 'bruno-memory[postgres]'" in str(info.value)
    assert "tiers[0].kind" in str(info.value)


def test_named_preset_is_merged_beneath_tier_keys(tmp_path: Path) -> None:
    """policy: NAME merges the preset file under the tier's own keys."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "tiny.yaml").write_text("maxsize: 7\nttl: 1s\n")
    cfg = load_config(
        write(tmp_path, "tiers:\n  - {kind: lru, policy: tiny, ttl: 2s}\n  - {kind: sqlite}\n")
    )
    assert cfg.tiers[0].maxsize == 7 and cfg.tiers[0].ttl == 2  # type: ignore[attr-defined]
    assert "unknown policy preset 'nope'" in error_of(
        {"tiers": [{"kind": "sqlite", "policy": "nope"}]}
    )


def test_capabilities_are_checked_before_connecting() -> None:
    """A stack with no tier able to hold sessions is refused before anything opens."""
    cfg = load_config({"tiers": [{"kind": "lru"}]})
    with pytest.raises(BrunoMemoryConfigError, match="sessions"):
        check_config(cfg)


async def test_build_memory_refuses_a_bad_stack() -> None:
    """build_memory raises the config error, not a connection error."""
    with pytest.raises(ConfigError):
        await build_memory({"tiers": [{"kind": "lru"}]})


def test_duplicate_tier_names_are_refused() -> None:
    """Two tiers with one name would be ambiguous in health and logs."""
    assert "duplicate tier name" in error_of({"tiers": [{"kind": "sqlite"}, {"kind": "sqlite"}]})


def test_cli_check_prints_table_and_fails_on_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bruno-memory check` prints each tier's status; a bad config exits non-zero."""
    monkeypatch.chdir(tmp_path)
    good = write(tmp_path, "tiers:\n  - {kind: lru}\n  - {kind: sqlite, path: x.db}\n")
    assert main(["check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "lru" in out and "sqlite" in out and "up" in out and "text_search" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  - {kind: lru, maxsize: -3}\n")
    assert main(["check", str(bad)]) == 2
    assert "tiers[0].maxsize: expected a positive integer" in capsys.readouterr().err
