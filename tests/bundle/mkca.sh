#!/bin/sh
# The test PKI of the bundle tests, made with the stock openssl command in DIR (a fresh temp dir):
#   root.crt             test root CA, the keyring (keyring.pem)
#   inter.crt            intermediate CA under the root (carried in bundles with --intermediate)
#   sign.{crt,key}       code-signing leaf under the intermediate (EKU codeSigning)
#   email.{crt,key}      leaf with EKU emailProtection only (must be refused)
#   noeku.{crt,key}      leaf without any EKU, RSA key (must be accepted)
#   expired.{crt,key}    code-signing leaf valid 2020-2021 only
#   other-root.crt, other.{crt,key}  an unrelated CA and its code-signing leaf
#   sub.{crt,key}        code-signing cert issued by the sign leaf (not a CA); sub-chain.pem its chain
# Usage: mkca.sh DIR
set -eu
cd "$1"

cat > ext.cnf <<'CNF'
[inter]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[codesign]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
[email]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = emailProtection
[noeku]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
CNF

# `openssl ca` only for the expired leaf: it is the stock way to set a start date in the past
cat > ca.cnf <<'CNF'
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
: > index.txt
echo 1000 > serial

eckey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
root() { # name, CN
        eckey "$1"
        openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -out "$1.crt"
}
leaf() { # name, CN, issuer, extensions section, serial
        [ -f "$1.key" ] || eckey "$1"
        openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
        openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "$5" -days 3650 -sha256 \
                -extfile ext.cnf -extensions "$4" -out "$1.crt" 2>/dev/null
}

root root "canfleet test root"
leaf inter "canfleet test intermediate" root inter 2
leaf sign "release signer" inter codesign 3
leaf email "mail only" inter email 4
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out noeku.key 2>/dev/null
leaf noeku "no eku signer" inter noeku 5
eckey expired
openssl req -new -key expired.key -subj "/CN=expired signer" -out expired.csr
openssl ca -batch -config ca.cnf -cert inter.crt -keyfile inter.key -in expired.csr -out expired.crt \
        -startdate 20200101000000Z -enddate 20210101000000Z -extfile ext.cnf -extensions codesign \
        -notext 2>/dev/null
root other-root "unrelated root"
leaf other "unrelated signer" other-root codesign 6
leaf sub "under a leaf" sign codesign 7
cat inter.crt sign.crt > sub-chain.pem
cp root.crt keyring.pem
