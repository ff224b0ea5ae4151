#!/usr/bin/env bash
# Install the real peers our integration tests talk to, into the git-ignored
# <repo>/.peers/ folder (never globally). Idempotent: a stamp file records the
# pinned versions; when it matches and the executables exist, this exits at once.
#
#   tests/peers/setup.sh            # install (or verify) everything
#   tests/peers/setup.sh --force    # reinstall from scratch
#
# Env: PYTHON (default python3, needs >= 3.10), NPM (default npm; Node >= 18.20).
set -euo pipefail

# ---- pinned versions (verified together on Python 3.11 / Node 20.20 / npm 11) ----
PIP_PINS=(
  "mcp==2.3.0"          # official Python MCP SDK (client side of our tests)
  "kinto==26.5.0"       # real JSON store with accounts + Basic auth
  "httpbin==0.10.4"     # echo HTTP API
  "gunicorn==27.0.1"    # serves httpbin:app
  "flasgger==0.9.7.1"   # httpbin's Swagger UI dependency
  "Flask==3.1.3"        # httpbin's framework (pinned: httpbin is picky about Flask/Werkzeug)
  "Werkzeug==3.1.9"
  "pytest==9.2.0"
  "opentelemetry-proto==1.45.2"  # OTLP messages for the loopback receiver of test_telemetry
  "protobuf==7.36.2"
  "grpcio==1.85.3"               # the OTLP/gRPC side of that receiver
)
NPM_PINS=(
  "@stoplight/prism-cli@5.14.2"   # OpenAPI mock server
)
# GraphQL peers (tests/integration/test_graphql.py), with stamps of their own:
GRAPHQL_PIP_PINS=(
  "strawberry-graphql==0.341.2"  # the small GraphQL server of graphql_server.py (under uvicorn)
)
GRAPHQL_NPM_PINS=(
  "@octokit/graphql-schema@15.26.1"  # GitHub's public GraphQL schema: schema.graphql (SDL) and schema.json
)
# -----------------------------------------------------------------------------

log() { printf '[peers/setup] %s\n' "$*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/.peers"
VENV="$PEERS/venv"
NODE_DIR="$PEERS/node"
PYTHON="${PYTHON:-python3}"
NPM="${NPM:-npm}"

PY_STAMP_WANT="${PIP_PINS[*]}"
NODE_STAMP_WANT="${NPM_PINS[*]}"
PY_STAMP="$PEERS/.stamp-venv"
NODE_STAMP="$PEERS/.stamp-node"

if [[ "${1:-}" == "--force" ]]; then
  log "--force: removing $VENV and $NODE_DIR"
  rm -rf "$VENV" "$NODE_DIR" "$PY_STAMP" "$NODE_STAMP"
fi

mkdir -p "$PEERS"

# ---- Python venv -------------------------------------------------------------
if [[ -f "$PY_STAMP" && "$(cat "$PY_STAMP")" == "$PY_STAMP_WANT" \
      && -x "$VENV/bin/python" && -x "$VENV/bin/kinto" && -x "$VENV/bin/gunicorn" ]]; then
  log "venv up to date: $VENV"
else
  rm -f "$PY_STAMP"
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
  fi
  log "pip install ${PIP_PINS[*]}"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PINS[@]}" >&2
  "$VENV/bin/python" - <<'PY' >&2
import importlib.metadata as m
for d in ("mcp", "kinto", "httpbin", "gunicorn", "flasgger", "pytest", "opentelemetry-proto", "grpcio"):
    print(f"[peers/setup]   {d}=={m.version(d)}")
import mcp.client.stdio, mcp.client.streamable_http, httpbin, kinto  # noqa: F401  (smoke import)
import grpc, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc  # noqa: F401
PY
  printf '%s' "$PY_STAMP_WANT" > "$PY_STAMP"
fi

# ---- Node packages -----------------------------------------------------------
if [[ -f "$NODE_STAMP" && "$(cat "$NODE_STAMP")" == "$NODE_STAMP_WANT" \
      && -x "$NODE_DIR/node_modules/.bin/prism" ]]; then
  log "node packages up to date: $NODE_DIR"
else
  rm -f "$NODE_STAMP"
  command -v node >/dev/null || { log "ERROR: node not found on PATH (need >= 18.20)"; exit 1; }
  log "npm install --prefix $NODE_DIR ${NPM_PINS[*]} (node $(node --version))"
  mkdir -p "$NODE_DIR"
  "$NPM" install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error "${NPM_PINS[@]}" >&2
  log "  prism $("$NODE_DIR/node_modules/.bin/prism" --version)"
  printf '%s' "$NODE_STAMP_WANT" > "$NODE_STAMP"
fi

# ---- OpenID provider (npm oidc-provider; tests/peers/oidc: the one provider of
# test_oauth_signin.py, test_oauth_mcp.py and the identity benches) ------------
NPM="$NPM" "$ROOT/tests/peers/oidc/install.sh"
# ---- agent CLIs and maturin (tests/integration/test_install.py) ----------------
# `claude mcp list` / `codex mcp list` read what `codemode install` wrote;
# maturin builds the wheel that carries the binary. Own folders and stamps, so
# a version bump here reinstalls only these.
AGENT_PINS=("@anthropic-ai/claude-code@2.1.197" "@openai/codex@0.171.0")
AGENTS_DIR="$PEERS/agent-clients"
AGENTS_STAMP="$PEERS/.stamp-agents"
if [[ -f "$AGENTS_STAMP" && "$(cat "$AGENTS_STAMP")" == "${AGENT_PINS[*]}" \
      && -x "$AGENTS_DIR/node_modules/.bin/claude" && -x "$AGENTS_DIR/node_modules/.bin/codex" ]]; then
  log "agent CLIs up to date: $AGENTS_DIR"
else
  log "npm install --prefix $AGENTS_DIR ${AGENT_PINS[*]}"
  mkdir -p "$AGENTS_DIR"
  "$NPM" install --prefix "$AGENTS_DIR" --no-audit --no-fund --loglevel=error "${AGENT_PINS[@]}" >&2 \
    && printf '%s' "${AGENT_PINS[*]}" > "$AGENTS_STAMP" \
    || log "WARNING: the agent CLIs could not be installed; their tests in test_install.py will skip"
fi
MATURIN_PIN="maturin==1.16.0"
MATURIN_VENV="$PEERS/maturin"
if [[ -x "$MATURIN_VENV/bin/maturin" && "$("$MATURIN_VENV/bin/maturin" --version)" == "maturin ${MATURIN_PIN#maturin==}" ]]; then
  log "maturin up to date: $MATURIN_VENV"
else
  log "pip install $MATURIN_PIN into $MATURIN_VENV"
  "$PYTHON" -m venv "$MATURIN_VENV"
  "$MATURIN_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$MATURIN_PIN" >&2 \
    || log "WARNING: maturin could not be installed; the wheel test will skip"
fi
# ---- GraphQL peers ------------------------------------------------------------
GRAPHQL_DIR="$PEERS/graphql"
GRAPHQL_STAMP="$PEERS/.stamp-graphql"
GRAPHQL_STAMP_WANT="${GRAPHQL_PIP_PINS[*]} ${GRAPHQL_NPM_PINS[*]}"
if [[ -f "$GRAPHQL_STAMP" && "$(cat "$GRAPHQL_STAMP")" == "$GRAPHQL_STAMP_WANT" \
      && -f "$GRAPHQL_DIR/node_modules/@octokit/graphql-schema/schema.graphql" ]]; then
  log "GraphQL peers up to date"
else
  rm -f "$GRAPHQL_STAMP"
  log "pip install ${GRAPHQL_PIP_PINS[*]}"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${GRAPHQL_PIP_PINS[@]}" >&2
  "$VENV/bin/python" -c "import strawberry, uvicorn" >&2
  mkdir -p "$GRAPHQL_DIR"
  log "npm install --prefix $GRAPHQL_DIR ${GRAPHQL_NPM_PINS[*]}"
  "$NPM" install --prefix "$GRAPHQL_DIR" --no-audit --no-fund --loglevel=error "${GRAPHQL_NPM_PINS[@]}" >&2
  printf '%s' "$GRAPHQL_STAMP_WANT" > "$GRAPHQL_STAMP"
fi

# ---- haproxy (the load balancer of tests/integration/test_fleet.py) ----------
# A system package, so only as root; without it the fleet test skips.
if command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]]; then
  log "haproxy: $( (command -v haproxy || echo /usr/sbin/haproxy) )"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  log "apt-get install -y haproxy"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy >&2 \
    || log "WARNING: haproxy could not be installed; test_fleet.py will skip"
else
  log "haproxy missing and not root: test_fleet.py will skip (apt-get install haproxy)"
fi

log "done: python peers in $VENV/bin, node peers in $NODE_DIR/node_modules/.bin"
