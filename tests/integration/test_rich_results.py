"""Rich results end to end: images and audio out as MCP content blocks, binary
API responses as bytes in the code, and uploads (bytes, multipart, urlencoded).

Real peers only: httpbin (binary bodies compared with a direct HTTP GET to the
same server; uploads echoed back as httpbin parsed them) and
server-everything as an upstream MCP server (its `get-tiny-image` tool)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import threading
import urllib.request

import pytest

import mcp.types as types
from conftest import ROOT, SPECS, mcp_session, text_of, write_config

pytestmark = pytest.mark.anyio

HTTPBIN_SPEC = SPECS / "httpbin-0.10.4.spec.json"
EVERYTHING = ROOT / ".peers" / "portal-node" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist"
CANARY = "canary-rich-7f3a9c2e-DO-NOT-LEAK"


def httpbin_config(tmp_path, url, extra=""):
    return write_config(tmp_path, f"""
[limits]
max_request_kib = 1024
max_output_tokens = 60000
{extra}

[[api]]
name = "httpbin"
spec = "{HTTPBIN_SPEC}"
base_url = "{url}"
allow_writes = true
auth = {{ type = "bearer", token_env = "RICH_TOKEN" }}
""")


def direct(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def mime(block) -> str:
    """The block's MIME type (`mime_type` in the SDK 2.x models, `mimeType` before)."""
    return getattr(block, "mime_type", None) or getattr(block, "mimeType")


def images(result):
    return [c for c in result.content if isinstance(c, types.ImageContent)]


async def run(s, code: str):
    r = await s.call_tool("execute", {"code": code})
    return r


async def test_portal_image_arrives_as_image_content(tmp_path):
    index = EVERYTHING / "index.js"
    assert index.exists(), "run crates/portal/tests/peers-setup.sh (scripts/test does)"
    tiny = re.search(r'MCP_TINY_IMAGE = "([^"]+)"', (EVERYTHING / "tools" / "get-tiny-image.js").read_text()).group(1)
    cfg = write_config(tmp_path, f"""
[[mcp]]
name = "everything"
command = "node"
args = ["{index}"]
""")
    async with mcp_session(["--config", str(cfg)]) as s:
        # What the tool returned, passed on as it is: text and the image.
        r = await run(s, "async () => codemode.everything_get_tiny_image()")
        assert not r.is_error, text_of(r)
        imgs = images(r)
        assert len(imgs) == 1, r.content
        assert mime(imgs[0]) == "image/png"
        assert base64.b64decode(imgs[0].data) == base64.b64decode(tiny)
        text = r.content[0].text
        assert re.search(r"\[image 1: image/png, [\d.]+ KB\]", text), text
        assert tiny[:40] not in text_of(r), "the image data is not repeated as text"
        # Picked out of the list by the code: the block alone.
        r = await run(s, "async () => (await codemode.everything_get_tiny_image()).find(c => c.type === 'image')")
        assert len(images(r)) == 1 and json.loads(r.content[0].text).startswith("[image 1: image/png")


async def test_binary_responses_are_bytes_byte_exact(tmp_path, httpbin_peer):
    cfg = httpbin_config(tmp_path, httpbin_peer)
    png = direct(f"{httpbin_peer}/image/png")
    rand = direct(f"{httpbin_peer}/bytes/1024?seed=42")
    async with mcp_session(["--config", str(cfg)], env={"RICH_TOKEN": CANARY}) as s:
        # The PNG as the code sees it, and returned: an image block.
        r = await run(s, """async () => {
            const r = await httpbin.request('GET /image/png');
            return [{isBytes: r.data instanceof Uint8Array, length: r.data.length, head: Array.from(r.data.slice(0, 4)),
                     keys: Object.keys(r), type: r.headers['content-type'], b64: typeof r.base64}, r.data];
        }""")
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out[0] == {"isBytes": True, "length": len(png), "head": list(png[:4]),
                          "keys": ["status", "headers", "data"], "type": "image/png", "b64": "string"}
        assert re.fullmatch(r"\[image 1: image/png, [\d.]+ KB\]", out[1]), out[1]
        imgs = images(r)
        assert len(imgs) == 1 and sha(base64.b64decode(imgs[0].data)) == sha(png)

        # Random bytes: byte-exact through `.base64` and through the Uint8Array.
        r = await run(s, """async () => {
            const r = await httpbin.request({path: '/bytes/1024', query: {seed: 42}});
            let sum = 0; for (const b of r.data) sum += b;
            return {b64: r.base64, n: r.data.length, sum, ab: (await r.arrayBuffer()).byteLength};
        }""")
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert base64.b64decode(out["b64"]) == rand
        assert (out["n"], out["sum"], out["ab"]) == (1024, sum(rand), 1024)
        assert not images(r)

        # Returned as is: not a JSON array of numbers, and not an image.
        r = await run(s, "async () => (await httpbin.request('GET /bytes/{n}', {n: 64, seed: 1})).data")
        assert not r.is_error and not images(r)
        out = json.loads(r.content[0].text)
        assert list(out) == ["$bytes"] and base64.b64decode(out["$bytes"]) == direct(f"{httpbin_peer}/bytes/64?seed=1")


async def test_uploads_round_trip_byte_exact(tmp_path, httpbin_peer):
    cfg = httpbin_config(tmp_path, httpbin_peer)
    png = direct(f"{httpbin_peer}/image/png")
    async with mcp_session(["--config", str(cfg)], env={"RICH_TOKEN": CANARY}) as s:
        # Multipart: a downloaded PNG, a text file, a base64 file, text fields.
        r = await run(s, """async () => {
            const img = await httpbin.request('GET /image/png');
            const r = await httpbin.request({method: 'POST', path: '/post', form: {
                field: 'x', n: 7, tags: ['a', 'b'],
                file: {filename: 'a.png', contentType: 'image/png', data: img.data},
                notes: {filename: 'notes.txt', contentType: 'text/plain', data: 'hello\\r\\n--not-a-boundary'},
                raw: {filename: 'r.bin', base64: img.base64},
            }});
            return {form: r.data.form, files: r.data.files, type: r.data.headers['Content-Type']};
        }""")
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        assert out["form"] == {"field": "x", "n": "7", "tags": ["a", "b"]}
        assert out["type"].startswith("multipart/form-data; boundary=")
        png_url = "data:image/png;base64," + base64.b64encode(png).decode()
        assert out["files"]["file"] == png_url
        assert out["files"]["notes"] == "hello\r\n--not-a-boundary"
        assert out["files"]["raw"] == "data:application/octet-stream;base64," + base64.b64encode(png).decode()

        # Bytes as rawBody: sent exactly, as application/octet-stream unless told.
        r = await run(s, """async () => {
            const bytes = new Uint8Array(256); for (let i = 0; i < 256; i++) bytes[i] = 255 - i;
            const a = await httpbin.request({method: 'POST', path: '/anything', rawBody: bytes});
            const b = await httpbin.request({method: 'PUT', path: '/anything', rawBody: bytes.buffer, contentType: 'image/x-test'});
            return [a.data.data, a.data.headers['Content-Type'], b.data.data, b.data.headers['Content-Type']];
        }""")
        assert not r.is_error, text_of(r)
        sent = bytes(255 - i for i in range(256))
        a, a_type, b, b_type = json.loads(r.content[0].text)
        assert a == "data:application/octet-stream;base64," + base64.b64encode(sent).decode()
        assert a_type == "application/octet-stream"
        assert b == "data:application/octet-stream;base64," + base64.b64encode(sent).decode() and b_type == "image/x-test"

        # A form without files: application/x-www-form-urlencoded.
        r = await run(s, """async () => {
            const r = await httpbin.request({method: 'POST', path: '/post', form: {a: '1&2', b: 'x y', c: null}});
            return {form: r.data.form, type: r.data.headers['Content-Type']};
        }""")
        assert json.loads(r.content[0].text) == {"form": {"a": "1&2", "b": "x y"}, "type": "application/x-www-form-urlencoded"}


# Hostile: what model code could try with these surfaces.


async def test_hostile_spoofed_media_never_attaches(tmp_path, httpbin_peer):
    cfg = httpbin_config(tmp_path, httpbin_peer, "binary_kib = 64")
    async with mcp_session(["--config", str(cfg)], env={"RICH_TOKEN": CANARY}) as s:
        r = await run(s, """async () => {
            const png = (await httpbin.request('GET /image/png')).base64;
            const html = 'PGh0bWw+PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0PjwvaHRtbD4=';
            return [
                {type: 'image', data: '!!!not base64!!!', mimeType: 'image/png'},
                {type: 'image', data: html, mimeType: 'image/png'},
                {type: 'image', data: png, mimeType: 'text/html'},
                {type: 'image', data: btoa_svg(), mimeType: 'image/svg+xml'},
                {type: 'audio', data: png, mimeType: 'audio/wav'},
                {type: 'image', data: png + 'A'.repeat(200000), mimeType: 'image/png'},
                {type: 'image', data: 'A'.repeat(2000000), mimeType: 'image/png'},
            ];
            function btoa_svg() { return 'PHN2ZyBvbmxvYWQ9YWxlcnQoMSkvPg=='; }
        }""")
        assert not r.is_error, text_of(r)
        assert not images(r) and not [c for c in r.content if isinstance(c, types.AudioContent)]
        out = json.loads(r.content[0].text)
        assert len(out) == 7 and all("not attached" in x for x in out), out
        assert "not valid base64" in out[0] and "its bytes are not image/png" in out[1]
        assert "not a type sent as image" in out[2] and "not a type sent as image" in out[3]
        assert "its bytes are not audio/wav" in out[4]
        assert "binary_kib" in out[5] and "binary_kib" in out[6]
        assert len(r.content[0].text) < 2000, "no data reaches the text"


async def test_hostile_multipart_injection_and_oversized_bytes(tmp_path, httpbin_peer):
    cfg = httpbin_config(tmp_path, httpbin_peer)
    async with mcp_session(["--config", str(cfg)], env={"RICH_TOKEN": CANARY}) as s:
        # CR/LF in a file name or a field name would start a header or a part.
        for form in [
            "{f: {filename: 'a.png\\r\\nContent-Type: text/html', data: 'x'}}",
            "{'x\\r\\n\\r\\n--boundary\\r\\nContent-Disposition: form-data; name=\"admin\"': 'y'}",
            "{'a\\u0000b': 'y'}",
        ]:
            r = await run(s, f"async () => httpbin.request({{method: 'POST', path: '/post', form: {form}}})")
            assert r.is_error and "PolicyError" in text_of(r) and "control characters" in text_of(r), text_of(r)
        # Quotes stay inside the name: no second parameter, no file smuggled in.
        r = await run(s, """async () => {
            const r = await httpbin.request({method: 'POST', path: '/post', contentType: 'multipart/form-data',
                form: {'x"; filename="evil.sh': 'y', f: {filename: 'a"; name="admin', data: 'z'}}});
            return {form: r.data.form, files: r.data.files};
        }""")
        assert not r.is_error, text_of(r)
        out = json.loads(r.content[0].text)
        # Sent as `x%22; filename=%22evil.sh` (as browsers do); the server reads back the
        # one name it was given, not a second parameter.
        assert out["form"] == {'x"; filename="evil.sh': "y"}, out
        assert list(out["files"]) == ["f"] and out["files"]["f"] == "z"
        # `_method` as a form field is a method override, refused like the header.
        r = await run(s, "async () => httpbin.request({method: 'POST', path: '/post', form: {_method: 'DELETE'}})")
        assert r.is_error and "PolicyError" in text_of(r) and "_method" in text_of(r)
        # Bytes past max_request_kib: refused on the host, naming the limit.
        r = await run(s, "async () => httpbin.request({method: 'POST', path: '/anything', rawBody: new Uint8Array(2 * 1024 * 1024)})")
        assert r.is_error and "max_request_kib" in text_of(r), text_of(r)
        r = await run(s, """async () => httpbin.request({method: 'POST', path: '/post',
            form: {f: {data: new Uint8Array(1100 * 1024)}}})""")
        assert r.is_error and "max_request_kib" in text_of(r), text_of(r)
        # Bad shapes are told what is expected.
        r = await run(s, "async () => httpbin.request({method: 'POST', path: '/post', rawBody: {a: 1}})")
        assert r.is_error and "`rawBody` must be a string or bytes" in text_of(r)
        r = await run(s, "async () => httpbin.request({method: 'POST', path: '/post', body: {}, form: {a: 1}})")
        assert r.is_error and "pass one of `body`" in text_of(r)


async def test_credentials_are_scrubbed_from_binary_bodies(tmp_path):
    """An upstream that echoes the credential inside a binary body (here: a
    "PNG" carrying the Authorization header): the bytes come back scrubbed,
    to the code and in the image block."""

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"\x89PNG\r\n\x1a\n\xff " + self.headers["Authorization"].encode() + b" \xfe"
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = write_config(tmp_path, f"""
[[api]]
name = "echo"
spec = "{HTTPBIN_SPEC}"
base_url = "http://127.0.0.1:{server.server_port}"
auth = {{ type = "bearer", token_env = "RICH_TOKEN" }}
""")
        async with mcp_session(["--config", str(cfg)], env={"RICH_TOKEN": CANARY}) as s:
            r = await run(s, """async () => {
                const r = await echo.request('GET /image/png');
                return [r.data instanceof Uint8Array, await r.text(), r.data];
            }""")
            assert not r.is_error, text_of(r)
            is_bytes, text, placeholder = json.loads(r.content[0].text)
            assert is_bytes and "Bearer [REDACTED]" in text, text
            assert placeholder.startswith("[image 1: image/png")
            (img,) = images(r)
            data = base64.b64decode(img.data)
            assert b"Bearer [REDACTED]" in data and CANARY.encode() not in data
            assert CANARY not in text_of(r)
    finally:
        server.shutdown()
