"""An S3-like test server that checks every request's AWS Signature V4 with
botocore (Debian's python3-botocore), an implementation independent of
latchkey's signer, using the REAL secret it is given.

Env: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional).
Prints "PORT <n>" once listening on 127.0.0.1. Objects live in memory:
PUT /bucket/key stores, GET /bucket/key returns. Any other path answers a
JSON echo (for non-S3 service shapes). GET /__log (unsigned) returns every
request seen with its verdict, so a test can tell what reached the upstream.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]
TOKEN = os.environ.get("AWS_SESSION_TOKEN") or None
UNSIGNED = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")

objects = {}
log = []
lock = threading.Lock()


def parse_authorization(value):
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        raise ValueError("no SigV4 Authorization header")
    parts = {}
    for item in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = item.strip().partition("=")
        parts[k] = v
    access_key, date, region, service, terminal = parts["Credential"].split("/")
    return access_key, date, region, service, parts["SignedHeaders"].split(";"), parts["Signature"]


def verify(handler, body):
    """Returns None when the signature is right, else the reason."""
    access_key, date, region, service, signed, signature = parse_authorization(handler.headers.get("Authorization"))
    if access_key != ACCESS_KEY:
        return "wrong access key id " + access_key
    amz_date = handler.headers.get("X-Amz-Date", "")
    if amz_date[:8] != date:
        return "X-Amz-Date does not match the scope date"
    for needed in ("host", "x-amz-date"):
        if needed not in signed:
            return needed + " is not signed"
    if TOKEN is not None:
        if handler.headers.get("X-Amz-Security-Token") != TOKEN or "x-amz-security-token" not in signed:
            return "session token missing, wrong or unsigned"
    elif handler.headers.get("X-Amz-Security-Token") is not None:
        return "unexpected session token"
    declared = handler.headers.get("X-Amz-Content-SHA256")
    if declared is not None and declared not in UNSIGNED and declared != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 is not the body's hash"
    headers = {}
    for name in signed:
        values = handler.headers.get_all(name)
        if values is None:
            return "signed header " + name + " is missing"
        headers[name] = ",".join(values)
    url = "http://" + handler.headers["Host"] + handler.path
    request = AWSRequest(method=handler.command, url=url, headers=headers, data=body)
    request.context["timestamp"] = amz_date
    creds = Credentials(ACCESS_KEY, SECRET_KEY, TOKEN)
    auth = S3SigV4Auth(creds, service, region) if service == "s3" else SigV4Auth(creds, service, region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        return "SignatureDoesNotMatch"
    return None


def decode_aws_chunked(data):
    """aws-chunked (STREAMING-UNSIGNED-PAYLOAD-TRAILER): size;ext CRLF data CRLF ... 0 CRLF trailers CRLF."""
    out, i = [], 0
    while True:
        end = data.index(b"\r\n", i)
        size = int(data[i:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        i = end + 2 + size + 2


def read_body(handler):
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        if self.path == "/__log":
            with lock:
                return self.reply(200, json.dumps(log).encode())
        body = read_body(self)
        try:
            reason = verify(self, body)
        except Exception as err:  # a malformed Authorization is a refusal, not a crash
            reason = "unverifiable: " + repr(err)
        if reason is None and "aws-chunked" in (self.headers.get("Content-Encoding") or ""):
            body = decode_aws_chunked(body)
        entry = {
            "method": self.command,
            "path": self.path,
            "ok": reason is None,
            "reason": reason,
            "bodyBytes": len(body),
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        with lock:
            log.append(entry)
        if reason is None and (self.headers.get("Upgrade") or "").lower() == "websocket":
            # A signed WebSocket handshake: accept it and send one text frame saying so.
            magic = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(magic.encode()).digest()).decode())
            self.end_headers()
            self.wfile.write(b"\x81\x06signed")
            self.wfile.flush()
            self.close_connection = True
            return None
        if reason is not None:
            xml = "<Error><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error>" % reason
            return self.reply(403, xml.encode(), "application/xml")
        path = self.path.split("?")[0]
        if self.headers.get("X-Amz-Target") is None and path.count("/") >= 2 and path != "/":
            if self.command == "PUT":
                objects[path] = body
                etag = '"%s"' % hashlib.md5(body).hexdigest()
                return self.reply(200, b"", "application/xml", {"ETag": etag})
            if self.command in ("GET", "HEAD"):
                data = objects.get(path)
                if data is None:
                    return self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
                etag = '"%s"' % hashlib.md5(data).hexdigest()
                return self.reply(200, data, "application/octet-stream", {"ETag": etag})
        echo = {"ok": True, "target": self.headers.get("X-Amz-Target"), "body": body.decode("utf-8", "replace")}
        return self.reply(200, json.dumps(echo).encode(), "application/x-amz-json-1.0")

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("PORT %d" % server.server_address[1], flush=True)
server.serve_forever()
