#!/usr/bin/python3
"""Boot smoke test of the STM32F4 images under qemu-system-arm -M netduinoplus2 (an STM32F405).

QEMU models the USART (our log on -serial) but not RCC, CAN, the flash controller, CRC or RNG: the
HAL times out on their ready bits and falls back (HSI clock, software CRC, no CAN), which the test
sees in the log. Each case loads the bootloader at 0x08000000 and an area image packed by
canfleetctl at 0x08020000 and reads the USART until the line that ends the case, then kills QEMU.

  qemu_boot.py --images DIR --canfleetctl PATH [--qemu qemu-system-arm]
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'firmware', 'stm32f4'))
import mkprovision  # noqa: E402

CASE_TIMEOUT = 60.0  # seconds; a case normally ends in well under one
failures = []


def erased_sectors(trace):
    """Sector numbers of the erases (STRT with SER) in a -d unimp trace of the flash controller."""
    erased = []
    for l in open(trace, errors='replace'):
        # Flash Int: unimplemented device write (size 4, offset 0x010, value 0x00010232)
        if l.startswith('Flash Int: unimplemented device write') and 'offset 0x010,' in l:
            cr = int(l.rsplit('value ', 1)[1].rstrip(')\n'), 16)
            if cr & (1 << 16) and cr & (1 << 1):
                erased.append((cr >> 3) & 0xF)
    return erased


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what, flush=True)
    if not cond:
        failures.append(what)


def run_qemu(qemu, loads, until, extra=(), timeout=CASE_TIMEOUT):
    """Run until a line containing `until` appears, QEMU exits, or the time-out; return the lines."""
    cmd = [qemu, '-M', 'netduinoplus2', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', *extra]
    for path, addr in loads:
        cmd += ['-device', f'loader,file={path},addr={addr:#x}']
    print('$ ' + ' '.join(cmd), flush=True)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    buf, lines = b'', []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print('     (time-out)')
                break
            r, _, _ = select.select([p.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                text = line.decode(errors='replace').rstrip('\r')
                print('  | ' + text, flush=True)
                lines.append(text)
                if until in text:
                    return lines
        if buf:
            lines.append(buf.decode(errors='replace'))
        return lines
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def index_of(lines, text):
    for i, l in enumerate(lines):
        if text in l:
            return i
    return -1


def pack(canfleetctl, app_bin, out, version, release, hw_id):
    cmd = [canfleetctl, 'image', 'pack', app_bin, '--size', '256K', '--version', version, '--hw-id', str(hw_id),
           '--release', str(release), '-o', out]
    print('$ ' + ' '.join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print(r.stdout + r.stderr)
    check(r.returncode == 0 and os.path.getsize(out) == 0x40000, f'canfleetctl image pack -> 256 KB image')
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', required=True)
    ap.add_argument('--canfleetctl', required=True)
    ap.add_argument('--qemu', default='qemu-system-arm')
    a = ap.parse_args()
    boot_bin = os.path.join(a.images, 'canfleet-boot.bin')
    app_bin = os.path.join(a.images, 'canfleet-app.bin')

    with tempfile.TemporaryDirectory(prefix='cf-stm32-qemu-') as tmp:
        good = os.path.join(tmp, 'app-1.2.3.img')
        if not pack(a.canfleetctl, app_bin, good, '1.2.3', 4, 1):
            return 1
        prov = os.path.join(tmp, 'prov.bin')
        with open(prov, 'wb') as f:
            f.write(mkprovision.record(5, 0x685, 0x6C5, 1, bytes(range(32))))

        # 1. A valid B: the bootloader checks it, hands over and jumps; the app prints its packed version.
        print('--- case 1: valid application, provisioned node', flush=True)
        lines = run_qemu(a.qemu, [(boot_bin, 0x08000000), (prov, 0x0800C000), (good, 0x08020000)],
                         until='can: ')
        jump = index_of(lines, 'boot: jumping to the application at 0x08020000')
        banner = index_of(lines, 'canfleet-app v1.2.3 release 4 hw 0x0001')
        check(index_of(lines, 'provision: station 5 cro 0x685 dto 0x6C5 hw 0x0001') >= 0,
              'the bootloader read the provisioning record')
        check(index_of(lines, 'boot: B valid: v1.2.3 release 4') >= 0, 'the bootloader found B valid (CRC, trailer)')
        check(jump >= 0, 'the bootloader says it jumps')
        check(banner > jump >= 0, 'the application banner with version 1.2.3 follows the jump')
        check(banner >= 0 and 'boot #1' in lines[banner], 'the handoff block carried the boot count')
        check(index_of(lines, 'crc: CRC unit failed its self-test, using the software CRC') >= 0,
              'no CRC unit in QEMU: detected, software CRC used')
        check(index_of(lines, 'clock 16 MHz HSI (fallback') >= 0, 'no RCC in QEMU: HSI fallback logged')
        check(index_of(lines, 'can: init failed') > banner, 'no CAN in QEMU: the app logs it and keeps running')
        check(index_of(lines, 'fault:') < 0, 'no fault')

        # 2. One byte of the application corrupted: the bootloader refuses, says why, stays in recovery.
        print('--- case 2: one byte of B corrupted, unprovisioned node', flush=True)
        bad = os.path.join(tmp, 'app-corrupt.img')
        data = bytearray(open(good, 'rb').read())
        data[os.path.getsize(app_bin) // 2] ^= 0x01
        open(bad, 'wb').write(data)
        lines = run_qemu(a.qemu, [(boot_bin, 0x08000000), (bad, 0x08020000)], until='can: ')
        check(index_of(lines, 'boot: B invalid: CRC mismatch') >= 0, 'the bootloader says: B invalid, CRC mismatch')
        check(index_of(lines, 'boot: no valid application: recovery mode') >= 0, 'recovery mode (CCP) entered')
        check(index_of(lines, 'jumping') < 0 and index_of(lines, 'canfleet-app') < 0, 'no jump, no application')
        check(index_of(lines, 'defaults (UNLOCK refused): station 1 cro 0x681') >= 0,
              'without a provisioning record: station 1 defaults, UNLOCK refused')

        # 3. The same image staged in C: the bootloader tries the install. QEMU's flash is ROM and its
        # controller a stub, so B cannot verify after the copy: C must be kept, and no erase may
        # target area A. -d unimp logs every access to the flash controller's registers. The install
        # journal (sector 4) is loaded erased, as on a factory-fresh chip; in ROM it cannot take the
        # failure record either, so the bootloader must not reset to retry (that would loop): it goes
        # on to B, which QEMU's ROM still holds.
        erased_journal = os.path.join(tmp, 'journal-erased.bin')
        with open(erased_journal, 'wb') as f:
            f.write(b'\xff' * 0x10000)
        print('--- case 3: install attempt from C (flash controller traced)', flush=True)
        trace = os.path.join(tmp, 'unimp.log')
        lines = run_qemu(a.qemu, [(boot_bin, 0x08000000), (erased_journal, 0x08010000), (good, 0x08020000),
                                  (good, 0x08060000)],
                         until='boot: jumping to the application', extra=['-no-reboot', '-d', 'unimp', '-D', trace])
        tried = index_of(lines, 'boot: installing the staged image')
        uncounted = index_of(lines, 'boot: install failed and the journal cannot count it')
        check(tried >= 0 and index_of(lines, 'compacting') < 0, 'an erased journal: the install is tried at once')
        check(uncounted > tried >= 0, 'the failed install could not be recorded in ROM, and the log says so')
        check('reset' not in lines and index_of(lines, 'boot: jumping to the application') > uncounted,
              'no reset to retry (no loop): the bootloader goes on to B')
        erased = erased_sectors(trace)
        print(f'     sectors erased: {erased}')
        check(bool(erased), 'the install erased something (the trace works)')
        check(all(s >= 5 for s in erased), 'no erase of area A (sectors 0-4)')
        check(set(erased) <= {5, 6}, 'only B was erased: C kept because B did not verify')
        check(all(((int(l.rsplit('value ', 1)[1].rstrip(')\n'), 16) >> 8) & 3) == 2
                  for l in open(trace, errors='replace')
                  if 'Flash Int: unimplemented device write' in l and 'offset 0x010,' in l
                  and int(l.rsplit('value ', 1)[1].rstrip(')\n'), 16) & 2),
              'sector erases use PSIZE x32')

        # 4. QEMU's own unloaded flash reads 0x00: the journal looks full of foreign data. The bootloader
        # erases sector 4 (and nothing else of A); the stub erases nothing, so the journal is ignored,
        # the install is still tried once, and again no reset.
        print('--- case 4: an install journal that will not erase', flush=True)
        trace = os.path.join(tmp, 'unimp4.log')
        lines = run_qemu(a.qemu, [(boot_bin, 0x08000000), (good, 0x08020000), (good, 0x08060000)],
                         until='boot: jumping to the application', extra=['-no-reboot', '-d', 'unimp', '-D', trace])
        check(index_of(lines, 'boot: the install journal cannot be erased, not counting') >= 0,
              'the journal did not erase: the log says it is ignored')
        check(index_of(lines, 'boot: installing the staged image') >= 0, 'the install is tried anyway')
        check('reset' not in lines and index_of(lines, 'boot: jumping to the application') >= 0,
              'no reset to retry: the bootloader goes on to B')
        erased = erased_sectors(trace)
        print(f'     sectors erased: {erased}')
        check(erased[:1] == [4] and all(s >= 5 for s in erased[1:]),
              'the journal sector first, then no other sector of area A')

    if failures:
        print(f'{len(failures)} check(s) failed', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
