"""Presets and shipped stacks are package data: named stacks, ``init``/``list``, ``--version``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from bruno_core.models.message import Message, MessageRole
from bruno_core.utils.exceptions import ConfigError

import bruno_memory
from bruno_memory import build_memory
from bruno_memory.cli import main
from bruno_memory.config.loader import PRESETS_ENV, describe, load_config, shipped_stacks
from bruno_memory.core.errors import BrunoMemoryConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {"cluster", "laptop", "production", "semantic", "single-node"}
ENV = {  # what the server stacks read; nothing connects while loading
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_CLUSTER_URL": "redis://127.0.0.1:7000/0",
    "DATABASE_URL": "postgresql://u@127.0.0.1:5432/db",
}
LAPTOP_YAML = "tiers:\n  - {kind: lru}\n  - {kind: sqlite, path: mine.db, policy: batched}\n"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder outside the checkout, with no preset or database variables."""
    for name in (PRESETS_ENV, "BRUNO_MEMORY_DB", "BRUNO_MEMORY_NAMESPACE", "BRUNO_MEMORY_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_error(source: object) -> str:
    with pytest.raises(BrunoMemoryConfigError) as info:
        load_config(source)  # type: ignore[arg-type]
    assert isinstance(info.value, ConfigError)
    return str(info.value)


def test_the_shipped_stacks_are_the_files_in_tiers() -> None:
    """The package ships every stack of the repo's tiers/ (a link to the package's copy)."""
    assert (ROOT / "tiers").is_symlink() and (ROOT / "policies").is_symlink()
    assert set(shipped_stacks()) == SHIPPED == {p.stem for p in (ROOT / "tiers").glob("*.yaml")}
    for name, resource in shipped_stacks().items():
        assert resource.read_text() == (ROOT / "tiers" / f"{name}.yaml").read_text()
        assert describe(resource.read_text())  # a one-line description for `bruno-memory list`


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_stack_loads_by_name(name: str, elsewhere: Path) -> None:
    """``load_config("laptop")`` is the shipped file, its presets expanded from the package."""
    by_name = load_config(name, env=ENV)
    assert by_name == load_config(ROOT / "tiers" / f"{name}.yaml", env=ENV)
    assert by_name.tiers and all(t.kind for t in by_name.tiers)


async def test_build_memory_by_name_keeps_paths_in_the_current_folder(elsewhere: Path) -> None:
    """``build_memory("laptop")`` works, and its relative SQLite path is the user's folder."""
    assert load_config("laptop").tiers[1].path == "bruno-memory.db"  # type: ignore[attr-defined]
    async with await build_memory("laptop") as memory:
        ctx = await memory.get_context("ada", "chat-1")
        await memory.store_message(
            Message(role=MessageRole.USER, content="hi"), ctx.conversation_id
        )
        assert [m.content for m in await memory.retrieve_messages("chat-1")] == ["hi"]
    assert (elsewhere / "bruno-memory.db").is_file()


def test_an_unknown_name_lists_the_shipped_stacks(elsewhere: Path) -> None:
    """A bare name that is no file and no shipped stack says which names exist."""
    message = config_error("labtop")
    assert "unknown stack 'labtop'" in message
    assert "shipped stacks: cluster, laptop, production, semantic, single-node" in message
    assert "shipped stacks: cluster" in config_error("configs/mine")  # no file, not YAML


def test_a_yaml_suffix_is_a_file_even_when_missing(elsewhere: Path) -> None:
    """``laptop.yaml`` is never taken for the shipped stack: a missing file is an error."""
    assert config_error("laptop.yaml") == "config file not found: laptop.yaml"
    assert "config file not found" in config_error(Path("laptop"))  # a Path is always a file


def test_an_existing_path_without_suffix_is_read_as_a_file(elsewhere: Path) -> None:
    """A file named like a shipped stack wins over it; a folder is refused."""
    (elsewhere / "laptop").write_text(LAPTOP_YAML)
    cfg = load_config("laptop")
    assert [t.kind for t in cfg.tiers] == ["lru", "sqlite"]
    assert cfg.tiers[1].path == "mine.db"  # type: ignore[attr-defined]
    (elsewhere / "folder").mkdir()
    assert "got a directory" in config_error("folder")


def test_yaml_text_is_still_yaml_text(elsewhere: Path) -> None:
    """A string with a newline, or a one-line mapping, is parsed as YAML."""
    assert len(load_config(LAPTOP_YAML).tiers) == 2
    assert len(load_config("{tiers: [{kind: lru}, {kind: sqlite}]}").tiers) == 2


def test_presets_come_from_the_package(elsewhere: Path) -> None:
    """A config in a folder with no policies/ still finds every shipped preset."""
    assert not (elsewhere / "policies").exists()
    path = elsewhere / "stack.yaml"
    path.write_text(LAPTOP_YAML)
    assert load_config(path).tiers[1].write == "write-behind"  # the `batched` preset
    path.write_text(LAPTOP_YAML.replace("batched", "no-such-preset"))
    message = config_error(path)
    assert "unknown policy preset 'no-such-preset'" in message
    for preset in ("batched", "batched-journaled", "cache-skip-on-error", "write-through"):
        assert preset in message


def test_a_local_preset_overrides_the_packaged_one(
    elsewhere: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config's own policies/ comes first, then $BRUNO_MEMORY_POLICIES, then the package."""
    path = elsewhere / "stack.yaml"
    path.write_text(LAPTOP_YAML)
    extra = tmp_path_factory.mktemp("presets")
    (extra / "batched.yaml").write_text("write: write-through\n")
    monkeypatch.setenv(PRESETS_ENV, str(extra))
    assert load_config(path).tiers[1].write == "write-through"  # from the env folder
    (elsewhere / "policies").mkdir()
    (elsewhere / "policies" / "batched.yaml").write_text("write: write-behind\non_error: skip\n")
    assert load_config(path).tiers[1].on_error == "skip"  # from the config's folder


def test_init_writes_a_copy_and_refuses_to_overwrite(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``init laptop`` writes ./laptop.yaml once; again is exit 1; ``--force`` overwrites."""
    shipped = shipped_stacks()["laptop"].read_text()
    assert main(["init", "laptop"]) == 0
    target = elsewhere / "laptop.yaml"
    assert target.read_text() == shipped
    assert "bruno-memory check laptop.yaml" in capsys.readouterr().out
    target.write_text("# mine\n")
    assert main(["init", "laptop"]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert main(["init", "laptop", "--force"]) == 0
    assert target.read_text() == shipped
    assert main(["check", "laptop.yaml"]) == 0  # the copy works as it is


def test_init_takes_a_path_or_a_folder_and_refuses_unknown_names(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PATH names the file (or the folder it goes in); an unknown stack is exit 2."""
    assert main(["init", "semantic", "conf/memory.yaml"]) == 2  # no such folder
    (elsewhere / "conf").mkdir()
    assert main(["init", "semantic", "conf/memory.yaml"]) == 0
    assert main(["init", "production", "conf"]) == 0
    assert {p.name for p in (elsewhere / "conf").iterdir()} == {"memory.yaml", "production.yaml"}
    capsys.readouterr()
    assert main(["init", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown stack 'nope'" in err and "laptop" in err
    assert not (elsewhere / "nope.yaml").exists()


def test_list_and_bare_init_show_the_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    """``list`` (and ``init`` with no name) prints each shipped stack with its description."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert main(["init"]) == 0
    assert capsys.readouterr().out == out
    lines = out.splitlines()
    assert lines[0].split() == ["stack", "description"]
    assert [line.split()[0] for line in lines[1:]] == sorted(SHIPPED)
    assert "One process on one machine, no server" in out


def test_check_takes_a_shipped_name(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bruno-memory check laptop`` opens the shipped stack (in the current folder)."""
    assert main(["check", "laptop"]) == 0
    assert "sqlite" in capsys.readouterr().out
    assert main(["check", "laptopp"]) == 2
    assert "shipped stacks: cluster" in capsys.readouterr().err


def test_version_has_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` prints the distribution's version, which is ``__version__``."""
    assert bruno_memory.__version__ == version("bruno-memory")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bruno-memory {version('bruno-memory')}"


def test_python_m_bruno_memory(elsewhere: Path) -> None:
    """``python -m bruno_memory`` is the command."""
    run = subprocess.run(
        [sys.executable, "-m", "bruno_memory", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"bruno-memory {bruno_memory.__version__}"
    usage = subprocess.run(
        [sys.executable, "-m", "bruno_memory"], capture_output=True, text=True, timeout=120
    )
    assert usage.returncode == 2 and "usage: bruno-memory" in usage.stderr


OPTIONAL = ("asyncpg", "redis", "qdrant_client", "qdrant_edge", "chromadb", "yake",
            "prometheus_client", "datasketch", "vaderSentiment", "sentence_transformers")
"""Modules of the extras: the command starts without any of them (a bare wheel)."""


def test_the_command_starts_without_any_extra(elsewhere: Path) -> None:
    """Every command module imports its extras only when a command needs them."""
    script = (
        "import sys\n"
        f"for name in {OPTIONAL!r}:\n"
        "    sys.modules[name] = None  # an import of it fails\n"
        "from bruno_memory.cli import main\n"
        "raise SystemExit(main(['list']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=elsewhere, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "laptop" in done.stdout
