#!/usr/bin/python3
"""canfleet benchmarks (meson benchmark(), `meson test --benchmark`): they print figures and never fail
on a time. canfleet-nodesim runs with its bus and flash timing models and --log-frames; every frame
on the buses is parsed from that log as it happens, and the bus-limited ideal is the sum of the
frames' exact bit lengths (stuff bits included, computed here as the CAN 2.0 spec and the simulator
do) divided by the bitrate.

  a  one node, a full 256 KB image at 500 kbit/s: update wall time against the ideal
  b  bytes sent for a 40 KB application in a 256 KB area
  c  32 nodes on 4 buses: wall time against the busiest bus's ideal, with full images and 40 KB apps
  d  peak RSS (VmHWM) of canfleetd with 128 nodes configured, during an update of all of them, and what
     it is made of (RssAnon: private; RssFile: pages of the shared libraries)
  e  canfleetd CPU time (utime+stime) per CAN frame, from that run
  s  canfleet-nodesim's own CPU time per frame (needs no daemon: a CCP ping-pong over SLCAN)
  g1 8 like nodes on one bus, full images: the group transfer's update wall time against one group
     pass's bus ideal + one node's flash floor; the same with plain CCP (--no-group all), the speed-up
  g2 one node behind a USB adapter (--adapter-latency-us 1000): transfer wall / bus ideal, group vs
     plain CCP
  (--only g: g1 and g2; --only j: g1's group transfer alone; --only r: g4 and g5; --only 5: g5 alone;
   --g1-app-size BYTES: g1 with a smaller application)
  g4 g1 with 1 % frame loss (--drop 0.01, fixed seed): unicast repair bytes / image bytes, wall vs g1
  g5 g1 with canfleetd SIGKILLed at half of the group pass and started again: bytes sent after the
     restart / image bytes, and the CLEAR_MEMORYs per node (one: nothing erased again)
  h  canfleetd as a hawkBit gateway of 128 nodes (4 buses) against tests/hawkbit/ddi_server.py on
     loopback TLS: root polls per minute measured at config.polling.sleep 00:00:30 over 60 s (below the rate cap) and
     projected to hawkBit's default 00:05:00, the smallest gap between two requests (the pacer: never
     a burst), then one deployment to all 128 (one download, one job): its wall time, and canfleetd's
     RSS and peak RSS with the client active
  --plain runs a, b, c, d/e with every node refusing the group transfer (the plain CCP figures)
  f  persistence at scale: a job of N nodes (1,000, 5,000, 20,000; --f-nodes) whose bus is gone
     fails them all at once after a restart; time from canfleetd's start until the job is finished,
     per node event, and the slowest D-Bus answer (a property Get) meanwhile. No bus, no simulator.
  k  the two node kinds, one node each with a full image: DISCONNECT(end) to the confirmed new version
     for a single-bank F4 (k4: the boot copy) and a dual-bank F7 (k7: bank flip, trial, the simulated
     application confirming after 500 ms)
  u  URL updates (docs/design.md §6): canfleetd downloads a signed 256 KB bundle from tests/http/httpd.py on
     loopback, plain HTTP and HTTPS (TLS verified against ca_file), 9 times each: the download time is
     canfleetd's own ("downloaded URL: N bytes in M ms": from the download's start, once the job is saved,
     to the last byte; connection and TLS handshake included, libcurl reuses a connection), the throughput is bytes over it. The bundle is for another hardware id,
     so every job downloads and verifies the whole bundle (signature, trust, sha256, trailer, CRC) and
     is then refused at the hardware id: no CAN frame, so VmHWM afterwards is the peak of start-up plus
     downloads and verifications. Then a download paused for 2 s after 128 KB: canfleetd's VmRSS sampled
     every 10 ms while it runs (its RSS during a download). With --bench-fetch (tests/bench/bench-fetch.c:
     canfleetd's fetcher alone, no size cap), a 64 MB file over HTTP and HTTPS from the same server: the
     fetcher's throughput, beside curl's from the same server when curl is installed (what the Python
     server itself gives)

    bench.py --canfleetctl PATH --canfleetd PATH --nodesim PATH [--only abcdesfgrkhu] [--plain] [--c-app-size BYTES]...
             [--f-nodes N]... [--bench-fetch PATH]

Phases an update of one node cannot hide behind the bus are printed beside the ideal: the erase of C
before the transfer and the boot copy after it, from the simulator's flash model (docs/design.md §5).

Exit status: 0 when every scenario ran and its update succeeded, whatever the figures; 1 otherwise.
"""

import argparse
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import shutil
import threading
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import dual_fixture  # noqa: E402

BITRATE = 500000
AREA = 256 * 1024
TRAILER = 64  # image_info (60) + CRC (4) at the end of the area
CCP_PROGRAM, CCP_PROGRAM_6 = 0x18, 0x22
CRO_BASE = 0x680  # the simulator's and the daemon's default id bases: CRO 0x680 + SA
GROUP_ID = 0x680  # the default group id (station 0: no node's CRO)


# --- the exact length of a CAN 2.0 frame on the wire -------------------------------------------

def _crc15(bits):
    crc = 0
    for b in bits:
        nxt = b ^ ((crc >> 14) & 1)
        crc = (crc << 1) & 0x7FFF
        if nxt:
            crc ^= 0x4599
    return crc


def _bits(value, count):
    return [(value >> i) & 1 for i in range(count - 1, -1, -1)]


def frame_bits(can_id, data, ext=False, rtr=False, dlc=None):
    """Bits from SOF to the end of the intermission: the stuffed part (SOF..CRC sequence, a stuff bit
    after five equal bits, the stuff bit starting the next run) + CRC delimiter, ACK, EOF (7) and the
    3-bit intermission (the next frame cannot start earlier)."""
    dlc = len(data) if dlc is None else dlc
    b = [0]
    if ext:
        b += _bits(can_id >> 18, 11) + [1, 1] + _bits(can_id & 0x3FFFF, 18) + [1 if rtr else 0, 0, 0]
    else:
        b += _bits(can_id, 11) + [1 if rtr else 0, 0, 0]
    b += _bits(dlc, 4)
    if not rtr:
        for byte in data:
            b += _bits(byte, 8)
    b += _bits(_crc15(b), 15)
    stuff, run, last = 0, 0, None
    for bit in b:
        if bit == last:
            run += 1
        else:
            last, run = bit, 1
        if run == 5:
            stuff += 1
            last, run = 1 - last, 1
    return len(b) + stuff + 1 + 2 + 7 + 3


def _self_check():
    # all-zero standard frame: 34 zero bits (CRC of zeros is 0) get 6 stuff bits + 13 = 53
    assert frame_bits(0, b"") == 53, frame_bits(0, b"")
    for dlc in range(9):
        n = frame_bits(0x6C1, bytes(range(0x30, 0x30 + dlc)))
        assert 47 + 8 * dlc <= n <= 47 + 8 * dlc + (34 + 8 * dlc - 1) // 4, (dlc, n)


# --- the simulator, its frames counted as they are delivered -------------------------------------

FRAME_RE = re.compile(r"^(\S+): (host|node\s+\d+)\s+(->|dropped|corrupt) ([0-9A-F]+) \[(\d+)\]( remote)?((?: [0-9A-F]{2})*)"
                      r" @(\d+)\s*$")


CCP_NAMES = {0x01: "CONNECT", 0x10: "CLEAR_MEMORY", 0x18: "PROGRAM", 0x22: "PROGRAM_6", 0x0E: "BUILD_CHKSUM",
             0x07: "DISCONNECT"}


class BusStats:
    def __init__(self):
        self.frames = self.host_frames = self.bits = 0
        self.program_bytes = 0  # image bytes carried by PROGRAM / PROGRAM_6
        self.first = self.last = None
        self.prog_first = self.prog_last = None
        self.prog_bits = 0  # bits of every frame from the first PROGRAM to the answer to the last one
        self.pending_bits = 0
        self.programming = set()  # stations whose last request was a PROGRAM, not answered yet
        self.marks = {}  # CCP command name -> when the host first sent it
        self.group_frames = self.group_bits = 0  # group transfer frames (docs/design.md §7)
        self.group_checks = 0  # of them, check frames (FF C0 block crc32: no image bytes)
        self.group_first = self.group_last = None
        self.repair_bytes = 0  # PROGRAM bytes sent after the first group frame

    def add(self, t, src, can_id, data, ext, rtr, dlc):
        bits = frame_bits(can_id, data, ext, rtr, dlc)
        self.frames += 1
        self.bits += bits
        self.first = self.first or t
        self.last = t
        if self.prog_first is not None:
            self.pending_bits += bits
        if src == "host" and can_id == GROUP_ID and not ext:
            self.host_frames += 1
            self.group_frames += 1
            self.group_checks += data[:2] == b"\xff\xc0"
            self.group_bits += bits
            self.group_first = self.group_first or t
            self.group_last = t
            return
        if src == "host":
            self.host_frames += 1
            sa = can_id - CRO_BASE
            cmd = data[0] if data else None
            if cmd == CCP_PROGRAM_6:
                self.program_bytes += 6
                self.repair_bytes += 6 if self.group_first else 0
            elif cmd == CCP_PROGRAM and len(data) > 2:
                self.program_bytes += min(data[2], 5)
                self.repair_bytes += min(data[2], 5) if self.group_first else 0
            if cmd in CCP_NAMES:
                self.marks.setdefault(CCP_NAMES[cmd], t)
            if cmd in (CCP_PROGRAM, CCP_PROGRAM_6):
                self.programming.add(sa)
                if self.prog_first is None:
                    self.prog_first = t
                    self.pending_bits = bits
            else:
                self.programming.discard(sa)
        elif data and data[0] == 0xFF and src in self.programming:
            # the answer to a PROGRAM closes the programming window so far
            self.programming.discard(src)
            self.prog_last = t
            self.prog_bits = self.pending_bits


class Sim:
    """canfleet-nodesim with --log-frames into a file, read when it stops: each line carries the end of
    the frame on the bus (CLOCK_MONOTONIC µs, the clock of time.monotonic()). Nothing reads the log
    while the update runs, so the benchmark takes no CPU from the simulator or the daemon."""

    def __init__(self, fleet, buses, nodes, extra=(), install=None, name="nodesim"):
        self.name = name
        # read by harness.Fleet.close(): without it the teardown skips this process and it outlives the run
        self.wrapped = False
        self.log_path = os.path.join(fleet.dir, f"{name}.log")
        self.log = open(self.log_path, "w")
        argv = [harness.BINARIES["nodesim"]]
        for b in buses:
            argv += ["--bus", f"slcan:{fleet.pty(b)}"]
        argv += ["--nodes", str(nodes), "--state", fleet.sim_state, "--fleet-key", fleet.key_path,
                 "--quiet", "--log-frames"] + list(extra)
        if install:
            argv += ["--install", fleet.image(install)]
        rfd, wfd = os.pipe()
        self.p = subprocess.Popen(argv + ["--ready-fd", str(wfd)], stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=self.log, pass_fds=(wfd,), start_new_session=True)
        os.close(wfd)
        fleet.procs.append(self)
        try:
            line = harness.read_line(rfd, 30, f"{name} ready")
        finally:
            os.close(rfd)
        harness.check(line.strip() == "ready", f"{name} said {line!r}")

    def stats(self, since=0.0):
        """Per bus, the frames that ended on the bus at or after `since` (time.monotonic() seconds)."""
        stats = {}
        with open(self.log_path, errors="replace") as f:
            for line in f:
                m = FRAME_RE.match(line)
                if not m:
                    continue
                bus, src, what, hexid, dlc, remote, data, end_us = m.groups()
                t = int(end_us) / 1e6
                if what == "dropped" or t < since:
                    continue
                payload = bytes.fromhex(data.replace(" ", ""))
                stats.setdefault(bus, BusStats()).add(t, "host" if src == "host" else int(src.split()[1]), int(hexid, 16),
                                                      payload, len(hexid) == 8, bool(remote), int(dlc))
        return {b: vars(s) for b, s in stats.items()}

    def finish(self, since=0.0):
        """The simulator's CPU seconds, then stop it and count every frame it logged."""
        cpu = proc_cpu(self.p.pid)
        self.stop()
        return cpu, self.stats(since)

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=10):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            self.p.wait(timeout)
        self.log.close()
        return self.p.returncode

    def stop(self):
        return self.kill(signal.SIGTERM)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def proc_cpu(pid):
    """utime + stime of a live process in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return None


# --- scenarios -------------------------------------------------------------------------------------

ROWS = []


def row(scenario, figure, value, note=""):
    ROWS.append((scenario, figure, value, note))
    print(f"  {scenario:<3} {figure:<46} {value:>16}  {note}", flush=True)


def ideal_s(bits):
    return bits / BITRATE


def fleet_up(fleet, buses, nodes, app_size, timing=True, v1_size=4096, sim_extra=()):
    fleet.start_bus()
    v1 = fleet.pack("1.0.0", release=1, size=v1_size, seed=1)
    v2 = fleet.pack("2.0.0", release=2, size=app_size, seed=2)
    extra = ["--bitrate", str(BITRATE)] + (["--bus-timing", "--flash-timing"] if timing else []) + list(sim_extra)
    if PLAIN and "--no-group" not in extra:
        extra += ["--no-group", "all"]
    sim = Sim(fleet, buses, nodes, extra=extra, install=v1)
    fleet.write_config(buses, nodes)
    fleet.start_daemon(timeout=60)
    drain_notify(fleet)
    return sim, v2


def drain_notify(fleet):
    """Keep reading canfleetd's NOTIFY_SOCKET as systemd would: harness.Fleet stops after READY=1, and
    once the socket's queue is full the daemon's STATUS= updates block it for good."""
    def loop():
        try:
            while True:
                fleet.notify.recv(4096)
        except OSError:  # closed by fleet.close()
            pass
    threading.Thread(target=loop, daemon=True).start()


FAILED_UPDATES = []


def timed_update(fleet, scenario, image, timeout):
    """Wall time of canfleetctl update --all; a failed update is reported, and its figures still printed."""
    t0 = time.monotonic()
    r = fleet.ctl("update", image, "--all", timeout=timeout)
    wall = time.monotonic() - t0
    if r.rc != 0:
        FAILED_UPDATES.append(scenario)
        reasons = sorted({re.sub(r"^.*? failed: \S+: ", "", l) for l in r.err.splitlines() if " failed: " in l})
        row(scenario, "UPDATE FAILED: canfleetctl exit", r.rc, "; ".join(reasons)[:200])
        print(r.out.splitlines()[-1] if r.out else "", flush=True)
    return wall


# The simulator's flash model (docs/design.md §5): what no bus can hide in an update of one node.
SECTOR_ERASE_S = 128 * 8000e-6  # 8 ms per KB, ~1 s per 128 KB sector
WORD_PROGRAM_S = 16e-6
AREA_SECTORS = 2  # B and C are two 128 KB sectors each


def flash_floor_s(payload):
    """Erase C, then in the boot copy erase B, program the payload's words and erase C again."""
    return 3 * AREA_SECTORS * SECTOR_ERASE_S + payload / 4 * WORD_PROGRAM_S


def scenario_a(fleet):
    sim, img = fleet_up(fleet, ["bus0"], 1, AREA - TRAILER)
    wall = timed_update(fleet, "a", img, 600)
    cpu, snap = sim.finish()
    st = snap["bus0"]
    ideal = ideal_s(st["bits"])
    row("a", "frames on the bus (both directions)", st["frames"])
    row("a", "bus-limited ideal, all frames (s)", f"{ideal:.2f}", f"{st['bits']} bits at {BITRATE} bit/s")
    if st["prog_last"]:
        pw = st["prog_last"] - st["prog_first"]
        pi = ideal_s(st["prog_bits"])
        row("a", "transfer wall / ideal (s)", f"{pw:.2f} / {pi:.2f}",
            f"{100 * (pw / pi - 1):+.1f}% (target 10%): first PROGRAM to the last answer")
        marks = st["marks"]
        if "CLEAR_MEMORY" in marks:
            row("a", "CLEAR_MEMORY of C, wall (s)", f"{st['prog_first'] - marks['CLEAR_MEMORY']:.2f}",
                f"flash model: {AREA_SECTORS} x {SECTOR_ERASE_S:.3f} s sector erase")
        if "DISCONNECT" in marks:
            row("a", "DISCONNECT to confirmed new version (s)", f"{st['last'] - marks['DISCONNECT']:.2f}",
                "the boot copy: erase B, copy, verify, erase C; then reconnect")
    floor = flash_floor_s(AREA)
    row("a", "update wall time (s)", f"{wall:.2f}", f"{100 * (wall / ideal - 1):+.1f}% over the bus ideal alone")
    row("a", "update wall / (bus ideal + flash floor) (s)", f"{wall:.2f} / {ideal + floor:.2f}",
        f"{100 * (wall / (ideal + floor) - 1):+.1f}%; flash floor {floor:.2f} s = 3 area erases + copy")
    row("a", "canfleet-nodesim CPU per frame, timing on (us)", f"{1e6 * cpu / max(st['frames'], 1):.1f}")


def scenario_b(fleet):
    sim, img = fleet_up(fleet, ["bus0"], 1, 40 * 1024, timing=False)
    timed_update(fleet, "b", img, 300)
    st = sim.finish()[1]["bus0"]
    row("b", "application / area (bytes)", f"{40 * 1024} / {AREA}")
    row("b", "image bytes in PROGRAM frames", st["program_bytes"],
        f"{100 * st['program_bytes'] / AREA:.1f}% of the area")
    row("b", "frames / bits on the bus", f"{st['frames']} / {st['bits']}",
        f"{st['bits'] / 8 / 1024:.1f} KiB of bus time")


def scenario_c(fleet, app_size):
    buses = [f"bus{i}" for i in range(4)]
    sim, img = fleet_up(fleet, buses, 8, app_size)
    wall = timed_update(fleet, "c", img, 1800)
    snap = sim.finish()[1]
    busiest = max(snap, key=lambda b: snap[b]["bits"])
    ideal = ideal_s(snap[busiest]["bits"])
    kb = app_size // 1024
    for b in sorted(snap):
        st = snap[b]
        note = ""
        if st["prog_last"]:
            pw, pi = st["prog_last"] - st["prog_first"], ideal_s(st["prog_bits"])
            note = f"transfer {pw:.2f} / {pi:.2f} s ideal, {100 * (pw / pi - 1):+.1f}%"
        row("c", f"{b}: frames / ideal (s)", f"{st['frames']} / {ideal_s(st['bits']):.2f}", note)
    floor = flash_floor_s(app_size)
    row("c", f"update wall time, 32 nodes, {kb} KB app (s)", f"{wall:.2f}",
        f"{100 * (wall / ideal - 1):+.1f}% over {busiest}'s ideal (target 10%)")
    row("c", f"  ... / ({busiest}'s ideal + one node's flash floor)", f"{wall:.2f} / {ideal + floor:.2f}",
        f"{100 * (wall / (ideal + floor) - 1):+.1f}%; the first erase and the last boot copy cannot overlap the bus")


def scenario_de(fleet):
    buses = [f"bus{i}" for i in range(4)]
    sim, img = fleet_up(fleet, buses, 32, 4096, timing=False)
    pid = fleet.daemon.pid
    rss_idle = proc_status(pid, "VmHWM")
    cpu0 = proc_cpu(pid)
    t0 = time.monotonic()  # start-up traffic before this is not the update's
    wall = timed_update(fleet, "d", img, 900)
    hwm = proc_status(pid, "VmHWM")
    cpu = proc_cpu(pid) - cpu0
    frames = sum(s["frames"] for s in sim.finish(since=t0)[1].values())
    row("d", "canfleetd VmHWM, 128 nodes, after start (kB)", rss_idle)
    row("d", "canfleetd VmHWM after updating all 128 (kB)", hwm, f"target < 8192 kB; update took {wall:.1f} s")
    # what the peak is made of: private memory, and the pages of shared libraries that every process
    # mapping them counts in its RSS too (libcurl and the libraries it brings, OpenSSL, libsystemd, libc)
    row("d", "  ... RssAnon / RssFile now (kB)", f"{proc_status(pid, 'RssAnon')} / {proc_status(pid, 'RssFile')}",
        "private / shared library pages")
    row("e", "canfleetd CPU per CAN frame (us)", f"{1e6 * cpu / max(frames, 1):.1f}",
        f"{cpu:.2f} s over {frames} frames")


def scenario_h(fleet):
    import hawkbit_fixture as hb
    buses = [f"bus{i}" for i in range(4)]
    fleet.start_bus()
    v1 = fleet.pack("1.0.0", release=1, size=4096, seed=1)
    v2 = fleet.pack("2.0.0", release=2, size=4096, seed=2)
    Sim(fleet, buses, 32, extra=["--bitrate", str(BITRATE)], install=v1)
    server = hb.Server(fleet)
    sleep_s, default_s = 30, 300
    server.state.set_sleep(f"00:00:{sleep_s:02d}")
    fleet.write_config(buses, 32, hawkbit=dict(server.config(fleet), poll_max_s=default_s))
    fleet.start_daemon(timeout=60)
    drain_notify(fleet)
    pid = fleet.daemon.pid
    for b in buses:
        r = fleet.ctl("scan", b, timeout=120)
        if r.rc != 0:
            raise RuntimeError(f"scan {b}: {r}")
    cids = hb.controller_ids(fleet)
    hb.wait_targets(server, cids.values(), timeout=120)
    # the first polls spread over HAWKBIT_FIRST_SPREAD_S; measure once every target polled twice
    harness.wait_until("every target polled twice",
                       lambda: all(t["polls"] >= 2 for t in server.state.targets_view().values()), 60)
    t0 = time.monotonic()
    n0 = len(server.state.log_view()["requests"])
    time.sleep(60)
    reqs = server.state.log_view()["requests"][n0:]
    window = time.monotonic() - t0
    roots = sum(1 for q in reqs if q["kind"] == "root")
    rpm = roots * 60 / window
    times = sorted(q["monotonic"] for q in reqs)
    gap = min((b - a for a, b in zip(times, times[1:])), default=0)
    row("h", f"root polls/min, 128 targets, sleep {sleep_s} s", f"{rpm:.0f}",
        f"{len(reqs)} requests in {window:.0f} s (all kinds); ideal 128 x 60 / ({sleep_s} s + jitter <= 10 %)")
    row("h", "  ... projected to the default sleep 00:05:00", f"{rpm * sleep_s / default_s:.1f}",
        "= 128 x 60 / 300 s = 25.6 without the jitter (up to 10 % less with it)")
    row("h", "smallest gap between two requests (ms)", f"{1000 * gap:.0f}", "the pacer's cap: 10 requests/s (100 ms)")
    row("h", "canfleetd RSS, 128 targets polled (kB)", proc_status(pid, "VmRSS"))
    t1 = time.monotonic()
    aids = [server.state.deployment(c, v2, filename="app-2.0.0.cfb", version="2.0.0") for c in cids.values()]
    hb.wait_status(server, aids, ("finished", "error"), timeout=600)
    wall = time.monotonic() - t1
    bad = [a for a in aids if server.state.action_view(a)["status"] != "finished"]
    gets = sum(1 for q in server.state.log_view()["requests"] if q["kind"] == "artifact")
    jobs = fleet.jobs()
    if bad:
        FAILED_UPDATES.append("h")
    row("h", "deployment to 128 targets: wall time (s)", f"{wall:.1f}",
        f"sleep {sleep_s} s; {len(aids) - len(bad)} closed/success, {gets} artifact GET(s), {len(jobs)} job(s)")
    row("h", "canfleetd RSS / VmHWM after it (kB)", f"{proc_status(pid, 'VmRSS')} / {proc_status(pid, 'VmHWM')}")
    server.stop()


BENCH_FETCH = None


def scenario_u(fleet, tries=9):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
    import httpd
    fleet.start_bus()
    v1 = fleet.pack("1.0.0", release=1, size=4096, seed=1)
    # hardware id 2 on nodes of hardware id 1: verified in full, then refused before any frame
    other = fleet.pack("2.0.0", hw_id=0x0002, release=2, size=AREA - TRAILER, seed=2)
    Sim(fleet, ["bus0"], 1, extra=["--bitrate", str(BITRATE)], install=v1)
    pki, www = os.path.join(fleet.dir, "pki"), os.path.join(fleet.dir, "www")
    httpd.make_certs(pki)
    os.makedirs(www)
    names = [f"{k}-{i}.cfb" for k in ("http", "https") for i in range(tries)] + ["paused.cfb"]
    for n in names:  # one name per job: a URL already downloaded would be answered 304 from the cache
        shutil.copy(other, os.path.join(www, n))
    size = os.path.getsize(other)
    faults = os.path.join(fleet.dir, "faults.json")
    with open(faults, "w") as fh:
        json.dump({"rules": [{"path": "/paused.cfb", "stall_after": 128 * 1024, "stall": 2}]}, fh)
    servers = {"http": httpd.make_server(www, 0, faults=faults),
               "https": httpd.make_server(www, 0, os.path.join(pki, "server.pem"), os.path.join(pki, "server.key"),
                                          faults=faults)}
    for srv in servers.values():
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    fleet.write_config(["bus0"], 1, ca_file=os.path.join(pki, "ca.pem"))
    fleet.start_daemon(timeout=60)
    drain_notify(fleet)
    harness.wait_probed(fleet)
    pid = fleet.daemon.pid
    hwm0 = proc_status(pid, "VmHWM")
    done = re.compile(r"downloaded (\S+): (\d+) bytes in ([\d.]+) ms")
    try:
        for scheme, srv in servers.items():
            ms = []
            for i in range(tries):
                url = f"{scheme}://127.0.0.1:{srv.server_address[1]}/{scheme}-{i}.cfb"
                r = fleet.ctl("update", url, "--node", "bus0:1", timeout=120)
                if r.rc != 1 or "hardware" not in r.err:
                    raise RuntimeError(f"{url}: expected the hardware id refusal: {r}")
                got = [float(m.group(3)) for m in done.finditer(fleet.daemon.output())
                       if m.group(1) == url and int(m.group(2)) == size]
                if len(got) != 1:
                    raise RuntimeError(f"{url}: no 'downloaded' line of {size} bytes in canfleetd's log")
                ms.append(got[0])
            med = sorted(ms)[len(ms) // 2]
            row("u", f"{scheme}: {size}-byte bundle downloaded (ms)", f"{med:.1f}",
                f"median of {tries} ({min(ms):.1f}..{max(ms):.1f} ms): {size / 1e3 / max(med, 0.1):.1f} MB/s, "
                f"best {size / 1e3 / max(min(ms), 0.1):.1f} MB/s")
        row("u", "canfleetd VmHWM after start / after downloads (kB)",
            f"{hwm0} / {proc_status(pid, 'VmHWM')}", f"{2 * tries} downloads and verifications, no CAN frame")
        url = f"https://127.0.0.1:{servers['https'].server_address[1]}/paused.cfb"
        p = subprocess.Popen(fleet.ctl_argv(["update", url, "--node", "bus0:1"]),
                             env=fleet.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0
        while p.poll() is None:
            peak = max(peak, proc_status(pid, "VmRSS") or 0)
            time.sleep(0.01)
        row("u", "canfleetd VmRSS during a download, max (kB)", peak,
            f"sampled every 10 ms over a {size}-byte https download paused 2 s at 128 KB; "
            f"VmHWM now {proc_status(pid, 'VmHWM')} kB")
        if BENCH_FETCH:
            big = 64 * 1024 * 1024
            with open(os.path.join(www, "big.bin"), "wb") as fh:
                fh.write(os.urandom(big))
            for scheme, srv in servers.items():
                url = f"{scheme}://127.0.0.1:{srv.server_address[1]}/big.bin"
                p = subprocess.run([BENCH_FETCH, url, os.path.join(pki, "ca.pem")], capture_output=True, text=True,
                                   timeout=300)
                m = re.search(r"bytes (\d+) seconds ([\d.]+) MB/s ([\d.]+)", p.stdout)
                if p.returncode != 0 or not m or int(m.group(1)) != big:
                    raise RuntimeError(f"bench-fetch {url}: {p.stdout} {p.stderr}")
                ref = ""
                if shutil.which("curl"):
                    c = subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", os.path.join(pki, "ca.pem"),
                                        "-w", "%{speed_download}", url], capture_output=True, text=True, timeout=300)
                    if c.returncode == 0:
                        ref = f"; curl from the same server {float(c.stdout) / 1e6:.0f} MB/s"
                row("u", f"{scheme}: 64 MB file, the fetcher alone (MB/s)", m.group(3),
                    f"{float(m.group(2)):.2f} s{ref}")
    finally:
        for srv in servers.values():
            srv.shutdown()


def scenario_s(fleet, rounds=2000):
    """No daemon: a CCP CONNECT / GET_CCP_VERSION ping-pong with 4 nodes over the SLCAN pty."""
    sim = Sim(fleet, ["bus0"], 4)
    fd = os.open(fleet.pty("bus0"), os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    buf = b""

    def xfer(frames):
        nonlocal buf
        os.write(fd, b"".join(b"t%03X8%s\r" % (cid, data.hex().upper().encode()) for cid, data in frames))
        got = 0
        deadline = time.monotonic() + 10
        while got < len(frames):
            harness.check(time.monotonic() < deadline, "the simulator stopped answering")
            if select.select([fd], [], [], 1)[0]:
                buf += os.read(fd, 4096)
                *lines, buf = buf.split(b"\r")
                got += sum(1 for line in lines if line.startswith(b"t"))

    os.write(fd, b"C\rS6\rO\r")
    xfer([(0x680 + sa, bytes([0x01, 0, sa, 0, 0, 0, 0, 0])) for sa in range(1, 5)])
    cpu0 = proc_cpu(sim.p.pid)
    for i in range(rounds):
        xfer([(0x680 + sa, bytes([0x1B, i & 0xFF, 2, 1, 0, 0, 0, 0])) for sa in range(1, 5)])
    os.close(fd)
    cpu, snap = sim.finish()
    cpu -= cpu0
    frames = sum(s["frames"] for s in snap.values()) - 8  # the CONNECTs and their answers
    row("s", "canfleet-nodesim CPU per frame, no timing (us)", f"{1e6 * cpu / max(frames, 1):.1f}",
        f"{frames} frames, --log-frames on")


def scenario_f(fleet, nodes):
    """A job of `nodes` nodes on a bus that is no longer configured, written as an older canfleetd
    wrote it; every node fails when canfleetd starts. canfleetd's only bus has no adapter."""
    import dbus_wire
    fleet.start_bus()
    img = fleet.pack("2.0.0", release=2, seed=2)
    with open(fleet.image(img), "rb") as fh:
        data = fh.read()
    sha = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(fleet.cache_dir, "images"))
    with open(os.path.join(fleet.cache_dir, "images", sha + ".img"), "wb") as fh:
        fh.write(data)
    job = {"id": 1, "state": "running", "created": 1, "finished": 0, "force": False, "cancel": False,
           "image": sha, "nodes": [{"bus": "gone0", "station": i + 1, "step": "queued", "error": "",
                                    "bytes_done": 0, "bytes_total": 16448} for i in range(nodes)]}
    os.makedirs(os.path.join(fleet.state_dir, "jobs"))
    with open(os.path.join(fleet.state_dir, "jobs", "1.json"), "w") as fh:
        json.dump(job, fh)
    fleet.write_config(["bus0"], 1)
    with open(fleet.config_path) as fh:
        conf = json.load(fh)
    conf["buses"][0]["transport"] = "slcan:" + os.path.join(fleet.dir, "no-such-tty")
    with open(fleet.config_path, "w") as fh:
        json.dump(conf, fh)
    t0 = time.monotonic()
    fleet.start_daemon(timeout=600)
    conn = dbus_wire.Conn(fleet.bus_address, timeout=900)
    worst = 0.0
    state = "running"
    while state == "running":
        t = time.monotonic()
        r = conn.call("io.canfleet.Gateway1", "/io/canfleet/Gateway1/job/1", "org.freedesktop.DBus.Properties",
                      "Get", "ss", ["io.canfleet.Gateway1.Job", "State"], timeout=900)
        worst = max(worst, time.monotonic() - t)
        harness.check(not r.error, f"Get State: {r}")
        state = r.values[0][1]
        harness.check(time.monotonic() - t0 < 900, "the job is still running after 900 s")
        time.sleep(0.02)
    wall = time.monotonic() - t0
    conn.close()
    row("f", f"{nodes} nodes failing at once: start to finished (s)", f"{wall:.2f}",
        f"{1e6 * wall / nodes:.0f} us per node; job {state}")
    row("f", f"{nodes} nodes: slowest D-Bus answer meanwhile (s)", f"{worst:.3f}")


def scenario_g1(fleet, plain):
    """8 like nodes on one bus, full images; plain: every node refuses GROUP_JOIN (plain CCP)."""
    sim, img = fleet_up(fleet, ["bus0"], 8, G1_APP, sim_extra=["--no-group", "all"] if plain else [])
    wall = timed_update(fleet, "g1", img, 1800)
    st = sim.finish()[1]["bus0"]
    floor = flash_floor_s(AREA)
    how = "plain CCP" if plain else "group"
    G1[how] = wall
    if plain:
        row("g1", "plain CCP: update wall / bus ideal (s)", f"{wall:.2f} / {ideal_s(st['bits']):.2f}",
            f"{wall / ideal_s(st['bits']):.2f}x, all frames")
        if "group" in G1:
            row("g1", "speed-up of the group transfer", f"{wall / G1['group']:.1f}x", "target >= 5x")
        return
    pass_ideal = ideal_s(st["group_bits"])
    row("g1", "group frames (check frames) / pass ideal (s)",
        f"{st['group_frames']} ({st['group_checks']}) / {pass_ideal:.2f}",
        f"pass wall {st['group_last'] - st['group_first']:.2f} s" if st["group_first"] else "no group frame!")
    row("g1", "unicast repair bytes", st["repair_bytes"])
    row("g1", "group: update wall / (pass ideal + flash floor)", f"{wall:.2f} / {pass_ideal + floor:.2f}",
        f"{wall / (pass_ideal + floor):.2f} (target <= 1.3); flash floor {floor:.2f} s")


G1 = {}
G1_APP = AREA - TRAILER
PLAIN = False


def scenario_g4(fleet):
    sim, img = fleet_up(fleet, ["bus0"], 8, AREA - TRAILER, sim_extra=["--drop", "0.01", "--seed", "4"])
    wall = timed_update(fleet, "g4", img, 1800)
    st = sim.finish()[1]["bus0"]
    row("g4", "repair bytes / image bytes, 1 % loss", f"{st['repair_bytes']} / {AREA}",
        f"{st['repair_bytes'] / AREA:.3f} (8 nodes)")
    row("g4", "update wall, 1 % loss (s)", f"{wall:.2f}",
        f"clean: {G1['group']:.2f} s, {wall / G1['group']:.2f}x" if "group" in G1 else "clean: g1's group figure")


def scenario_g5(fleet):
    sim, img = fleet_up(fleet, ["bus0"], 8, AREA - TRAILER)
    r = fleet.ctl("update", img, "--all", "--no-wait")
    harness.check(r.rc == 0, f"update --no-wait: {r}")
    job_id = harness.job_id_of(r)

    def half():
        j = fleet.job(job_id)
        return all(n["step"] == "programming" and n["bytes_done"] * 2 >= n["bytes_total"] for n in j["nodes"])

    harness.wait_until("the group pass at half", half, timeout=300, interval=0.1)
    fleet.daemon.kill(signal.SIGKILL)
    t_restart = time.monotonic()
    fleet.start_daemon(timeout=60)
    drain_notify(fleet)
    r = fleet.ctl("watch", job_id, timeout=900)
    if r.rc != 0:
        FAILED_UPDATES.append("g5")
    wall = time.monotonic() - t_restart
    st = sim.finish(since=t_restart)[1]["bus0"]
    clears = {}
    with open(sim.log_path, errors="replace") as f:
        for line in f:
            m = FRAME_RE.match(line)
            if m and m.group(2) == "host" and m.group(3) != "dropped":
                cid, data = int(m.group(4), 16), m.group(7).split()
                if CRO_BASE < cid <= CRO_BASE + 63 and data and data[0] == "10":
                    clears[cid - CRO_BASE] = clears.get(cid - CRO_BASE, 0) + 1
    # image bytes: 6 per group data frame, those of PROGRAM/PROGRAM_6; a block's check frame carries none
    sent = (st["group_frames"] - st["group_checks"]) * 6 + st["program_bytes"]
    row("g5", "bytes sent after the restart / image bytes", f"{sent} / {AREA}",
        f"{sent / AREA:.2f} (target <= 0.55); restart to done {wall:.2f} s")
    row("g5", "  ... group data / check frames after it", f"{st['group_frames'] - st['group_checks']} / "
        f"{st['group_checks']}", f"{st['program_bytes']} bytes by PROGRAM/PROGRAM_6")
    row("g5", "CLEAR_MEMORY per node over the whole job", ",".join(str(clears.get(sa, 0)) for sa in range(1, 9)),
        "1 each: nothing erased again")


def scenario_g2(fleet, plain):
    """One node behind an adapter with 1 ms latency each way."""
    extra = ["--adapter-latency-us", "1000"] + (["--no-group", "all"] if plain else [])
    sim, img = fleet_up(fleet, ["bus0"], 1, AREA - TRAILER, sim_extra=extra)
    wall = timed_update(fleet, "g2", img, 1800)
    st = sim.finish()[1]["bus0"]
    if plain:
        if st["prog_last"]:
            pw, pi = st["prog_last"] - st["prog_first"], ideal_s(st["prog_bits"])
            row("g2", "plain CCP: transfer wall / ideal (s)", f"{pw:.2f} / {pi:.2f}", f"{pw / pi:.2f}")
        row("g2", "plain CCP: update wall (s)", f"{wall:.2f}")
        return
    if st["group_first"]:
        pw, pi = st["group_last"] - st["group_first"], ideal_s(st["group_bits"])
        row("g2", "group: transfer wall / ideal (s)", f"{pw:.2f} / {pi:.2f}",
            f"{pw / pi:.2f} (target <= 1.2): first to last group frame")
    row("g2", "group: update wall (s)", f"{wall:.2f}", f"repair bytes {st['repair_bytes']}")


def scenario_k(fleet, layout):
    """The two node kinds (docs/design.md §2 and §9), one node each, the full area, bus and flash timing:
    from DISCONNECT(end) to canfleetd's confirmation that the node runs the new version. A single-bank F4
    copies C to B in its bootloader first; a dual-bank F7 validates the bank it received, flips its boot
    bank and boots it on trial, and its (simulated) application confirms 500 ms after it started."""
    key = "k4" if layout == "f4" else "k7"
    fleet.start_bus()
    extra = ["--bitrate", str(BITRATE), "--bus-timing", "--flash-timing"]
    if layout == "f4":
        v1 = fleet.pack("1.0.0", release=1, size=4096, seed=1)
        v2 = fleet.pack("2.0.0", release=2, size=AREA - TRAILER, seed=2)
    else:
        v1 = dual_fixture.pack_dual(fleet, "1.0.0", release=1, size=4096, seed=1)
        v2 = dual_fixture.pack_dual(fleet, "2.0.0", release=2, size=AREA - TRAILER, seed=2)
        extra += dual_fixture.sim_extra()
    sim = Sim(fleet, ["bus0"], 1, extra=extra, install=v1)
    fleet.write_config(["bus0"], 1)
    fleet.start_daemon(timeout=60)
    drain_notify(fleet)
    harness.wait_probed(fleet, timeout=60)
    t0 = time.monotonic()
    wall = timed_update(fleet, key, v2, 600)
    st = sim.finish(since=t0)[1]["bus0"]
    marks = st["marks"]
    what = ("single-bank F4: boot copy C to B (erase B, copy, verify, erase C), reconnect" if layout == "f4" else
            "dual-bank F7: validate, flip BOOT_ADD0, boot on trial, app confirms after 500 ms")
    if "DISCONNECT" in marks:
        row(key, "DISCONNECT to confirmed new version (s)", f"{st['last'] - marks['DISCONNECT']:.2f}", what)
    row(key, "update wall time (s)", f"{wall:.2f}", f"{layout}, one node, {AREA - TRAILER} byte application")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--canfleetctl", required=True)
    ap.add_argument("--canfleetd", required=True)
    ap.add_argument("--nodesim", required=True)
    ap.add_argument("--only", default="abcdesfgrkhu")
    ap.add_argument("--plain", action="store_true", help="a, b, c, d/e with plain CCP (nodes refuse GROUP_JOIN)")
    ap.add_argument("--g1-app-size", type=int, default=AREA - TRAILER,
                    help="application size for scenario g1 (default: the full area)")
    ap.add_argument("--f-nodes", type=int, action="append", help="job sizes for scenario f (repeatable)")
    ap.add_argument("--c-app-size", type=int, action="append",
                    help="application size for scenario c (repeatable; default: the full area, and 40 KB)")
    ap.add_argument("--bench-fetch", help="tests/bench/bench-fetch: scenario u's 64 MB downloads")
    a = ap.parse_args()
    harness.BINARIES.update(canfleetctl=a.canfleetctl, canfleetd=a.canfleetd, nodesim=a.nodesim)
    global PLAIN, G1_APP, BENCH_FETCH
    PLAIN = a.plain
    BENCH_FETCH = a.bench_fetch
    G1_APP = a.g1_app_size
    _self_check()
    runs = {"s": [scenario_s], "a": [scenario_a], "b": [scenario_b],
            "c": [lambda f, size=size: scenario_c(f, size) for size in (a.c_app_size or [AREA - TRAILER, 40 * 1024])],
            "d": [scenario_de],
            "g": [lambda f: scenario_g1(f, False), lambda f: scenario_g1(f, True),
                  lambda f: scenario_g2(f, False), lambda f: scenario_g2(f, True)],
            "j": [lambda f: scenario_g1(f, False)],
            "r": [scenario_g4, scenario_g5],
            "5": [scenario_g5],
            "k": [lambda f: scenario_k(f, "f4"), lambda f: scenario_k(f, "f7")],
            "f": [lambda f, n=n: scenario_f(f, n) for n in (a.f_nodes or [1000, 5000, 20000])],
            "h": [scenario_h],
            "u": [scenario_u]}
    print(f"  {'':<3} {'figure':<46} {'value':>16}  note")
    failed = []
    for key in "sabcdfgjr5khu":
        if key not in a.only and not (key == "d" and "e" in a.only):
            continue
        for run in runs[key]:
            fleet = harness.Fleet(f"bench-{key}")
            ok = False
            try:
                run(fleet)
                ok = True
            except Exception as e:  # a scenario that cannot run is reported, the others still run
                failed.append(key)
                print(f"  {key:<3} could not run: {e}", flush=True)
                fleet.dump_logs(sys.stdout)
            finally:
                fleet.close()
                if ok:
                    shutil.rmtree(fleet.dir, ignore_errors=True)
    print("\nsummary")
    for s, fig, val, note in ROWS:
        print(f"  {s:<3} {fig:<46} {str(val):>16}  {note}")
    if failed:
        print(f"  scenarios that could not run: {' '.join(failed)}")
    if FAILED_UPDATES:
        print(f"  scenarios whose update failed: {' '.join(FAILED_UPDATES)}")
    return 1 if failed or FAILED_UPDATES else 0


if __name__ == "__main__":
    sys.exit(main())
