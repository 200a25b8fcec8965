#!/usr/bin/python3
# canfleetctl against a scripted fake canfleetd: subscribe-before-call, progress output, exit codes 0/1/3/4/5.
import os
import re
import sys

import harness
from harness import check, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def start_fake(f, scenario):
    rfd, wfd = os.pipe()
    try:
        p = harness.Proc(f, f"fake-{scenario}", [sys.executable, os.path.join(HERE, "fake_gateway.py"),
                                                 f.bus_address, scenario, str(wfd)], pass_fds=(wfd,))
    finally:
        os.close(wfd)
    try:
        check(harness.read_line(rfd, 10, f"fake gateway ({scenario})", p).strip() == "ready", "fake not ready")
    finally:
        os.close(rfd)
    return p


def client_fake(f):
    f.start_bus()
    img = os.path.join(f.dir, "some.img")
    with open(img, "wb") as out:
        out.write(b"\x5a" * 4096)

    # normal: exit 0, plain lines on a pipe: one per node step, the summary at each tenth of the job
    fake = start_fake(f, "normal")
    r = f.ctl("update", img, "--all", timeout=30)
    check(r.rc == 0, f"normal update: {r}")
    lines = r.out.splitlines()
    check(lines[0].startswith("job 1: updating 3 nodes to 2.0.0"), f"header: {lines[:2]}")
    for node in ("bus0:1", "bus0:2", "bus0:3"):
        mine = [l for l in lines if l.startswith(node + ":")]
        steps = [l.split()[1] for l in mine]
        check(steps[0] == "connecting" and steps[-1] == "done" and len(steps) == len(set(steps)),
              f"{node} steps {steps}")
    pcts = [int(m.group(1)) for m in (re.match(r"job 1 +(\d+)% ", l) for l in lines) if m]
    check(3 <= len(pcts) <= 10 and pcts == sorted(pcts) and len(set(p // 10 for p in pcts)) == len(pcts),
          f"one summary line per tenth of the job expected: {pcts}")
    check(re.fullmatch(r"job 1 done: 3 updated in \d+s", lines[-1]), f"summary: {lines[-1]!r}")
    check(r.err == "", f"stderr: {r.err}")
    r = f.ctl("nodes", "--json")
    check(r.rc == 0 and {n["node"]: n["version"] for n in r.json()["nodes"]} == {"bus0:1": "2.0.0", "bus0:2": "2.0.0",
                                                                        "bus0:3": "2.0.0"}, f"nodes: {r}")
    r = f.ctl("watch", "1", "--json")
    check(r.rc == 0 and r.json()["state"] == "done" and r.json()["bytes_done"] == 3 * 40 * 1024, f"watch: {r}")
    r = f.ctl("cancel", "/io/canfleet/Gateway1/job/1")
    check(r.rc == 5 and "finished" in r.err, f"cancel of a finished job: {r}")

    # on a terminal: a summary and a line per active node redrawn in place, no wider than the terminal
    rc, out = harness.run_on_tty(f, ["update", img, "--all"])
    check(rc == 0, f"update on a tty exited {rc}: {out!r}")
    check(len(re.findall(r"\x1b\[\d+A", out)) >= 2, f"frames are not redrawn in place: {out!r}")
    frames = [l for l in re.split(r"\r?\n|\x1b\[2K|\x1b\[J|\r", out) if l.startswith("  bus0:") or l.startswith("job 2 ")]
    check(frames and all(len(l) < 80 for l in frames), f"lines wider than the terminal: {frames}")
    check(any(re.match(r"  bus0:1 +programming +\[#+\.+\] +\d+% ", l) for l in frames), f"no bar: {frames}")
    check(any(re.match(r"job 2 +\d+% +\d/3 done, 0 failed, \d active +\d+s, ETA \S+, ", l) for l in frames),
          f"no summary line: {frames}")
    check(re.search(r"job 2 done: 3 updated in \d+s", out), f"summary: {out!r}")
    fake.kill()

    # a node fails: exit 1, its error on stderr
    fake = start_fake(f, "fail")
    r = f.ctl("update", img, "--all", timeout=30)
    check(r.rc == 1, f"update with a failing node: {r}")
    check("canfleetctl: bus0:2 failed: node did not answer PROGRAM_6 (3 tries)" in r.err, f"stderr: {r.err}")
    check("job 1 failed: 2 updated, 1 failed" in r.out, f"summary: {r.out}")
    fake.kill()

    # the job ends before StartUpdate's reply arrives: the client still sees the end (and does not hang)
    fake = start_fake(f, "instant")
    r = f.ctl("update", img, "--all", timeout=10)
    check(r.rc == 0 and "job 1 done: 3 updated" in r.out, f"instant job: {r}")
    fake.kill()

    # Progress invalidated rather than sent: the client reads it again
    fake = start_fake(f, "invalidate")
    r = f.ctl("update", img, "--node", "bus0:3", "--json", timeout=30)
    check(r.rc == 0, f"invalidate: {r}")
    j = r.json()
    check(j["state"] == "done" and [n["step"] for n in j["nodes"]] == ["done"], f"invalidate job: {j}")
    fake.kill()

    # cancel while running: update exits 4, cancel 0
    fake = start_fake(f, "slow")
    upd = f.ctl_bg("update", img, "--all", name="update-slow")
    wait_until("the job to program", lambda: any(
        n["step"] == "programming" for j in f.jobs() for n in j["nodes"]), timeout=20)
    r = f.ctl("cancel", "1")
    check(r.rc == 0 and "job 1 cancelled" in r.out, f"cancel: {r}")
    upd.p.wait(20)
    check(upd.p.returncode == 4, f"update of a cancelled job exited {upd.p.returncode}: {upd.output()}")
    check("job 1 cancelled" in upd.output(), f"update's summary: {upd.output()}")
    fake.kill()

    # canfleetd goes away mid-job: exit 3 with the way to follow up
    fake = start_fake(f, "vanish")
    r = f.ctl("update", img, "--all", timeout=30)
    check(r.rc == 3 and "systemctl status canfleetd" in r.err and "canfleetctl watch" in r.err, f"vanish: {r}")
    fake.kill()

    # refusals: exit 5 with the daemon's message
    fake = start_fake(f, "hwmismatch")
    r = f.ctl("update", img, "--all")
    check(r.rc == 5 and "hardware id 0x0001, the image is for 0x0002" in r.err, f"hwmismatch: {r}")
    fake.kill()
    fake = start_fake(f, "denied")
    for args in (["update", img, "--all"], ["scan", "bus0"], ["cancel", "1"]):
        r = f.ctl(*args)
        check(r.rc == 5 and "permission denied" in r.err, f"denied {args}: {r}")
    r = f.ctl("status")
    check(r.rc == 0 and "canfleetd 0.0.0-fake" in r.out and "nodes: 3 (online 3)" in r.out, f"status: {r}")
    fake.kill()


if __name__ == "__main__":
    sys.exit(harness.main(client_fake))
