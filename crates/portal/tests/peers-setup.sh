#!/usr/bin/env bash
# Install the real MCP servers that codemode-portal's tests run as upstreams,
# into the git-ignored <repo>/.peers/ folder (never globally):
#   - npm packages into .peers/portal-node (npm install --prefix);
#   - pip packages into the existing .peers/venv (made by tests/peers/setup.sh;
#     created here with the same python if it is missing).
# Idempotent: a stamp file records the pinned versions; when it matches and the
# entry points exist, this exits at once.
#
#   crates/portal/tests/peers-setup.sh           # install (or verify)
#   crates/portal/tests/peers-setup.sh --force   # reinstall the portal peers
#
# Env: PYTHON (default python3, >= 3.10), NPM (default npm; Node >= 18.20).
# The conformance suite (and the Node 22 it needs) is tests/conformance/setup.sh's,
# in .peers/conformance: installed once for every test that runs it.
set -euo pipefail

# ---- pinned versions (verified together on Python 3.11 / Node 20.20) ----------
NPM_PINS=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  "@modelcontextprotocol/server-memory@2026.8.31"
  "@modelcontextprotocol/server-filesystem@2026.8.31"
  "@ivotoby/openapi-mcp-server@1.16.1"
  "typescript@5.9.3"                       # tsc type-checks the generated declarations
)
PIP_PINS=(
  "mcp-server-time==2026.10.19"   # needs mcp>=2.3,<3
  "mcp-server-git==2026.10.19"
  "mcp==2.3.0"                    # the same pin as tests/peers/setup.sh, so the order of the two scripts does not matter
)
# -----------------------------------------------------------------------------

log() { printf '[portal/peers-setup] %s\n' "$*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
PEERS="$ROOT/.peers"
NODE_DIR="$PEERS/portal-node"
VENV="$PEERS/venv"
PYTHON="${PYTHON:-python3}"
NPM="${NPM:-npm}"
STAMP="$PEERS/.stamp-portal"
STAMP_WANT="${NPM_PINS[*]} ${PIP_PINS[*]}"

if [[ "${1:-}" == "--force" ]]; then
  log "--force: removing $NODE_DIR and the stamp"
  rm -rf "$NODE_DIR" "$STAMP"
fi

NM="$NODE_DIR/node_modules"
entry_points=(
  "$NM/@modelcontextprotocol/server-everything/dist/index.js"
  "$NM/@modelcontextprotocol/server-memory/dist/index.js"
  "$NM/@modelcontextprotocol/server-filesystem/dist/index.js"
  "$NM/@ivotoby/openapi-mcp-server/bin/mcp-server.js"
  "$NM/typescript/bin/tsc"
  "$VENV/bin/mcp-server-time"
  "$VENV/bin/mcp-server-git"
)
all_there() { for f in "${entry_points[@]}"; do [[ -e "$f" ]] || return 1; done; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_WANT" ]] && all_there; then
  log "up to date: $NODE_DIR, $VENV"
  exit 0
fi
rm -f "$STAMP"
mkdir -p "$PEERS" "$NODE_DIR"

command -v node >/dev/null || { log "ERROR: node not found on PATH (need >= 18.20)"; exit 1; }
log "npm install --prefix $NODE_DIR ${NPM_PINS[*]} (node $(node --version))"
"$NPM" install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error "${NPM_PINS[@]}" >&2

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
log "pip install ${PIP_PINS[*]} into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PINS[@]}" >&2

for f in "${entry_points[@]}"; do
  [[ -e "$f" ]] || { log "ERROR: missing after install: $f"; exit 1; }
done
printf '%s' "$STAMP_WANT" > "$STAMP"
log "done"
