#!/usr/bin/python3
"""A test HTTP(S) file server on loopback with RFC 9110 ranges and switchable faults (standard library only).

Usage:
  httpd.py certs DIR
      Make a test PKI with the openssl command: DIR/ca.pem (+ ca.key), DIR/server.pem + server.key
      (signed by ca.pem, for IP 127.0.0.1 and DNS localhost), and an untrusted pair
      DIR/rogue-server.pem + rogue-server.key signed by DIR/rogue-ca.pem.
  httpd.py serve --root DIR [--tls-cert PEM --tls-key PEM] [--port N] [--port-file F]
                 [--faults F.json] [--log F.jsonl]
      Serve the files under DIR on 127.0.0.1 (port 0: an ephemeral one). The port is printed as
      "PORT n" on stdout and written to --port-file (atomically) once the server listens.

Responses: GET/HEAD of a file give ETag (a strong tag from the content), Last-Modified,
Accept-Ranges: bytes; a single "Range: bytes=a-b | a- | -n" gives 206 with Content-Range, an
unsatisfiable one 416 with "Content-Range: bytes */size"; If-Range (entity tag: strong comparison;
date: exact match with Last-Modified) that does not match makes it a 200 of the whole file; several
ranges or a malformed Range are ignored (200), as RFC 9110 allows. If-None-Match gives 304.

Faults (--faults): a JSON file {"rules": [RULE, ...]}, read again whenever its content changes (the
counters then start over: add an "id" to force that). For each request every rule whose "path"
(absent: every path) matches and whose "times" (absent: always) is not used up applies:
  "status": N [, "retry_after": S]   answer N with a short body (and Retry-After: S) instead
  "redirect": URL                     answer 302 with Location: URL
  "cut_after": K                      send K body bytes, then drop the connection
  "stall_after": K, "stall": S        send K body bytes, then send nothing for S seconds
  "chunked": true                     Transfer-Encoding: chunked, no Content-Length
  "no_length": true                   no Content-Length, the body ends when the connection closes
  "no_etag" / "weak_etag" / "no_last_modified": true   validators left out or made weak
  "bad_content_range": true           a 206 names a range one byte off from the one sent
  "replace_with": "/other"            after this response the file gets other's content (new ETag)
Request log (--log): JSON lines; {"event": "request", "seq", "time", "method", "path", "headers"
(lower-case names), "status", "content_range", "length" (body bytes planned), "etag", "faults"} just
before the response headers go out (so a client that saw them finds the entry), {"event": "done", "seq", "sent"} after the body, {"event": "tls_error",
"error"} when a TLS handshake fails.

Other tests build on it: subclass Handler (do_GET may call self.serve_file(path) or self.send_body())
and pass it to make_server().
"""

import argparse
import email.utils
import hashlib
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time


class Faults:
    def __init__(self, path):
        self.path = path
        self.text = None
        self.rules = []
        self.used = []
        self.lock = threading.Lock()

    def _reload(self):
        if not self.path:
            return
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if text != self.text:
            self.text = text
            self.rules = json.loads(text).get("rules", []) if text.strip() else []
            self.used = [0] * len(self.rules)

    def take(self, path):
        """The rules that apply to this request, each counted as used once."""
        with self.lock:
            self._reload()
            out = []
            for i, rule in enumerate(self.rules):
                if "path" in rule and rule["path"] != path:
                    continue
                if "times" in rule and self.used[i] >= rule["times"]:
                    continue
                self.used[i] += 1
                out.append(rule)
            return out


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, root, tls_context=None, faults=None, log=None):
        self.root = os.path.abspath(root)
        self.tls_context = tls_context
        self.faults = Faults(faults)
        self.log_path = log
        self.log_lock = threading.Lock()
        self.seq = 0
        super().__init__(addr, handler)

    def next_seq(self):
        with self.log_lock:
            self.seq += 1
            return self.seq

    def log(self, entry):
        if not self.log_path:
            return
        with self.log_lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def finish_request(self, request, client_address):
        # TLS per connection, in the connection's thread: a client that never finishes its handshake
        # must not block the accept loop.
        if self.tls_context:
            request.settimeout(10)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.log({"event": "tls_error", "time": time.time(), "error": str(e)})
                request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def etag_of(data):
    return '"' + hashlib.sha256(data).hexdigest()[:20] + '"'


def parse_range(value, size):
    """(first, last) for one satisfiable range, "unsatisfiable", or None to ignore the header."""
    if not value or not value.startswith("bytes="):
        return None
    spec = value[6:].strip()
    if "," in spec or "-" not in spec:
        return None
    a, b = (s.strip() for s in spec.split("-", 1))
    try:
        if a == "":
            n = int(b)
            if n <= 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1) if size > 0 else "unsatisfiable"
        first = int(a)
        last = int(b) if b else size - 1
    except ValueError:
        return None
    if first < 0 or (b and last < first):
        return None
    if first >= size:
        return "unsatisfiable"
    return (first, min(last, size - 1))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "canfleet-test-httpd/1"

    seq = None

    def log_message(self, fmt, *args):  # the JSON log says it all
        pass

    def handle_one_request(self):
        self.seq = None  # one connection carries several requests
        super().handle_one_request()

    def do_GET(self):
        self.serve_file(self.path.split("?", 1)[0])

    def do_HEAD(self):
        self.serve_file(self.path.split("?", 1)[0])

    def _entry(self, status, faults, **kw):
        entry = {"event": "request", "seq": self.seq, "time": time.time(), "method": self.command,
                 "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                 "status": status, "faults": faults}
        entry.update(kw)
        self.server.log(entry)

    def send_body(self, status, body=b"", headers=(), faults=None):
        """A small complete answer (errors, API documents)."""
        if self.seq is None:
            self.seq = self.server.next_seq()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # Logged before the headers leave: whoever saw the answer finds its entry in the log.
        self._entry(status, faults or [], length=len(body))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.server.log({"event": "done", "seq": self.seq, "sent": len(body)})

    def serve_file(self, path):
        self.seq = self.server.next_seq()
        rules = self.server.faults.take(path)
        names = sorted({k for r in rules for k in r if k not in ("path", "times", "id")})
        opt = {}
        for r in rules:
            opt.update({k: v for k, v in r.items() if k not in ("path", "times", "id")})

        if "status" in opt:
            hdrs = [("Retry-After", str(opt["retry_after"]))] if "retry_after" in opt else []
            self.send_body(opt["status"], b"fault %d\n" % opt["status"], hdrs, names)
            return
        if "redirect" in opt:
            self.send_body(302, b"", [("Location", opt["redirect"])], names)
            return

        full = os.path.normpath(os.path.join(self.server.root, path.lstrip("/")))
        if not full.startswith(self.server.root + os.sep) or not os.path.isfile(full):
            self.send_body(404, b"not found\n", faults=names)
            return
        with open(full, "rb") as f:
            data = f.read()
        size = len(data)
        etag = etag_of(data)
        if opt.get("weak_etag"):
            etag = "W/" + etag
        last_modified = email.utils.formatdate(os.stat(full).st_mtime, usegmt=True)
        validators = []
        if not opt.get("no_etag"):
            validators.append(("ETag", etag))
        if not opt.get("no_last_modified"):
            validators.append(("Last-Modified", last_modified))

        inm = self.headers.get("If-None-Match")
        if inm and not opt.get("no_etag") and etag.removeprefix("W/") in [t.strip().removeprefix("W/") for t in inm.split(",")]:
            self.send_body(304, b"", validators, names)
            return

        rng = parse_range(self.headers.get("Range"), size)
        if_range = self.headers.get("If-Range")
        if rng is not None and if_range is not None:
            if if_range.startswith('"') or if_range.startswith("W/"):
                # Strong comparison: weak tags never match.
                match = not etag.startswith("W/") and not if_range.startswith("W/") and if_range == etag \
                    and not opt.get("no_etag")
            else:
                match = not opt.get("no_last_modified") and if_range == last_modified
            if not match:
                rng = None
        if rng == "unsatisfiable":
            self.send_body(416, b"", [("Content-Range", f"bytes */{size}")], names)
            return

        status, first, last = (206, rng[0], rng[1]) if rng else (200, 0, size - 1)
        body = data[first:last + 1]
        content_range = None
        self.send_response(status)
        for k, v in validators:
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            shown_first = first + 1 if opt.get("bad_content_range") else first
            content_range = f"bytes {shown_first}-{last}/{size}"
            self.send_header("Content-Range", content_range)
        chunked = bool(opt.get("chunked"))
        no_length = bool(opt.get("no_length"))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif no_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self._entry(status, names, content_range=content_range, length=len(body), etag=etag)
        self.end_headers()

        sent = 0
        try:
            if self.command != "HEAD":
                sent = self._send(body, chunked, opt)
        except OSError:
            self.close_connection = True
        finally:
            self.server.log({"event": "done", "seq": self.seq, "sent": sent})
            if "replace_with" in opt:
                src = os.path.join(self.server.root, opt["replace_with"].lstrip("/"))
                with open(src, "rb") as f:
                    new = f.read()
                tmp = full + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(new)
                os.replace(tmp, full)

    def _write(self, chunk, chunked):
        if not chunk:
            return
        if chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.wfile.write(chunk)

    def _send(self, body, chunked, opt):
        cut = opt.get("cut_after")
        stall_at = opt.get("stall_after")
        sent = 0
        step = 16384
        while sent < len(body):
            end = min(len(body), sent + step)
            if cut is not None and end > cut:
                end = cut
            if stall_at is not None and sent < stall_at < end:
                end = stall_at
            self._write(body[sent:end], chunked)
            sent = end
            if cut is not None and sent >= cut:
                self.wfile.flush()
                self.close_connection = True
                # Drop it as a broken server would: no chunk terminator, no more bytes.
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return sent
            if stall_at is not None and sent == stall_at:
                self.wfile.flush()
                time.sleep(float(opt.get("stall", 1)))
                stall_at = None
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        return sent


def make_server(root, port=0, tls_cert=None, tls_key=None, faults=None, log=None, handler=Handler):
    ctx = None
    if tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls_cert, tls_key)
    return Server(("127.0.0.1", port), handler, root, ctx, faults, log)


def make_certs(d):
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    ext = os.path.join(d, "server-ext.cnf")
    with open(ext, "w", encoding="utf-8") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca, server in (("ca", "server"), ("rogue-ca", "rogue-server")):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "3", "-subj", f"/CN=canfleet test {ca}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{server}.key", "-out", f"{server}.csr", "-subj", "/CN=127.0.0.1")
        run("x509", "-req", "-in", f"{server}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{server}.pem", "-days", "3", "-extfile", "server-ext.cnf")


def main(argv=None):
    p = argparse.ArgumentParser(description="canfleet test HTTP(S) server")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("certs")
    c.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("--root", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--port-file")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--faults")
    s.add_argument("--log")
    a = p.parse_args(argv)
    if a.cmd == "certs":
        make_certs(a.dir)
        return 0
    srv = make_server(a.root, a.port, a.tls_cert, a.tls_key, a.faults, a.log)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, a.port_file)
    print(f"PORT {port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
