"""The stack's two instances on one machine: the person's and the tests' own.

`./dev up` serves the person's instance: `.local/`, the default ports, `data/`,
the settings in `.env`. `./dev test` and `./dev bench` run on the tests'
instance, which shares nothing with it but the caches of slow artefacts (venv, Go
builds, converted models): its own folder (`.local/test/`: cluster, storage, mail,
journals, secrets), its own data folder (`.local/test/data/`), every port moved by
`TEST_PORT_OFFSET`, and none of the person's `.env` or service variables (a
`DATABASE_URL` exported for a hosted project must never reach a test). So the
tests' accounts, conversations, prompts, storage objects, mail and LiveKit rooms
never land where a person keeps theirs, and the person's stack keeps serving while
they run.

    python -m stack.instances test-env   # `export`/`unset` lines for bash's eval
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import AliasChoices

from workbench.config import REPO_ROOT, Settings

# Far enough from the defaults that no port of one instance meets one of the other's,
# counting the extra LiveKit nodes (+10 each) and agent workers (+1 each).
TEST_PORT_OFFSET = 2000
TEST_LOCAL_DIR = REPO_ROOT / ".local" / "test"
# Where the tests' instance keeps built datasets and eval runs (the person's: data/).
TEST_DATA_DIR = TEST_LOCAL_DIR / "data"
# Settings of the machine rather than of an instance: the tests share them.
SHARED_VARIABLES = frozenset({"WORKBENCH_CACHE_DIR"})
# Read outside `Settings`: which .env file to read ("" for none).
ENV_FILE_VARIABLE = "WORKBENCH_ENV_FILE"
# The agent's conversation knobs (agent/settings.py): the person's never reach the tests.
AGENT_KNOBS_PREFIX = "WORKBENCH_AGENT_"


def settings_variables() -> dict[str, str]:
    """Each setting's environment variable (its current name), by field name."""
    names = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[field_name] = str(alias.choices[0])
    return names


def every_settings_variable() -> set[str]:
    """Every environment variable `Settings` reads, old names included."""
    return {
        str(name)
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, AliasChoices)
        for name in field.validation_alias.choices
        if isinstance(name, str) and name.isupper()
    }


def ports_for_tests() -> dict[str, int]:
    """The tests' instance's ports: each default port plus TEST_PORT_OFFSET."""
    ports = {}
    for field_name, variable in settings_variables().items():
        if field_name.endswith("_port"):
            default = Settings.model_fields[field_name].default
            ports[variable] = int(default) + TEST_PORT_OFFSET
    return ports


def environment_for_tests(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with the person's instance settings removed and the tests' set."""
    instance = every_settings_variable() | {ENV_FILE_VARIABLE}
    env = {
        k: v
        for k, v in environ.items()
        if (k not in instance and not k.startswith(AGENT_KNOBS_PREFIX)) or k in SHARED_VARIABLES
    }
    env.update({name: str(port) for name, port in ports_for_tests().items()})
    env.update(
        WORKBENCH_DEPLOYMENT="local",
        WORKBENCH_LOCAL_DIR=str(TEST_LOCAL_DIR),
        WORKBENCH_DATA_DIR=str(TEST_DATA_DIR),
        **{ENV_FILE_VARIABLE: ""},
    )
    return env


def is_test_instance(settings: Settings) -> bool:
    """True when `settings` point at the tests' instance (benches that make users check it)."""
    return settings.is_local and Path(settings.local_dir).resolve() == TEST_LOCAL_DIR.resolve()


def require_test_instance(settings: Settings, script: str) -> None:
    """Exit with how to run `script` unless it runs on the tests' instance."""
    if not is_test_instance(settings):
        sys.exit(
            f"{script} makes accounts and conversations: run it on the tests' own stack with "
            f"`./dev bench {script}`, never on the workbench `./dev up` serves you"
        )


def _shell_lines(environ: Mapping[str, str]) -> list[str]:
    target = environment_for_tests(environ)
    lines = [f"unset {name}" for name in sorted(environ) if name not in target]
    lines += [
        f"export {name}={shlex.quote(value)}"
        for name, value in sorted(target.items())
        if environ.get(name) != value
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """`test-env`: the shell lines that move this shell onto the tests' instance."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["test-env"]:
        print("usage: python -m stack.instances test-env", file=sys.stderr)
        return 2
    print("\n".join(_shell_lines(os.environ)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
