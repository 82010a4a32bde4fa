#!/usr/bin/python3
"""A gss-sample protocol client on MIT krb5's GSS-API library (python3-gssapi).

It speaks the protocol of MIT's gss-client (src/appl/gss-sample) so that
the end-to-end tests can drive gss-acceptor with what gss-client cannot
do: channel bindings, an SPNEGO mechanism list of our choosing, and a
report of the context's flags. Run it with Debian's /usr/bin/python3 and
a realm's environment (KRB5_CONFIG, KRB5CCNAME).

Usage:
    gss_sample_client.py [options] HOST PORT SERVICE MESSAGE

    --mech krb5|spnego|spnego-raw
                           mechanism (default krb5). spnego-raw builds the
                           SPNEGO tokens here (RFC 4178) around MIT's krb5
                           mechanism, to offer mechanism lists MIT's own
                           SPNEGO never sends (it offers Kerberos alone)
    --offer OID,...        spnego-raw: the MechTypeList, in order; a first
                           OID that is not Kerberos gets a dummy optimistic
                           token, so the acceptor must counter-propose
    --no-optimistic        spnego-raw: send no optimistic token
    --mcount N             messages to send (default 1)
    --nomutual             do not request mutual authentication
    --seq                  request GSS_C_SEQUENCE_FLAG
    --delegate             request GSS_C_DELEG_FLAG
    --cb DATA              bind the context to channel bindings with DATA
                           as application data (RFC 2744, no addresses)
    --v1                   the old framing without flag bytes

Output, on stdout: one "context flags=<int> mech=<oid>" line once the
context is established (with spnego-raw, first a "spnego supportedMech=<oid>
legs=<n> acceptor-mic=<0|1> initiator-mic=<0|1>" line), then "Signature verified." for each message whose
MIC verified. Errors go to stderr and the exit status is 1.
"""

import argparse
import socket
import struct
import sys

import gssapi
import gssapi.raw

# gss-sample frame flags (gss-misc.h).
TOKEN_NOOP = 0x01
TOKEN_CONTEXT = 0x02
TOKEN_DATA = 0x04
TOKEN_MIC = 0x08
TOKEN_CONTEXT_NEXT = 0x10
TOKEN_WRAPPED = 0x20
TOKEN_ENCRYPTED = 0x40
TOKEN_SEND_MIC = 0x80

SPNEGO = gssapi.raw.OID.from_int_seq("1.3.6.1.5.5.2")
MAX_FRAME = 1 << 20
KRB5_OIDS = ("1.2.840.113554.1.2.2", "1.2.840.48018.1.2.2")

# negState values (RFC 4178 section 4.2.2).
ACCEPT_COMPLETED, ACCEPT_INCOMPLETE, REJECT, REQUEST_MIC = 0, 1, 2, 3


def der(tag, content):
    """Encodes one DER element."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def der_oid(dotted):
    """Encodes the contents of an OBJECT IDENTIFIER."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def oid_dotted(b):
    """Decodes the contents of an OBJECT IDENTIFIER."""
    arcs, v = [], 0
    for c in b:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            arcs.append(v)
            v = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def der_read(b):
    """Splits the first DER element of b: (tag, contents, rest)."""
    if len(b) < 2:
        raise ValueError("truncated DER element")
    tag, n, off = b[0], b[1], 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[2:2 + k], "big")
        off = 2 + k
    if len(b) < off + n:
        raise ValueError("truncated DER element")
    return tag, b[off:off + n], b[off + n:]


def neg_token_init(mech_list, mech_token):
    """The framed NegTokenInit (RFC 4178 section 4.2.1)."""
    body = der(0xA0, mech_list)
    if mech_token is not None:
        body += der(0xA2, der(0x04, mech_token))
    inner = der(0xA0, der(0x30, body))
    return der(0x60, der(0x06, der_oid("1.3.6.1.5.5.2")) + inner)


def neg_token_resp(state=None, response=None, mic=None):
    """A bare NegTokenResp (RFC 4178 section 4.2.2)."""
    body = b""
    if state is not None:
        body += der(0xA0, der(0x0A, bytes([state])))
    if response is not None:
        body += der(0xA2, der(0x04, response))
    if mic is not None:
        body += der(0xA3, der(0x04, mic))
    return der(0xA1, der(0x30, body))


def parse_neg_token_resp(b):
    """Returns the fields of a NegTokenResp as a dict."""
    tag, seq, rest = der_read(b)
    if tag != 0xA1 or rest:
        raise ValueError("not a NegTokenResp: %s" % b[:16].hex())
    tag, body, rest = der_read(seq)
    if tag != 0x30 or rest:
        raise ValueError("NegTokenResp is not a SEQUENCE")
    out = {}
    while body:
        tag, field, body = der_read(body)
        _, value, _ = der_read(field)
        if tag == 0xA0:
            out["negState"] = value[0]
        elif tag == 0xA1:
            out["supportedMech"] = oid_dotted(value)
        elif tag == 0xA2:
            out["responseToken"] = value
        elif tag == 0xA3:
            out["mechListMIC"] = value
    return out


def establish_raw_spnego(conn, args, krb):
    """SPNEGO by hand around the krb5 context krb; returns krb once open."""
    offer = args.offer.split(",") if args.offer else [KRB5_OIDS[0]]
    mech_list = der(0x30, b"".join(der(0x06, der_oid(o)) for o in offer))
    ap_req = krb.step()
    if args.no_optimistic:
        first = None
    elif offer[0] in KRB5_OIDS:
        first = ap_req
    else:
        first = b"NTLMSSP\x00dummy optimistic token"
    conn.send(TOKEN_CONTEXT, neg_token_init(mech_list, first))
    legs, supported, acc_mic, init_mic, ap_req_sent = 1, None, False, False, first == ap_req
    while True:
        fl, tok = conn.recv()
        if not args.v1 and fl != TOKEN_CONTEXT:
            raise ValueError("expected a context token, got flags 0x%02x" % fl)
        resp = parse_neg_token_resp(tok)
        state = resp.get("negState")
        if state == REJECT:
            raise ValueError("acceptor rejected the negotiation")
        if supported is None:
            supported = resp.get("supportedMech")
            if supported not in KRB5_OIDS:
                raise ValueError("acceptor selected %s" % supported)
        if "responseToken" in resp:
            krb.step(resp["responseToken"])
        if not ap_req_sent:
            # Counter-proposal: now the Kerberos token.
            conn.send(TOKEN_CONTEXT, neg_token_resp(response=ap_req))
            legs += 1
            ap_req_sent = True
            continue
        if not krb.complete:
            raise ValueError("krb5 context incomplete after the acceptor's reply")
        if "mechListMIC" in resp:
            krb.verify_signature(mech_list, resp["mechListMIC"])
            acc_mic = True
        if state == ACCEPT_COMPLETED:
            break
        if state == ACCEPT_INCOMPLETE and acc_mic:
            conn.send(TOKEN_CONTEXT, neg_token_resp(state=ACCEPT_COMPLETED, mic=krb.get_signature(mech_list)))
            legs += 1
            init_mic = True
            break
        raise ValueError("unexpected negState %r" % state)
    print("spnego supportedMech=%s legs=%d acceptor-mic=%d initiator-mic=%d" % (
        supported, legs, acc_mic, init_mic), flush=True)
    return krb


class Conn:
    """One TCP connection with gss-sample framing."""

    def __init__(self, host, port, v1):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.v1 = v1

    def send(self, flags, body):
        if self.v1:
            self.sock.sendall(struct.pack(">I", len(body)) + body)
        else:
            self.sock.sendall(struct.pack(">BI", flags, len(body)) + body)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed by the server")
            buf += chunk
        return buf

    def recv(self):
        flags = 0
        if not self.v1:
            flags = self.recv_exact(1)[0]
        (length,) = struct.unpack(">I", self.recv_exact(4))
        if length > MAX_FRAME:
            raise ValueError("frame of %d bytes is too large" % length)
        return flags, self.recv_exact(length)

    def close(self):
        self.sock.close()


def establish(conn, args):
    """Runs the context exchange and returns the established context."""
    target = gssapi.Name(args.service, gssapi.NameType.hostbased_service)
    mech = SPNEGO if args.mech == "spnego" else gssapi.MechType.kerberos
    flags = gssapi.RequirementFlag.replay_detection
    if not args.nomutual:
        flags |= gssapi.RequirementFlag.mutual_authentication
    if args.seq:
        flags |= gssapi.RequirementFlag.out_of_sequence_detection
    if args.delegate:
        flags |= gssapi.RequirementFlag.delegate_to_peer
    cb = None
    if args.cb is not None:
        cb = gssapi.raw.ChannelBindings(application_data=args.cb.encode())
    ctx = gssapi.SecurityContext(name=target, usage="initiate", mech=mech,
                                 flags=flags, channel_bindings=cb)
    if not args.v1:
        conn.send(TOKEN_NOOP | TOKEN_CONTEXT_NEXT, b"")
    if args.mech == "spnego-raw":
        return establish_raw_spnego(conn, args, ctx)
    token = None
    while True:
        out = ctx.step(token)
        if out:
            conn.send(TOKEN_CONTEXT, out)
        if ctx.complete:
            return ctx
        fl, token = conn.recv()
        if not args.v1 and fl != TOKEN_CONTEXT:
            raise ValueError("expected a context token, got flags 0x%02x" % fl)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mech", choices=("krb5", "spnego", "spnego-raw"), default="krb5")
    ap.add_argument("--offer")
    ap.add_argument("--no-optimistic", action="store_true")
    ap.add_argument("--mcount", type=int, default=1)
    ap.add_argument("--nomutual", action="store_true")
    ap.add_argument("--seq", action="store_true")
    ap.add_argument("--delegate", action="store_true")
    ap.add_argument("--cb")
    ap.add_argument("--v1", action="store_true")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("service")
    ap.add_argument("message")
    args = ap.parse_args()

    conn = Conn(args.host, args.port, args.v1)
    try:
        ctx = establish(conn, args)
        print("context flags=%d mech=%s" % (int(ctx.actual_flags), ctx.mech), flush=True)
        msg = args.message.encode()
        for _ in range(args.mcount):
            wrapped = ctx.wrap(msg, True)
            if not wrapped.encrypted:
                raise ValueError("wrap did not encrypt")
            conn.send(TOKEN_DATA | TOKEN_WRAPPED | TOKEN_ENCRYPTED | TOKEN_SEND_MIC, wrapped.message)
            fl, mic = conn.recv()
            if not args.v1 and fl != TOKEN_MIC:
                raise ValueError("expected a MIC token, got flags 0x%02x" % fl)
            ctx.verify_signature(msg, mic)
            print("Signature verified.", flush=True)
        if not args.v1:
            conn.send(TOKEN_NOOP, b"")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (gssapi.exceptions.GSSError, OSError, EOFError, ValueError) as e:
        print("gss_sample_client: %s" % " ".join(str(e).split()), file=sys.stderr)
        sys.exit(1)
