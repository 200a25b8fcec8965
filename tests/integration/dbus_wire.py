# A minimal D-Bus client over a unix socket (stdlib only), to send canfleetd calls no well-behaved client would.
"""
busctl and canfleetctl check what they send; this speaks the wire protocol itself so that a test can
call methods with any signature and values, pass file descriptors, and read the error *name* of the
reply. Only what the tests need: EXTERNAL auth, method calls, replies and errors; signals are skipped.

  conn = Conn("unix:path=/tmp/x/bus")
  reply = conn.call("io.canfleet.Gateway1", "/io/canfleet/Gateway1", "io.canfleet.Gateway1.Manager",
                    "StartUpdate", "hasa{sv}", [0, ["bus0:1"], {"all": ("b", True)}], fds=[fd])
  reply.error   # "" or e.g. "io.canfleet.Gateway1.Error.NoSuchBus"
  reply.message # the error's text
"""

import array
import os
import socket
import struct
import time

ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "s": 4, "o": 4, "g": 1,
         "h": 4, "a": 4, "(": 8, "{": 8, "v": 1}


def split_types(sig):
    """'sa{sv}(ii)' -> ['s', 'a{sv}', '(ii)']"""
    out, i = [], 0
    while i < len(sig):
        j = complete_type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def complete_type_end(sig, i):
    c = sig[i]
    if c == "a":
        return complete_type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        depth, j = 0, i
        while True:
            if sig[j] in "({":
                depth += 1
            elif sig[j] in ")}":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
    return i + 1


class Writer:
    def __init__(self):
        self.b = bytearray()

    def pad(self, n):
        self.b += b"\0" * (-len(self.b) % n)

    def put(self, t, v):
        c = t[0]
        self.pad(ALIGN[c])
        if c == "y":
            self.b += struct.pack("<B", v)
        elif c == "b":
            self.b += struct.pack("<I", 1 if v else 0)
        elif c in "nq":
            self.b += struct.pack("<h" if c == "n" else "<H", v)
        elif c in "iuh":
            self.b += struct.pack("<i" if c == "i" else "<I", v)
        elif c in "xt":
            self.b += struct.pack("<q" if c == "x" else "<Q", v)
        elif c == "d":
            self.b += struct.pack("<d", v)
        elif c in "so":
            e = v.encode()
            self.b += struct.pack("<I", len(e)) + e + b"\0"
        elif c == "g":
            e = v.encode()
            self.b += struct.pack("<B", len(e)) + e + b"\0"
        elif c == "v":
            vt, vv = v
            self.put("g", vt)
            self.put(vt, vv)
        elif c == "(":
            for st, sv in zip(split_types(t[1:-1]), v):
                self.put(st, sv)
        elif c == "a":
            et = t[1:]
            at = len(self.b)
            self.b += b"\0\0\0\0"
            self.pad(ALIGN[et[0]])
            start = len(self.b)
            if et[0] == "{":
                kt, vt = split_types(et[1:-1])
                for k, val in v.items():
                    self.pad(8)
                    self.put(kt, k)
                    self.put(vt, val)
            else:
                for e in v:
                    self.put(et, e)
            struct.pack_into("<I", self.b, at, len(self.b) - start)
        else:
            raise ValueError(f"type {t} not supported")


class Reader:
    def __init__(self, b, pos=0):
        self.b, self.p = b, pos

    def pad(self, n):
        self.p += -self.p % n

    def get(self, t):
        c = t[0]
        self.pad(ALIGN[c])
        if c == "y":
            v = self.b[self.p]
            self.p += 1
            return v
        if c in "buhiq n":
            fmt = {"b": "<I", "u": "<I", "h": "<I", "i": "<i", "q": "<H", "n": "<h"}[c]
            v = struct.unpack_from(fmt, self.b, self.p)[0]
            self.p += struct.calcsize(fmt)
            return bool(v) if c == "b" else v
        if c in "xt":
            v = struct.unpack_from("<q" if c == "x" else "<Q", self.b, self.p)[0]
            self.p += 8
            return v
        if c in "so":
            n = struct.unpack_from("<I", self.b, self.p)[0]
            v = bytes(self.b[self.p + 4:self.p + 4 + n]).decode(errors="replace")
            self.p += 4 + n + 1
            return v
        if c == "g":
            n = self.b[self.p]
            v = bytes(self.b[self.p + 1:self.p + 1 + n]).decode()
            self.p += 1 + n + 1
            return v
        if c == "v":
            vt = self.get("g")
            return (vt, self.get(vt))
        if c == "(":
            return tuple(self.get(st) for st in split_types(t[1:-1]))
        if c == "a":
            n = struct.unpack_from("<I", self.b, self.p)[0]
            self.p += 4
            et = t[1:]
            self.pad(ALIGN[et[0]])
            end = self.p + n
            out = {} if et[0] == "{" else []
            while self.p < end:
                if et[0] == "{":
                    self.pad(8)
                    kt, vt = split_types(et[1:-1])
                    k = self.get(kt)
                    out[k] = self.get(vt)
                else:
                    out.append(self.get(et))
            return out
        raise ValueError(f"type {t} not supported")


class Message:
    """A received message: kind 1 call, 2 return, 3 error, 4 signal; fields by header code."""

    def __init__(self, kind, serial, fields, body, fds):
        self.kind, self.serial, self.fields, self.fds = kind, serial, fields, fds
        self.path, self.iface, self.member = fields.get(1, ""), fields.get(2, ""), fields.get(3, "")
        self.sender = fields.get(7, "")
        self.error = fields.get(4, "") if kind == 3 else ""
        sig = fields.get(8, "")
        self.signature = sig
        self.values = []
        if sig:
            r = Reader(body)
            self.values = [r.get(t) for t in split_types(sig)]
        self.message = self.values[0] if self.error and self.values and isinstance(self.values[0], str) else ""

    def __repr__(self):
        return (f"<message kind={self.kind} {self.path} {self.iface}.{self.member} error={self.error!r} "
                f"message={self.message!r} values={self.values!r}>")


Reply = Message


class Conn:
    def __init__(self, address, timeout=30):
        path = address.split("path=", 1)[1].split(",")[0]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.serial = 0
        self.buf = b""
        self.fdbuf = []
        self.pending = []  # messages received while waiting for a reply
        uid = str(os.getuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        self._auth_line("OK")
        self.sock.sendall(b"NEGOTIATE_UNIX_FD\r\n")
        self._auth_line("AGREE_UNIX_FD")
        self.sock.sendall(b"BEGIN\r\n")
        r = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")
        self.unique_name = r.values[0]

    def close(self):
        self.sock.close()

    def fileno(self):
        return self.sock.fileno()

    def _auth_line(self, expect):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("bus closed during authentication")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        if not line.startswith(expect.encode()):
            raise ConnectionError(f"authentication: got {line!r}, expected {expect}")

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            self.sock.settimeout(left)
            data, anc, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
            if not data:
                raise ConnectionError("bus connection closed")
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[:len(payload) - len(payload) % 4])
                    self.fdbuf += list(a)
            self.buf += data

    def recv(self, deadline=None):
        """The next message (blocking until deadline, monotonic seconds, or forever)."""
        if self.pending:
            return self.pending.pop(0)
        self._fill(16, deadline)
        fixed = self.buf[:16]
        if fixed[0:1] != b"l":
            raise ConnectionError("big-endian messages are not supported here")
        kind = fixed[1]
        body_len, serial, fields_len = struct.unpack_from("<III", fixed, 4)
        body_start = 16 + fields_len + (-(16 + fields_len) % 8)
        self._fill(body_start + body_len, deadline)
        msg, self.buf = self.buf[:body_start + body_len], self.buf[body_start + body_len:]
        r = Reader(msg, 12)
        hf = {k: v[1] for k, v in dict(r.get("a(yv)")).items()}
        nfds = hf.get(9, 0)
        fds, self.fdbuf = self.fdbuf[:nfds], self.fdbuf[nfds:]
        return Message(kind, serial, hf, msg[body_start:], fds)

    def send(self, kind, fields, sig="", args=(), fds=(), flags=0):
        self.serial += 1
        body = Writer()
        for t, v in zip(split_types(sig), args):
            body.put(t, v)
        fields = list(fields)
        if sig:
            fields.append((8, ("g", sig)))
        if fds:
            fields.append((9, ("u", len(fds))))
        h = Writer()
        h.b += struct.pack("<cBBBII", b"l", kind, flags, 1, len(body.b), self.serial)
        h.put("a(yv)", fields)
        h.pad(8)
        data = bytes(h.b + body.b)
        if fds:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            self.sock.sendall(data)
        return self.serial

    def call(self, dest, path, iface, member, sig="", args=(), fds=(), timeout=30):
        fields = [(1, ("o", path)), (3, ("s", member)), (6, ("s", dest))]
        if iface:
            fields.append((2, ("s", iface)))
        serial = self.send(1, fields, sig, args, fds)
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                m = self.recv(deadline)
                if m.kind in (2, 3) and m.fields.get(5) == serial:
                    return m
                skipped.append(m)
        finally:
            self.pending = skipped + self.pending

    # --- the serving side (a fake daemon in the client tests) ---
    def reply(self, call, sig="", args=()):
        self.send(2, [(5, ("u", call.serial)), (6, ("s", call.sender))], sig, args, flags=1)

    def reply_error(self, call, name, message):
        self.send(3, [(5, ("u", call.serial)), (6, ("s", call.sender)), (4, ("s", name))], "s", [message], flags=1)

    def emit(self, path, iface, member, sig="", args=()):
        self.send(4, [(1, ("o", path)), (2, ("s", iface)), (3, ("s", member))], sig, args, flags=1)

    def request_name(self, name):
        r = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su",
                      [name, 4])
        if r.error or r.values[0] != 1:
            raise ConnectionError(f"RequestName {name}: {r}")
