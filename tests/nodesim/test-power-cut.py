#!/usr/bin/python3
"""Power cuts: SIGKILL of the simulator mid-PROGRAM and during the boot copy, and --power-cut inside the copy."""
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nodesim_harness import Ccp, Sim, check, main, open_bus, show


def stage_v2(fx, bus, parts=("payload", "trailer")):
    n = Ccp(bus, 1)
    n.connect()
    n.unlock(fleet_key=fx.fleet_key)
    n.clear_c()
    n.program_image(fx.v2, parts)
    return n


def running_version(fx, sim):
    bus = open_bus(fx.pty)
    try:
        n = Ccp(bus, 1)
        n.connect_retry()
        return n.version(), n.status()
    finally:
        bus.shutdown()


def test_kill_mid_program(fx):
    sim = fx.start(nodes=1)
    bus = open_bus(fx.pty)
    try:
        n = stage_v2(fx, bus, parts=())
        n.program(0, fx.v2[:600])  # half the payload, then the power goes
    finally:
        bus.shutdown()
    sim.kill()
    check(show(fx.state)["ttyCF0-1"]["C"]["state"] == "invalid", "C should be incomplete")
    fx.sim = sim = Sim(fx.sim_args(nodes=1))
    version, st = running_version(fx, sim)
    check(version == (1, 0, 0), "after a cut mid-PROGRAM: running %s" % (version,))
    check(st[65] == 0, "nothing installed")
    check(sim.stop() == 0, "exit status")


def test_kill_during_boot_copy(fx):
    # the cut lands at the 3rd flash operation after the DISCONNECT's reset: B's two sectors are
    # erased, the first chunk of the copy is being written; the node stays dead until we SIGKILL
    sim = fx.start(nodes=1, extra=["--power-cut", "3:1,after-reset,off"])
    bus = open_bus(fx.pty)
    try:
        n = stage_v2(fx, bus)
        r = n.disconnect(end=True)
        check(r is not None and r[0] == 0, "DISCONNECT(end): %r" % (r,))
    finally:
        bus.shutdown()
    sim.wait_log(r"ttyCF0-1: power cut at flash operation 3 ")
    sim.kill()
    state = show(fx.state)["ttyCF0-1"]
    check(state["B"]["state"] != "valid", "B should be half-installed: %s" % state)
    check(state["C"]["state"] == "valid", "C must still be valid: %s" % state)
    fx.sim = sim = Sim(fx.sim_args(nodes=1))
    version, st = running_version(fx, sim)
    check(version == (2, 0, 0), "after a cut in the boot copy: running %s" % (version,))
    check(st[65] == 1, "last_update should say installed")
    check(sim.stop() == 0, "exit status")
    check(show(fx.state)["ttyCF0-1"]["C"]["state"] == "erased", "C retired after the install")


def test_cut_sweep_in_boot(fx):
    """C staged once; then a cut at each of the first flash operations of the boot, torn or clean,
    the node powering up again by itself: every time it must end up running v2."""
    sim = fx.start(nodes=1)
    bus = open_bus(fx.pty)
    try:
        stage_v2(fx, bus)  # valid C, no DISCONNECT: the next power-on installs it
    finally:
        bus.shutdown()
    check(sim.stop() == 0, "exit status")
    staged = os.path.join(fx.dir, "staged.flash")
    shutil.copy(os.path.join(fx.state, "ttyCF0-1.flash"), staged)

    # every flash operation of the install, until a cut number the boot never reaches
    for op in range(1, 65):
        cut_happened = False
        for torn in (False, True):
            shutil.copy(staged, os.path.join(fx.state, "ttyCF0-1.flash"))
            cut = "%d:1%s" % (op, ",torn" if torn else "")
            fx.sim = sim = Sim(fx.sim_args(nodes=1, extra=["--power-cut", cut]))
            version, st = running_version(fx, sim)
            check(version == (2, 0, 0), "cut %s: running %s" % (cut, version))
            check(sim.stop() == 0, "exit status")  # after this, every log line has been read
            cut_happened = sim.log_has(r"power cut at flash operation %d\b" % op)
            state = show(fx.state)["ttyCF0-1"]
            check(state["B"]["state"] == "valid" and state["C"]["state"] != "valid",
                  "cut %s: flash left %s" % (cut, state))
        if not cut_happened:
            break
    check(op > 4, "the install took only %d flash operations" % (op - 1))
    print("   the install took %d flash operations; a cut at each one recovered" % (op - 1))

if __name__ == "__main__":
    main([test_kill_mid_program, test_kill_during_boot_copy, test_cut_sweep_in_boot])
