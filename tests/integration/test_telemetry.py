"""OpenTelemetry end to end, through the release binary: a loopback OTLP receiver
(OTLP/HTTP protobuf on a plain HTTP server, OTLP/gRPC on a grpcio server, both
decoding the official opentelemetry-proto messages) receives one trace per tool
call — the SERVER span `tools/call execute` with the MCP attributes, a CLIENT
span per upstream request under it — and the duration metrics; httpbin echoes
the `traceparent` it received, so the test sees the upstream join the same
trace, and so does an upstream MCP server (`trace_mcp.py`, the official SDK's
MCPServer) through `_meta`; a `traceparent` in `_meta` becomes the parent. `/metrics` serves the
histograms as Prometheus text. With telemetry off nothing is exported, and an
incoming `traceparent` is passed on unchanged. No credential is in any span.

Real components only: the release binary driven by the official Python MCP SDK,
httpbin on loopback, the receiver built on opentelemetry-proto and grpcio."""

from __future__ import annotations

import gzip
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from conftest import SPECS, mcp_session, text_of, write_config
from test_http_helpers import codemode_http, get, http_session

pytestmark = pytest.mark.anyio

HTTPBIN_SPEC = SPECS / "httpbin-0.10.4.spec.json"
API_KEY = "sk-telemetry-test-9f8e7d6c5b4a39281706"
# Export quickly: the batch span processor and the periodic metric reader read these.
FAST = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "300", "HTTPBIN_KEY": API_KEY}
INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_PARENT = "00f067aa0ba902b7"
INCOMING = f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01"

SERVER, CLIENT = 2, 3  # Span.SpanKind


# --- the receiver ---------------------------------------------------------------


class Receiver:
    """What arrived: every span and every metric data point, flattened."""

    def __init__(self):
        self.lock = threading.Lock()
        self.span_requests = 0
        self.metric_requests = 0
        self.spans: list[dict] = []
        self.points: list[dict] = []
        self.raw = bytearray()

    def add_traces(self, req: trace_service_pb2.ExportTraceServiceRequest, raw: bytes):
        with self.lock:
            self.span_requests += 1
            self.raw += raw
            for rs in req.resource_spans:
                resource = attrs_of(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append({
                            "name": s.name, "kind": s.kind, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(), "attrs": attrs_of(s.attributes),
                            "status": s.status.code, "resource": resource,
                        })

    def add_metrics(self, req: metrics_service_pb2.ExportMetricsServiceRequest, raw: bytes):
        with self.lock:
            self.metric_requests += 1
            self.raw += raw
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.HasField("histogram"):
                            for p in m.histogram.data_points:
                                self.points.append({"name": m.name, "unit": m.unit, "count": p.count,
                                                    "attrs": attrs_of(p.attributes)})

    def wait(self, what, timeout: float = 15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if what(self):
                    return
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"timed out; spans: {[(s['name'], s['kind']) for s in self.spans]} {json.dumps(self.spans, indent=1)[:4000]}\n"
                                 f"points: {json.dumps(self.points)[:2000]}")


def attrs_of(kvs) -> dict:
    out = {}
    for kv in kvs:
        v = kv.value
        which = v.WhichOneof("value")
        out[kv.key] = getattr(v, which) if which else None
    return out


class HttpReceiver:
    """OTLP/HTTP with protobuf bodies at /v1/traces and /v1/metrics."""

    def __init__(self):
        self.data = Receiver()
        data = self.data

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.headers.get("content-type") == "application/x-protobuf", self.headers
                if self.path == "/v1/traces":
                    req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                    data.add_traces(req, body)
                    answer = trace_service_pb2.ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                    data.add_metrics(req, body)
                    answer = metrics_service_pb2.ExportMetricsServiceResponse()
                else:
                    self.send_error(404)
                    return
                out = answer.SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class GrpcReceiver:
    """OTLP/gRPC: the collector's TraceService and MetricsService."""

    def __init__(self):
        self.data = Receiver()
        data = self.data

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                data.add_traces(request, request.SerializeToString())
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request, context):
                data.add_metrics(request, request.SerializeToString())
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def close(self):
        self.server.stop(0)


@pytest.fixture
def http_receiver():
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def grpc_receiver():
    r = GrpcReceiver()
    yield r
    r.close()


# --- helpers ------------------------------------------------------------------------


def httpbin_api(url: str) -> str:
    return f"""
[[api]]
name = "bin"
spec = "{HTTPBIN_SPEC}"
base_url = "{url}"
auth = {{ type = "header", name = "X-Api-Key", value_env = "HTTPBIN_KEY" }}
"""


# Two nested requests: /headers echoes what httpbin received (the traceparent),
# /get echoes the query (one parameter named like a secret).
TWO_CALLS = """async () => {
  const h = await bin.request('GET /headers');
  const g = await bin.request({method: 'GET', path: '/get', query: {q: 'books', api_token: 'from-the-code'}});
  return {traceparent: h.data.headers.Traceparent, args: g.data.args};
}"""


async def execute(session, code: str, meta: dict | None = None):
    r = await session.call_tool("execute", {"code": code}, meta=meta)
    assert not r.is_error, text_of(r)
    return json.loads(r.content[0].text)


def parse_traceparent(tp: str) -> tuple[str, str]:
    version, trace_id, parent, flags = tp.split("-")
    assert version == "00" and len(trace_id) == 32 and len(parent) == 16, tp
    return trace_id, parent


def check_trace(data: Receiver, out: dict, incoming_parent: str | None, transport: str) -> dict:
    """The trace of one execute with TWO_CALLS; returns its server span."""
    trace_id, upstream_parent = parse_traceparent(out["traceparent"])
    spans = [s for s in data.spans if s["trace_id"] == trace_id]
    (server,) = [s for s in spans if s["kind"] == SERVER]
    assert server["name"] == "tools/call execute", server
    a = server["attrs"]
    assert a["mcp.method.name"] == "tools/call" and a["gen_ai.tool.name"] == "execute", a
    assert a["gen_ai.operation.name"] == "execute_tool" and a["network.transport"] == transport, a
    assert a.get("mcp.protocol.version"), a
    assert "error.type" not in a, a
    assert server["resource"].get("service.name") == "codemode", server["resource"]
    if incoming_parent is None:
        assert server["parent"] == "", server
    else:
        assert server["parent"] == incoming_parent, server
    clients = sorted((s for s in spans if s["kind"] == CLIENT), key=lambda s: s["name"])
    assert [c["name"] for c in clients] == ["GET /get", "GET /headers"], clients
    for c in clients:
        assert c["parent"] == server["span_id"], (c, server)
        ca = c["attrs"]
        assert ca["http.request.method"] == "GET" and ca["http.response.status_code"] == 200, ca
        assert ca["server.address"] == "127.0.0.1" and ca["codemode.api"] == "bin", ca
        assert ca["url.template"] == c["name"].split(" ", 1)[1], ca
        assert "allow" in ca.get("codemode.allowed_by", "") or ca.get("codemode.allowed_by"), ca
    get_span, headers_span = clients
    assert headers_span["attrs"]["url.full"].endswith("/headers"), headers_span
    # The query is kept, the secret-looking parameter is not.
    assert "q=books" in get_span["attrs"]["url.full"], get_span
    assert "from-the-code" not in get_span["attrs"]["url.full"], get_span
    # The upstream joined this trace: its parent is the CLIENT span of that request.
    assert upstream_parent == headers_span["span_id"], (out, headers_span)
    return server


def no_credential_anywhere(data: Receiver):
    assert API_KEY.encode() not in bytes(data.raw), "the API key reached the collector"
    for s in data.spans:
        assert API_KEY not in json.dumps(s), s


# --- tests ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_one_trace_per_tool_call_with_a_child_per_request(tmp_path, httpbin_peer, http_receiver, grpc_receiver,
                                                                protocol):
    receiver = http_receiver if protocol == "http/protobuf" else grpc_receiver
    other = grpc_receiver if protocol == "http/protobuf" else http_receiver
    cfg = write_config(tmp_path, f"""[audit]
path = "off"

[telemetry]
otlp_endpoint = "{receiver.endpoint}"
protocol = "{protocol}"
headers = {{ "x-tenant" = "tests" }}
""" + httpbin_api(httpbin_peer))
    async with mcp_session(["--config", str(cfg)], env=FAST) as s:
        # 1. A traceparent in _meta (SEP-414) becomes the parent of the tool call.
        first = await execute(s, TWO_CALLS, meta={"traceparent": INCOMING})
        assert first["args"] == {"q": "books", "api_token": "from-the-code"}, first
        assert parse_traceparent(first["traceparent"])[0] == INCOMING_TRACE, first
        # 2. Without one, a new trace, rooted at the tool call.
        second = await execute(s, TWO_CALLS)
        assert parse_traceparent(second["traceparent"])[0] != INCOMING_TRACE, second
        # 3. A refusal: the nested call and the tool call carry error.type.
        r = await s.call_tool("execute", {"code": "async () => bin.request({method: 'POST', path: '/post'})"})
        assert r.is_error and "PolicyError" in text_of(r), text_of(r)
        # 4. The code cannot set its own traceparent.
        r = await s.call_tool("execute", {"code": "async () => bin.request({method: 'GET', path: '/get', "
                                                   "headers: {traceparent: '00-" + "1" * 32 + "-" + "2" * 16 + "-01'}})"})
        assert r.is_error and "traceparent" in text_of(r), text_of(r)

        data = receiver.data
        data.wait(lambda d: sum(1 for sp in d.spans if sp["kind"] == SERVER) >= 4
                  and sum(1 for sp in d.spans if sp["kind"] == CLIENT) >= 5)
        check_trace(data, first, INCOMING_PARENT, "pipe")
        check_trace(data, second, None, "pipe")
        # One trace per tool call: four calls, four traces, each with one server span.
        servers = [sp for sp in data.spans if sp["kind"] == SERVER]
        assert len(servers) == 4 and len({sp["trace_id"] for sp in servers}) == 4, servers
        refused = [sp for sp in data.spans if sp["kind"] == CLIENT and sp["name"] == "POST /post"]
        assert len(refused) == 1 and refused[0]["attrs"]["error.type"] == "PolicyError", refused
        assert refused[0]["status"] == 2, refused  # STATUS_CODE_ERROR
        failed_server = [sp for sp in servers if sp["trace_id"] == refused[0]["trace_id"]]
        assert failed_server[0]["attrs"]["error.type"] == "PolicyError", failed_server

        # The duration metrics, with the convention's attributes.
        # Cumulative points, one per attribute set: two calls ok, two refused.
        data.wait(lambda d: any(p["name"] == "mcp.server.operation.duration" and p["count"] >= 2
                                and p["attrs"].get("error.type") == "PolicyError" for p in d.points)
                  and any(p["name"] == "mcp.server.operation.duration" and p["count"] >= 2
                          and "error.type" not in p["attrs"] for p in d.points)
                  and any(p["name"] == "http.client.request.duration" for p in d.points))
        server_points = [p for p in data.points if p["name"] == "mcp.server.operation.duration"]
        assert all(p["unit"] == "s" for p in server_points), server_points
        ok = [p for p in server_points if "error.type" not in p["attrs"]]
        assert ok and ok[-1]["attrs"]["gen_ai.tool.name"] == "execute", server_points
        assert ok[-1]["attrs"]["mcp.method.name"] == "tools/call", server_points
        assert any(p["attrs"].get("error.type") == "PolicyError" for p in server_points), server_points
        client_points = [p for p in data.points if p["name"] == "http.client.request.duration"]
        assert any(p["attrs"].get("http.response.status_code") == 200 for p in client_points), client_points
    no_credential_anywhere(receiver.data)
    assert other.data.span_requests == 0 and other.data.metric_requests == 0, "exported over the wrong protocol"


async def test_upstream_mcp_server_joins_the_trace(tmp_path, httpbin_peer, http_receiver):
    """A portal tool call is a CLIENT span `tools/call <tool>` under the tool
    call, and the upstream MCP server (the official Python SDK's MCPServer)
    receives that span as the parent in `_meta.traceparent`; an API request
    in the same execute joins the same trace. Model code cannot put its own
    trace context in the tool call's `_meta`."""
    import sys

    here = Path(__file__).parent
    cfg = write_config(tmp_path, f"""[audit]
path = "off"

[telemetry]
otlp_endpoint = "{http_receiver.endpoint}"

[[mcp]]
name = "trace"
command = "{sys.executable}"
args = ["{here / 'trace_mcp.py'}"]
""" + httpbin_api(httpbin_peer))
    code = """async () => {
  const meta = await codemode.trace_received_meta({});
  const h = await bin.request('GET /headers');
  return {meta, traceparent: h.data.headers.Traceparent};
}"""
    async with mcp_session(["--config", str(cfg)], env=FAST) as s:
        out = await execute(s, code, meta={"traceparent": INCOMING})
        # The upstream server got a traceparent of this trace, with a new parent.
        tool_trace, tool_parent = parse_traceparent(out["meta"]["traceparent"])
        api_trace, _ = parse_traceparent(out["traceparent"])
        assert tool_trace == api_trace == INCOMING_TRACE, out
        assert tool_parent != INCOMING_PARENT, out
        # Code that smuggles its own `_meta` into the arguments does not set the trace context.
        forged = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        r = await s.call_tool("execute", {"code": "async () => codemode.trace_received_meta("
                                                   f"{{_meta: {{traceparent: '{forged}'}}}})"})
        if not r.is_error:
            got = json.loads(r.content[0].text)
            assert forged not in json.dumps(got), got
        # Without a caller's context the tool call still starts (and passes on) a trace.
        plain = await execute(s, code)
        assert parse_traceparent(plain["meta"]["traceparent"])[0] == parse_traceparent(plain["traceparent"])[0], plain

        data = http_receiver.data
        data.wait(lambda d: sum(1 for sp in d.spans if sp["kind"] == SERVER) >= 2
                  and sum(1 for sp in d.spans if sp["kind"] == CLIENT) >= 4)
        spans = [sp for sp in data.spans if sp["trace_id"] == INCOMING_TRACE]
        (server,) = [sp for sp in spans if sp["kind"] == SERVER]
        assert server["parent"] == INCOMING_PARENT, server
        (tool,) = [sp for sp in spans if sp["kind"] == CLIENT and sp["name"] == "tools/call received_meta"]
        assert tool["parent"] == server["span_id"], (tool, server)
        a = tool["attrs"]
        assert a["mcp.method.name"] == "tools/call" and a["gen_ai.tool.name"] == "received_meta", a
        assert a["codemode.mcp.server"] == "trace", a
        # The span the upstream server saw as its parent is the tool call's CLIENT span.
        assert tool_parent == tool["span_id"], (out, tool)
    no_credential_anywhere(http_receiver.data)


async def test_env_variables_configure_the_exporter(tmp_path, httpbin_peer, http_receiver):
    """No [telemetry] table: the standard OTEL_* variables turn it on."""
    cfg = write_config(tmp_path, '[audit]\npath = "off"\n' + httpbin_api(httpbin_peer))
    env = {**FAST, "OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.endpoint, "OTEL_SERVICE_NAME": "gateway-7"}
    async with mcp_session(["--config", str(cfg)], env=env) as s:
        out = await execute(s, TWO_CALLS)
        http_receiver.data.wait(lambda d: any(sp["kind"] == SERVER for sp in d.spans)
                                and sum(1 for sp in d.spans if sp["kind"] == CLIENT) >= 2)
        spans = http_receiver.data.spans
        assert {sp["resource"].get("service.name") for sp in spans} == {"gateway-7"}, spans
        trace_id, _ = parse_traceparent(out["traceparent"])
        assert any(sp["kind"] == SERVER and sp["trace_id"] == trace_id for sp in spans), spans


async def test_off_exports_nothing_and_passes_the_callers_traceparent_on(tmp_path, httpbin_peer, http_receiver):
    """Nothing configured: no exporter (the receiver, though listening, gets nothing);
    an incoming traceparent reaches the upstream unchanged, as through any proxy."""
    cfg = write_config(tmp_path, '[audit]\npath = "off"\n' + httpbin_api(httpbin_peer))
    async with mcp_session(["--config", str(cfg)], env={"HTTPBIN_KEY": API_KEY, "OTEL_BSP_SCHEDULE_DELAY": "100"}) as s:
        out = await execute(s, TWO_CALLS, meta={"traceparent": INCOMING, "tracestate": "rojo=00f067aa0ba902b7"})
        assert out["traceparent"] == INCOMING, out
        plain = await execute(s, TWO_CALLS)
        assert "traceparent" not in plain, plain  # nothing to pass on, nothing invented
    time.sleep(0.5)
    assert http_receiver.data.span_requests == 0 and http_receiver.data.metric_requests == 0


async def test_prometheus_metrics_and_traceparent_header_over_http(tmp_path, httpbin_peer, http_receiver):
    """`/metrics` on the HTTP listener with the same histograms; over HTTP the
    request's `traceparent` header is the parent when `_meta` has none."""
    telemetry = f'\n[telemetry]\nprometheus = true\notlp_endpoint = "{http_receiver.endpoint}"\n'
    with codemode_http(tmp_path, apis='[audit]\npath = "off"\n' + telemetry + httpbin_api(httpbin_peer),
                       env=FAST) as srv:
        status, _, body = get(srv.base + "/metrics")
        assert status == 200, body
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
        from mcp import ClientSession

        async with create_mcp_http_client(headers={"traceparent": INCOMING}) as client:
            async with streamable_http_client(srv.url, http_client=client) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    out = await execute(s, TWO_CALLS)
        assert parse_traceparent(out["traceparent"])[0] == INCOMING_TRACE, out
        http_receiver.data.wait(lambda d: any(sp["kind"] == SERVER for sp in d.spans)
                                and sum(1 for sp in d.spans if sp["kind"] == CLIENT) >= 2)
        server = check_trace(http_receiver.data, out, INCOMING_PARENT, "tcp")
        assert server["attrs"].get("mcp.session.id"), server

        status, headers, body = get(srv.base + "/metrics")
        text = body.decode()
        assert status == 200 and {k.lower(): v for k, v in headers.items()}.get("content-type", "").startswith("text/plain"), (status, headers)
        assert "# TYPE mcp_server_operation_duration_seconds histogram" in text, text[:3000]
        assert 'mcp_server_operation_duration_seconds_bucket{' in text, text[:3000]
        assert 'gen_ai_tool_name="execute"' in text, text[:3000]
        assert "http_client_request_duration_seconds_count" in text, text[:3000]
        assert API_KEY not in text and "principal" not in text, text[:3000]


async def test_hostile_code_cannot_write_into_the_metrics(tmp_path, httpbin_peer):
    """Metric labels come from the config and the spec (API, route template,
    method, status class), never from what the code sends: 48 requests with
    unique path parameters, query strings, headers and a secret-looking value,
    to many statuses, refused or not, leave no trace of those values in `/metrics` and add no
    series beyond the route templates they hit."""
    apis = '[audit]\npath = "off"\n[telemetry]\nprometheus = true\n' + httpbin_api(httpbin_peer)
    marker = "zq7marker"
    code = """async () => {
  const out = [];
  for (let i = 0; i < 12; i++) {
    const tag = '%s' + i;
    out.push((await bin.request({method: 'GET', path: '/anything/' + tag + '%%2Fetc',
      query: {[tag]: tag, api_key: 'sk-' + tag}, headers: {['X-' + tag]: tag}})).status);
    out.push((await bin.request('GET /status/' + (200 + i))).status);
    try { await bin.request('GET /anything/' + tag + '/../' + tag); } catch (e) { out.push(e.name); }
    out.push((await bin.request({method: 'GET', path: '/base64/' + btoa(tag + '\\n# TYPE x counter')})).status);
  }
  return out.filter(x => x !== undefined).length;
}""" % marker
    with codemode_http(tmp_path, apis=apis, env=FAST) as srv:
        async with http_session(srv.url) as s:
            r = await s.call_tool("execute", {"code": "async () => (await bin.request('GET /get')).status"})
            assert not r.is_error, text_of(r)
            before = series(get(srv.base + "/metrics")[2].decode())
            r = await s.call_tool("execute", {"code": code})
            assert not r.is_error and text_of(r).strip() == "48", text_of(r)
        text = get(srv.base + "/metrics")[2].decode()
    assert marker not in text and "sk-" not in text, [l for l in text.splitlines() if marker in l][:5]
    after = series(text)
    # Label names are a fixed set; their values come from the config (API, server
    # address), the method and the upstream's status code, which is bounded.
    labels = {}
    for line in after - before:
        for pair in line.split("{", 1)[1].rstrip("}").split('",'):
            k, v = pair.split("=", 1)
            labels.setdefault(k, set()).add(v.strip('"'))
    allowed = {"codemode_api", "http_request_method", "http_response_status_code", "server_address", "server_port",
               "url_scheme", "otel_scope_name", "otel_scope_version", "error_type", "gen_ai_tool_name",
               "mcp_method_name", "gen_ai_operation_name", "network_transport", "mcp_protocol_version",
               "codemode_mcp_server"}
    assert set(labels) <= allowed, set(labels) - allowed
    assert labels.get("codemode_api", {"bin"}) == {"bin"}, labels
    assert all(v.isdigit() and len(v) == 3 for v in labels.get("http_response_status_code", ())), labels
    assert len(after - before) < 100, (len(after - before), sorted(after - before)[:20])
    assert all(not l.startswith("x ") for l in text.splitlines()), "a forged metric line"


def series(text: str) -> set[str]:
    """The label sets of every histogram bucket-free sample line of a Prometheus page."""
    return {l.rsplit(" ", 1)[0] for l in text.splitlines() if l and not l.startswith("#") and "_bucket{" not in l}


async def test_metrics_endpoint_needs_a_credential_when_auth_is_on(tmp_path, httpbin_peer):
    import hashlib
    token, agent = "metrics-scraper-token-0123456789", "agent-token-abcdefghijklmnopq"
    sha = lambda t: hashlib.sha256(t.encode()).hexdigest()  # noqa: E731
    auth = f"""[[auth.tokens]]
name = "scraper"
sha256 = "{sha(token)}"
scopes = ["metrics"]

[[auth.tokens]]
name = "agent"
sha256 = "{sha(agent)}"
scopes = ["bin:read"]
"""
    apis = '[audit]\npath = "off"\n[telemetry]\nprometheus = true\n' + httpbin_api(httpbin_peer)
    with codemode_http(tmp_path, auth=auth, apis=apis, env=FAST) as srv:
        assert get(srv.base + "/metrics")[0] == 401
        assert get(srv.base + "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
        status, _, body = get(srv.base + "/metrics", {"Authorization": f"Bearer {token}"})
        assert status == 200 and b"target_info" in body, body[:500]
        # An agent's API token cannot read the metrics.
        assert get(srv.base + "/metrics", {"Authorization": f"Bearer {agent}"})[0] == 403
        # The scraper's token opens no API.
        status, _, _ = urllib_post(srv.url, token)
        assert status == 403, status


def urllib_post(url: str, token: str):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
