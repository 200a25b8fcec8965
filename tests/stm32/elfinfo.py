"""A minimal ELF32 little-endian reader for the firmware tests: sections, program headers, symbols."""
import struct


class Elf:
    def __init__(self, path):
        with open(path, 'rb') as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b'\x7fELF' or d[4] != 1 or d[5] != 1:
            raise ValueError(f'{path}: not a 32-bit little-endian ELF')
        (self.e_type, self.e_machine, _, self.entry, phoff, shoff, self.flags, _, phentsize, phnum, shentsize,
         shnum, shstrndx) = struct.unpack_from('<HHIIIIIHHHHHH', d, 16)
        self.segments = []
        for i in range(phnum):
            p_type, offset, vaddr, paddr, filesz, memsz, flags, align = struct.unpack_from(
                '<8I', d, phoff + i * phentsize)
            self.segments.append(dict(type=p_type, offset=offset, vaddr=vaddr, paddr=paddr, filesz=filesz,
                                      memsz=memsz, flags=flags))
        raw = []
        for i in range(shnum):
            raw.append(struct.unpack_from('<10I', d, shoff + i * shentsize))
        strtab = raw[shstrndx]
        self.sections = []
        for s in raw:
            name = self._str(strtab[4], s[0])
            self.sections.append(dict(name=name, type=s[1], flags=s[2], addr=s[3], offset=s[4], size=s[5],
                                      link=s[6]))
        self.symbols = {}
        for s in self.sections:
            if s['type'] == 2:  # SHT_SYMTAB
                strsec = self.sections[s['link']]
                for off in range(s['offset'], s['offset'] + s['size'], 16):
                    name, value, size, info, other, shndx = struct.unpack_from('<IIIBBH', d, off)
                    n = self._str(strsec['offset'], name)
                    if n:
                        self.symbols.setdefault(n, (value, size, info & 0xF))

    def _str(self, base, off):
        end = self.data.index(b'\0', base + off)
        return self.data[base + off:end].decode()

    def section(self, name):
        for s in self.sections:
            if s['name'] == name:
                return s
        return None

    def load_segments(self):
        """PT_LOAD segments with file content, by load (physical) address."""
        return sorted((s for s in self.segments if s['type'] == 1 and s['filesz']), key=lambda s: s['paddr'])

    def word_at_paddr(self, addr):
        for s in self.load_segments():
            if s['paddr'] <= addr < s['paddr'] + s['filesz']:
                return struct.unpack_from('<I', self.data, s['offset'] + addr - s['paddr'])[0]
        raise KeyError(hex(addr))

    def alloc_sections(self):
        """Sections taking space in the image (SHF_ALLOC, not NOBITS)."""
        return [s for s in self.sections if s['flags'] & 2 and s['type'] != 8 and s['size']]
