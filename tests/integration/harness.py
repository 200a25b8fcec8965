# Integration harness: a private D-Bus system bus, canfleet-nodesim, canfleetd and canfleetctl, per test.
"""
Each test script calls harness.main(test_function). The test function gets a Fleet: a temporary
directory with a private dbus-daemon (a <type>system</type> bus that allows everything, so that the
daemon's own credential checks are what is tested) and helpers to start canfleet-nodesim, write a
canfleetd configuration, start canfleetd and run canfleetctl. canfleetd's NOTIFY_SOCKET is ours and,
as systemd does, is read for as long as the fleet lives (a full queue would block the daemon's
sd_notify): start_daemon() waits for READY=1 from that very process, and the last STATUS= is kept
(Fleet.last_status, Fleet.wait_status). Every process runs in its own process group and is killed
when the test ends, however it ends. Every wait is bounded; nothing sleeps to synchronise.

Binary paths come from the command line (meson passes its targets):
  test_x.py --canfleetctl PATH --canfleetd PATH --nodesim PATH

canfleetd and canfleetctl can run under a wrapper command (valgrind, strace, ...): Fleet(name,
wrapper=[...], ctl_wrapper=[...]), or for any test unchanged the environment variables
CANFLEET_TEST_WRAPPER (canfleetd) and CANFLEET_TEST_CTL_WRAPPER (canfleetctl), split like a shell
would. In a wrapper "{dir}" becomes the fleet's wrapper log directory (Fleet.wrap_dir, writable by the
unprivileged test's uid too) and "{name}" the process's name, e.g.
  CANFLEET_TEST_WRAPPER='valgrind --log-file={dir}/{name}.%p.vg' meson test -t 10 ...
Every timeout of the harness (and of wait_until) is multiplied by CANFLEET_TEST_TIMEOUT_SCALE, or by
DEFAULT_WRAPPED_SCALE when a wrapper is set and the scale is not.
"""

import argparse
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

FLEET_KEY = "00112233445566778899aabbccddeeff" "0123456789abcdef0f1e2d3c4b5a6978"

BINARIES = {}

# every bounded wait is multiplied by this (see the module's documentation); set by Fleet()
TIMEOUT_SCALE = 1.0
# memcheck runs code some 10-50 times slower; the waits are upper bounds, so being generous costs nothing
DEFAULT_WRAPPED_SCALE = 10.0


def scaled(timeout):
    return timeout * TIMEOUT_SCALE


def env_wrapper(var):
    """The wrapper command in environment variable var, as a list (empty when unset)."""
    return shlex.split(os.environ.get(var, ""))


class TestFailure(Exception):
    pass


def check(cond, what):
    """assert that works under python -O too, and says what was expected."""
    if not cond:
        raise TestFailure(what)


def wait_until(what, fn, timeout, interval=0.05):
    """Poll fn() until it returns something true; fail after timeout seconds. The pause between
    polls only spaces the polls out: the outcome never depends on it."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Notify:
    """A NOTIFY_SOCKET read by a thread of its own until close(). Each datagram's sender comes from
    SO_PASSCRED, so that READY=1 can be told from a previous daemon's."""

    MAX_MESSAGE = 65536

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        # non-blocking: an older reader of Fleet.notify (bench.py's) ends at once instead of racing ours
        self.sock.setblocking(False)
        self.cond = threading.Condition()
        self.ready = set()      # pids that sent READY=1
        self.stopping = set()   # pids that sent STOPPING=1
        self.status = None      # the last STATUS= of any sender
        self.messages = 0
        self.error = None       # why the reader thread stopped early, if it did
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"notify {path}", daemon=True)
        self._thread.start()

    def _run(self):
        anc = socket.CMSG_SPACE(struct.calcsize("iII")) + socket.CMSG_SPACE(64 * 4)
        try:
            while True:
                rl, _, _ = select.select([self.sock, self._wake_r], [], [])
                if self._wake_r in rl:
                    return
                try:
                    data, ancdata, _, _ = self.sock.recvmsg(self.MAX_MESSAGE, anc)
                except BlockingIOError:
                    continue
                pid = None
                for level, kind, payload in ancdata:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack_from("iII", payload)[0]
                    elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        # FDSTORE=1 and the like: we keep no descriptors
                        for fd in struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4]):
                            os.close(fd)
                self._handle(pid, data.decode(errors="replace"))
        except Exception as e:  # noqa: BLE001 - reported by dump_logs and start_daemon
            with self.cond:
                self.error = f"{type(e).__name__}: {e}"
                self.cond.notify_all()

    def _handle(self, pid, text):
        with self.cond:
            self.messages += 1
            for line in text.split("\n"):
                key, eq, value = line.partition("=")
                if not eq:
                    continue
                if key == "STATUS":
                    self.status = value
                elif key == "READY" and value == "1":
                    self.ready.add(pid)
                elif key == "STOPPING" and value == "1":
                    self.stopping.add(pid)
            self.cond.notify_all()

    def wait(self, what, fn, timeout, proc=None):
        """Wait until fn() (called with the lock held) returns something true; fail after timeout,
        or as soon as proc has exited or the reader has stopped."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = fn()
                if got:
                    return got
                if self.error:
                    raise TestFailure(f"the NOTIFY_SOCKET reader stopped ({self.error}) waiting for {what}")
                if proc is not None and not proc.alive():
                    raise TestFailure(f"{proc.name} exited with {proc.p.returncode} before {what} "
                                      f"(last STATUS={self.status!r})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure(f"timed out after {timeout}s waiting for {what} (last STATUS={self.status!r})")
                # a notification wakes us at once; the bound only lets us see proc exit
                self.cond.wait(min(left, 0.2))

    def close(self):
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(10)
        self.sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class Proc:
    """A child in its own process group, its output in a log file."""

    def __init__(self, fleet, name, argv, env=None, pass_fds=(), wrapped=False):
        self.name = name
        # a wrapped process is ended with SIGTERM at teardown, so that its wrapper can report
        self.wrapped = wrapped
        self.log_path = os.path.join(fleet.dir, f"{name}.log")
        self.log = open(self.log_path, "ab")
        self.log.write(f"### {' '.join(argv)}\n".encode())
        self.log.flush()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=env, pass_fds=pass_fds, start_new_session=True)
        fleet.procs.append(self)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=10):
        timeout = scaled(timeout)
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        self.log.close()
        return self.p.returncode

    def stop(self, timeout=10):
        """SIGTERM and wait: the clean way out."""
        return self.kill(signal.SIGTERM, timeout)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    @property
    def text(self):
        return self.out + self.err

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise TestFailure(f"{' '.join(self.argv)}: output is not JSON ({e}):\n{self.out}")

    def __repr__(self):
        return f"<{' '.join(self.argv)} rc={self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


def make_ca(directory, name="ca", cn="canfleet test CA"):
    """A test PKI made with the stock openssl command in directory: a root CA (NAME.crt, the keyring)
    and a code-signing leaf under it (NAME-sign.crt/.key). EC P-256 keys, so that it takes ~50 ms.
    Returns {"keyring", "cert", "key"}."""
    ca_key, ca_crt = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    key, csr, crt = (os.path.join(directory, f"{name}-sign.{x}") for x in ("key", "csr", "crt"))
    ext = os.path.join(directory, f"{name}-ext.cnf")
    with open(ext, "w") as f:
        f.write("[codesign]\nbasicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = codeSigning\n")
    steps = [
        ["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", ca_key, "-out", ca_crt, "-subj", f"/CN={cn}", "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", f"/CN={cn} release key"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-set_serial", "2",
         "-days", "30", "-sha256", "-extfile", ext, "-extensions", "codesign", "-out", crt],
    ]
    for argv in steps:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=scaled(60))
        check(p.returncode == 0, f"{' '.join(argv)} failed: {p.stderr.decode(errors='replace')}")
    for path in (ca_crt, crt, key):
        os.chmod(path, 0o644)  # canfleetctl also runs as uid 65534 in some tests
    return {"keyring": ca_crt, "cert": crt, "key": key}


class Fleet:
    def __init__(self, name, wrapper=None, ctl_wrapper=None, timeout_scale=None, signed=True):
        """wrapper/ctl_wrapper: argv prefixes for canfleetd/canfleetctl (None: from the environment);
        timeout_scale: None for CANFLEET_TEST_TIMEOUT_SCALE, else DEFAULT_WRAPPED_SCALE when wrapped;
        signed: pack() makes signed bundles (.cfb) with a test CA made in the fleet's directory and the
        configuration names its keyring; False: plain images and "allow_unsigned": true."""
        global TIMEOUT_SCALE
        self.name = name
        self.signed = signed
        self.ca = None          # make_ca()'s paths, once a bundle was made
        self.images = {}        # bundle path -> the image it carries
        self.dir = tempfile.mkdtemp(prefix=f"canfleet-it-{name}-")
        # uid 65534 must reach the bus socket and read images
        os.chmod(self.dir, 0o755)
        self.wrapper = list(wrapper) if wrapper is not None else env_wrapper("CANFLEET_TEST_WRAPPER")
        self.ctl_wrapper = (list(ctl_wrapper) if ctl_wrapper is not None
                            else env_wrapper("CANFLEET_TEST_CTL_WRAPPER"))
        if timeout_scale is None:
            env_scale = os.environ.get("CANFLEET_TEST_TIMEOUT_SCALE")
            if env_scale:
                timeout_scale = float(env_scale)
            else:
                timeout_scale = DEFAULT_WRAPPED_SCALE if self.wrapper or self.ctl_wrapper else 1.0
        # one fleet per test process: the scale is the process's (wait_until has no fleet)
        self.timeout_scale = TIMEOUT_SCALE = float(timeout_scale)
        # wrapper logs; sticky and world-writable since canfleetctl also runs as uid 65534
        self.wrap_dir = os.path.join(self.dir, "wrap")
        os.makedirs(self.wrap_dir)
        os.chmod(self.wrap_dir, 0o1777)
        self.procs = []
        self.bus_address = None
        self.dbus = None
        self.daemon = None
        self.notify = None          # the NOTIFY_SOCKET (read by self.notifier, never by a test)
        self.notifier = None
        self.sims = []
        self.config_path = os.path.join(self.dir, "canfleetd.conf")
        self.key_path = os.path.join(self.dir, "fleet.key")
        self.sim_state = os.path.join(self.dir, "nodes")
        self.state_dir = os.path.join(self.dir, "state")
        self.cache_dir = os.path.join(self.dir, "cache")
        with open(self.key_path, "w") as f:
            f.write(FLEET_KEY + "\n")
        os.makedirs(self.sim_state)

    # --- teardown ------------------------------------------------------------------------
    def close(self):
        for p in reversed(self.procs):
            try:
                if p.wrapped:
                    p.stop()
                else:
                    p.kill()
            except Exception:
                pass
        if self.notifier:
            self.notifier.close()

    def dump_logs(self, out=sys.stderr):
        for p in self.procs:
            try:
                text = p.output()
            except OSError:
                continue
            tail = text[-6000:]
            out.write(f"----- {p.name} ({p.log_path}), last {len(tail)} bytes -----\n{tail}\n")
        for log in sorted(os.listdir(self.wrap_dir)) if os.path.isdir(self.wrap_dir) else ():
            path = os.path.join(self.wrap_dir, log)
            try:
                with open(path, "rb") as f:
                    tail = f.read().decode(errors="replace")[-3000:]
            except OSError:
                continue
            out.write(f"----- wrapper log {path}, last {len(tail)} bytes -----\n{tail}\n")
        if self.notifier:
            n = self.notifier
            out.write(f"----- NOTIFY_SOCKET: {n.messages} messages, last STATUS={n.status!r}"
                      f"{f', reader stopped: {n.error}' if n.error else ''}\n")

    def wrap(self, wrapper, name, argv):
        """argv under wrapper, "{dir}" and "{name}" in the wrapper's words filled in."""
        return [w.replace("{dir}", self.wrap_dir).replace("{name}", name) for w in wrapper] + list(argv)

    def ctl_argv(self, args, name="canfleetctl"):
        return self.wrap(self.ctl_wrapper, name, [BINARIES["canfleetctl"]] + [str(a) for a in args])

    # --- the bus ---------------------------------------------------------------------------
    def start_bus(self, timeout=10):
        sock = os.path.join(self.dir, "bus")
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
""")
        rfd, wfd = os.pipe()
        try:
            self.dbus = Proc(self, "dbus-daemon",
                             ["dbus-daemon", "--config-file", conf, "--nofork", f"--print-address={wfd}"],
                             pass_fds=(wfd,))
        finally:
            os.close(wfd)
        try:
            line = read_line(rfd, scaled(timeout), "dbus-daemon's address", self.dbus)
        finally:
            os.close(rfd)
        self.bus_address = line.strip()
        check(self.bus_address.startswith("unix:"), f"dbus-daemon printed {line!r}")
        return self.bus_address

    def env(self):
        env = dict(os.environ)
        env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address or f"unix:path={self.dir}/no-bus"
        env.pop("NOTIFY_SOCKET", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        env["LC_ALL"] = "C"
        return env

    # --- images ----------------------------------------------------------------------------
    def pack(self, version, hw_id=0x0001, release=1, size=16 * 1024, name=None, seed=1):
        """An area image of a test application of size bytes with canfleetctl image pack."""
        name = name or f"app-{version}-{hw_id:04x}"
        app = os.path.join(self.dir, name + ".bin")
        img = os.path.join(self.dir, name + ".img")
        with open(app, "wb") as f:
            f.write(test_app(size, seed))
        r = self.ctl("image", "pack", app, "--size", "256K", "--version", version, "--hw-id", f"0x{hw_id:04x}",
                     "--release", str(release), "-o", img, bus=False)
        check(r.rc == 0 and os.path.exists(img), f"image pack failed: {r}")
        os.chmod(img, 0o644)
        if not self.signed:
            return img
        return self.bundle(img)

    def trust(self):
        """The fleet's test CA (made on first use): {"keyring", "cert", "key"}."""
        if self.ca is None:
            self.ca = make_ca(self.dir)
        return self.ca

    def bundle(self, img, cert=None, key=None, out=None):
        """A signed bundle of image img (canfleetctl bundle create), by default with the fleet's CA."""
        ca = self.trust()
        out = out or os.path.splitext(img)[0] + ".cfb"
        r = self.ctl("bundle", "create", img, "--cert", cert or ca["cert"], "--key", key or ca["key"], "-o", out,
                     bus=False)
        check(r.rc == 0 and os.path.exists(out), f"bundle create failed: {r}")
        os.chmod(out, 0o644)
        self.images[out] = img
        return out

    def image(self, path):
        """The plain area image of what pack() returned (itself when it is one)."""
        return self.images.get(path, path)

    # --- the simulator ---------------------------------------------------------------------
    def start_sim(self, buses, nodes, extra=(), install=None, name=None, timeout=20):
        """canfleet-nodesim with nodes per bus (station addresses 1..nodes) on slcan ptys
        DIR/<bus>; returns the Proc once it said ready."""
        name = name or f"nodesim-{'-'.join(buses)}"
        argv = [BINARIES["nodesim"]]
        for b in buses:
            argv += ["--bus", f"slcan:{self.pty(b)}"]
        argv += ["--nodes", str(nodes), "--state", self.sim_state, "--fleet-key", self.key_path]
        if install:
            argv += ["--install", self.image(install)]
        rfd, wfd = os.pipe()
        argv += ["--ready-fd", str(wfd)] + list(extra)
        try:
            p = Proc(self, name, argv, pass_fds=(wfd,))
        finally:
            os.close(wfd)
        try:
            line = read_line(rfd, scaled(timeout), f"{name} ready", p)
        finally:
            os.close(rfd)
        check(line.strip() == "ready", f"{name} said {line!r} instead of ready")
        p.buses, p.nodes, p.extra, p.install = list(buses), nodes, list(extra), install
        self.sims.append(p)
        return p

    def pty(self, bus):
        return os.path.join(self.dir, bus)

    def sim_show(self):
        """The nodes' flash as the simulator reads it (run with no simulator running)."""
        r = run([BINARIES["nodesim"], "--state", self.sim_state, "--show", "--json"], self.env(), scaled(30))
        check(r.rc == 0, f"nodesim --show failed: {r}")
        nodes = {}
        for n in r.json()["nodes"]:
            nodes[f"{n['bus']}:{n['station']}"] = n
        return nodes

    # --- the daemon ------------------------------------------------------------------------
    # Answers wait up to this long before a try counts as lost (CCP's own is 25 ms): on a loaded
    # 2-core test machine the simulator can go unscheduled for 200 ms, and these are correctness
    # tests, not timing tests. The time-out path itself is tested with CCP's values in daemon-ccp-master.
    REPLY_TIMEOUT_MS = 500

    def write_config(self, buses, nodes, **top):
        """buses: names; nodes: station count per bus (1..nodes) or a list."""
        stations = list(range(1, nodes + 1)) if isinstance(nodes, int) else list(nodes)
        conf = {
            "fleet_key_file": self.key_path,
            "state_dir": self.state_dir,
            "cache_dir": self.cache_dir,
            "reply_timeout_ms": self.REPLY_TIMEOUT_MS,
            "buses": [{"name": b, "transport": f"slcan:{self.pty(b)}", "bitrate": 500000, "nodes": stations}
                      for b in buses],
        }
        if self.signed:
            conf["keyring"] = self.trust()["keyring"]
        else:
            conf["allow_unsigned"] = True
        conf.update(top)
        with open(self.config_path, "w") as f:
            json.dump(conf, f, indent=2)
        return conf

    def start_daemon(self, timeout=20, env=None):
        """canfleetd with our NOTIFY_SOCKET; returns once this process sent READY=1. env: variables
        added to its environment (the serial shim's LD_PRELOAD, say)."""
        if self.notifier is None:
            self.notifier = Notify(os.path.join(self.dir, "notify"))
            self.notify = self.notifier.sock
            self.notify_path = self.notifier.path
        extra = env
        env = self.env()
        env.update(extra or {})
        env["NOTIFY_SOCKET"] = self.notify_path
        # the wrapper must exec canfleetd in its own process (valgrind, env, strace -o ... do): READY=1
        # is only taken from the pid started here
        argv = self.wrap(self.wrapper, "canfleetd", [BINARIES["canfleetd"], "--config", self.config_path])
        self.daemon = Proc(self, "canfleetd", argv, env=env, wrapped=bool(self.wrapper))
        pid = self.daemon.pid
        self.notifier.wait("READY=1 from canfleetd", lambda: pid in self.notifier.ready, timeout, self.daemon)
        return self.daemon

    @property
    def last_status(self):
        """The last STATUS= canfleetd sent (None before any)."""
        if self.notifier is None:
            return None
        with self.notifier.cond:
            return self.notifier.status

    def wait_status(self, pattern, timeout=30):
        """Wait until canfleetd's last STATUS= matches the regular expression; returns the match."""
        check(self.notifier is not None, "wait_status before start_daemon")
        rx = re.compile(pattern)
        return self.notifier.wait(f"STATUS= matching {pattern!r}",
                                  lambda: self.notifier.status is not None and rx.search(self.notifier.status),
                                  timeout, self.daemon)

    # --- canfleetctl -----------------------------------------------------------------------
    def ctl(self, *args, uid=None, timeout=120, bus=True):
        argv = self.ctl_argv(args)
        if uid is not None:
            argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] + argv
        return run(argv, self.env(), scaled(timeout))

    def ctl_bg(self, *args, name="canfleetctl"):
        return Proc(self, name, self.ctl_argv(args, name), env=self.env(), wrapped=bool(self.ctl_wrapper))

    def nodes(self):
        r = self.ctl("nodes", "--json")
        check(r.rc == 0, f"nodes --json failed: {r}")
        return {n["node"]: n for n in r.json()["nodes"]}

    def jobs(self):
        r = self.ctl("jobs", "--json")
        check(r.rc == 0, f"jobs --json failed: {r}")
        return r.json()["jobs"]

    def job(self, job_id):
        for j in self.jobs():
            if j["id"] == job_id:
                return j
        raise TestFailure(f"job {job_id} not in jobs --json")

    def start_fleet(self, buses, nodes, v1="1.0.0", sim_extra=(), daemon_top=None):
        """The usual fixture: bus, nodes running v1, configuration, daemon."""
        self.start_bus()
        img1 = self.pack(v1, release=1)
        self.start_sim(buses, nodes, extra=sim_extra, install=img1)
        self.write_config(buses, nodes, **(daemon_top or {}))
        self.start_daemon()
        return img1


def read_line(fd, timeout, what, proc=None):
    """One line from a pipe, bounded in time; fails early when proc dies."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"timed out after {timeout}s waiting for {what}")
        rl, _, _ = select.select([fd], [], [], min(left, 0.2))
        if rl:
            chunk = os.read(fd, 256)
            if not chunk:
                raise TestFailure(f"{what}: pipe closed" +
                                  (f" ({proc.name} exited with {proc.p.poll()})" if proc else ""))
            buf += chunk
        elif proc is not None and not proc.alive():
            raise TestFailure(f"{proc.name} exited with {proc.p.returncode} while waiting for {what}")
    return buf.decode(errors="replace")


def run_on_tty(f, args, timeout=60):
    """canfleetctl with its stdout on a pseudo-terminal; returns (exit code, everything it wrote)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(f.ctl_argv(args), stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave, env=f.env(), start_new_session=True)
    os.close(slave)
    out = b""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            check(left > 0, f"canfleetctl on a tty did not finish in {timeout}s: {out[-2000:]!r}")
            rl, _, _ = select.select([master], [], [], min(left, 0.5))
            if rl:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        return p.wait(timeout=scaled(10)), out.decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def run(argv, env, timeout):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise TestFailure(f"{' '.join(argv)} did not finish within {timeout}s; output so far: "
                          f"{(e.stdout or b'').decode(errors='replace')}{(e.stderr or b'').decode(errors='replace')}")
    return Result(argv, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def test_app(size, seed=1):
    """An application binary: SP 0x20020000, reset vector 0x08020199, then deterministic bytes with
    no long 0xFF runs (every byte must really be sent)."""
    size = max(size, 64)
    out = bytearray((0x20020000).to_bytes(4, "little") + (0x08020199).to_bytes(4, "little"))
    x = (seed * 2654435761) & 0xFFFFFFFF or 1
    while len(out) < size:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out += bytes(b if b != 0xFF else 0x5A for b in x.to_bytes(4, "little"))
    return bytes(out[:size])


def all_nodes(buses, nodes):
    return [f"{b}:{sa}" for b in buses for sa in range(1, nodes + 1)]


def assert_versions(fleet, expect, via_daemon=True):
    """expect: {"bus0:1": "2.0.0", ...}. Checks canfleetctl nodes --json, then stops the simulators
    (SIGTERM) and checks the flash files through canfleet-nodesim --show --json."""
    if via_daemon:
        nodes = fleet.nodes()
        for name, version in expect.items():
            check(name in nodes, f"{name} missing from canfleetctl nodes --json: {sorted(nodes)}")
            check(nodes[name]["version"] == version,
                  f"{name}: canfleetctl nodes says version {nodes[name]['version']!r}, expected {version!r}")
    stop_sims(fleet)
    shown = fleet.sim_show()
    for name, version in expect.items():
        check(name in shown, f"{name} missing from nodesim --show: {sorted(shown)}")
        b = shown[name]["B"]
        check(b["state"] == "valid" and b.get("version") == version,
              f"{name}: flash area B is {b}, expected a valid {version}")


def wait_probed(fleet, timeout=30):
    """Wait until canfleetd's start-up probe has met every configured node (none is "unknown"), and
    the frames of its closing DISCONNECTs are through (the simulator's frame log stops growing): a
    test that counts frames from here sees only its own."""
    wait_until("the start-up probe", lambda: all(n["state"] != "unknown" for n in fleet.nodes().values()),
               timeout)
    time.sleep(0.3)


def stop_sims(fleet):
    for s in fleet.sims:
        s.stop()


def main(test, name=None, **fleet_args):
    """Run test(fleet) with a new Fleet(name, **fleet_args); returns the process's exit code."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--canfleetctl", required=True)
    ap.add_argument("--canfleetd", required=True)
    ap.add_argument("--nodesim", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    # meson passes paths relative to the build directory; the tests may run elsewhere
    BINARIES.update(canfleetctl=os.path.abspath(args.canfleetctl), canfleetd=os.path.abspath(args.canfleetd),
                    nodesim=os.path.abspath(args.nodesim))
    for k, v in BINARIES.items():
        if not os.access(v, os.X_OK):
            print(f"{k}: {v} is not an executable", file=sys.stderr)
            return 1
    name = name or test.__name__
    fleet = Fleet(name, **fleet_args)
    ok = False
    t0 = time.monotonic()
    try:
        test(fleet)
        ok = True
    except TestFailure as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
    except Exception:
        print(f"ERROR {name}:", file=sys.stderr)
        traceback.print_exc()
    finally:
        fleet.close()
    if not ok:
        fleet.dump_logs()
        print(f"(test directory kept: {fleet.dir})", file=sys.stderr)
        return 1
    print(f"PASS {name} ({time.monotonic() - t0:.1f}s)")
    if not args.keep:
        shutil.rmtree(fleet.dir, ignore_errors=True)
    return 0


def job_id_of(result):
    """The job number from update --no-wait's output (its object path)."""
    m = re.search(r"/job/(\d+)\s*$", result.out)
    check(m is not None, f"update --no-wait printed no job path: {result}")
    return int(m.group(1))
