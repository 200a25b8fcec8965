#!/usr/bin/python3
"""Make the 64-byte factory provisioning record for sector 3 (0x0800C000); see provision.h for the layout.

  mkprovision.py --station 5 --hw-id 0x0001 --fleet-key fleet.key --uid 0123...(24 hex) -o prov.bin
  st-flash write prov.bin 0x0800C000
"""
import argparse
import hashlib
import hmac
import struct
import sys

MAGIC = 0x52504643
LAYOUT = 1


def crc32_stm32(data):
    """The STM32 CRC unit over little-endian words (canfleet/crc32.h)."""
    crc = 0xFFFFFFFF
    for (word,) in struct.iter_unpack('<I', data):
        crc ^= word
        for _ in range(32):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def record(station, cro, dto, hw_id, secret, echo=False, bitrate=0):
    if len(secret) != 32:
        raise ValueError('the node secret is 32 bytes')
    body = struct.pack('<IHHIIHBBI32sI', MAGIC, LAYOUT, station, cro, dto, hw_id, 1 if echo else 0, 0,
                       bitrate, secret, 0)
    assert len(body) == 60
    return body + struct.pack('<I', crc32_stm32(body))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--station', type=lambda s: int(s, 0), required=True)
    p.add_argument('--cro-base', type=lambda s: int(s, 0), default=0x680)
    p.add_argument('--dto-base', type=lambda s: int(s, 0), default=0x6C0)
    p.add_argument('--hw-id', type=lambda s: int(s, 0), required=True)
    p.add_argument('--bitrate', type=int, default=0, help='CAN bit rate, 0 = 500000')
    p.add_argument('--echo', action='store_true', help='seed & key of the seed demo (key = 00 00 seed)')
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument('--node-secret', help='64 hexadecimal characters')
    g.add_argument('--fleet-key', help='file with the fleet key (64 hexadecimal characters); needs --uid')
    p.add_argument('--uid', help='the node\'s 96-bit unique ID, 24 hexadecimal characters (bytes as read from 0x1FFF7A10)')
    p.add_argument('-o', '--output', required=True)
    a = p.parse_args()

    if a.node_secret:
        secret = bytes.fromhex(a.node_secret)
    else:
        if not a.uid:
            p.error('--fleet-key needs --uid')
        fleet = bytes.fromhex(open(a.fleet_key).read().strip())
        uid = bytes.fromhex(a.uid)
        if len(fleet) != 32 or len(uid) != 12:
            p.error('the fleet key is 32 bytes, the UID 12')
        secret = hmac.new(fleet, b'canfleet-node-v1' + uid, hashlib.sha256).digest()
    rec = record(a.station, a.cro_base + a.station, a.dto_base + a.station, a.hw_id, secret, a.echo, a.bitrate)
    with open(a.output, 'wb') as f:
        f.write(rec)
    return 0


if __name__ == '__main__':
    sys.exit(main())
