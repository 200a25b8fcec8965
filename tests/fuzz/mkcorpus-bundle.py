#!/usr/bin/python3
"""Write the seed corpus of fuzz-bundle (tests/fuzz/corpus/bundle): run it again after changing the
record format of fuzz-bundle.c or its fixture image. Signs with the stock `openssl cms` and the test
key kept in fuzz-bundle.c; leaves crash-* files alone.
"""
import hashlib
import json
import os
import re
import struct
import subprocess
import tempfile

from mkcorpus import AREA, HERE, crc32_stm, write

PAYLOAD_LEN = 512


def fixture_image():
    """The image fuzz-bundle.c's make_image() builds."""
    payload = bytearray(struct.pack('<II', 0x20020000, 0x08020199))
    payload += bytes((k * 37 + 11) & 0xFF for k in range(8, PAYLOAD_LEN))
    area = bytearray(b'\xff' * AREA)
    area[:PAYLOAD_LEN] = payload
    area[AREA - 64:AREA - 4] = struct.pack('<IHHBBHIIII', 0x4D494643, 1, 1, 1, 4, 0, 12, PAYLOAD_LEN, AREA,
                                           1700000000) + hashlib.sha256(payload).digest()
    area[AREA - 4:] = struct.pack('<I', crc32_stm(bytes(area[:AREA - 4])))
    return bytes(area)


def pems():
    src = open(os.path.join(HERE, 'fuzz-bundle.c')).read()
    cert_lines = re.findall(r'"([^"]*)\\n"', src.split('fuzz_cert[] =')[1].split(';')[0])
    key = re.search(r'-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----', src, re.S).group(0)
    return '\n'.join(cert_lines) + '\n', key + '\n'


def main():
    image = fixture_image()
    sha = hashlib.sha256(image).hexdigest()
    cert, key = pems()
    with tempfile.TemporaryDirectory() as d:
        def p(name):
            return os.path.join(d, name)
        open(p('cert.pem'), 'w').write(cert)
        open(p('key.pem'), 'w').write(key)
        # a second signer the keyring does not know
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                        '-nodes', '-keyout', p('k2.pem'), '-out', p('c2.pem'), '-days', '36500',
                        '-subj', '/CN=unknown'], check=True, capture_output=True)

        def cms(manifest, *extra, signers=(('cert.pem', 'key.pem'),)):
            open(p('m.json'), 'w').write(manifest if isinstance(manifest, str) else json.dumps(manifest))
            args = ['openssl', 'cms', '-sign', '-binary', '-outform', 'DER', '-in', p('m.json'), '-out', p('m.cms')]
            for c, k in signers:
                args += ['-signer', p(c), '-inkey', p(k)]
            subprocess.run(args + (list(extra) or ['-nodetach']), check=True)
            return open(p('m.cms'), 'rb').read()

        good = {'format': 'canfleet-bundle-1', 'hw_id': 1, 'version': '1.4.0', 'release': 12,
                'image_size': AREA, 'image_sha256': sha}
        valid = cms(good)
        write('bundle', 'valid', b'\0' + valid)
        write('bundle', 'valid-inspect', b'\3' + valid)
        write('bundle', 'valid-length', b'\2' + struct.pack('>Q', len(valid)) + valid)
        write('bundle', 'length-zero', b'\2' + struct.pack('>Q', 0) + valid)
        write('bundle', 'length-huge', b'\2' + struct.pack('>Q', 0x10001) + valid)
        write('bundle', 'extra-keys', b'\0' + cms(dict(good, description='fuzz', build={'ci': [1, None]})))
        write('bundle', 'two-signers', b'\0' + cms(good, '-nodetach',
                                                   signers=(('c2.pem', 'k2.pem'), ('cert.pem', 'key.pem'))))
        write('bundle', 'untrusted', b'\0' + cms(good, signers=(('c2.pem', 'k2.pem'),)))
        write('bundle', 'detached', b'\0' + cms(good, '-md', 'sha256'))  # no -nodetach
        write('bundle', 'nocerts', b'\0' + cms(good, '-nodetach', '-nocerts'))
        write('bundle', 'other-release', b'\0' + cms(dict(good, release=11)))
        write('bundle', 'other-sha', b'\0' + cms(dict(good, image_sha256='0' * 64)))
        write('bundle', 'bad-schema', b'\0' + cms(dict(good, version='1.4')))
        write('bundle', 'manifest', b'\1' + json.dumps(dict(good, description='x')).encode())
        write('bundle', 'manifest-missing', b'\1' + json.dumps({'format': 'canfleet-bundle-1', 'hw_id': 1}).encode())
        write('bundle', 'manifest-types', b'\1' + b'{"format": "canfleet-bundle-1", "hw_id": 1.5, "release": -1}')


if __name__ == '__main__':
    main()
