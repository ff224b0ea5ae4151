"""Start real peers (Kinto, httpbin, Prism) on free loopback ports for integration tests.

Run ``tests/peers/setup.sh`` first; it installs everything into ``<repo>/.peers/``.

Each function is a context manager that starts the peer in its own process group,
waits (bounded) until it answers HTTP, yields where to reach it, and on exit kills
the whole process group (SIGTERM, then SIGKILL)::

    from peers import kinto, httpbin, prism
    with kinto() as k:            # k.url == "http://127.0.0.1:PORT/v1", k.user, k.password
        ...
    with httpbin() as url:        # "http://127.0.0.1:PORT"
        ...
    with prism(SPEC) as url:      # "http://127.0.0.1:PORT" (paths without the spec's base path)
        ...

``python tests/peers/peers.py kinto|httpbin|prism [SPEC] [--stdin]`` starts one peer, prints
one JSON line (``{"url": ...}``, plus ``user``/``password`` for kinto) and runs until
SIGINT/SIGTERM/SIGHUP (or, with ``--stdin``, until stdin closes) -- usable from non-Python tests.
Only the standard library is used, so any Python >= 3.8 can import this module.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import re
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO_ROOT / ".peers"
VENV_BIN = PEERS_DIR / "venv" / "bin"
NODE_BIN = PEERS_DIR / "node" / "node_modules" / ".bin"
SPECS_DIR = Path(os.environ.get("CODEMODE_SPECS_DIR", REPO_ROOT.parent / "shared" / "specs"))
CLOUDFLARE_SPEC = SPECS_DIR / "cloudflare-2024-08-06.openapi.json"

LOOPBACK = "127.0.0.1"


class PeerError(RuntimeError):
    """A peer is not installed, failed to start, or did not become ready in time."""


@dataclasses.dataclass(frozen=True)
class Kinto:
    url: str        # e.g. "http://127.0.0.1:PORT/v1" (no trailing slash)
    user: str       # account id; Basic auth user name, principal "account:<user>"
    password: str
    log: Optional[Path] = None  # the server's own log, with one access line per request

    def access_log(self, agent_prefix: str = "") -> list[tuple[str, str, int]]:
        """Kinto's own record of the requests it served: ``(method, path, status)`` in
        order, from its request summary lines (``"GET   /v1/buckets?" 200 (1 ms) agent=...``),
        optionally only those whose user agent starts with ``agent_prefix``."""
        if self.log is None:
            return []
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))
        out = []
        for m in re.finditer(r'^"([A-Z]+) +([^"?]*)\?[^"]*" (\d{3}) \(\d+ ms\)(.*)$', text, re.M):
            agent = re.search(r"\bagent=(\S+)", m.group(4))
            if agent_prefix and not (agent and agent.group(1).startswith(agent_prefix)):
                continue
            out.append((m.group(1), m.group(2), int(m.group(3))))
        return out

    @property
    def authorization(self) -> str:
        """Value for an ``Authorization`` header (Basic auth as the admin account)."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _exe(directory: Path, name: str) -> str:
    path = directory / name
    if not os.access(path, os.X_OK):
        raise PeerError(f"{path} not found; run tests/peers/setup.sh first")
    return str(path)


def _tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {log_path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _http_status(url: str, timeout: float = 2.0) -> Optional[int]:
    """HTTP status of GET url, or None if nothing answered (refused, reset, timeout)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the peer's process group, wait up to ``grace`` s, then SIGKILL what is left."""
    pgid = proc.pid  # start_new_session=True: the leader's pid is the group id
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader so it does not linger as a zombie group member
            if not _group_alive(pgid):
                return
            time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def _run(
    name: str,
    argv: Sequence[str],
    ready_url: str,
    is_ready: Callable[[Optional[int]], bool],
    timeout: float,
    workdir: Path,
    env: Optional[dict] = None,
) -> Iterator[subprocess.Popen]:
    """Start argv in its own session, wait until GET ready_url satisfies is_ready."""
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # own process group -> killpg reaches children
        )
    try:
        start = time.monotonic()
        while True:
            code = proc.poll()
            if code is not None:
                raise PeerError(
                    f"{name} exited with code {code} before becoming ready\n"
                    f"command: {' '.join(argv)}\n--- {name} log (tail) ---\n{_tail(log_path)}"
                )
            if is_ready(_http_status(ready_url)):
                break
            if time.monotonic() - start > timeout:
                raise PeerError(
                    f"{name} not ready after {timeout:.0f}s (polling {ready_url})\n"
                    f"command: {' '.join(argv)}\n--- {name} log (tail) ---\n{_tail(log_path)}"
                )
            time.sleep(0.2)
        yield proc
    finally:
        _kill_group(proc)


def _request(method: str, url: str, body: Optional[dict] = None, headers: Optional[dict] = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def kinto(user: str = "admin", password: str = "s3cret-admin-pw", timeout: float = 60.0) -> Iterator[Kinto]:
    """Kinto 26.5 with in-memory storage, accounts plugin and an admin account.

    ``kinto init`` already writes everything needed for account-based Basic auth:
    ``kinto.includes`` has ``kinto.plugins.accounts``, ``multiauth.policies = account``,
    ``kinto.account_create_principals = system.Everyone``,
    ``kinto.account_write_principals = account:admin`` and
    ``kinto.bucket_create_principals = account:admin``. So only ``account:<user>``
    (``admin`` by default; another ``user`` replaces ``account:admin`` in the ini) can
    create buckets; anonymous POST /buckets -> 401, other accounts -> 403.
    Data lives in memory and is lost when the server stops.
    """
    kinto_bin = _exe(VENV_BIN, "kinto")
    with tempfile.TemporaryDirectory(prefix="peer-kinto-") as tmp:
        workdir = Path(tmp)
        ini = workdir / "kinto.ini"
        init = subprocess.run(
            [kinto_bin, "init", "--backend=memory", "--cache-backend=memory", "--ini", str(ini)],
            cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0 or not ini.exists():
            raise PeerError(f"kinto init failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        text = ini.read_text()
        for needle in ("kinto.plugins.accounts", "multiauth.policies = account",
                       "kinto.bucket_create_principals = account:admin"):
            if needle not in text:
                raise PeerError(f"kinto init wrote an unexpected {ini}: missing {needle!r}")
        if user != "admin":
            ini.write_text(text.replace("account:admin", f"account:{user}"))

        port = free_port()
        base = f"http://{LOOPBACK}:{port}/v1"
        with _run(
            "kinto",
            [kinto_bin, "start", "--ini", str(ini), "--port", str(port)],
            ready_url=f"{base}/__heartbeat__",
            is_ready=lambda s: s == 200,
            timeout=timeout,
            workdir=workdir,
        ):
            status, body = _request("PUT", f"{base}/accounts/{user}", {"data": {"password": password}})
            if status not in (200, 201):
                raise PeerError(f"creating Kinto account {user!r} failed: {status} {body[:500]!r}")
            yield Kinto(url=base, user=user, password=password, log=workdir / "kinto.log")


@contextlib.contextmanager
def httpbin(workers: int = 2, timeout: float = 60.0) -> Iterator[str]:
    """httpbin 0.10.4 under gunicorn; yields ``http://127.0.0.1:PORT`` (no trailing slash)."""
    gunicorn = _exe(VENV_BIN, "gunicorn")
    with tempfile.TemporaryDirectory(prefix="peer-httpbin-") as tmp:
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        with _run(
            "httpbin",
            [gunicorn, "-b", f"{LOOPBACK}:{port}", "-w", str(workers), "httpbin:app"],
            ready_url=f"{url}/get",
            is_ready=lambda s: s == 200,
            timeout=timeout,
            workdir=Path(tmp),
        ):
            yield url


@contextlib.contextmanager
def prism(spec_path, timeout: float = 90.0) -> Iterator[str]:
    """Stoplight Prism 5.14 mock server for an OpenAPI/Swagger file; yields ``http://127.0.0.1:PORT``.

    Prism serves the spec's paths WITHOUT the server base path (Cloudflare: ``/zones``,
    not ``/client/v4/zones``) and enforces security schemes (401 without credentials).
    Startup is slow on big specs (Cloudflare ~10-15 s, more on a busy machine).
    """
    spec = Path(spec_path).resolve()
    if not spec.is_file():
        raise PeerError(f"spec not found: {spec}")
    prism_bin = _exe(NODE_BIN, "prism")
    with tempfile.TemporaryDirectory(prefix="peer-prism-") as tmp:
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        with _run(
            "prism",
            [prism_bin, "mock", "-h", LOOPBACK, "-p", str(port), str(spec)],
            # Prism binds only once the spec is loaded; any HTTP answer means ready.
            ready_url=f"{url}/",
            is_ready=lambda s: s is not None,
            timeout=timeout,
            workdir=Path(tmp),
        ):
            yield url


def _main(argv: Sequence[str]) -> int:
    """CLI: start one peer, print one JSON line ({"url": ...}, plus user/password for
    kinto) to stdout, then run until SIGINT/SIGTERM/SIGHUP (or stdin EOF with --stdin)."""
    import argparse

    ap = argparse.ArgumentParser(description="Start one test peer until interrupted.")
    ap.add_argument("peer", choices=("kinto", "httpbin", "prism"))
    ap.add_argument("spec", nargs="?", default=str(CLOUDFLARE_SPEC), help="OpenAPI file (prism only)")
    ap.add_argument("--stdin", action="store_true",
                    help="also stop when stdin reaches EOF (so a parent's death stops the peer)")
    args = ap.parse_args(argv)

    def _stop(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)

    cm = {"kinto": kinto, "httpbin": httpbin}.get(args.peer)
    try:
        with (cm() if cm else prism(args.spec)) as peer:
            info = dataclasses.asdict(peer) if isinstance(peer, Kinto) else {"url": peer}
            print(json.dumps(info), flush=True)
            if args.stdin:
                while sys.stdin.buffer.read(65536):
                    pass
            else:
                while True:
                    signal.pause()
    except KeyboardInterrupt:
        pass
    except PeerError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
