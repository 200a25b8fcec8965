# Dual-bank nodes (docs/design.md §9) for the integration tests: both links of a test application,
# packed and signed into one dual-bank bundle, and canfleet-nodesim's f7-dual-bank switches.
import os

import harness
from harness import check

SIM_LAYOUT = ["--layout", "f7-dual-bank"]
BANK_DISTANCE = 0x100000  # bank 2's application area is bank 1's plus 1 MB


def pack_dual(f, version, hw_id=0x0002, release=1, size=16 * 1024, seed=1):
    """A dual-bank bundle of one test application linked for bank 1 and for bank 2 (canfleetctl image pack
    --bank, bundle create IMAGE IMAGE2); f.image(bundle) is the bank-1 link (what --install takes)."""
    name = f"dual-{version}-{hw_id:04x}"
    imgs = []
    for bank in (1, 2):
        app = bytearray(harness.test_app(size, seed))
        reset = int.from_bytes(app[4:8], "little") + (bank - 1) * BANK_DISTANCE
        app[4:8] = reset.to_bytes(4, "little")
        app_path = os.path.join(f.dir, f"{name}-b{bank}.bin")
        img = os.path.join(f.dir, f"{name}-b{bank}.img")
        with open(app_path, "wb") as out:
            out.write(app)
        r = f.ctl("image", "pack", app_path, "--version", version, "--hw-id", f"0x{hw_id:04x}", "--release",
                  str(release), "--bank", str(bank), "-o", img, "--build-time", "0", bus=False)
        check(r.rc == 0, f"image pack --bank {bank} failed: {r}")
        os.chmod(img, 0o644)
        imgs.append(img)
    ca = f.trust()
    out = os.path.join(f.dir, name + ".cfb")
    r = f.ctl("bundle", "create", imgs[0], imgs[1], "--cert", ca["cert"], "--key", ca["key"], "-o", out, bus=False)
    check(r.rc == 0 and "dual-bank" in r.out, f"bundle create of two links failed: {r}")
    os.chmod(out, 0o644)
    f.images[out] = imgs[0]
    return out


def sim_extra(hw_id=0x0002, extra=()):
    return SIM_LAYOUT + ["--hw-id", f"0x{hw_id:04x}"] + list(extra)


def job_of(result):
    """The finished job of `update ... --json`."""
    check(result.out.strip().startswith("{"), f"update --json printed no JSON: {result}")
    return result.json()
