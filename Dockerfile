# codemode as a container: Streamable HTTP on :8080, /healthz for the probe.
#
#   docker build -t codemode .
#   docker run --rm -p 8080:8080 -v "$PWD/codemode.toml:/etc/codemode/codemode.toml:ro" \
#     -e API_TOKEN -e MCP_CLIENT_TOKEN codemode
#
# Build stage: the workspace in release mode (the `dist` profile: stripped,
# thin LTO). Run stage: a slim Debian with only the binary and CA roots,
# as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked -p codemode \
 && install -m 0755 target/dist/codemode /usr/local/bin/codemode

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/codemode --create-home codemode
COPY --from=build /usr/local/bin/codemode /usr/local/bin/codemode
COPY examples/ /usr/share/codemode/examples/
USER codemode
WORKDIR /var/lib/codemode
ENV CODEMODE_CONFIG=/etc/codemode/codemode.toml \
    CODEMODE_LOG_FORMAT=json
EXPOSE 8080
# /healthz answers as soon as the listener is up; /readyz once the APIs are loaded.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# 0.0.0.0 inside the container: the port mapping decides who reaches it. Beyond
# loopback codemode refuses to start without [server] allowed_hosts (the names
# clients use; /healthz is answered whatever the Host) and inbound auth ([[auth.tokens]]
# or [auth.oauth]) in the config: see README, "Serving many agents over HTTP".
ENTRYPOINT ["/usr/local/bin/codemode"]
CMD ["serve", "--transport", "http", "--listen", "0.0.0.0:8080"]
