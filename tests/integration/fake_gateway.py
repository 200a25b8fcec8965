#!/usr/bin/python3
# A scripted stand-in for canfleetd on a private bus, so canfleetctl's own behaviour can be tested exactly.
"""
  fake_gateway.py ADDRESS SCENARIO READY_FD

Owns io.canfleet.Gateway1 and serves the Manager, three nodes on bus0 and the jobs it starts, with
the properties and signals of daemon/io.canfleet.Gateway1.xml. A job walks its nodes through the
steps on a timer of its own (no CAN behind it). Scenarios:
  normal      every node goes through every step and is done
  fail        bus0:2 stops answering while programming: failed with an error
  instant     the whole job runs and Completed is emitted *before* StartUpdate's reply
              (a client waiting for Completed after the reply would hang)
  invalidate  Progress is announced as invalidated, not sent: the client must read it again
  slow        like normal, ten times slower (for cancel)
  vanish      the fake exits half-way through the job (canfleetd crashing)
  hwmismatch  StartUpdate answers io.canfleet.Gateway1.Error.HardwareMismatch
  denied      StartUpdate/Cancel/Scan answer org.freedesktop.DBus.Error.AccessDenied
"""

import os
import select
import sys
import time

import dbus_wire

NAME = "io.canfleet.Gateway1"
ROOT = "/io/canfleet/Gateway1"
MGR, NODE, JOB = NAME + ".Manager", NAME + ".Node", NAME + ".Job"
PROPS = "org.freedesktop.DBus.Properties"
STEPS_BEFORE = ["queued", "connecting", "unlocking", "erasing"]
STEPS_AFTER = ["verifying", "rebooting", "confirming", "done"]
TOTAL = 40 * 1024


class Fake:
    def __init__(self, conn, scenario):
        self.conn, self.scenario = conn, scenario
        self.nodes = {f"bus0:{sa}": {"path": f"{ROOT}/node/bus0_{sa}", "sa": sa, "version": "1.0.0",
                                     "state": "online", "error": ""} for sa in (1, 2, 3)}
        self.jobs = {}
        self.timers = []
        self.tick = 0.1 if scenario == "slow" else 0.01

    # --- objects ---
    def manager_props(self):
        return {"Version": ("s", "0.0.0-fake"),
                "Buses": ("a(sssus)", [("bus0", "slcan:/dev/fake", "up", 500000, "")]),
                "Nodes": ("ao", [n["path"] for n in self.nodes.values()]),
                "Jobs": ("ao", [j["path"] for j in self.jobs.values()])}

    def node_props(self, name):
        n = self.nodes[name]
        return {"Bus": ("s", "bus0"), "Station": ("q", n["sa"]), "CroId": ("u", 0x680 + n["sa"]),
                "DtoId": ("u", 0x6C0 + n["sa"]), "HardwareId": ("q", 1), "Uid": ("s", f"{n['sa']:024x}"),
                "BootloaderVersion": ("q", 1), "Version": ("s", n["version"]), "Release": ("u", 1),
                "Mode": ("s", "application"), "State": ("s", n["state"]), "LastError": ("s", n["error"]),
                "LastSeen": ("t", 1700000000000000)}

    def progress(self, job):
        return [(self.nodes[p["node"]]["path"], p["node"], p["step"], p["error"], p["done"], TOTAL)
                for p in job["nodes"]]

    def job_props(self, job):
        return {"Id": ("u", job["id"]), "State": ("s", job["state"]), "ImageVersion": ("s", "2.0.0"),
                "ImageHardwareId": ("q", 1), "ImageRelease": ("u", 2), "ImageSha256": ("s", "ab" * 32),
                "Progress": ("a(ossstt)", self.progress(job)), "Created": ("t", job["created"]),
                "Finished": ("t", job["finished"])}

    def changed(self, job, names):
        props = self.job_props(job)
        if self.scenario == "invalidate" and names == ["Progress"]:
            self.conn.emit(job["path"], PROPS, "PropertiesChanged", "sa{sv}as", [JOB, {}, ["Progress"]])
        else:
            self.conn.emit(job["path"], PROPS, "PropertiesChanged", "sa{sv}as",
                           [JOB, {k: props[k] for k in names}, []])

    # --- the job's life ---
    def advance(self, job):
        """One step of every unfinished node; True while the job runs."""
        if job["state"] != "running":
            return False
        for p in job["nodes"]:
            if p["step"] in ("done", "failed", "cancelled"):
                continue
            if p["step"] == "programming":
                if self.scenario == "vanish" and p["done"] >= TOTAL // 2:
                    sys.exit(0)
                if self.scenario == "fail" and p["node"] == "bus0:2" and p["done"] >= TOTAL * 4 // 10:
                    p["step"], p["error"] = "failed", "node did not answer PROGRAM_6 (3 tries)"
                    self.nodes["bus0:2"]["state"], self.nodes["bus0:2"]["error"] = "failed", p["error"]
                    continue
                p["done"] = min(TOTAL, p["done"] + TOTAL // 20)
                if p["done"] == TOTAL:
                    p["step"] = STEPS_AFTER[0]
            elif p["step"] in STEPS_BEFORE:
                i = STEPS_BEFORE.index(p["step"])
                p["step"] = STEPS_BEFORE[i + 1] if i + 1 < len(STEPS_BEFORE) else "programming"
            else:
                p["step"] = STEPS_AFTER[STEPS_AFTER.index(p["step"]) + 1]
                if p["step"] == "done":
                    self.nodes[p["node"]]["version"] = "2.0.0"
        self.changed(job, ["Progress"])
        steps = [p["step"] for p in job["nodes"]]
        if all(s in ("done", "failed") for s in steps):
            self.finish(job, "done" if all(s == "done" for s in steps) else "failed")
            return False
        return True

    def finish(self, job, state):
        job["state"], job["finished"] = state, int(time.time() * 1e6)
        self.changed(job, ["State", "Finished", "Progress"])
        self.conn.emit(job["path"], JOB, "Completed", "s", [state])

    def schedule(self, job):
        def step():
            if self.advance(job):
                self.timers.append((time.monotonic() + self.tick, step))
        self.timers.append((time.monotonic() + self.tick, step))

    # --- methods ---
    def handle(self, m):
        c = self.conn
        if m.kind != 1:
            return
        if m.iface == PROPS and m.member == "GetAll":
            if m.path == ROOT:
                return c.reply(m, "a{sv}", [self.manager_props()])
            for name, n in self.nodes.items():
                if n["path"] == m.path:
                    return c.reply(m, "a{sv}", [self.node_props(name)])
            for j in self.jobs.values():
                if j["path"] == m.path:
                    return c.reply(m, "a{sv}", [self.job_props(j)])
            return c.reply_error(m, "org.freedesktop.DBus.Error.UnknownObject", f"Unknown object '{m.path}'.")
        if self.scenario == "denied" and m.member in ("StartUpdate", "Cancel", "Scan"):
            return c.reply_error(m, "org.freedesktop.DBus.Error.AccessDenied",
                                 "changing the fleet needs root or group canfleet")
        if m.path == ROOT and m.iface == MGR and m.member == "StartUpdate":
            for fd in m.fds:
                size = os.fstat(fd).st_size
                os.close(fd)
            if len(m.fds) != 1 or size == 0:
                return c.reply_error(m, NAME + ".Error.InvalidImage", "no image")
            if self.scenario == "hwmismatch":
                return c.reply_error(m, NAME + ".Error.HardwareMismatch",
                                     "bus0:1 has hardware id 0x0001, the image is for 0x0002")
            names = list(self.nodes) if m.values[2].get("all", ("b", False))[1] else m.values[1]
            jid = len(self.jobs) + 1
            job = {"id": jid, "path": f"{ROOT}/job/{jid}", "state": "running", "created": int(time.time() * 1e6),
                   "finished": 0, "nodes": [{"node": n, "step": "queued", "error": "", "done": 0} for n in names]}
            self.jobs[jid] = job
            if self.scenario == "instant":
                while self.advance(job):
                    pass
            else:
                self.schedule(job)
            return c.reply(m, "o", [job["path"]])
        if m.iface == JOB and m.member == "Cancel":
            for j in self.jobs.values():
                if j["path"] == m.path:
                    if j["state"] != "running":
                        return c.reply_error(m, NAME + ".Error.NotCancellable", "the job is finished")
                    for p in j["nodes"]:
                        if p["step"] not in ("done", "failed"):
                            p["step"] = "cancelled"
                    c.reply(m)
                    return self.finish(j, "cancelled")
            return c.reply_error(m, "org.freedesktop.DBus.Error.UnknownObject", f"Unknown object '{m.path}'.")
        c.reply_error(m, "org.freedesktop.DBus.Error.UnknownMethod", f"no method {m.member} here")

    def run(self):
        while True:
            now = time.monotonic()
            self.timers.sort(key=lambda t: t[0])
            while self.timers and self.timers[0][0] <= now:
                _, fn = self.timers.pop(0)
                fn()
            timeout = max(0, self.timers[0][0] - time.monotonic()) if self.timers else None
            if not self.conn.pending and not self.conn.buf:
                rl, _, _ = select.select([self.conn], [], [], timeout)
                if not rl:
                    continue
            self.handle(self.conn.recv())


def main():
    address, scenario, ready_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conn = dbus_wire.Conn(address)
    conn.request_name(NAME)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    Fake(conn, scenario).run()


if __name__ == "__main__":
    main()
