#!/usr/bin/python3
# Integration: serial nodes on a bad line and through power cuts (docs/design.md §8).
#  1. bits flipped on the line (both ways): the LPC answers RESEND to a damaged group of UU lines, the
#     ADuCM360 BEL to a damaged packet; canfleetd sends them again (and starts a session that got a garbled
#     answer again) and both updates succeed, flash = image.
#  2. the power goes mid-write and stays off: the job fails with the chip named as holding no complete
#     image; the vector table (written last) is not there, so the chip stays in its loader; with power
#     back, the next job finishes it.
#  3. the power goes mid-write and comes back: the same job starts the session again and finishes.
#  4. canfleetd is killed (SIGKILL) while it programs the LPC: the restarted daemon resumes the job from
#     its file and finishes it.
import signal
import sys

import harness
import serial_fixture as sf
from harness import check

SIZE = 64 * 1024


def run_job(f, bundle, node, rc=0):
    r = f.ctl("update", bundle, "--node", node)
    check(r.rc == rc, f"update {node}: expected exit {rc}: {r}")
    return f.jobs()[-1]


def serial_faults(f):
    f.start_bus()
    # fixed seeds: the same bits flip in every run
    lpc_sim = sf.start_chip(f, "lpc0", "lpc-isp", ["--reset-on-open", "--corrupt", "0.0003", "--seed", "7"])
    adi_sim = sf.start_chip(f, "adi0", "adi-uart", ["--reset-on-open", "--corrupt", "0.0003", "--seed", "7"])
    sf.write_config(f, [], 0, [sf.serial_bus(f, "lpc0", "lpc-isp"), sf.serial_bus(f, "adi0", "adi-uart")],
                    node_lost_timeout_s=3, retries=5)
    f.start_daemon()

    # 1. a noisy line
    lpc1, lpc1_raw = sf.serial_bundle(f, "lpc-isp", "1.0.0", 1, sf.lpc_app(SIZE, seed=1))
    adi1, adi1_raw = sf.serial_bundle(f, "adi-uart", "1.0.0", 1, sf.adi_app(SIZE, seed=1))
    run_job(f, lpc1, "lpc0:1")
    run_job(f, adi1, "adi0:1")
    check(sf.flash(f, "lpc0")[:SIZE] == lpc1_raw, "LPC flash after the noisy update")
    check(sf.flash(f, "adi0")[:SIZE] == adi1_raw, "ADI flash after the noisy update")
    for chip in ("lpc0", "adi0"):
        st = sf.chip_state(f, chip)
        check(st["bad_checksums"] > 0, f"{chip}: no checksum error was met, the test tests nothing: {st}")
    lpc_sim.kill()
    adi_sim.kill()

    # 2. the power goes mid-write and stays off (flash operations: LPC each sector erased and each C;
    #    ADI each page erased and each W)
    lpc2, lpc2_raw = sf.serial_bundle(f, "lpc-isp", "2.0.0", 2, sf.lpc_app(SIZE, seed=2))
    adi2, adi2_raw = sf.serial_bundle(f, "adi-uart", "2.0.0", 2, sf.adi_app(SIZE, seed=2))
    lpc_sim = sf.start_chip(f, "lpc0", "lpc-isp", ["--reset-on-open", "--power-cut", "24,off"])
    adi_sim = sf.start_chip(f, "adi0", "adi-uart", ["--reset-on-open", "--power-cut", "180,off"])
    for node, bundle, chip in (("lpc0:1", lpc2, "lpc0"), ("adi0:1", adi2, "adi0")):
        j = run_job(f, bundle, node, rc=1)
        err = j["nodes"][0]["error"] or ""
        check("no complete image" in err and "the next update finishes it" in err, f"{node}: the cut's error: {err!r}")
        st = sf.chip_state(f, chip)
        check(st["power_cuts"] == 1 and not st["app_valid"], f"{chip} after the cut: {st}")
    lpc_sim.kill()
    adi_sim.kill()
    # power back: the next job finishes it
    lpc_sim = sf.start_chip(f, "lpc0", "lpc-isp", ["--reset-on-open"])
    adi_sim = sf.start_chip(f, "adi0", "adi-uart", ["--reset-on-open"])
    run_job(f, lpc2, "lpc0:1")
    run_job(f, adi2, "adi0:1")
    check(sf.flash(f, "lpc0")[:SIZE] == lpc2_raw, "LPC flash after the job that followed the cut")
    check(sf.flash(f, "adi0")[:SIZE] == adi2_raw, "ADI flash after the job that followed the cut")
    check(sf.chip_state(f, "lpc0")["app_valid"], "the LPC's image is not valid for its boot ROM")
    lpc_sim.kill()
    adi_sim.kill()

    # 3. the power goes (torn operation) and comes back ~100 ms later: the same job finishes
    lpc3, lpc3_raw = sf.serial_bundle(f, "lpc-isp", "3.0.0", 3, sf.lpc_app(SIZE, seed=3))
    adi3, adi3_raw = sf.serial_bundle(f, "adi-uart", "3.0.0", 3, sf.adi_app(SIZE, seed=3))
    sf.start_chip(f, "lpc0", "lpc-isp", ["--reset-on-open", "--power-cut", "20,torn"])
    sf.start_chip(f, "adi0", "adi-uart", ["--reset-on-open", "--power-cut", "200,torn"])
    run_job(f, lpc3, "lpc0:1")
    run_job(f, adi3, "adi0:1")
    check(sf.flash(f, "lpc0")[:SIZE] == lpc3_raw, "LPC flash after a cut the job rode through")
    check(sf.flash(f, "adi0")[:SIZE] == adi3_raw, "ADI flash after a cut the job rode through")
    for chip in ("lpc0", "adi0"):
        check(sf.chip_state(f, chip)["power_cuts"] == 1, f"{chip}: the power was not cut: {sf.chip_state(f, chip)}")
    for s in list(f.procs):
        if s.name.startswith("nodesim-") and s.alive():
            s.kill()

    # 4. canfleetd killed mid-programming: the chip freezes for 3 s after the host's 30th command (block 5
    #    of 16), canfleetd is killed meanwhile and started again
    lpc4, lpc4_raw = sf.serial_bundle(f, "lpc-isp", "4.0.0", 4, sf.lpc_app(SIZE, seed=4))
    sf.start_chip(f, "lpc0", "lpc-isp", ["--reset-on-open", "--stall", "30:3000"])
    r = f.ctl("update", lpc4, "--node", "lpc0:1", "--no-wait")
    check(r.rc == 0, f"update --no-wait: {r}")
    jid = harness.job_id_of(r)
    harness.wait_until("the LPC programming", lambda: f.job(jid)["nodes"][0]["step"] == "programming", 20)
    f.daemon.kill(signal.SIGKILL)
    f.start_daemon()
    j = sf.wait_job_end(f, jid, 60)
    check(j["state"] == "done", f"the resumed job: {j}")
    check("job %d: resuming" % jid in f.daemon.output(), "the job was not resumed from its file")
    check(sf.flash(f, "lpc0")[:SIZE] == lpc4_raw, "LPC flash after the resumed job")


if __name__ == "__main__":
    sys.exit(harness.main(serial_faults))
