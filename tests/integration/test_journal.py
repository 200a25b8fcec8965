#!/usr/bin/python3
# Integration (issue 13): the journal entries of a real canfleetd, received in the journal's native
# protocol on a socket of the test's ($CANFLEETD_JOURNAL_SOCKET, daemon/log.h: the same datagrams the daemon
# sends to /run/systemd/journal/socket under systemd):
#  - job started / job finished / node updated / node failed carry their MESSAGE_ID (systemd/canfleet.catalog);
#  - CODE_FILE/CODE_LINE/CODE_FUNC are the caller's, never log.c's;
#  - the job-end entry has the counts and the duration, as fields and in its message;
#  - a bus error (an adapter that is not there) carries BUS=;
#  - libsocketcan's own complaints on stderr (this kernel has no CAN: 'Cannot find device "can7"') are
#    caught and logged as the bus's, once, with BUS= and a level; nothing of them reaches stderr;
#  - outside the journal the lines carry a level: "canfleetd: info: ..." on a plain stderr, "<3>..." when
#    stderr is systemd's stream ($JOURNAL_STREAM) and the journal cannot be reached.
import os
import re
import socket
import struct
import subprocess
import sys
import threading

import harness
from harness import check, wait_until

JOB_STARTED = "c8b976d634c34f6a85bad328cbe1b53b"
JOB_FINISHED = "a73fb82976b7419fbaedc289d867dbca"
NODE_UPDATED = "14237a1a82cc42b6a2c21b10b3b3a485"
NODE_FAILED = "6a3a10566d0a482780dbda73e5d4e9ef"


def parse_entry(data):
    """One native-protocol datagram: KEY=VALUE lines, or KEY, newline, 64-bit LE length, value, newline."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack_from("<Q", data, nl + 1)
            v = data[nl + 9:nl + 9 + n]
            check(data[nl + 9 + n:nl + 10 + n] == b"\n", f"binary field {k!r} not ended by a newline")
            i = nl + 10 + n
        check(re.fullmatch(rb"[A-Z0-9_]+", k) is not None and not k.startswith(b"_"),
              f"field name {k!r} is not one journald accepts from a client")
        fields[k.decode()] = v.decode()
    return fields


class Journal:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.entries, self.lock = [], threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            e = parse_entry(data)
            with self.lock:
                self.entries.append(e)

    def find(self, **want):
        with self.lock:
            return [e for e in self.entries if all(e.get(k) == v for k, v in want.items())]


def journal(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    f.start_sim(["bus0"], 3, extra=["--silent", "3"], install=img1)
    # bus9's adapter does not exist: a bus error
    conf = f.write_config(["bus0", "bus9"], 3, node_lost_timeout_s=2)
    conf["buses"][1]["nodes"] = [1]
    # a SocketCAN bus: libsocketcan is asked about can7 (its bitrate, for status) and complains on stderr
    conf["buses"].append({"name": "can7", "transport": "socketcan:can7", "bitrate": 500000, "nodes": [1]})
    with open(f.config_path, "w") as fh:
        harness.json.dump(conf, fh)
    j = Journal(os.path.join(f.dir, "journal.sock"))
    os.environ["CANFLEETD_JOURNAL_SOCKET"] = os.path.join(f.dir, "journal.sock")
    f.start_daemon()
    del os.environ["CANFLEETD_JOURNAL_SOCKET"]

    img2 = f.pack("2.0.0", release=2, seed=2)
    r = f.ctl("update", img2, "--node", "bus0:1", "--node", "bus0:2", "--node", "bus0:3")
    check(r.rc == 1, f"bus0:3 is silent: the update must end failed: {r}")
    job = f.jobs()[0]["id"]
    wait_until("the job-end entry", lambda: j.find(MESSAGE_ID=JOB_FINISHED), timeout=30)

    every = j.find()
    check(all(e.get("CODE_FILE") and not e["CODE_FILE"].endswith("log.c") and e.get("CODE_FUNC")
              and e.get("CODE_LINE", "").isdigit() for e in every),
          f"every entry names its caller, not log.c: {[e for e in every if e.get('CODE_FILE', '').endswith('log.c')][:3]}")
    check(all(e.get("SYSLOG_IDENTIFIER") == "canfleetd" and e.get("PRIORITY", "").isdigit() for e in every),
          "every entry has SYSLOG_IDENTIFIER=canfleetd and a PRIORITY")

    started = j.find(MESSAGE_ID=JOB_STARTED)
    check(len(started) == 1 and started[0]["CODE_FUNC"] == "manager_start_update"
          and started[0]["CODE_FILE"].endswith("manager.c") and started[0]["JOB"] == str(job)
          and started[0]["NODES"] == "3", f"job started entry: {started}")

    end = j.find(MESSAGE_ID=JOB_FINISHED)
    check(len(end) == 1, f"one job-end entry: {end}")
    e = end[0]
    check(e["CODE_FUNC"] == "job_finish" and e["JOB"] == str(job) and e["JOB_STATE"] == "failed"
          and e["NODES"] == "3" and e["DONE"] == "2" and e["FAILED"] == "1" and e["CANCELLED"] == "0"
          and e["DURATION_S"].isdigit() and e["PRIORITY"] == "4", f"job-end fields: {e}")
    check(re.search(r"job \d+: failed: 2 of 3 node\(s\) updated, 1 failed, 0 cancelled, in \d+ s", e["MESSAGE"]),
          f"job-end message: {e['MESSAGE']!r}")

    updated = j.find(MESSAGE_ID=NODE_UPDATED)
    check(sorted(x["NODE"] for x in updated) == ["bus0:1", "bus0:2"]
          and all(x["BUS"] == "bus0" and x["JOB"] == str(job) and x["CODE_FILE"].endswith("flash-job.c")
                  for x in updated), f"node updated entries: {updated}")
    failed = j.find(MESSAGE_ID=NODE_FAILED)
    check(len(failed) == 1 and failed[0]["NODE"] == "bus0:3" and failed[0]["BUS"] == "bus0"
          and failed[0]["PRIORITY"] == "3" and failed[0]["CODE_FUNC"] == "fail", f"node failed entries: {failed}")

    bus_err = [x for x in j.find(BUS="bus9") if "cannot open" in x["MESSAGE"]]
    check(bus_err and bus_err[0]["PRIORITY"] == "4" and bus_err[0].get("ERRNO") == "2"
          and bus_err[0]["CODE_FILE"].endswith("slcan.c"), f"bus error entry with BUS=bus9: {bus_err}")
    for _ in range(2):
        check(f.ctl("status").rc == 0, "status")
    lib = 'socketcan:can7: libsocketcan can_get_bittiming: Cannot find device "can7"'
    wait_until("libsocketcan's complaint in the journal", lambda: j.find(MESSAGE=lib), timeout=10)
    caught = j.find(MESSAGE=lib)
    check(len(caught) == 1 and caught[0]["BUS"] == "can7" and caught[0]["PRIORITY"] == "6"
          and caught[0]["CODE_FILE"].endswith("socketcan.c"), f"libsocketcan's words, logged once as can7's: {caught}")
    out = f.daemon.output().split("\n", 1)[1]
    check("job" not in out and "Cannot" not in out, f"with the journal reachable nothing goes to stderr: {out[-500:]}")

    # without a journal: every line of canfleetd's stderr has its level, libsocketcan's too
    f.daemon.stop()
    f.start_daemon()
    check(f.ctl("status").rc == 0, "status")
    wait_until("libsocketcan's complaint on stderr", lambda: lib in f.daemon.output().rsplit("### ", 1)[1],
               timeout=10)
    lines = f.daemon.output().rsplit("### ", 1)[1].splitlines()[1:]
    check(lines and all(re.match(r"canfleetd: (debug|info|notice|warning|error|critical): ", l) for l in lines),
          f"a stderr line without canfleetd's level: {[l for l in lines if not l.startswith('canfleetd: ')]}")
    check(f"canfleetd: info: {lib}" in lines, f"libsocketcan's complaint with a level: {lines}")

    # outside the journal: a level on every line
    bad = os.path.join(f.dir, "bad.conf")
    with open(bad, "w") as fh:
        fh.write("{}\n")
    env = {k: v for k, v in f.env().items() if k not in ("JOURNAL_STREAM", "CANFLEETD_JOURNAL_SOCKET")}
    r = subprocess.run([harness.BINARIES["canfleetd"], "--check", "--config", bad], env=env, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 1 and r.stderr.startswith(f"canfleetd: error: {bad}: "),
          f"on a plain stderr the line says its level: {r.stderr!r}")
    err_path = os.path.join(f.dir, "stream")
    with open(err_path, "w") as err:
        st = os.fstat(err.fileno())
        env2 = dict(env, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
                    CANFLEETD_JOURNAL_SOCKET=os.path.join(f.dir, "no-journal.sock"))
        rc = subprocess.run([harness.BINARIES["canfleetd"], "--check", "--config", bad], env=env2, stderr=err,
                            timeout=30).returncode
    text = open(err_path).read()
    check(rc == 1 and text.startswith(f"<3>{bad}: "), f"on systemd's stream the line starts with <3>: {text!r}")


if __name__ == "__main__":
    sys.exit(harness.main(journal))
