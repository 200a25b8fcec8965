#!/usr/bin/python3
# The harness itself: its NOTIFY_SOCKET is read for the daemon's whole life (thousands of STATUS= past the
# socket's queue length do not block the sender), the last STATUS= is kept, and READY=1 counts only
# from the daemon just started. A scripted stand-in for canfleetd sends the notifications.
import json
import os
import signal
import sys

import harness
from harness import check

# far past /proc/sys/net/unix/max_dgram_qlen (10 by default, 512 under systemd): a reader that stops
# reading blocks the sender
BURST = 5000

FAKE = r"""#!/usr/bin/python3
# stands in for canfleetd: sd_notify by hand, then waits to be killed as a daemon would
import json, os, signal, socket, sys
mode = json.load(open(sys.argv[sys.argv.index("--config") + 1]))["mode"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(b"STATUS=starting")
if mode == "burst":
    s.send(b"READY=1\nSTATUS=Idle")
    for i in range(%d):
        s.send(f"STATUS=Updating, step {i}".encode())
    s.send(b"STATUS=Idle after the burst")
signal.pause()
""" % BURST


def harness_notify(f):
    fake = os.path.join(f.dir, "fake-canfleetd")
    with open(fake, "w") as out:
        out.write(FAKE)
    os.chmod(fake, 0o755)
    harness.BINARIES["canfleetd"] = fake

    def mode(m):
        with open(f.config_path, "w") as out:
            json.dump({"mode": m}, out)

    mode("burst")
    f.start_daemon(timeout=30)
    first = f.daemon
    # every datagram of the burst must be read for the last one to arrive
    m = f.wait_status(r"^Idle after the burst$", timeout=60)
    check(m is not None, "wait_status returned no match")
    check(f.last_status == "Idle after the burst", f"last STATUS={f.last_status!r}")
    check(f.notifier.messages == BURST + 3, f"{f.notifier.messages} messages read, {BURST + 3} sent")
    check(first.alive(), "the stand-in daemon exited: it blocked or failed in sd_notify")

    # a restarted daemon that never says READY=1 is not taken for ready by its predecessor's READY=1
    first.kill(signal.SIGKILL)
    mode("never-ready")
    try:
        f.start_daemon(timeout=3)
    except harness.TestFailure as e:
        check("READY=1" in str(e), f"unexpected failure: {e}")
    else:
        raise harness.TestFailure("start_daemon returned for a daemon that sent no READY=1")
    f.wait_status(r"^starting$", timeout=30)


if __name__ == "__main__":
    sys.exit(harness.main(harness_notify))
