"""Fixtures for driving the real codemode binary with the official Python MCP SDK,
against real upstream HTTP APIs started on loopback (see tests/peers)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "peers"))

import peers  # noqa: E402

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

BINARY = Path(os.environ.get("CODEMODE_BIN", ROOT / "target" / "release" / "codemode"))
SPECS = peers.SPECS_DIR


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def kinto_peer():
    with peers.kinto() as k:
        yield k


@pytest.fixture(scope="session")
def httpbin_peer():
    with peers.httpbin() as url:
        yield url


@pytest.fixture(scope="session")
def prism_cloudflare():
    with peers.prism(peers.CLOUDFLARE_SPEC) as url:
        yield url


def write_config(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "codemode.toml"
    p.write_text(text)
    return p


@contextlib.asynccontextmanager
async def mcp_session(args: list[str], env: dict[str, str] | None = None, errlog=None, **session_kwargs):
    """Starts `codemode serve ARGS` over stdio and yields an initialised ClientSession
    (extra keyword arguments, such as `elicitation_callback`, go to the ClientSession)."""
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    full_env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_LOG": "info,rmcp=warn"}
    full_env.update(env or {})
    params = StdioServerParameters(command=str(BINARY), args=["serve", *args], env=full_env)
    kwargs = {"errlog": errlog} if errlog is not None else {}
    async with stdio_client(params, **kwargs) as (read, write):
        async with ClientSession(read, write, **session_kwargs) as session:
            await session.initialize()
            yield session


def text_of(result) -> str:
    """All text content of a tool result, joined."""
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
