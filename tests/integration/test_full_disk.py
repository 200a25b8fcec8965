#!/usr/bin/python3
# Integration: a full state directory loses nothing. A job that cannot be saved is refused up front
# with the reason; a job whose saves start failing mid-way starts no new node and holds DISCONNECT(end)
# until a save succeeds, so that canfleetd SIGKILLed meanwhile resumes it, once there is room again,
# to every node updated.
# state_dir is a small tmpfs of its own (the test runs as root, like the suite); tmpfs counts whole
# pages, so the test fills it with one-page files and frees exactly as many pages as it wants.
import errno
import os
import re
import signal
import subprocess
import sys
import time

import harness
from harness import check, wait_until

BUSES = ["bus0"]
PAGE = 4096


def fill(d):
    """Fill the filesystem of directory d with one-page files; returns their paths."""
    paths = []
    while True:
        p = os.path.join(d, f"filler-{len(paths)}")
        try:
            with open(p, "wb") as fh:
                fh.write(b"\0" * PAGE)
        except OSError as e:
            check(e.errno == errno.ENOSPC, f"filling {d}: {e}")
            if os.path.exists(p) and os.path.getsize(p) < PAGE:
                os.unlink(p)
            return paths
        paths.append(p)


def inventory_settled(state_dir):
    """nodes.json exists and neither it nor nodes.log changes over half a second."""
    def sizes():
        return [os.stat(os.path.join(state_dir, n)).st_size if os.path.exists(os.path.join(state_dir, n)) else -1
                for n in ("nodes.json", "nodes.log")]
    before = sizes()
    time.sleep(0.5)
    return before[0] >= 0 and sizes() == before


def full_disk(f):
    check(os.getuid() == 0, "this test mounts a tmpfs and must run as root")
    os.makedirs(f.state_dir)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "canfleet-test-state", f.state_dir],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"mount tmpfs: {r.stderr}")
    try:
        run(f)
    finally:
        subprocess.run(["umount", "-l", f.state_dir], capture_output=True)


def run(f):
    f.start_fleet(BUSES, 3, sim_extra=["--bus-timing"])
    img2 = f.pack("2.0.0", release=2, seed=2)
    # The start-up probe's node inventory is saved before the disk is filled: a save left pending
    # would take the page step 2 frees for the job file.
    harness.wait_probed(f)
    wait_until("the node inventory saved and settled", lambda: inventory_settled(f.state_dir), timeout=30)
    os.makedirs(os.path.join(f.state_dir, "spare"), exist_ok=True)
    fillers = fill(os.path.join(f.state_dir, "spare"))
    check(len(fillers) > 8, f"only {len(fillers)} pages filled")

    # 1. nothing can be saved: refused up front, with the reason, and no job exists
    r = f.ctl("update", img2, "--all")
    check(r.rc != 0 and "cannot save job in " + f.state_dir in r.err and "No space left on device" in r.err,
          f"an update that cannot be saved must be refused with the reason: {r}")
    check(f.jobs() == [], f"a refused update left a job: {f.jobs()}")
    check(os.listdir(os.path.join(f.state_dir, "jobs")) == [], "a refused update left files")

    # 2. room for the job's first snapshot (one page) and no more: accepted, then its first change
    # cannot be saved
    os.unlink(fillers.pop())
    r = f.ctl("update", img2, "--all", "--no-wait")
    check(r.rc == 0, f"update with room for the job file: {r}")
    job_id = harness.job_id_of(r)
    wait_until("canfleetd holds DISCONNECT(end) of the node it had started",
               lambda: "DISCONNECT waits until the job's state can be saved" in f.daemon.output(), timeout=60)
    log = f.daemon.output()
    check(re.search(r"job \d+: cannot save its state in .*No space left on device", log),
          f"the save failure is not in the journal: {log[-2000:]}")
    j = f.job(job_id)
    steps = sorted(n["step"] for n in j["nodes"])
    check(j["state"] == "running" and steps == ["queued", "queued", "rebooting"],
          f"one node held before DISCONNECT, the others not started: {j}")
    sim_log = f.sims[0].output()
    check("resetting into the bootloader" not in sim_log, f"a node was told to install: {sim_log[-2000:]}")

    # 3. SIGKILL while nothing can be saved, room again, restart: the job resumes to the end
    f.daemon.kill(signal.SIGKILL)
    for p in fillers:
        os.unlink(p)
    f.start_daemon()
    r = f.ctl("watch", job_id, timeout=150)
    check(r.rc == 0, f"the resumed job did not finish well: {r}")
    job = f.job(job_id)
    check(job["state"] == "done" and all(n["step"] == "done" for n in job["nodes"]), f"{job}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, 3)})


if __name__ == "__main__":
    sys.exit(harness.main(full_disk))
