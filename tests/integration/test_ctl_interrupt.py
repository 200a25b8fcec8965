#!/usr/bin/python3
# Integration: Ctrl-C during update and watch stops following, not the job, and says how to go on.
"""
canfleetctl runs in a tmux pane (a real terminal: Ctrl-C is typed with send-keys and reaches it as
SIGINT from the terminal driver). While the job transfers, Ctrl-C must print
"job N continues in canfleetd: canfleetctl watch N / canfleetctl cancel N" and exit 130; the job goes
on and ends done. `watch` without a job number follows the running job, and is interruptible the same way.
"""
import re
import sys

import harness
from harness import check, wait_until
from tmux_pane import Pane

BUSES = ["bus0"]
N = 3
MESSAGE = "job 1 continues in canfleetd: canfleetctl watch 1 / canfleetctl cancel 1"


def programming(f):
    jobs = f.jobs()
    return jobs and jobs[0]["state"] == "running" and any(n["step"] == "programming" for n in jobs[0]["nodes"])


def interrupt(f, pane, what):
    """Ctrl-C into the pane; returns the screen after canfleetctl has exited."""
    pane.send_ctrl_c()
    wait_until(f"{what} to exit after Ctrl-C", lambda: pane.exit_code() is not None, timeout=20)
    screen = "\n".join(pane.capture(join=True))
    check(pane.exit_code() == 130, f"{what} exited {pane.exit_code()} after Ctrl-C, expected 130:\n{screen}")
    check(f"canfleetctl: {MESSAGE}" in screen, f"{what}: no '{MESSAGE}' after Ctrl-C:\n{screen}")
    return screen


def ctl_interrupt(f):
    f.start_fleet(BUSES, N)
    # a large image: the transfer lasts long enough to be interrupted twice (the test waits for it, it
    # never races it: each Ctrl-C is sent while the job is seen programming)
    img2 = f.pack("2.0.0", release=2, seed=2, size=200 * 1024)

    pane = Pane(f, ["update", img2, "--all"], name="update")
    try:
        wait_until("the job to be programming", lambda: programming(f), timeout=30)
        interrupt(f, pane, "update")
    finally:
        pane.close()
    job = f.job(1)
    check(job["state"] == "running", f"the job did not go on after canfleetctl's Ctrl-C: {job}")

    # watch without a number follows the running job; Ctrl-C again leaves it running
    pane = Pane(f, ["watch"], name="watch")
    try:
        wait_until("watch to draw the job", lambda: re.search(r"^job 1 +\d+%", "\n".join(pane.capture()), re.M),
                   timeout=20)
        check(programming(f), "the job is no longer programming; the test cannot interrupt it in time")
        interrupt(f, pane, "watch")
    finally:
        pane.close()

    r = f.ctl("watch")
    check(r.rc == 0 and re.search(r"^job 1 done: 3 updated in \d+", r.out, re.M), f"watch of the running job: {r}")
    r = f.ctl("watch")
    check(r.rc == 5 and r.err == "canfleetctl: no job is running (canfleetctl jobs lists the others)\n",
          f"watch with no running job: {r}")
    harness.assert_versions(f, {n: "2.0.0" for n in harness.all_nodes(BUSES, N)})


if __name__ == "__main__":
    sys.exit(harness.main(ctl_interrupt))
