#!/usr/bin/python3
"""A GSS-API peer backed by MIT krb5's library, driven line by line.

The interop tests in internal/gss run this with /usr/bin/python3 (Debian's
interpreter, which has the python3-gssapi module) and a throwaway realm's
environment (KRB5_CONFIG, KRB5CCNAME, ...). It plays one side of one krb5
mechanism context while the Go test plays the other, and the two exchange
base64 tokens over this process's stdin and stdout.

Usage:
    peer.py initiate --target host@localhost --flags N
        N is the GSS request flags as an integer (RFC 2744 values:
        MUTUAL 2, REPLAY 4, SEQUENCE 8). Credentials come from KRB5CCNAME.
    peer.py accept --keytab PATH
        Accepts for any principal in the keytab.

Each request is one line; each reply is one line, "OK ..." or
"ERR <text>". Binary values are base64; "-" stands for an empty token.

    STEP <token|->              -> OK <token|-> <complete 0|1>
    INFO                        -> OK flags=<int> enctype=<int> initiator=<name>
                                      acceptor=<name> local=<0|1>
    WRAP <conf 0|1> <msg>       -> OK <token> <conf applied 0|1>
    UNWRAP <token>              -> OK <msg|-> <conf 0|1>
    MIC <msg>                   -> OK <token>
    VERIFY <msg|-> <token>      -> OK
    QUIT                        -> (exits 0)

A failing GSS call answers ERR with MIT's status text and keeps the
context, so the test can go on after an expected failure (a tampered or
replayed token). Malformed requests also answer ERR.
"""

import argparse
import base64
import binascii
import sys

import gssapi
import gssapi.raw

# GSS_C_INQ_SSPI_SESSION_KEY (MIT's gssapi_ext.h): inquiring a krb5
# context for it yields the key protecting per-message tokens (the acceptor
# subkey when one was asserted) and an OID whose last arc is its enctype.
# Only the enctype is used; the key bytes are dropped at once.
INQ_SESSION_KEY = gssapi.raw.OID.from_int_seq("1.2.840.113554.1.2.2.5.5")
KRB5_MECH = gssapi.raw.OID.from_int_seq("1.2.840.113554.1.2.2")


def b64(data):
    """Encodes bytes for the wire; an empty value becomes "-"."""
    if not data:
        return "-"
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    """Decodes a wire value; "-" is empty."""
    if text == "-":
        return b""
    return base64.b64decode(text.encode("ascii"), validate=True)


def enctype_of(ctx):
    """Returns the enctype of the keys protecting ctx's tokens, or 0."""
    try:
        bufs = gssapi.raw.inquire_sec_context_by_oid(ctx, INQ_SESSION_KEY)
    except gssapi.exceptions.GSSError:
        return 0
    if len(bufs) < 2 or not bufs[1]:
        return 0
    # bufs[1] is the DER body of 1.2.840.113554.1.2.2.4.<enctype>; the
    # AES enctypes (17..20) fit in the last byte.
    return bufs[1][-1]


class Peer:
    """One side of one context and the request loop driving it."""

    def __init__(self, args):
        if args.mode == "initiate":
            target = gssapi.Name(args.target, gssapi.NameType.hostbased_service)
            self.ctx = gssapi.SecurityContext(
                name=target,
                usage="initiate",
                mech=gssapi.MechType.kerberos,
                flags=args.flags,
            )
        else:
            creds = gssapi.Credentials(
                usage="accept", mechs=[gssapi.MechType.kerberos],
                store={"keytab": args.keytab})
            self.ctx = gssapi.SecurityContext(creds=creds, usage="accept")

    def step(self, token):
        out = self.ctx.step(unb64(token) or None)
        return "OK %s %d" % (b64(out), 1 if self.ctx.complete else 0)

    def info(self):
        c = self.ctx
        return "OK flags=%d enctype=%d initiator=%s acceptor=%s local=%d" % (
            int(c.actual_flags), enctype_of(c), c.initiator_name,
            c.target_name, 1 if c.locally_initiated else 0)

    def wrap(self, conf, msg):
        if conf not in ("0", "1"):
            raise ValueError("conf must be 0 or 1")
        res = self.ctx.wrap(unb64(msg), conf == "1")
        return "OK %s %d" % (b64(res.message), 1 if res.encrypted else 0)

    def unwrap(self, token):
        res = self.ctx.unwrap(unb64(token))
        return "OK %s %d" % (b64(res.message), 1 if res.encrypted else 0)

    def mic(self, msg):
        return "OK " + b64(self.ctx.get_signature(unb64(msg)))

    def verify(self, msg, token):
        self.ctx.verify_signature(unb64(msg), unb64(token))
        return "OK"

    def handle(self, line):
        words = line.split()
        if not words:
            raise ValueError("empty request")
        cmd, args = words[0], words[1:]
        handlers = {
            "STEP": (self.step, 1),
            "INFO": (self.info, 0),
            "WRAP": (self.wrap, 2),
            "UNWRAP": (self.unwrap, 1),
            "MIC": (self.mic, 1),
            "VERIFY": (self.verify, 2),
        }
        if cmd not in handlers:
            raise ValueError("unknown request %r" % cmd)
        fn, nargs = handlers[cmd]
        if len(args) != nargs:
            raise ValueError("%s takes %d arguments" % (cmd, nargs))
        return fn(*args)


def one_line(text):
    """Flattens an error text so that it stays one reply line."""
    return " ".join(str(text).split())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    ini = sub.add_parser("initiate")
    ini.add_argument("--target", required=True)
    ini.add_argument("--flags", type=int, required=True)
    acc = sub.add_parser("accept")
    acc.add_argument("--keytab", required=True)
    args = ap.parse_args()

    try:
        peer = Peer(args)
    except gssapi.exceptions.GSSError as e:
        print("ERR setup: " + one_line(e), flush=True)
        return 1

    for line in sys.stdin:
        line = line.strip()
        if line == "QUIT":
            return 0
        try:
            reply = peer.handle(line)
        except gssapi.exceptions.GSSError as e:
            reply = "ERR " + one_line(e)
        except (ValueError, binascii.Error) as e:
            reply = "ERR request: " + one_line(e)
        print(reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
