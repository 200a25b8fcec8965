#!/usr/bin/python3
"""canfleetctl bundle create / verify / inspect, driven as an operator would, held against the stock
`openssl cms` both ways and signing through a PKCS#11 token (SoftHSM, OpenSSL's pkcs11 engine).

Usage: test-bundle-tool.py CANFLEETCTL MKCA_SH
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

CANFLEETCTL = None
MKCA = None
AREA = 0x40000
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def wr(path, data):
    with open(path, "wb") as f:
        f.write(data)


def fake_app(n=3000):
    head = struct.pack("<II", 0x20020000, 0x08020199) + struct.pack("<4I", *([0x080201A1] * 4))
    return head + bytes((i * 37 + 11) & 0xFF for i in range(n - len(head)))


class BundleTool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="canfleet-bundle-tool-")
        cls.dir = cls._tmp.name
        subprocess.run(["sh", MKCA, cls.dir], check=True)
        with open(os.path.join(cls.dir, "app.bin"), "wb") as f:
            f.write(fake_app())
        subprocess.run([CANFLEETCTL, "image", "pack", cls.path("app.bin"), "--version", "1.4.0", "--hw-id", "1",
                        "--release", "12", "--build-time", "1700000000", "-o", cls.path("app.img")],
                       check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def ctl(self, *args, env=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.run([CANFLEETCTL, *args], capture_output=True, text=True, env=e, timeout=60)

    def create(self, out, *signers, extra=()):
        args = ["bundle", "create", self.path("app.img"), "--intermediate", self.path("inter.crt"), "-o", self.path(out)]
        for s in signers:
            args += ["--cert", self.path(s + ".crt"), "--key", self.path(s + ".key")]
        p = self.ctl(*args, *extra)
        self.assertEqual(p.returncode, 0, p.stderr)
        return self.path(out)

    def verify(self, f, *extra):
        return self.ctl("bundle", "verify", f, "--keyring", self.path("keyring.pem"), *extra)

    @staticmethod
    def cms_of(f):
        data = rd(f)
        n = int.from_bytes(data[-8:], "big")
        return data[AREA:AREA + n]

    # ---- ours -----------------------------------------------------------------------------------

    def test_create_verify_inspect(self):
        f = self.create("a.cfb", "sign", extra=("--description", "nightly 42"))
        p = self.verify(f)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("valid: version 1.4.0, hw id 0x0001, release 12", p.stdout)
        self.assertIn("CN=release signer", p.stdout)

        p = self.verify(f, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertTrue(j["valid"])
        self.assertIsNone(j["failed_check"])
        img = rd(self.path("app.img"))
        self.assertEqual(j["manifest"], {"format": "canfleet-bundle-1", "hw_id": 1, "version": "1.4.0", "release": 12,
                                         "image_size": AREA, "image_sha256": hashlib.sha256(img).hexdigest(),
                                         "description": "nightly 42"})
        self.assertEqual(j["signers"][0]["trust"], "trusted")
        self.assertEqual(j["signers"][0]["issuer"], "CN=canfleet test intermediate")

        p = self.ctl("bundle", "inspect", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        for s in ("canfleet-bundle-1", "release          12", "signer 1:          CN=release signer",
                  "issuer           CN=canfleet test intermediate", "image trailer:", "build time       2023-11-14T22:13:20Z",
                  "nightly 42", "all passed"):
            self.assertIn(s, p.stdout)
        p = self.ctl("bundle", "inspect", "--json", f)
        j = json.loads(p.stdout)
        self.assertFalse(j["trust_checked"])
        self.assertEqual(j["signers"][0]["trust"], "not checked")
        self.assertRegex(j["signers"][0]["not_after"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(j["image"]["release"], 12)
        # the bundle's image is the packed image, byte for byte
        self.assertEqual(rd(f)[:AREA], img)

    def test_refused(self):
        f = self.create("b.cfb", "sign")
        data = bytearray(rd(f))
        data[1000] ^= 1
        bad = self.path("b-flipped.cfb")
        wr(bad, data)
        p = self.verify(bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused: sha256: the image's sha256", p.stderr)
        p = self.verify(bad, "--json")
        self.assertEqual(p.returncode, 1)
        j = json.loads(p.stdout)
        self.assertFalse(j["valid"])
        self.assertEqual(j["failed_check"], "sha256")
        p = self.ctl("bundle", "inspect", bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("CN=release signer", p.stdout)  # what could be read is shown

        wr(bad, bytes(data[:-20]))
        p = self.verify(bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused: size:", p.stderr)
        # a plain image is no bundle
        p = self.verify(self.path("app.img"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("refused: size:", p.stderr)
        # another CA's keyring
        p = self.ctl("bundle", "verify", f, "--keyring", self.path("other-root.crt"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("trust: no signer chains to the keyring: signer 1 (CN=release signer): unable to get local "
                      "issuer certificate", p.stderr)

    def test_signers(self):
        f = self.create("c.cfb", "other", "sign")
        p = self.verify(f, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual([s["trust"] for s in j["signers"]], ["refused", "trusted"])
        f = self.create("d.cfb", "email")
        p = self.verify(f)
        self.assertEqual(p.returncode, 1)
        self.assertIn("extendedKeyUsage does not include codeSigning", p.stderr)
        p = self.verify(f, "--json")
        self.assertEqual(p.returncode, 1)
        j = json.loads(p.stdout)
        self.assertEqual(j["failed_check"], "trust")
        self.assertEqual(j["signers"][0]["trust"], "refused")
        self.assertIn("codeSigning", j["signers"][0]["trust_error"])
        self.assertEqual(j["manifest"], None)  # not read: the manifest comes after the trust check

    def test_usage(self):
        img = self.path("app.img")
        for args in (["bundle"], ["bundle", "frob"], ["bundle", "verify", img],
                     ["bundle", "create", img, "--cert", "x", "-o", "y"],
                     ["bundle", "create", img, "--cert", "a", "--key", "b", "--cert", "c", "-o", "y"],
                     ["bundle", "create", img, "--cert", "a", "--key", "b"],
                     ["bundle", "inspect"], ["bundle", "inspect", "--keyring", "k", img]):
            p = self.ctl(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.startswith("canfleetctl bundle"), p.stderr)
        self.assertEqual(self.ctl("bundle", "--help").returncode, 0)
        self.assertIn("openssl cms -sign -binary -nodetach", self.ctl("help", "bundle").stdout)
        p = self.ctl("bundle", "create", img, "--cert", self.path("sign.crt"), "--key", self.path("email.key"),
                     "-o", self.path("x.cfb"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not belong to certificate", p.stderr)
        self.assertFalse(os.path.exists(self.path("x.cfb")))

    # ---- against the stock openssl cms -----------------------------------------------------------

    def test_stock_openssl_bundle_accepted(self):
        img = rd(self.path("app.img"))
        manifest = {"format": "canfleet-bundle-1", "hw_id": 1, "version": "1.4.0", "release": 12,
                    "image_size": AREA, "image_sha256": hashlib.sha256(img).hexdigest(),
                    "built_by": "ci", "description": "stock tools"}
        with open(self.path("manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        # the recipe of README.md and docs/design.md §6, word for word
        subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "DER",
                        "-in", self.path("manifest.json"), "-signer", self.path("sign.crt"),
                        "-inkey", self.path("sign.key"), "-certfile", self.path("inter.crt"),
                        "-out", self.path("m.cms")], check=True)
        # README's assembly, run by the shell as an operator would
        subprocess.run(["sh", "-c", "cat app.img m.cms > stock.cfb && python3 -c 'import os,sys; "
                        "sys.stdout.buffer.write(os.path.getsize(\"m.cms\").to_bytes(8,\"big\"))' >> stock.cfb"],
                       cwd=self.dir, check=True)
        cms = rd(self.path("m.cms"))
        self.assertEqual(rd(self.path("stock.cfb")), img + cms + len(cms).to_bytes(8, "big"))
        p = self.verify(self.path("stock.cfb"), "--json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["manifest"]["description"], "stock tools")

        # the same recipe over a manifest that disagrees with the image: refused by our check
        manifest["release"] = 11
        with open(self.path("manifest.json"), "w") as f:
            json.dump(manifest, f)
        subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "DER",
                        "-in", self.path("manifest.json"), "-signer", self.path("sign.crt"),
                        "-inkey", self.path("sign.key"), "-certfile", self.path("inter.crt"),
                        "-out", self.path("m.cms")], check=True)
        cms = rd(self.path("m.cms"))
        with open(self.path("stock2.cfb"), "wb") as f:
            f.write(img + cms + len(cms).to_bytes(8, "big"))
        p = self.verify(self.path("stock2.cfb"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("trailer: manifest release 11 != image trailer release 12", p.stderr)

    def test_openssl_verifies_ours(self):
        f = self.create("e.cfb", "sign", "noeku")
        with open(self.path("e.cms"), "wb") as o:
            o.write(self.cms_of(f))
        # -purpose any: openssl's default S/MIME purpose refuses code-signing certificates (RAUC #1124)
        p = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", self.path("e.cms"),
                            "-CAfile", self.path("keyring.pem"), "-purpose", "any", "-out", self.path("e.json")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.path("e.json")) as f:
            m = json.load(f)
        self.assertEqual(m["release"], 12)
        self.assertEqual(m["image_sha256"], hashlib.sha256(rd(self.path("app.img"))).hexdigest())
        p = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", self.path("e.cms")],
                           capture_output=True, text=True, check=True)
        self.assertIn("contentType: pkcs7-signedData", p.stdout)
        self.assertIn("eContentType: pkcs7-data", p.stdout)
        self.assertEqual(p.stdout.count("signatureAlgorithm"), 2)

    # ---- PKCS#11 ----------------------------------------------------------------------------------

    def test_pkcs11_softhsm(self):
        hsm = self.path("hsm")
        os.makedirs(os.path.join(hsm, "tokens"))
        conf = os.path.join(hsm, "softhsm2.conf")
        with open(conf, "w") as f:
            f.write(f"directories.tokendir = {hsm}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
        env = dict(os.environ, SOFTHSM2_CONF=conf)

        def run(*args):
            subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)

        run("softhsm2-util", "--init-token", "--free", "--label", "canfleet", "--pin", "1234", "--so-pin", "5678")
        # the key is made inside the token and never leaves it; its certificate is issued for the
        # public key read back (-force_pubkey over any request)
        run("pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "canfleet", "--login", "--pin", "1234",
            "--keypairgen", "--key-type", "EC:prime256v1", "--id", "42", "--label", "release")
        run("pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", "canfleet", "--read-object",
            "--type", "pubkey", "--id", "42", "-o", os.path.join(hsm, "pub.der"))
        run("openssl", "pkey", "-pubin", "-inform", "DER", "-in", os.path.join(hsm, "pub.der"),
            "-out", os.path.join(hsm, "pub.pem"))
        run("openssl", "x509", "-req", "-in", self.path("sign.csr"), "-force_pubkey", os.path.join(hsm, "pub.pem"),
            "-subj", "/CN=hsm signer", "-CA", self.path("inter.crt"), "-CAkey", self.path("inter.key"),
            "-set_serial", "77", "-days", "30", "-extfile", self.path("ext.cnf"), "-extensions", "codesign",
            "-out", os.path.join(hsm, "hsm.crt"))

        uri = "pkcs11:token=canfleet;object=release;type=private"
        out = self.path("hsm.cfb")
        base = ["bundle", "create", self.path("app.img"), "--cert", os.path.join(hsm, "hsm.crt"), "--key"]
        e = {"SOFTHSM2_CONF": conf, "CANFLEET_PKCS11_MODULE": SOFTHSM_MODULE}
        p = self.ctl(*base, uri, "--intermediate", self.path("inter.crt"), "-o", out,
                     env=dict(e, CANFLEET_PKCS11_PIN="1234"))
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.verify(out, "--json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["signers"][0]["subject"], "CN=hsm signer")
        # the PIN in the URI, and a file key beside the token key: two signers
        p = self.ctl(*base, uri + ";pin-value=1234", "--cert", self.path("sign.crt"), "--key", self.path("sign.key"),
                     "--intermediate", self.path("inter.crt"), "-o", self.path("hsm2.cfb"), env=e)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.verify(self.path("hsm2.cfb"), "--json")
        self.assertEqual([s["trust"] for s in json.loads(p.stdout)["signers"]], ["trusted", "trusted"])
        # a wrong PIN signs nothing
        p = self.ctl(*base, uri, "-o", self.path("hsm3.cfb"), env=dict(e, CANFLEET_PKCS11_PIN="9999"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("pkcs11 engine: cannot load key", p.stderr)
        self.assertFalse(os.path.exists(self.path("hsm3.cfb")))


if __name__ == "__main__":
    CANFLEETCTL = os.path.abspath(sys.argv[1])
    MKCA = os.path.abspath(sys.argv[2])
    unittest.main(argv=sys.argv[:1], verbosity=2)
