"""sellable.memory: glibc's malloc is told to keep freed memory, unless the operator tuned it.

Each case runs in a Python of its own: the settings are process-wide and cannot be undone.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

PROBE = """
import ctypes, json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
from sellable.memory import keep_freed_memory
applied = keep_freed_memory()
print(json.dumps(applied))
"""


def probe(**extra: str) -> tuple[bool, str]:
    env = {
        k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")
    }
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    *lines, last = done.stdout.strip().splitlines()
    return last == "true", "\n".join(lines)


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's; elsewhere nothing is changed")
def test_glibc_keeps_freed_memory_and_says_so() -> None:
    applied, log = probe()
    assert applied is True
    assert log.startswith("INFO malloc (glibc 2.")
    assert log.endswith("keeps freed memory for reuse")


@pytest.mark.parametrize(
    ("name", "value"), [("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"), ("MALLOC_ARENA_MAX", "2")]
)
def test_the_operators_own_malloc_settings_win(name: str, value: str) -> None:
    applied, log = probe(**{name: value})
    assert applied is False
    assert log == f"INFO malloc left as {name} sets it"
