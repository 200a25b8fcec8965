#!/usr/bin/python3
"""Checks of the STM32F4 and STM32F7 images of a cross build: ELF structure, flash budgets, a warning-free rebuild.

  fw_images.py elf    IMAGES_DIR
  fw_images.py budget IMAGES_DIR
  fw_images.py elf-f7 IMAGES_DIR      (IMAGES_DIR of the F4: the F7's are in ../stm32f7)
  fw_images.py build  SOURCE_ROOT     (a fresh cross build with -Dwerror=true in a temporary directory)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from elfinfo import Elf  # noqa: E402

SRAM = (0x20000000, 0x20020000)
CCM = (0x10000000, 0x10010000)
AREA_A = (0x08000000, 0x08020000)
AREA_B = (0x08020000, 0x08060000)
TRAILER_B = 0x0805FFC0
PROVISION_SECTOR = 0x0800C000
FLASH_CTRL = (0x40023C00, 0x40024000)
BOOT_BUDGET = 32 * 1024

failures = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


def sp_ok(sp):
    return sp % 4 == 0 and any(lo < sp <= hi for lo, hi in (SRAM, CCM))


def check_image(path, base, limit, name):
    elf = Elf(path)
    check(elf.e_machine == 40, f'{name}: ARM machine')
    flash_secs = sorted((s for s in elf.alloc_sections() if base <= s['addr'] < limit),
                        key=lambda s: s['addr'])
    check(bool(flash_secs) and flash_secs[0]['name'] == '.isr_vector' and flash_secs[0]['addr'] == base,
          f'{name}: .isr_vector is the first section in flash, at {base:#010x}')
    segs = elf.load_segments()
    check(bool(segs) and segs[0]['paddr'] == base, f'{name}: the first loaded segment starts at {base:#010x}')
    sp, reset = elf.word_at_paddr(base), elf.word_at_paddr(base + 4)
    check(sp_ok(sp), f'{name}: initial SP {sp:#010x} in SRAM/CCM')
    check(sp == elf.symbols['_estack'][0], f'{name}: initial SP is _estack')
    check(reset & 1 == 1, f'{name}: reset vector {reset:#010x} has the Thumb bit')
    check(reset & ~1 == elf.symbols['Reset_Handler'][0] & ~1, f'{name}: reset vector is Reset_Handler')
    check(base <= reset & ~1 < limit, f'{name}: reset vector inside [{base:#010x}, {limit:#010x})')
    end = max(s['paddr'] + s['filesz'] for s in segs)
    check(end <= limit, f'{name}: loaded content ends at {end:#010x} <= {limit:#010x}')
    # Every vector of the table: 0 (reserved) or a Thumb address inside the image.
    vt = elf.section('.isr_vector')
    bad = []
    for i in range(1, vt['size'] // 4):
        v = elf.word_at_paddr(base + 4 * i)
        if v and not (v & 1 and base <= v & ~1 < limit):
            bad.append(i)
    check(not bad, f'{name}: all {vt["size"] // 4 - 1} handler vectors are Thumb addresses in the image {bad}')
    # The .bin is what gets flashed: it must start with the same vector table.
    binpath = path[:-4] + '.bin'
    with open(binpath, 'rb') as f:
        head = f.read(8)
    check(head == sp.to_bytes(4, 'little') + reset.to_bytes(4, 'little'),
          f'{name}: {os.path.basename(binpath)} starts with the vector table')
    return elf


def functions_by_object(map_path):
    """Input sections of the link map: {function/section name: object file}."""
    out = {}
    text = open(map_path).read()
    for m in re.finditer(r'^ (\.(?:text|ramfunc)[.\w$]*)\s*\n?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$', text,
                         re.M):
        out[m.group(1)] = m.group(4)
    return out


def disasm_functions(elf_path):
    """{function: [instruction lines]} from objdump, code in flash and the RAM functions in .data."""
    funcs, cur = {}, None
    for args in (['-d'], ['-D', '-j', '.data']):
        out = subprocess.run(['arm-none-eabi-objdump', *args, '--no-show-raw-insn', elf_path], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r'^[0-9a-f]+ <([^>]+)>:$', line)
            if m:
                cur = m.group(1)
                funcs.setdefault(cur, [])
            elif cur and line.strip():
                funcs[cur].append(line)
    return funcs


def peripheral_addresses(lines, words):
    """Addresses a function reaches through a literal-pool base plus an immediate offset (the way GCC
    addresses peripheral registers): ldr rN, [pc, ...] then [rN, #off]. A heuristic that over-reports
    rather than misses: a register keeps its literal until it is loaded again."""
    regs, found = {}, set()
    for line in lines:
        m = re.search(r'\bldr(?:\.w)?\s+(r\d+|ip|lr), \[pc, #-?\d+\]\s+@ \(([0-9a-f]+)', line)
        if m:
            regs[m.group(1)] = words.get(int(m.group(2), 16))
            if regs[m.group(1)] is not None:
                found.add(regs[m.group(1)])
            continue
        for m in re.finditer(r'\[(r\d+|ip|lr)(?:, #(-?\d+))?\]', line):
            base = regs.get(m.group(1))
            if base is not None:
                found.add((base + int(m.group(2) or 0)) & 0xFFFFFFFF)
    return found


def pool_words(funcs):
    words = {}
    for lines in funcs.values():
        for line in lines:
            m = re.match(r'\s*([0-9a-f]+):\s+\.word\s+0x([0-9a-f]+)', line)
            if m:
                words[int(m.group(1), 16)] = int(m.group(2), 16)
    return words


def cmd_elf(images):
    boot = check_image(os.path.join(images, 'canfleet-boot.elf'), AREA_A[0], PROVISION_SECTOR, 'boot')
    check_image(os.path.join(images, 'canfleet-app.elf'), AREA_B[0], TRAILER_B, 'app')

    # The bootloader never writes area A but its journal sector: (1) the only functions that address
    # the flash controller are the HAL's flash and clock code; (2) both flash entry points call the
    # guard that refuses sectors 0-3 and addresses in A outside the journal (sector 4)
    # (tests/stm32/test-stm32-port.c proves the guard itself).
    bootelf = os.path.join(images, 'canfleet-boot.elf')
    funcs = disasm_functions(bootelf)
    objs = functions_by_object(os.path.join(images, 'canfleet-boot.map'))
    words = pool_words(funcs)
    flash_cr = FLASH_CTRL[0] + 0x10
    touching = sorted(f for f, lines in funcs.items() if flash_cr in peripheral_addresses(lines, words))
    stray = [f for f in touching
             if not objs.get('.text.' + f, objs.get('.ramfunc', '')).endswith('flash.c.o')]
    print('     functions writing or reading FLASH_CR:', ', '.join(touching))
    check(bool(touching), 'boot: the flash controller is addressed at all (the check sees something)')
    check(not stray, f'boot: only the flash HAL (flash.c) reaches FLASH_CR {stray}')
    for entry, guard in (('cf_hal_flash_erase_start', 'cf_stm32_erase_allowed'),
                         ('cf_hal_flash_program', 'cf_stm32_program_allowed')):
        calls = [l for l in funcs.get(entry, []) if re.search(r'\bbl\s+[0-9a-f]+ <' + guard + '>', l)]
        check(bool(calls), f'boot: {entry} calls {guard}')
    check(boot.symbols['cf_stm32_erase_allowed'][0] != 0, 'boot: the erase guard is linked in')


# The dual-bank F767 (docs/design.md §9): each image linked for both banks.
F7_BANKS = {1: 0x08000000, 2: 0x08100000}
F7_BANK_SIZE = 0x100000


def f7_flash_guard(images, name, base):
    """Only the F7's flash.c reaches FLASH_CR and FLASH_OPTCR1, and its entry points call the guards."""
    elfp = os.path.join(images, name + '.elf')
    funcs = disasm_functions(elfp)
    objs = functions_by_object(os.path.join(images, name + '.map'))
    words = pool_words(funcs)
    for reg, off in (('FLASH_CR', 0x10), ('FLASH_OPTCR1', 0x18)):
        addr = FLASH_CTRL[0] + off
        touching = sorted(f for f, lines in funcs.items() if addr in peripheral_addresses(lines, words))
        # the F7's own flash.c is 'libcfstm32f7.a.p/flash.c.o'; shared F4 files are '.._stm32f4_*.c.o'
        stray = [f for f in touching
                 if not objs.get('.text.' + f, objs.get('.ramfunc', '')).endswith('libcfstm32f7.a.p/flash.c.o')]
        print(f'     {name}: functions reaching {reg}:', ', '.join(touching))
        check(bool(touching), f'{name}: {reg} is addressed at all (the check sees something)')
        check(not stray, f'{name}: only the F7 flash HAL (stm32f7/flash.c) reaches {reg} {stray}')
    for entry, guard in (('cf_hal_flash_erase_start', 'cf_stm32f7_erase_allowed'),
                         ('cf_hal_flash_program', 'cf_stm32f7_program_allowed')):
        calls = [l for l in funcs.get(entry, []) if re.search(r'\bbl\s+[0-9a-f]+ <' + guard + '>', l)]
        check(bool(calls), f'{name}: {entry} calls {guard}')


def cmd_elf_f7(images):
    f7 = os.path.join(os.path.dirname(os.path.abspath(images)), 'stm32f7')
    for bank, bbase in F7_BANKS.items():
        boot = f'canfleet-f7-boot-bank{bank}'
        app = f'canfleet-f7-app-bank{bank}'
        check_image(os.path.join(f7, boot + '.elf'), bbase, bbase + 0xC000, boot)
        check_image(os.path.join(f7, app + '.elf'), bbase + 0x20000, bbase + 0x20000 + 0x3FFC0, app)
        f7_flash_guard(f7, boot, bbase)
        s = section_sizes(Elf(os.path.join(f7, boot + '.elf')))
        flash = sum(v for k, v in s.items() if k in ('.isr_vector', '.text', '.ARM.exidx', '.data'))
        print(f'{boot}: {flash} bytes of flash of a {BOOT_BUDGET}-byte budget ({100 * flash / BOOT_BUDGET:.1f} %)')
        check(0 < flash < BOOT_BUDGET, f'{boot}: {flash} bytes < {BOOT_BUDGET} (32 KB)')
        attrs = subprocess.run(['arm-none-eabi-readelf', '-A', os.path.join(f7, app + '.elf')], check=True,
                               capture_output=True, text=True).stdout
        check('FPv5' in attrs, f'{app}: built for the Cortex-M7 FPU (FPv5-D16)')
    # The two links differ only in where they run: the same code size.
    sizes = [section_sizes(Elf(os.path.join(f7, f'canfleet-f7-app-bank{b}.elf')))['.text'] for b in F7_BANKS]
    check(sizes[0] == sizes[1], f'the bank 1 and bank 2 links of the application have the same code size {sizes}')


def section_sizes(elf):
    return {s['name']: s['size'] for s in elf.alloc_sections()}


def object_sizes(map_path):
    """Bytes of code, read-only and initialised data per object file, from the link map (after --gc-sections)."""
    sizes = {}
    text = open(map_path).read()
    for m in re.finditer(r'^ \.(?:text|rodata|data|ramfunc)[.\w$]*\s*\n?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$',
                         text, re.M):
        obj = re.sub(r'.*[/(]', '', m.group(3)).rstrip(')')
        sizes[obj] = sizes.get(obj, 0) + int(m.group(2), 16)
    return sizes


def cmd_budget(images):
    boot = Elf(os.path.join(images, 'canfleet-boot.elf'))
    s = section_sizes(boot)
    flash = sum(v for k, v in s.items() if k in ('.isr_vector', '.text', '.ARM.exidx', '.data'))
    print(f'canfleet-boot: {flash} bytes of flash (.isr_vector {s.get(".isr_vector", 0)}, .text '
          f'{s.get(".text", 0)}, .data {s.get(".data", 0)}) of a {BOOT_BUDGET}-byte budget '
          f'({100 * flash / BOOT_BUDGET:.1f} %)')
    check(0 < flash < BOOT_BUDGET, f'boot: {flash} bytes < {BOOT_BUDGET} (32 KB)')
    binsize = os.path.getsize(os.path.join(images, 'canfleet-boot.bin'))
    check(binsize == flash, f'boot: canfleet-boot.bin is {binsize} bytes, the sum of its loaded sections')

    app = Elf(os.path.join(images, 'canfleet-app.elf'))
    s = section_sizes(app)
    aflash = sum(v for k, v in s.items() if k in ('.isr_vector', '.text', '.ARM.exidx', '.data'))
    print(f'canfleet-app: {aflash} bytes of flash of 261056 available in B')
    per_obj = object_sizes(os.path.join(images, 'canfleet-app.map'))
    parts = {
        'CCP': ['.._core_ccp-slave.c.o', 'src_ccp.c.o', 'src_seedkey.c.o', 'src_sha256.c.o'],
        'flash': ['flash.c.o', 'flash-policy.c.o', 'crc-unit.c.o', 'src_crc32.c.o', 'src_image.c.o',
                  'src_layout.c.o'],
    }
    total = 0
    for part, objs in parts.items():
        n = 0
        for o in objs:
            print(f'     app {part:5} {o:28} {per_obj.get(o, 0):6d}')
            n += per_obj.get(o, 0)
        print(f'canfleet-app: {part} part {n} bytes')
        check(n > 0, f'app: the {part} part is linked in ({n} bytes)')
        total += n
    print(f'canfleet-app: CCP + flash {total} bytes ({100 * total / aflash:.0f} % of the image)')
    check(per_obj.get('.._core_ccp-slave.c.o', 0) > 0 and per_obj.get('flash.c.o', 0) > 0,
          'app: ccp-slave and the flash HAL are in the image')


def cmd_build(root):
    cross = os.path.join(root, 'firmware', 'stm32f4', 'cross-arm-none-eabi.ini')
    with tempfile.TemporaryDirectory(prefix='cf-stm32-build-') as tmp:
        b = os.path.join(tmp, 'build')
        r = subprocess.run(['meson', 'setup', b, root, '--cross-file', cross, '-Dwerror=true'],
                           capture_output=True, text=True)
        check(r.returncode == 0, 'meson setup of a fresh cross build')
        if r.returncode:
            print(r.stdout, r.stderr)
            return
        r = subprocess.run(['ninja', '-C', b, '-j2'], capture_output=True, text=True)
        out = r.stdout + r.stderr
        warnings = [l for l in out.splitlines() if re.search(r'warning', l, re.I)]
        check(r.returncode == 0, 'the cross build (werror) succeeds')
        check(not warnings, f'no warnings from compiler or linker ({len(warnings)})')
        for l in warnings[:20]:
            print('     ' + l)
        if r.returncode:
            print(out[-4000:])
        for img in ('stm32f4/canfleet-boot', 'stm32f4/canfleet-app', 'stm32f7/canfleet-f7-boot-bank1',
                    'stm32f7/canfleet-f7-boot-bank2', 'stm32f7/canfleet-f7-app-bank1', 'stm32f7/canfleet-f7-app-bank2'):
            for ext in ('.elf', '.bin'):
                p = os.path.join(b, 'firmware', img + ext)
                check(os.path.isfile(p) and os.path.getsize(p) > 0, f'{img}{ext} built')
        for port in ('stm32f4', 'stm32f7'):
            report = os.path.join(b, 'firmware', port, 'size-report.txt')
            check(os.path.isfile(report), f'{port} size report written')
            if os.path.isfile(report):
                print(open(report).read())


def main():
    cmds = {'elf': cmd_elf, 'budget': cmd_budget, 'elf-f7': cmd_elf_f7, 'build': cmd_build}
    if len(sys.argv) != 3 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    cmds[sys.argv[1]](sys.argv[2])
    if failures:
        print(f'{len(failures)} check(s) failed', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
