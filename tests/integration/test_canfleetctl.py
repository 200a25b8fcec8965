#!/usr/bin/python3
# Integration: canfleetctl's contract with scripts: --json that parses, exit codes 0/2/3/4/5, progress output.
import os
import re
import sys

import harness
from harness import check

BUSES = ["bus0", "bus1"]
NODE_FIELDS = {"node", "path", "bus", "station", "state", "mode", "version", "release", "hw_id", "uid",
               "bootloader_version", "cro_id", "dto_id", "last_error", "last_seen_us", "configured", "running_sha256",
               "last_update_result", "last_update_job", "last_update_time_us", "last_update_status",
               "bank", "trial",  # bank, trial: null for these single-bank nodes
               "protocol", "identity",  # protocol and identity: serial nodes, docs/design.md §8
               "version_source"}
JOB_FIELDS = {"schema", "id", "path", "state", "image", "created_us", "finished_us", "started_us", "skipped",
              "hawkbit_actions", "bytes_done", "bytes_total", "nodes"}
JOB_NODE_FIELDS = {"node", "path", "step", "error", "bytes_done", "bytes_total"}


def canfleetctl(f):
    ctl = f.ctl
    # no bus at all, then a bus without canfleetd: exit 3 with the hint
    for what in ("no bus", "no daemon"):
        if what == "no daemon":
            f.start_bus()
        for args in (["status"], ["nodes", "--json"], ["jobs"], ["watch", "1"]):
            r = ctl(*args)
            check(r.rc == 3, f"{what}: canfleetctl {' '.join(args)} should exit 3: {r}")
            check("systemctl status canfleetd" in r.err, f"{what}: no hint how to check: {r}")
            if "--json" in args:
                check(r.json()["error"]["kind"] == "unreachable", f"{what}: no JSON error on stdout: {r}")
            else:
                check(r.out == "", f"{what}: printed on stdout: {r}")

    # usage errors: exit 2, before any D-Bus traffic matters
    img_missing = os.path.join(f.dir, "missing.img")
    for args in (["update"], ["update", "x.img"], ["update", "x.img", "--all", "--node", "bus0:1"],
                 ["update", "x.img", "--node", "bus0"], ["update", img_missing, "--all"], ["nodes", "extra"],
                 ["nodes", "--bogus"], ["scan"], ["watch", "zero"], ["watch", "0"], ["cancel", "-1"],
                 ["jobs", "--no-wait"], ["status", "--force"]):
        r = ctl(*args)
        check(r.rc == 2, f"canfleetctl {' '.join(args)} should be a usage error (2): {r}")
        check(r.err, f"canfleetctl {' '.join(args)} said nothing: {r}")
    for cmd in ("status", "nodes", "scan", "update", "jobs", "watch", "cancel"):
        r = ctl(cmd, "--help")
        check(r.rc == 0 and f"canfleetctl {cmd}" in r.out and "Example" in r.out, f"{cmd} --help: {r}")

    img1 = f.pack("1.0.0", release=1)
    f.start_sim(BUSES, 2, install=img1)
    f.write_config(BUSES, 2)
    f.start_daemon()

    r = ctl("status", "--json")
    check(r.rc == 0, f"status --json: {r}")
    st = r.json()
    check(st["schema"] == 1 and st["version"] and [b["name"] for b in st["buses"]] == BUSES, f"status --json: {st}")
    for b in st["buses"]:
        check(set(b) == {"name", "transport", "link", "bitrate", "error"} and b["bitrate"] == 500000
              and b["error"] is None, f"bus {b}")
        check(b["transport"] == f"slcan:{f.pty(b['name'])}", f"bus transport {b}")
    check(st["nodes"]["total"] == 4 and sum(st["nodes"]["by_state"].values()) == 4, f"status nodes {st['nodes']}")
    check(st["jobs"] == {"total": 0, "running": 0} and st["running_jobs"] == [], f"status jobs {st}")
    r = ctl("status")
    check(r.rc == 0 and "bus0" in r.out and "nodes: 4" in r.out, f"status: {r}")

    r = ctl("scan", "bus1", "--json")
    check(r.rc == 0, f"scan: {r}")
    sc = r.json()
    check(sc["bus"] == "bus1" and [n["node"] for n in sc["nodes"]] == ["bus1:1", "bus1:2"], f"scan --json {sc}")
    r = ctl("nodes", "--json")
    check(r.rc == 0, f"nodes --json: {r}")
    nodes = r.json()["nodes"]
    check([n["node"] for n in nodes] == harness.all_nodes(BUSES, 2), f"nodes --json order: {nodes}")
    for n in nodes:
        check(set(n) == NODE_FIELDS, f"node fields {sorted(n)}")
    scanned = {n["node"]: n for n in nodes if n["bus"] == "bus1"}
    for n in scanned.values():
        check(n["version"] == "1.0.0" and n["hw_id"] == 1 and len(n["uid"]) >= 12, f"scanned node {n}")
        check(n["cro_id"] == 0x680 + n["station"] and n["dto_id"] == 0x6C0 + n["station"], f"ids {n}")
    r = ctl("nodes")
    check(r.rc == 0 and r.out.splitlines()[0].split()[:3] == ["NODE", "STATE", "MODE"], f"nodes: {r}")
    check(len(r.out.splitlines()) == 5, f"nodes table: {r}")

    # refusals: exit 5 with canfleetd's message
    junk = os.path.join(f.dir, "junk.img")
    with open(junk, "wb") as out:
        out.write(b"\x00" * 1000)
    r = ctl("update", junk, "--all")
    check(r.rc == 5 and r.err, f"update with a junk image should be refused (5): {r}")
    r = ctl("scan", "bus9")
    check(r.rc == 5 and "bus9" in r.err, f"scan of an unknown bus should be refused (5): {r}")
    r = ctl("update", img1, "--node", "bus9:1")
    check(r.rc == 5 and "bus9" in r.err, f"update of an unknown bus's node should be refused (5): {r}")

    # an update, piped: plain lines, not a flood
    img2 = f.pack("2.0.0", release=2, seed=2, size=64 * 1024)
    r = ctl("update", img2, "--node", "bus0:1", "--node", "bus1:2")
    check(r.rc == 0, f"update: {r}")
    check("\x1b[" not in r.out, f"ANSI escapes when piped: {r.out!r}")
    lines = r.out.splitlines()
    prog = [l for l in lines if l.startswith("bus0:1: programming")]
    check(len(prog) <= 12, f"bus0:1 programming lines should be at most one per tenth: {prog}")
    for node in ("bus0:1", "bus1:2"):
        check(any(l.startswith(f"{node}: done") for l in lines), f"no line saying {node} is done: {r.out}")
    check(len(lines) <= 2 * (11 + 12) + 3, f"too many progress lines ({len(lines)}):\n{r.out}")
    check(any(re.match(r"job \d+ done: 2 updated", l) for l in lines), f"summary: {r.out}")

    r = ctl("jobs", "--json")
    check(r.rc == 0, f"jobs --json: {r}")
    jobs = r.json()["jobs"]
    check(len(jobs) == 1 and set(jobs[0]) | {"schema"} == JOB_FIELDS, f"jobs --json: {jobs}")
    check(jobs[0]["hawkbit_actions"] == [], f"a local job has no hawkBit actions: {jobs[0]}")
    job = jobs[0]
    check(set(job["image"]) == {"version", "hw_id", "release", "sha256", "target"} and job["image"]["target"] == "ccp"
          and job["image"]["version"] == "2.0.0"
          and job["image"]["release"] == 2 and len(job["image"]["sha256"]) == 64, f"job image {job['image']}")
    check(job["finished_us"] >= job["created_us"] > 0, f"job times {job}")
    for n in job["nodes"]:
        check(set(n) == JOB_NODE_FIELDS and n["step"] == "done", f"job node {n}")
    check(job["bytes_done"] == job["bytes_total"] >= 2 * 60 * 1024, f"job bytes {job}")
    r = ctl("jobs")
    check(r.rc == 0 and r.out.split()[0] == "ID" and "done" in r.out, f"jobs: {r}")

    # a finished job: watch by number and by path, cancel refused
    for ref in (str(job["id"]), job["path"]):
        r = ctl("watch", ref, "--json")
        check(r.rc == 0 and r.json()["state"] == "done", f"watch {ref}: {r}")
    r = ctl("cancel", job["id"])
    check(r.rc == 5, f"cancel of a finished job should be refused (5): {r}")
    r = ctl("watch", "4242")
    check(r.rc == 5, f"watch of a job that does not exist should be refused (5): {r}")

    # on a terminal: bars redrawn in place
    img3 = f.pack("3.0.0", release=3, seed=3, size=64 * 1024)
    rc, out = harness.run_on_tty(f, ["update", img3, "--node", "bus0:2"])
    check(rc == 0, f"update on a tty exited {rc}: {out[-3000:]!r}")
    check("\x1b[" in out and "\x1b[2K" in out, f"no in-place redraw on a tty: {out[-3000:]!r}")
    check("#" in out and "%" in out and re.search(r"job \d+ done: 1 updated", out), f"tty output: {out[-3000:]!r}")

    # --no-wait --json, then watch --json
    r = ctl("update", img3, "--node", "bus1:1", "--no-wait", "--json")
    check(r.rc == 0, f"update --no-wait --json: {r}")
    started = r.json()
    check(set(started) == {"schema", "id", "path"} and started["path"].endswith(f"/job/{started['id']}"), f"{started}")
    r = ctl("watch", started["id"], "--json")
    check(r.rc == 0 and r.json()["id"] == started["id"] and r.json()["state"] == "done", f"watch: {r}")

    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus1:2": "2.0.0", "bus0:2": "3.0.0", "bus1:1": "3.0.0"})


if __name__ == "__main__":
    sys.exit(harness.main(canfleetctl))
