"""From zero to connected: `codemode install <client>` into a temp HOME for every
client (the file parses, keeps the other servers, is backed up), the real Claude
Code and Codex CLIs reading what it wrote, `codemode init`, config discovery
(`--config` → CODEMODE_CONFIG → ./codemode.toml → the user config directory),
`--mcp-config` in the formats other clients write (JSONC, ${VAR}, Codex TOML),
and `codemode check` reporting every problem of a broken server list at once.

The agent CLIs come from npm (@anthropic-ai/claude-code, @openai/codex) into
.peers/agent-clients (tests/peers/setup.sh); without them those two tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import BINARY, ROOT

EXAMPLE = ROOT / "examples" / "codemode.toml"
HELPDESK = ROOT / "tests" / "integration" / "corpus" / "helpdesk_mcp.py"
AGENTS = ROOT / ".peers" / "agent-clients" / "node_modules" / ".bin"
PYTHON = Path(sys.executable)
MATURIN = ROOT / ".peers" / "maturin" / "bin" / "maturin"
QUICK_START = 'async () => (await bookshelf.request("GET /books")).data.books.map(b => `${b.year} ${b.title}`)'

JSON_CLIENTS = {
    # client: (file under HOME, key holding the servers)
    "claude-desktop": (".config/Claude/claude_desktop_config.json", "mcpServers"),
    "claude-code": (".claude.json", "mcpServers"),
    "cursor": (".cursor/mcp.json", "mcpServers"),
    "vscode": (".config/Code/User/mcp.json", "servers"),
    "windsurf": (".codeium/windsurf/mcp_config.json", "mcpServers"),
}


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: a temp HOME, no inherited codemode or XDG settings."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def codemode(*args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    assert BINARY.exists(), f"build the release binary first: {BINARY}"
    p = subprocess.run([str(BINARY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"codemode {' '.join(args)}: exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


@pytest.mark.skipif(not MATURIN.exists(), reason="run tests/peers/setup.sh (maturin into .peers/maturin)")
def test_the_wheel_puts_codemode_on_path(tmp_path: Path):
    """maturin builds the wheel from the release build already in target/ (only
    the packaging is new work), a fresh venv installs it, and the README's quick
    start runs from the installed `codemode`."""
    dist = tmp_path / "dist"
    build = subprocess.run(
        [str(MATURIN), "build", "--release", "--locked", "--compatibility", "linux", "-o", str(dist)],
        cwd=ROOT / "packaging" / "python", capture_output=True, text=True,
        # A hang guard only: a build that finds target/ cold compiles everything.
        timeout=3600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheels = list(dist.glob("codemode-*.whl"))
    assert len(wheels) == 1, build.stderr[-2000:]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index", "--no-deps", "--disable-pip-version-check", str(wheels[0])],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = venv / "bin" / "codemode"
    assert installed.exists()
    env = env_for(tmp_path, PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}")
    version = subprocess.run(["codemode", "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("codemode "), version.stdout + version.stderr
    quick = subprocess.run(["codemode", "exec", "--config", str(EXAMPLE), QUICK_START], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert quick.returncode == 0, quick.stderr
    assert json.loads(quick.stdout) == ["1969 The Left Hand of Darkness", "1968 A Wizard of Earthsea", "1979 Kindred"], quick.stdout


def _docker_works() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _docker_works(), reason="no container engine (`docker info` fails)")
def test_the_container_builds_and_reports_healthy(tmp_path: Path):
    tag = f"codemode-test:{os.getpid()}"
    build = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=7200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        cfg = tmp_path / "codemode.toml"
        # Beyond loopback (0.0.0.0 in the container) codemode wants the host names and inbound auth.
        cfg.write_text(
            '[server]\nallowed_hosts = ["127.0.0.1", "localhost"]\n[[auth.tokens]]\nname = "probe"\ntoken_env = "PROBE_TOKEN"\n'
            '[[api]]\nname = "bookshelf"\nspec = "/usr/share/codemode/examples/bookshelf.yaml"\nmock = true\n'
        )
        cfg.chmod(0o644)
        run = subprocess.run(["docker", "run", "-d", "-e", "PROBE_TOKEN=probe-token-value-0123456789", "-v", f"{cfg}:/etc/codemode/codemode.toml:ro", tag],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        cid = run.stdout.strip()
        try:
            # The HEALTHCHECK's own interval and retries decide when it is healthy or not.
            while True:
                state = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", cid],
                                       capture_output=True, text=True, timeout=60).stdout.strip()
                if state != "starting":
                    break
                time.sleep(1)
            user = subprocess.run(["docker", "exec", cid, "id", "-u"], capture_output=True, text=True, timeout=60).stdout.strip()
            assert state == "healthy", subprocess.run(["docker", "logs", cid], capture_output=True, text=True).stderr[-3000:]
            assert user != "0"
        finally:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=120)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)


@pytest.mark.parametrize("client", sorted(JSON_CLIENTS))
def test_install_merges_into_each_json_client(tmp_path: Path, client: str):
    home = tmp_path / "home"
    rel, key = JSON_CLIENTS[client]
    target = home / rel
    target.parent.mkdir(parents=True)
    # The user's file as such clients accept it: a comment, a trailing comma, another server.
    original = '{\n  // mine\n  "theme": "dark",\n  "%s": {"other": {"command": "other-server", "args": ["x"]},},\n}\n' % key
    target.write_text(original)
    env = env_for(home)

    printed = codemode("install", client, "--print", "--config", str(EXAMPLE), env=env)
    assert str(target) in printed.stdout, printed.stdout
    snippet = json.loads(printed.stdout.split("\n", 1)[1])
    entry = snippet[key]["codemode"]
    assert entry["command"] == str(BINARY.resolve())
    assert entry["args"] == ["serve", "--config", str(EXAMPLE.resolve())]
    assert target.read_text() == original, "--print changed the file"

    wrote = codemode("install", client, "--config", str(EXAMPLE), env=env)
    assert "added `codemode`" in wrote.stdout, wrote.stdout
    data = json.loads(target.read_text())
    assert data["theme"] == "dark"
    assert data[key]["other"] == {"command": "other-server", "args": ["x"]}
    assert data[key]["codemode"] == entry
    backups = list(target.parent.glob(target.name + ".*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == original

    again = codemode("install", client, "--config", str(EXAMPLE), env=env)
    assert "unchanged" in again.stdout
    assert len(list(target.parent.glob(target.name + ".*.bak"))) == 1

    # The entry works: what the client would start answers `check`-style.
    started = subprocess.run(
        [entry["command"], *entry["args"][:1], "--help"], capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0


def test_install_codex_keeps_the_users_toml(tmp_path: Path):
    codex_home = tmp_path / "codex"
    codex_home.mkdir()
    original = '# my Codex settings\nmodel = "o3"\n\n[mcp_servers.other]\ncommand = "other-server"  # keep\n'
    (codex_home / "config.toml").write_text(original)
    env = env_for(tmp_path / "home", CODEX_HOME=str(codex_home))
    printed = codemode("install", "codex", "--print", "--config", str(EXAMPLE), env=env)
    assert "[mcp_servers.codemode]" in printed.stdout and str(codex_home / "config.toml") in printed.stdout
    codemode("install", "codex", "--config", str(EXAMPLE), env=env)
    text = (codex_home / "config.toml").read_text()
    assert text.startswith(original), text
    data = tomllib.loads(text)
    assert data["model"] == "o3" and data["mcp_servers"]["other"]["command"] == "other-server"
    assert data["mcp_servers"]["codemode"] == {
        "command": str(BINARY.resolve()),
        "args": ["serve", "--config", str(EXAMPLE.resolve())],
    }


@pytest.mark.skipif(not (AGENTS / "claude").exists(), reason="run tests/peers/setup.sh (npm @anthropic-ai/claude-code)")
def test_claude_code_connects_to_the_installed_server(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(home)
    codemode("install", "claude-code", "--config", str(EXAMPLE), env=env)
    # `claude mcp list` starts every configured server and health-checks it.
    p = subprocess.run(
        [str(AGENTS / "claude"), "mcp", "list"],
        env={**env, "PATH": f"{AGENTS}:{env['PATH']}", "DISABLE_AUTOUPDATER": "1", "CI": "1"},
        cwd=home, capture_output=True, text=True, timeout=180,
    )
    out = p.stdout + p.stderr
    line = next((l for l in out.splitlines() if l.startswith("codemode")), None)
    assert line is not None, out
    assert str(BINARY.resolve()) in line and "Connected" in line, out


@pytest.mark.skipif(not (AGENTS / "codex").exists(), reason="run tests/peers/setup.sh (npm @openai/codex)")
def test_codex_lists_the_installed_server(tmp_path: Path):
    codex_home = tmp_path / "codex"
    codex_home.mkdir()
    env = env_for(tmp_path / "home", CODEX_HOME=str(codex_home))
    codemode("install", "codex", "--config", str(EXAMPLE), env=env)
    cli_env = {**env, "PATH": f"{AGENTS}:{env['PATH']}"}
    p = subprocess.run([str(AGENTS / "codex"), "mcp", "list", "--json"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    servers = {s["name"]: s for s in json.loads(p.stdout)}
    assert "codemode" in servers, p.stdout
    transport = servers["codemode"]["transport"]
    assert transport["command"] == str(BINARY.resolve()), p.stdout
    assert transport["args"] == ["serve", "--config", str(EXAMPLE.resolve())], p.stdout


def test_discovery_order(tmp_path: Path):
    def config(name: str) -> str:
        return f'[[api]]\nname = "{name}"\nspec = "{EXAMPLE.parent / "bookshelf.yaml"}"\nmock = true\n'

    home = tmp_path / "home"
    cwd = tmp_path / "work"
    user = home / ".config" / "codemode" / "codemode.toml"
    user.parent.mkdir(parents=True)
    cwd.mkdir()
    env = env_for(home)
    which = lambda e: codemode("search", "async () => Object.keys(specs)", env=e, cwd=cwd).stdout  # noqa: E731

    p = codemode("search", "async () => 1", env=env, cwd=cwd, check=False)
    assert p.returncode != 0 and "codemode init" in p.stderr and str(user) in p.stderr, p.stderr
    user.write_text(config("from_user_dir"))
    assert "from_user_dir" in which(env)
    # $XDG_CONFIG_HOME moves the user directory.
    xdg = tmp_path / "xdg"
    (xdg / "codemode").mkdir(parents=True)
    (xdg / "codemode" / "codemode.toml").write_text(config("from_xdg"))
    assert "from_xdg" in which({**env, "XDG_CONFIG_HOME": str(xdg)})
    (cwd / "codemode.toml").write_text(config("from_cwd"))
    assert "from_cwd" in which(env)
    named = tmp_path / "named.toml"
    named.write_text(config("from_env"))
    assert "from_env" in which({**env, "CODEMODE_CONFIG": str(named)})
    flag = tmp_path / "flag.toml"
    flag.write_text(config("from_flag"))
    out = codemode("search", "--config", str(flag), "async () => Object.keys(specs)", env={**env, "CODEMODE_CONFIG": str(named)}, cwd=cwd)
    assert "from_flag" in out.stdout
    # `config path` says which and why; a CODEMODE_CONFIG naming nothing is an error, not a fallback.
    assert codemode("config", "path", env={**env, "CODEMODE_CONFIG": str(named)}, cwd=cwd).stdout.strip() == f"{named} (from CODEMODE_CONFIG)"
    p = codemode("search", "async () => 1", env={**env, "CODEMODE_CONFIG": str(tmp_path / "nope.toml")}, cwd=cwd, check=False)
    assert p.returncode == 2 and "names no file" in p.stderr, p.stderr


def test_one_shot_commands_print_no_info_logs(tmp_path: Path):
    p = codemode("exec", "--config", str(EXAMPLE), 'async () => (await bookshelf.request("GET /books")).data.books.length', env=env_for(tmp_path))
    assert p.stdout.strip() == "3"
    assert " INFO " not in p.stderr and "ready" not in p.stderr, p.stderr


def test_mock_needs_no_base_url_or_credential(tmp_path: Path):
    spec = tmp_path / "noservers.json"
    spec.write_text(json.dumps({
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "paths": {"/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok", "content": {
            "application/json": {"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}, "example": {"ok": True}}}}}}}},
    }))
    env = env_for(tmp_path)
    p = codemode("exec", "--spec", str(spec), "--mock", "--bearer-env", "UNSET_TOKEN_VAR", 'async () => (await noservers.request("GET /ping")).data', env=env)
    assert json.loads(p.stdout) == {"ok": True}
    # Not rehearsed: a spec without servers needs a base URL, and the unset token stops serve as it fails check.
    p = codemode("exec", "--spec", str(spec), "--base-url", "http://127.0.0.1:9", "--bearer-env", "UNSET_TOKEN_VAR", "async () => 1", env=env, check=False)
    assert p.returncode == 2 and "UNSET_TOKEN_VAR" in p.stderr and "not set" in p.stderr, p.stderr
    c = codemode("check", "--spec", str(spec), "--base-url", "http://127.0.0.1:9", "--bearer-env", "UNSET_TOKEN_VAR", env=env, check=False)
    assert c.returncode == 1 and "UNSET_TOKEN_VAR" in c.stdout, c.stdout


def test_mcp_config_jsonc_variables_and_codex_toml(tmp_path: Path):
    env = env_for(tmp_path, HELPDESK_PY=str(PYTHON), HELPDESK_SCRIPT=str(HELPDESK))
    jsonc = tmp_path / "claude_desktop_config.json"
    jsonc.write_text(
        '{\n  // written by hand\n  "mcpServers": {\n'
        '    "helpdesk": {"command": "${HELPDESK_PY}", "args": ["${env:HELPDESK_SCRIPT}",],},\n  },\n}\n'
    )
    p = codemode("check", "--mcp-config", str(jsonc), env=env)
    assert "mcp: helpdesk" in p.stdout and "connected" in p.stdout, p.stdout
    codex = tmp_path / "config.toml"
    codex.write_text(f'model = "o3"\n[mcp_servers.helpdesk]\ncommand = "{PYTHON}"\nargs = ["{HELPDESK}"]\n')
    out = codemode("search", "--mcp-config", str(codex), "async () => codemode.tools().length", env=env)
    assert int(out.stdout.strip()) > 0, out.stdout
    # An unset variable is named, with the server.
    p = codemode("check", "--mcp-config", str(jsonc), env=env_for(tmp_path, HELPDESK_PY=str(PYTHON)), check=False)
    assert p.returncode == 1 and "HELPDESK_SCRIPT is not set" in p.stdout and "helpdesk" in p.stdout, p.stdout


def test_check_reports_a_broken_server_list_at_once(tmp_path: Path):
    cfg = tmp_path / "codemode.toml"
    cfg.write_text(
        f'[[api]]\nname = "books"\nspec = "{EXAMPLE.parent / "bookshelf.yaml"}"\nmock = true\n'
        f'[[api]]\nname = "gone"\nspec = "{tmp_path / "missing.yaml"}"\n'
        f'[[mcp]]\nname = "helpdesk"\ncommand = "{PYTHON}"\nargs = ["{HELPDESK}"]\n'
        f'[[mcp]]\nname = "nosuch"\ncommand = "{tmp_path / "no-such-server"}"\n'
        f'[[mcp]]\nname = "keyless"\ncommand = "{PYTHON}"\nenv = ["UNSET_KEY_VAR"]\n'
    )
    p = codemode("check", "--config", str(cfg), env=env_for(tmp_path), check=False)
    out = p.stdout
    assert p.returncode == 1, out
    assert "api[1].spec" in out and "missing.yaml" in out, out
    assert "UNSET_KEY_VAR" in out, out
    # check reports servers even when an API failed to load. (A fatal API problem
    # stops the sandbox start; the server list is still connected and reported.)
    assert "helpdesk" in out and "nosuch" in out, out


def test_check_refuses_a_config_that_starts_itself(tmp_path: Path):
    cfg = tmp_path / "codemode.toml"
    cfg.write_text(
        f'[[api]]\nname = "books"\nspec = "{EXAMPLE.parent / "bookshelf.yaml"}"\nmock = true\n'
        f'[[mcp]]\nname = "loop"\ncommand = "{BINARY}"\nargs = ["serve", "--config", "{cfg}"]\n'
        f'[[mcp]]\nname = "other"\ncommand = "{BINARY}"\nargs = ["serve", "--config", "{EXAMPLE}"]\n'
    )
    p = codemode("check", "--config", str(cfg), env=env_for(tmp_path), check=False)
    assert p.returncode == 1 and "`loop` starts codemode on this same config" in p.stdout, p.stdout
    assert "`other`" not in p.stdout, p.stdout
    # serve refuses it too, before starting anything.
    s = subprocess.run([str(BINARY), "serve", "--config", str(cfg)], env=env_for(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert s.returncode == 2 and "starts codemode on this same config" in s.stderr, s.stderr


def test_init_from_a_spec_and_from_an_mcp_servers_file(tmp_path: Path):
    env = env_for(tmp_path, HELPDESK_TOKEN="t0ken-value-123")
    out = tmp_path / "cfg" / "codemode.toml"
    p = codemode("init", "--spec", str(EXAMPLE.parent / "bookshelf.yaml"), "--output", str(out), env=env, check=False)
    # bookshelf.yaml's server is an example host; check loads the spec and the sandbox.
    assert "wrote" in p.stdout and "bookshelf (7 operations)" in p.stdout, p.stdout + p.stderr
    text = out.read_text()
    assert text.startswith("# codemode.toml") and 'name = "bookshelf"' in text
    assert codemode("init", "--spec", "x.yaml", "--output", str(out), env=env, check=False).returncode == 2
    source = tmp_path / "mcp.json"
    source.write_text(json.dumps({"mcpServers": {
        "helpdesk": {"command": str(PYTHON), "args": [str(HELPDESK)], "env": {"HELPDESK_TOKEN": "literal-secret-999"}},
        "codemode": {"command": str(BINARY), "args": ["serve"]},
    }}))
    out2 = tmp_path / "imported.toml"
    p = codemode("init", "--from", str(source), "--output", str(out2), env=env)
    text = out2.read_text()
    assert "literal-secret-999" not in text and 'env = ["HELPDESK_TOKEN"]' in text, text
    assert "codemode itself" in text, text
    assert "mcp: helpdesk" in p.stdout and "connected" in p.stdout, p.stdout


def test_the_readme_footprint_is_what_the_binary_counts(tmp_path: Path):
    """The README's headline figure (Cloudflare through codemode, o200k) comes from
    `codemode tokens`: it must be the number the binary prints today."""
    spec = ROOT.parent / "shared" / "specs" / "cloudflare-2024-08-06.openapi.json"  # scripts/test needs ../shared
    p = codemode("tokens", "--spec", str(spec), "--json", env=env_for(tmp_path))
    ours = json.loads(p.stdout)["codemode"]["o200k"]
    readme = (ROOT / "README.md").read_text()
    assert f"through codemode\nit costs {ours} " in readme or f"through codemode it costs {ours} " in readme, (
        f"README.md's footprint figure is not the binary's ({ours} o200k): update the first paragraph"
    )
