# SPDX-License-Identifier: BSD-2-Clause
"""A small test PKI made with the openssl CLI (stdlib only).

    ca = pki.CA(tmp_dir, "root")                       # self-signed root
    sub = ca.intermediate("sub")                       # CA signed by root
    leaf = ca.issue("www", sans=["www.example.com"])   # server cert (ECDSA)
    cli = sub.issue("alice", client=True)              # client cert
    ca.revoke(cli); crl = ca.crl()                     # PEM CRL
    old = ca.issue("old", sans=[...], not_before=..., not_after=...)
    enc = leaf.encrypted_key("secret")                 # AES-256 PEM key
    rc, out, der = pki.s_client(addr, "www.example.com", "-CAfile", ca.cert)
    pki.which([leaf, old], der)                        # "www", "old" or None
    p = pki.client_pki(tmp_dir)                        # the client_auth tests' set

Every certificate goes through `openssl ca` with a minimal config of its
own, so serials, validity dates (-startdate / -enddate) and revocation are
under the test's control.  A Leaf has .cert (the leaf alone), .chain (leaf
then every intermediate, the file a server or client presents), .key,
.der, .subject ("CN=..."), .serial (hex) and .sha256 (of the DER).
RSA keys are slow to make: issue(..., kind="rsa", key=path) reuses one.
"""

import datetime
import hashlib
import os
import ssl
import subprocess
import types

_CA_CONF = """\
[ ca ]
default_ca = this

[ this ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = {cert}
private_key = {key}
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes

[ policy_any ]
commonName = optional
organizationName = optional
organizationalUnitName = optional
countryName = optional
"""

_REQ_CONF = """\
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=60)
    assert r.returncode == 0, "openssl %s failed (%d):\n%s" % (
        " ".join(args), r.returncode, r.stderr.decode(errors="replace"))
    return r.stdout


def asn1_time(dt):
    """The -startdate/-enddate form of a UTC datetime."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def new_key(path, kind="ec"):
    if kind == "ec":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", path)
    elif kind == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        raise ValueError(kind)
    return path


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def pem_blocks(text):
    """The PEM certificate blocks of a text, in order."""
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE-----"):
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line.startswith("-----END CERTIFICATE-----"):
                out.append("\n".join(cur) + "\n")
                cur = None
    return out


def _cat(out, *paths):
    with open(out, "w") as o:
        for p in paths:
            with open(p) as f:
                o.write(f.read())
    return out


class Leaf:
    def __init__(self, ca, name, cert, key, chain, cn):
        self.ca = ca
        self.name = name
        self.cert = cert
        self.key = key
        self.chain = chain
        self.cn = cn
        self.der = pem_to_der(cert)
        self.sha256 = hashlib.sha256(self.der).hexdigest()
        self.serial = openssl("x509", "-in", cert, "-noout", "-serial").decode() \
            .strip().split("=", 1)[1].upper()

    @property
    def subject(self):
        return "CN=%s" % self.cn

    def pair(self):
        return self.chain, self.key

    def entry(self, **kw):
        """A `certificates:` entry of a tlsterm config."""
        d = {"cert": self.chain, "key": self.key}
        d.update(kw)
        return d

    def encrypted_key(self, passphrase, name=None):
        """The key, PEM-encrypted with AES-256 under `passphrase` (the
        traditional "Proc-Type: 4,ENCRYPTED" form, which mbedTLS reads)."""
        out = os.path.join(self.ca.dir, (name or self.name) + "-key.enc.pem")
        if self.is_ec():
            openssl("ec", "-in", self.key, "-aes256", "-passout", "pass:" + passphrase,
                    "-out", out)
        else:
            openssl("rsa", "-in", self.key, "-traditional", "-aes256",
                    "-passout", "pass:" + passphrase, "-out", out)
        return out

    def pkcs8_encrypted_key(self, passphrase, cipher="aes256"):
        """The key as encrypted PKCS#8 (what `openssl genpkey -aes256` makes)."""
        out = os.path.join(self.ca.dir, self.name + "-key.p8.pem")
        openssl("pkcs8", "-topk8", "-in", self.key, "-v2", cipher,
                "-passout", "pass:" + passphrase, "-out", out)
        return out

    def is_ec(self):
        return b"BEGIN EC PRIVATE KEY" in openssl("pkey", "-in", self.key, "-traditional")


class CA:
    """A CA directory: its key, certificate and `openssl ca` database."""

    def __init__(self, base, name, cn=None, parent=None, kind="ec", days=3650):
        self.name = name
        self.dir = os.path.join(str(base), name)
        self.parent = parent
        self.cn = cn or "tlsterm test %s CA" % name
        os.makedirs(os.path.join(self.dir, "newcerts"), exist_ok=True)
        self.key = new_key(os.path.join(self.dir, "ca-key.pem"), kind)
        self.cert = os.path.join(self.dir, "ca-cert.pem")
        self.conf = os.path.join(self.dir, "ca.cnf")
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("%02X\n" % (0x1000 + len(name)))
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("01\n")
        with open(self.conf, "w") as f:
            f.write(_CA_CONF.format(dir=self.dir, cert=self.cert, key=self.key))
        self.reqconf = os.path.join(self.dir, "req.cnf")
        with open(self.reqconf, "w") as f:
            f.write(_REQ_CONF)
        if parent is None:
            openssl("req", "-config", self.reqconf, "-x509", "-new", "-key", self.key,
                    "-subj", "/CN=" + self.cn, "-days", str(days), "-sha256",
                    "-extensions", "v3_ca", "-out", self.cert)
        else:
            parent._sign(self.key, self.cert, self.cn, "ext_ca",
                         "basicConstraints = critical, CA:TRUE\n"
                         "keyUsage = critical, keyCertSign, cRLSign\n"
                         "subjectKeyIdentifier = hash\n"
                         "authorityKeyIdentifier = keyid\n", days=days)
        self.der = pem_to_der(self.cert)

    @property
    def subject(self):
        return "CN=%s" % self.cn

    def chain_above(self):
        """Certificates a leaf of this CA sends after itself (no root)."""
        out, ca = [], self
        while ca.parent is not None:
            out.append(ca.cert)
            ca = ca.parent
        return out

    def bundle(self, name="bundle.pem"):
        """This CA and everything above it, root last (a CA file)."""
        paths, ca = [], self
        while ca is not None:
            paths.append(ca.cert)
            ca = ca.parent
        return _cat(os.path.join(self.dir, name), *paths)

    def intermediate(self, name, cn=None, kind="ec"):
        return CA(os.path.dirname(self.dir), name, cn=cn, parent=self, kind=kind)

    def _sign(self, key, out, cn, section, ext, days=None, not_before=None,
              not_after=None):
        csr = out + ".csr"
        extfile = out + ".ext"
        with open(extfile, "w") as f:
            f.write("[ %s ]\n%s" % (section, ext))
        openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr,
                "-config", self.reqconf)
        args = ["ca", "-config", self.conf, "-batch", "-notext", "-in", csr, "-out", out,
                "-extfile", extfile, "-extensions", section]
        if not_before is not None:
            args += ["-startdate", asn1_time(not_before)]
        if not_after is not None:
            args += ["-enddate", asn1_time(not_after)]
        elif days is not None:
            args += ["-days", str(days)]
        openssl(*args)

    def issue(self, name, cn=None, sans=None, kind="ec", client=False, days=30,
              not_before=None, not_after=None, key=None):
        """A leaf certificate.  sans: DNS names for subjectAltName (None or
        [] for a certificate without the extension, named by its CN).
        key: an existing key file of type `kind` to reuse (RSA keys are
        slow to make), else a new key."""
        cn = cn or (sans[0] if sans else name)
        key = key or new_key(os.path.join(self.dir, name + "-key.pem"), kind)
        cert = os.path.join(self.dir, name + "-cert.pem")
        usage = "digitalSignature" + (", keyEncipherment" if kind == "rsa" else "")
        ext = ("basicConstraints = critical, CA:FALSE\n"
               "keyUsage = critical, %s\n"
               "extendedKeyUsage = %s\n"
               "subjectKeyIdentifier = hash\n"
               "authorityKeyIdentifier = keyid\n"
               % (usage, "clientAuth" if client else "serverAuth"))
        if sans:
            ext += "subjectAltName = %s\n" % ", ".join("DNS:" + s for s in sans)
        self._sign(key, cert, cn, "ext_leaf", ext, days=days,
                   not_before=not_before, not_after=not_after)
        chain = _cat(os.path.join(self.dir, name + "-chain.pem"), cert, *self.chain_above())
        return Leaf(self, name, cert, key, chain, cn)

    def revoke(self, leaf):
        openssl("ca", "-config", self.conf, "-batch", "-revoke", leaf.cert,
                "-crl_reason", "keyCompromise")

    def crl(self, name="crl.pem"):
        out = os.path.join(self.dir, name)
        openssl("ca", "-config", self.conf, "-batch", "-gencrl", "-out", out)
        return out


# ---------------------------------------------------------------- sets

def client_pki(base):
    """The client certificates of the client_auth tests, under `base`:
    .ca ("tlsterm test client CA") issues .alice and .bob (revoked, on
    .crl); its intermediate .sub issues .carol (two steps below .ca);
    .other_ca ("some other CA", not trusted) issues .mallory."""
    p = types.SimpleNamespace()
    p.ca = ca = CA(base, "clients", cn="tlsterm test client CA")
    p.sub = ca.intermediate("sub", cn="tlsterm test client sub CA")
    p.other_ca = CA(base, "other", cn="some other CA")
    p.alice = ca.issue("alice", cn="alice", client=True)
    p.bob = ca.issue("bob", cn="bob", client=True)              # revoked
    p.carol = p.sub.issue("carol", cn="carol", client=True)     # via the intermediate
    p.mallory = p.other_ca.issue("mallory", cn="mallory", client=True)
    ca.revoke(p.bob)
    p.crl = ca.crl()
    return p


def which(leaves, der):
    """The name of the Leaf among `leaves` whose certificate is `der` (the
    DER a client was served): None when der is None (none was served),
    "an unknown certificate" when it is none of them."""
    for leaf in leaves:
        if leaf.der == der:
            return leaf.name
    return None if der is None else "an unknown certificate"


# ---------------------------------------------------------------- clients

def s_client(addr, servername=None, *opts, input=b"", timeout=30):
    """One `openssl s_client` connection (stdin: `input`, then EOF).

    servername None sends no SNI.  Returns (returncode, output, leaf) where
    output is stdout+stderr and leaf the DER of the certificate the server
    presented (None when it presented none)."""
    host, port = addr
    target = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    sni = ["-noservername"] if servername is None else ["-servername", servername]
    r = subprocess.run(["openssl", "s_client", "-connect", target, *sni, "-showcerts", *opts],
                       input=input, capture_output=True, timeout=timeout)
    out = (r.stdout + r.stderr).decode(errors="replace")
    blocks = pem_blocks(out)
    return r.returncode, out, (ssl.PEM_cert_to_DER_cert(blocks[0]) if blocks else None)
