#!/usr/bin/python3
# Integration: a URL update's job comes back at once and shows the download (step "downloading" with
# bytes) before any CAN frame; a stalled server and an untrusted bundle fail the job with the reason and
# zero frames; a second job for the same URL is served from cache_dir after a 304; a damaged cached
# bundle is replaced; a restart during a download fails that job with its reason.
import json
import os
import re
import shutil
import sys
import threading
import time

import dbus_wire
import harness
from harness import check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import httpd  # noqa: E402

BUSES = ["bus0"]
FRAME = re.compile(r"\b([0-9A-F]{3}) \[(\d)\]")
MGR = ("io.canfleet.Gateway1", "/io/canfleet/Gateway1", "io.canfleet.Gateway1.Manager")


def frames(sim):
    return sum(1 for line in sim.output().splitlines() if FRAME.search(line))


def requests(log, path):
    out = []
    with open(log) as fh:
        for line in fh:
            e = json.loads(line)
            if e.get("event") == "request" and e.get("path") == path:
                out.append(e)
    return out


def start_url(f, url, nodes):
    conn = dbus_wire.Conn(f.bus_address)
    try:
        reply = conn.call(*MGR, "StartUpdateUrl", "sasa{sv}", [url, nodes, {}])
    finally:
        conn.close()
    check(not reply.error, f"StartUpdateUrl {url}: {reply}")
    return reply.values[0]


def progress(f, path):
    conn = dbus_wire.Conn(f.bus_address)
    try:
        reply = conn.call("io.canfleet.Gateway1", path, "org.freedesktop.DBus.Properties", "Get", "ss",
                          ["io.canfleet.Gateway1.Job", "Progress"])
    finally:
        conn.close()
    check(not reply.error, f"Progress of {path}: {reply}")
    return reply.values[0][1]


def wait_job(f, job_id, timeout=60):
    deadline = time.monotonic() + harness.scaled(timeout)
    while time.monotonic() < deadline:
        j = f.job(job_id)
        if j["state"] != "running":
            return j
        time.sleep(0.1)
    raise harness.TestFailure(f"job {job_id} still running after {timeout}s: {f.job(job_id)}")


def job_id(path):
    return int(path.rsplit("/", 1)[1])


def node_errors(j):
    return " | ".join(n.get("error") or "" for n in j["nodes"])


def bundle_download(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, 3, extra=["--log-frames"], install=img1)
    pki = os.path.join(f.dir, "pki")
    httpd.make_certs(pki)
    # a try fails after 1 s without a byte (5 tries with 1+2+4+8 s back-off: ~20 s for part 1)
    f.write_config(BUSES, 3, ca_file=os.path.join(pki, "ca.pem"), download_stall_timeout_s=1)
    f.start_daemon()
    # canfleetd's start-up probe talks to the nodes first: frames are counted from after it
    harness.wait_probed(f)
    probed = frames(sim)

    www = os.path.join(f.dir, "www")
    os.makedirs(www)
    v2 = f.pack("2.0.0", release=2, seed=2, size=64 * 1024)
    for name in ["v2.cfb", "slow.cfb", "cached.cfb", "restart.cfb"]:
        shutil.copy(v2, os.path.join(www, name))
    size = os.path.getsize(v2)
    other = harness.make_ca(f.dir, name="other", cn="a key nobody trusts")
    f.bundle(f.image(v2), cert=other["cert"], key=other["key"], out=os.path.join(www, "untrusted.cfb"))
    faults, log = os.path.join(f.dir, "faults.json"), os.path.join(f.dir, "http.jsonl")
    with open(faults, "w") as fh:
        json.dump({"rules": [
            # every answer for slow.cfb stops after 1000 bytes for longer than the stall time-out
            {"path": "/slow.cfb", "stall_after": 1000, "stall": 2},
            # v2.cfb stops once after 100000 bytes: the job shows them while it waits
            {"path": "/v2.cfb", "stall_after": 100000, "stall": 3, "times": 1},
        ]}, fh)
    srv = httpd.make_server(www, 0, os.path.join(pki, "server.pem"), os.path.join(pki, "server.key"), faults, log)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"https://127.0.0.1:{srv.server_address[1]}"

    # 1. a server that stalls on every try: the job fails with the reason, no frame
    r = f.ctl("update", f"{base}/slow.cfb", "--node", "bus0:3")
    check(r.rc == 1, f"stalled download: canfleetctl update should exit 1 (job failed): {r}")
    check("download failed" in r.err and "No data for 1.0 s" in r.err, f"stall: no reason given: {r}")
    check(len(requests(log, "/slow.cfb")) == 5, f"stall: expected 5 tries: {requests(log, '/slow.cfb')}")
    check(frames(sim) == probed, f"stall: frames were sent:\n{sim.output()[-2000:]}")

    # 2. a bundle no keyring anchor signed: downloaded, refused by trust, the job fails before any frame
    r = f.ctl("update", f"{base}/untrusted.cfb", "--node", "bus0:3")
    check(r.rc == 1 and "trust:" in r.err, f"untrusted bundle: {r}")
    check(frames(sim) == probed, f"untrusted: frames were sent:\n{sim.output()[-2000:]}")

    # 3. the job comes back at once: "downloading" with the bytes received, then the transfer
    path = start_url(f, f"{base}/v2.cfb", ["bus0:1"])
    first = progress(f, path)
    check(first[0][2] in ("downloading", "queued", "connecting", "unlocking", "erasing", "programming"),
          f"first progress: {first}")
    seen = None
    deadline = time.monotonic() + harness.scaled(30)
    while time.monotonic() < deadline:
        p = progress(f, path)[0]
        if p[2] == "downloading" and p[4] >= 100000:
            seen = p
            break
        if p[2] != "downloading":
            break
        time.sleep(0.05)
    check(seen is not None, f"the download's bytes were never shown while the server waited: {progress(f, path)}")
    check(seen[5] == size, f"bytes_total of the download is not the file's size {size}: {seen}")
    check(frames(sim) == probed, "frames during the download")
    j = wait_job(f, job_id(path))
    check(j["state"] == "done", f"the URL job did not finish: {j}")

    # 4. the cache: one full download, then a 304 and the cached bundle for the next job
    r = f.ctl("update", f"{base}/cached.cfb", "--node", "bus0:2")
    check(r.rc == 0, f"first job for cached.cfb: {r}")
    r = f.ctl("update", f"{base}/cached.cfb", "--node", "bus0:3")
    check(r.rc == 0, f"second job for cached.cfb: {r}")
    reqs = requests(log, "/cached.cfb")
    check([q["status"] for q in reqs] == [200, 304], f"expected one download and one 304: {reqs}")
    check("if-none-match" in reqs[1]["headers"], f"the second job did not revalidate: {reqs[1]}")
    cached = [n for n in os.listdir(os.path.join(f.cache_dir, "bundles")) if n.endswith(".cfb")]
    check(len(cached) >= 1, f"no bundle in cache_dir/bundles: {cached}")

    # 5. a damaged cached bundle is removed and downloaded again (the job still succeeds)
    for n in cached:
        with open(os.path.join(f.cache_dir, "bundles", n), "r+b") as fh:
            fh.seek(1000)
            fh.write(b"\xff\x00\xff")
    r = f.ctl("update", f"{base}/cached.cfb", "--node", "bus0:2", "--force")
    check(r.rc == 0, f"job with a damaged cache: {r}")
    reqs = requests(log, "/cached.cfb")
    check([q["status"] for q in reqs] == [200, 304, 304, 200], f"damaged cache: expected 304 then 200: {reqs}")

    # 6. canfleetd stops during a download: that job fails with the reason after the restart
    with open(faults, "w") as fh:
        json.dump({"rules": [{"id": 2, "path": "/restart.cfb", "stall_after": 100000, "stall": 3, "times": 1}]}, fh)
    path = start_url(f, f"{base}/restart.cfb", ["bus0:1"])
    deadline = time.monotonic() + harness.scaled(20)
    while progress(f, path)[0][4] < 100000 and time.monotonic() < deadline:
        time.sleep(0.05)
    f.daemon.stop()
    f.start_daemon()
    j = f.job(job_id(path))
    check(j["state"] == "failed" and "stopped while its bundle was being downloaded" in node_errors(j),
          f"a job interrupted in its download: {j}")

    # 7. a cancel during the download: the job is cancelled, the node is free for the next job
    with open(faults, "w") as fh:
        json.dump({"rules": [{"id": 3, "path": "/restart.cfb", "stall_after": 150000, "stall": 3, "times": 1}]}, fh)
    path = start_url(f, f"{base}/restart.cfb", ["bus0:1"])
    r = f.ctl("cancel", str(job_id(path)))
    check(r.rc == 0, f"cancel during the download: {r}")
    j = wait_job(f, job_id(path))
    check(j["state"] == "cancelled" and all(n["step"] == "cancelled" for n in j["nodes"]),
          f"a job cancelled in its download: {j}")
    r = f.ctl("update", f"{base}/cached.cfb", "--node", "bus0:1", "--force")
    check(r.rc == 0, f"the node after a cancelled download: {r}")

    srv.shutdown()
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "2.0.0", "bus0:3": "2.0.0"}, via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(bundle_download))
