#!/usr/bin/python3
# Integration: canfleetctl update https://… and http://… — canfleetd downloads the bundle (tests/http/httpd.py on
# loopback), resumes a cut download, verifies, and refuses what fails (404, an untrusted server certificate, an
# untrusted signer, an image that is not the one the manifest signs), before any CAN frame.
import json
import os
import re
import sys
import threading

import dbus_wire
import harness
from harness import check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import httpd  # noqa: E402

BUSES = ["bus0"]
FRAME = re.compile(r"\b([0-9A-F]{3}) \[(\d)\]")


def frames(sim):
    return sum(1 for line in sim.output().splitlines() if FRAME.search(line))


def serve(f, root, cert, key, faults=None, log=None):
    srv = httpd.make_server(root, 0, cert, key, faults, log)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def requests(log, path):
    out = []
    with open(log) as fh:
        for line in fh:
            e = json.loads(line)
            if e.get("event") == "request" and e.get("path") == path:
                out.append(e)
    return out


def bundle_url(f):
    f.start_bus()
    img1 = f.pack("1.0.0", release=1)
    sim = f.start_sim(BUSES, 3, extra=["--log-frames"], install=img1)
    pki = os.path.join(f.dir, "pki")
    httpd.make_certs(pki)
    f.write_config(BUSES, 3, ca_file=os.path.join(pki, "ca.pem"))
    f.start_daemon()

    www = os.path.join(f.dir, "www")
    os.makedirs(www)
    v2 = f.pack("2.0.0", release=2, seed=2, size=64 * 1024)
    with open(v2, "rb") as fh:
        v2_bytes = fh.read()
    with open(os.path.join(www, "v2.cfb"), "wb") as fh:
        fh.write(v2_bytes)
    other = harness.make_ca(f.dir, name="other", cn="a key nobody trusts")
    f.bundle(f.image(v2), cert=other["cert"], key=other["key"], out=os.path.join(www, "untrusted.cfb"))
    # signed by the fleet's key, then one image byte changed: the manifest's image_sha256 no longer matches
    wrong_sha = bytearray(v2_bytes)
    wrong_sha[100] ^= 0x01
    with open(os.path.join(www, "wrong-sha.cfb"), "wb") as fh:
        fh.write(wrong_sha)
    faults, log = os.path.join(f.dir, "faults.json"), os.path.join(f.dir, "http.jsonl")
    with open(faults, "w") as fh:
        # the first answer for v2.cfb is cut after 100000 bytes: the next try must continue from there
        json.dump({"rules": [{"path": "/v2.cfb", "cut_after": 100000, "times": 1}]}, fh)
    srv, port = serve(f, www, os.path.join(pki, "server.pem"), os.path.join(pki, "server.key"), faults, log)
    rogue, rogue_port = serve(f, www, os.path.join(pki, "rogue-server.pem"), os.path.join(pki, "rogue-server.key"))
    plain_log = os.path.join(f.dir, "http-plain.jsonl")
    plain, plain_port = serve(f, www, None, None, log=plain_log)
    base = f"https://127.0.0.1:{port}"
    plain_base = f"http://127.0.0.1:{plain_port}"

    # 1. refused downloads and bundles: the job (returned at once, its nodes "downloading") fails with
    #    the reason, and no frame reaches the bus; canfleetd's start-up probe talks to the nodes first:
    #    counted from after it
    harness.wait_probed(f)
    probe_frames = frames(sim)
    for what, url, words in [
        ("404", f"{base}/missing.cfb", ["download failed", "404"]),
        ("a server certificate from an untrusted CA", f"https://127.0.0.1:{rogue_port}/v2.cfb",
         ["download failed", "certificate"]),
        ("a bundle signed by an untrusted key", f"{base}/untrusted.cfb", ["trust:", "keyring"]),
        ("an image changed after signing (wrong sha256), over plain http", f"{plain_base}/wrong-sha.cfb",
         ["bundle refused: sha256: the image's sha256", "!= manifest image_sha256"]),
    ]:
        r = f.ctl("update", url, "--all")
        check(r.rc == 1, f"{what}: canfleetctl update should exit 1 (the job failed): {r}")
        for w in words:
            check(w in r.err, f"{what}: the message does not say {w!r}: {r}")
        check(frames(sim) == probe_frames, f"{what}: frames were sent:\n{sim.output()[-2000:]}")
    check([j["state"] for j in f.jobs()] == ["failed"] * 4, f"the refused downloads' jobs: {f.jobs()}")
    got = requests(plain_log, "/wrong-sha.cfb")
    check([q["status"] for q in got] == [200], f"the wrong-sha bundle was not downloaded once in full: {got}")

    # 2. the download cut in the middle continues with Range + If-Range, then the job runs
    r = f.ctl("update", f"{base}/v2.cfb", "--node", "bus0:1")
    check(r.rc == 0, f"update from https: {r}")
    reqs = requests(log, "/v2.cfb")
    check(len(reqs) == 2, f"expected the cut download and one resumed request, saw {len(reqs)}: {reqs}")
    check(reqs[1]["headers"].get("range", "").startswith("bytes=") and "if-range" in reqs[1]["headers"],
          f"the second try did not resume with Range + If-Range: {reqs[1]}")
    check(reqs[1]["status"] == 206, f"the resumed request was not answered 206: {reqs[1]}")

    # 3. file:// is opened by canfleetctl (the daemon would refuse to read files for a caller)
    r = f.ctl("update", "file://" + v2, "--node", "bus0:2")
    check(r.rc == 0, f"update from file://: {r}")
    conn = dbus_wire.Conn(f.bus_address)
    reply = conn.call("io.canfleet.Gateway1", "/io/canfleet/Gateway1", "io.canfleet.Gateway1.Manager",
                      "StartUpdateUrl", "sasa{sv}", ["file://" + v2, ["bus0:3"], {}])
    conn.close()
    check(reply.error == "org.freedesktop.DBus.Error.InvalidArgs" and "file" in reply.message,
          f"StartUpdateUrl with file:// should be InvalidArgs: {reply}")

    # 4. plain http:// (no TLS): downloaded, verified like any bundle, flashed
    r = f.ctl("update", f"{plain_base}/v2.cfb", "--node", "bus0:3")
    check(r.rc == 0, f"update from http: {r}")
    got = requests(plain_log, "/v2.cfb")
    check([q["status"] for q in got] == [200], f"the http download: {got}")

    srv.shutdown()
    rogue.shutdown()
    plain.shutdown()
    harness.assert_versions(f, {"bus0:1": "2.0.0", "bus0:2": "2.0.0", "bus0:3": "2.0.0"}, via_daemon=False)


if __name__ == "__main__":
    sys.exit(harness.main(bundle_url))
