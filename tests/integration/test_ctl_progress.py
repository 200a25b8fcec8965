#!/usr/bin/python3
# Integration: update --all of 60 nodes in an 80x24 tmux pane never writes more rows than the pane has.
"""
canfleetctl runs in a detached 80x24 tmux pane (a real terminal emulator) against the real daemon and
60 simulated nodes on two buses. The pane is read with capture-pane again and again while the job
runs: no row may ever scroll off the top (tmux's history stays empty), the frame shows one summary
line and only active or failed nodes, and the last screen ends with the job's outcome and duration.
Piped or with TERM=dumb the output is plain lines. CANFLEET_CTL_CAPTURE=PATH saves the fullest and the
last screen (for a before/after comparison).
"""
import os
import re
import sys
import time

import harness
from harness import check, wait_until
from tmux_pane import Pane

BUSES = ["bus0", "bus1"]
PER_BUS = 30  # stations are 1..63 per bus: 60 nodes as two buses of 30
ACTIVE_STEPS = {"connecting", "unlocking", "erasing", "programming", "verifying", "rebooting", "confirming"}
SUMMARY = re.compile(r"^job 1 +\d+%  \d+/60 done, \d+ failed, \d+ active  \S+, ETA \S+, \S+ \S+/s$")
NODE_LINE = re.compile(r"^  (bus[01]:\d+) +(\S+)")


def progress(f):
    f.start_fleet(BUSES, PER_BUS)
    img2 = f.pack("2.0.0", release=2, seed=2, size=8 * 1024)

    pane = Pane(f, ["update", img2, "--all"], cols=80, rows=24)
    try:
        screens, fullest, middle = [], [], (101, [])
        # read the pane until canfleetctl has ended; every screen is checked below
        while pane.exit_code() is None:
            screen, hist = pane.capture(), pane.history()
            screens.append((screen, hist))
            if len([l for l in screen if NODE_LINE.match(l)]) >= len([l for l in fullest if NODE_LINE.match(l)]):
                fullest = screen
            pct = [int(m.group(1)) for m in (re.match(r"job 1 +(\d+)%", l) for l in screen) if m]
            if pct and abs(pct[0] - 50) < middle[0]:
                middle = (abs(pct[0] - 50), screen)
            check(len(screens) < 20000, "canfleetctl did not end")
            time.sleep(0.05)
        final, final_hist = pane.capture(), pane.history()
        rc = pane.exit_code()
        save = os.environ.get("CANFLEET_CTL_CAPTURE")
        if save:
            with open(save, "w") as out:
                out.write("# canfleetctl update app-2.0.0.img --all: 60 nodes, tmux pane 80x24\n")
                out.write(f"# a screen while the job runs (tmux history: {max(h for _, h in screens)} rows "
                          f"scrolled off the top)\n")
                out.write("\n".join(middle[1] or fullest) + "\n")
                out.write(f"# the last screen (exit status {rc}, history {final_hist} rows)\n")
                out.write("\n".join(final) + "\n")
        check(pane.size() == (80, 24), f"the pane is {pane.size()}, not 80x24")
        check(rc == 0, f"update --all exited {rc}:\n" + "\n".join(final))
        seen_summary = False
        for screen, hist in screens + [(final, final_hist)]:
            text = "\n".join(screen)
            check(hist == 0, f"{hist} rows scrolled off the 24-row pane:\n{text}")
            check(len(screen) <= 24 and all(len(l) < 80 for l in screen), f"screen larger than the pane:\n{text}")
            summaries = [l for l in screen if l.startswith("job 1 ") and "%" in l]
            check(len(summaries) <= 1, f"more than one summary line:\n{text}")
            seen_summary |= bool(summaries and SUMMARY.match(summaries[0]))
            for l in screen:
                m = NODE_LINE.match(l)
                if m:
                    check(m.group(2) in ACTIVE_STEPS or m.group(2) == "failed:",
                          f"a node line that is neither active nor failed: {l!r}\n{text}")
        check(seen_summary, "no summary line (done/failed/active, %, elapsed, ETA, rate) was ever on screen:\n"
              + "\n".join(fullest))
        text = "\n".join(final)
        check(re.search(r"^job 1: updating 60 nodes to 2\.0\.0", text, re.M), f"header:\n{text}")
        check(re.search(r"^job 1 done: 60 updated in \d+(s|m\d\ds)$", text, re.M), f"last line:\n{text}")
        check(not any(NODE_LINE.match(l) for l in final), f"node lines left on the final screen:\n{text}")
    finally:
        pane.close()

    # TERM=dumb on a terminal and a pipe: plain lines, never an escape sequence
    img3 = f.pack("3.0.0", release=3, seed=3, size=4 * 1024)
    pane = Pane(f, ["update", img3, "--node", "bus0:1"], term="dumb", name="dumb")
    try:
        wait_until("update on TERM=dumb to end", lambda: pane.exit_code() is not None, timeout=60)
        text = "\n".join(pane.capture())
        check(pane.exit_code() == 0, f"update with TERM=dumb exited {pane.exit_code()}:\n{text}")
        # (canfleetd announces progress at most every 200 ms: which steps a short job shows varies)
        check("\x1b" not in text and "bus0:1: done" in text and
              re.search(r"^job 2 done: 1 updated in \d+s$", text, re.M), f"plain lines expected:\n{text}")
    finally:
        pane.close()
    r = f.ctl("update", img3, "--node", "bus0:2")
    check(r.rc == 0 and "\x1b" not in r.out and "bus0:2: done" in r.out, f"piped update: {r}")


if __name__ == "__main__":
    sys.exit(harness.main(progress))
