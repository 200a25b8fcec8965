#!/usr/bin/python3
# Integration: canfleetd and canfleetctl under valgrind memcheck on a real D-Bus: updates, a cancel, bad calls, SIGTERM.
"""
canfleetd runs under memcheck on the private system bus: it updates 3 nodes on each of 2 buses
(canfleetctl update --all, itself under memcheck like every canfleetctl of the test, image pack
included), takes a handful of malformed D-Bus calls, runs a second job with a big image that is
cancelled mid-programming, and a third that is interrupted by SIGTERM mid-programming and resumed to
the end by a second canfleetd (also under memcheck), which then serves with the nodes' simulator gone
and ends on SIGTERM. Valgrind's exit status (99 on any error, --error-exitcode) and its log (0 errors,
no definite leak) are checked for both daemons and every canfleetctl, as is the updates' outcome.

valgrind comes from $CANFLEET_VALGRIND (meson's find_program) or the PATH.
"""
import os
import re
import shutil
import sys

import dbus_wire
import harness
from harness import check, scaled, wait_until

BUSES = ["bus0", "bus1"]
N = 3
VG_EXIT = 99

DEST = "io.canfleet.Gateway1"
MANAGER = "/io/canfleet/Gateway1"
MANAGER_IFACE = "io.canfleet.Gateway1.Manager"
PROPS = "org.freedesktop.DBus.Properties"


def memcheck():
    vg = os.environ.get("CANFLEET_VALGRIND") or shutil.which("valgrind")
    if not vg:
        raise SystemExit("test_valgrind: no valgrind (install the Debian package valgrind)")
    argv = [vg, "--tool=memcheck", f"--error-exitcode={VG_EXIT}", "--leak-check=full",
            # only definite leaks are errors: sd-bus and libc keep some blocks reachable until exit
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            # the daemon legitimately keeps descriptors (bus, ptys, signalfd) open at SIGTERM
            "--track-fds=no", "--track-origins=yes", "--num-callers=30",
            # nothing is suppressed: libsystemd (sd-bus, sd-event), json-c, libsocketcan and glibc's NSS
            # came out clean with Debian 12's builds
            "--log-file={dir}/{name}.%p.vg"]
    return argv


def vg_logs(f, name):
    """name's memcheck logs, oldest first."""
    return sorted((os.path.join(f.wrap_dir, n) for n in os.listdir(f.wrap_dir)
                   if n.startswith(name + ".") and n.endswith(".vg")), key=os.path.getmtime)


def check_vg_log(path):
    """valgrind's own report: 0 errors, nothing definitely lost, and it did reach its summary."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    summary = re.findall(r"ERROR SUMMARY: ([\d,]+) errors? from ([\d,]+) contexts?", text)
    check(summary, f"{path}: no ERROR SUMMARY (valgrind did not finish):\n{text[-3000:]}")
    check(summary[-1][0] == "0", f"{path}: memcheck found errors:\n{text[-6000:]}")
    definite = re.findall(r"definitely lost: ([\d,]+) bytes", text)
    check(all(d == "0" for d in definite), f"{path}: definite leaks:\n{text[-6000:]}")
    check(definite or "no leaks are possible" in text, f"{path}: no leak summary:\n{text[-3000:]}")


def valgrind(f):
    # every canfleetctl run (pack, nodes, jobs... included) must leave exactly one memcheck log
    ctl_runs = []
    ctl = f.ctl

    def counted_ctl(*args, **kw):
        ctl_runs.append(args)
        return ctl(*args, **kw)

    f.ctl = counted_ctl
    # CCP's time-outs are wall-clock (25 ms, 100 ms for PROGRAM): a canfleetd slowed down by memcheck on
    # a loaded machine, or a simulator left without a CPU for a moment, misses some of them. A long
    # reply_timeout_ms keeps the test about memory, not timing.
    f.start_fleet(BUSES, N, daemon_top={"reply_timeout_ms": 3000})
    check(f.daemon.alive(), "canfleetd under valgrind did not stay up")
    img2 = f.pack("2.0.0", release=2, seed=2)
    # the cancelled job's image: big, so that under memcheck programming lasts long enough to be caught
    img3 = f.pack("3.0.0", release=3, seed=3, size=200 * 1024)

    # --- a few calls no well-behaved client makes ---------------------------------------------------
    conn = dbus_wire.Conn(f.bus_address, timeout=scaled(30))

    def call(*args, **kw):
        return conn.call(DEST, *args, timeout=scaled(30), **kw)

    def start_update(path, nodes, options):
        fd = os.open(path, os.O_RDONLY)
        try:
            return call(MANAGER, MANAGER_IFACE, "StartUpdate", "hasa{sv}", [0, nodes, options], fds=[fd])
        finally:
            os.close(fd)

    def refused(what, reply, *names):
        check(reply.error in names, f"{what}: expected {' or '.join(names)}, got {reply}")
        check(reply.message, f"{what}: the error has no message: {reply}")
        check(f.daemon.alive(), f"canfleetd died after: {what}")

    invalid = "org.freedesktop.DBus.Error.InvalidArgs"
    junk = os.path.join(f.dir, "junk.img")
    with open(junk, "wb") as out:
        out.write(b"\x00not an image" * 300)
    refused("bad node string", start_update(img2, ["nonsense"], {}), invalid)
    refused("option of the wrong type", start_update(img2, [], {"all": ("s", "yes")}), invalid)
    refused("unknown option", start_update(img2, [], {"all": ("b", True), "colour": ("s", "red")}), invalid)
    refused("not an image", start_update(junk, [], {"all": ("b", True)}), "io.canfleet.Gateway1.Error.InvalidImage")
    refused("wrong signature", call(MANAGER, MANAGER_IFACE, "StartUpdate", "sas", ["x", ["bus0:1"]]), invalid)
    # dbus-daemon itself may refuse this one before canfleetd sees it
    refused("fd index out of range", call(MANAGER, MANAGER_IFACE, "StartUpdate", "hasa{sv}", [3, ["bus0:1"], {}]),
            invalid, "org.freedesktop.DBus.Error.InconsistentMessage")
    refused("unknown property", call(MANAGER, PROPS, "Get", "ss", [MANAGER_IFACE, "Colour"]),
            "org.freedesktop.DBus.Error.UnknownProperty")
    r = call(MANAGER, "org.freedesktop.DBus.Introspectable", "Introspect")
    check(not r.error and "StartUpdate" in r.values[0], f"Introspect: {r}")

    # --- a real update of every node on both buses ---------------------------------------------------
    r = f.ctl("update", img2, "--all")
    check(r.rc == 0, f"update --all did not exit 0: {r}")
    check(f"{len(BUSES) * N} updated" in r.out and "failed" not in r.out, f"update summary: {r}")

    # --- a second job, cancelled while it programs ----------------------------------------------------
    def start_big_job():
        r = f.ctl("update", img3, "--all", "--no-wait")
        check(r.rc == 0, f"update --no-wait: {r}")
        job_id = harness.job_id_of(r)
        job_path = f"/io/canfleet/Gateway1/job/{job_id}"

        def programming():
            state = call(job_path, PROPS, "Get", "ss", ["io.canfleet.Gateway1.Job", "State"])
            check(not state.error and state.values[0][1] == "running", f"job {job_id} is not running: {state}")
            progress = call(job_path, PROPS, "Get", "ss", ["io.canfleet.Gateway1.Job", "Progress"])
            check(not progress.error, f"Progress of job {job_id}: {progress}")
            return any(step == "programming" and done > 0 for _, _, step, _, done, _ in progress.values[0][1])

        wait_until(f"a node of job {job_id} programming", programming, timeout=60, interval=0.05)
        return job_id

    cancel_id = start_big_job()
    r = f.ctl("cancel", cancel_id)
    check(r.rc == 0 and "cancelled" in r.out, f"cancel: {r}")
    r = f.ctl("watch", cancel_id)
    check(r.rc == 4, f"watch of the cancelled job should exit 4: {r}")
    r = f.ctl("scan", "bus1", "--json")
    check(r.rc == 0 and len(r.json()["nodes"]) == N, f"scan bus1 after the cancel: {r}")
    r = f.ctl("image", "inspect", "--json", f.image(img3), bus=False)
    check(r.rc == 0 and r.json().get("version") == "3.0.0", f"image inspect: {r}")
    r = f.ctl("update", img2)
    check(r.rc == 2, f"update with neither --all nor --node should be a usage error: {r}")

    jobs = {j["id"]: j for j in f.jobs()}
    check(sorted(jobs) == [cancel_id - 1, cancel_id], f"expected jobs {cancel_id - 1} and {cancel_id}: {jobs}")
    done, cancelled = jobs[cancel_id - 1], jobs[cancel_id]
    check(done["state"] == "done" and done["image"]["version"] == "2.0.0", f"first job: {done}")
    for n in done["nodes"]:
        check(n["step"] == "done" and n["error"] is None and n["bytes_done"] == n["bytes_total"] > 0, f"{n}")
    check(cancelled["state"] == "cancelled", f"second job: {cancelled}")
    for n in cancelled["nodes"]:
        check(n["bytes_done"] < n["bytes_total"], f"{n['node']} of the cancelled job was completely sent: {n}")
    nodes = f.nodes()
    for name in harness.all_nodes(BUSES, N):
        check(nodes[name]["version"] == "2.0.0", f"{name} after the cancel: {nodes[name]}")

    # --- a third job, SIGTERM mid-programming: the daemon saves its state and exits 0 ----------------
    def sigterm():
        rc = f.daemon.stop(timeout=60)
        if rc == VG_EXIT:
            check_vg_log(vg_logs(f, "canfleetd")[-1])  # fails naming memcheck's findings
        check(rc == 0, f"canfleetd under valgrind exited with {rc} (valgrind says {VG_EXIT} on errors)"
                       f"\n{f.daemon.output()[-3000:]}")

    resume_id = start_big_job()
    conn.close()
    sigterm()
    # started again, it resumes the job from its state directory and image cache to the end
    f.start_daemon()
    r = f.ctl("watch", resume_id)
    check(r.rc == 0, f"the resumed job did not finish well: {r}")
    job = f.job(resume_id)
    check(job["state"] == "done", f"resumed job: {job}")

    # every node runs the third image (assert_versions stops the simulator: the daemon then serves
    # with its links down)
    harness.assert_versions(f, {n: "3.0.0" for n in harness.all_nodes(BUSES, N)})
    r = f.ctl("status")
    check(r.rc == 0, f"status with the links down: {r}")
    sigterm()

    # --- what memcheck says ---------------------------------------------------------------------------
    logs = vg_logs(f, "canfleetd")
    check(len(logs) == 2, f"expected two canfleetd valgrind logs, found {logs}")
    for path in logs:
        check_vg_log(path)
    ctl_logs = vg_logs(f, "canfleetctl")
    check(len(ctl_logs) == len(ctl_runs), f"{len(ctl_runs)} canfleetctl runs but {len(ctl_logs)} memcheck logs")
    for path in ctl_logs:
        check_vg_log(path)


if __name__ == "__main__":
    vg = memcheck()
    sys.exit(harness.main(valgrind, wrapper=vg, ctl_wrapper=vg))
