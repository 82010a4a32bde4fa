package gss

import (
	"testing"
)

// BenchmarkAccept measures a full handshake on the acceptor side: AP-REQ
// token in, AP-REP token and context out (etype 18, mutual + replay, as
// MIT's gss-client asks). Fresh tokens are made before the timer starts,
// so the replay cache sees each authenticator once, as in production.
func BenchmarkAccept(b *testing.B) {
	for _, etype := range []int32{18, 20} {
		b.Run(map[int32]string{18: "aes256-sha1", 20: "aes256-sha384"}[etype], func(b *testing.B) {
			svc := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: etype}
			a := newTestAcceptor(b, testKeytab(b, svc), nil)
			tkt, sess := makeTicket(b, ticketSpec{svc: svc})
			toks := make([][]byte, b.N)
			for i := range toks {
				toks[i] = mustInitialToken(b, newTestInitiator(b, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagReplay}))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				ctx, out, err := a.Accept(toks[i])
				if err != nil || out == nil {
					b.Fatal(err)
				}
				ctx.Delete()
			}
		})
	}
}

// BenchmarkInitialToken measures the initiator's AP-REQ construction (the
// load generator's per-connection cost).
func BenchmarkInitialToken(b *testing.B) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18}
	testKeytab(b, svc)
	tkt, sess := makeTicket(b, ticketSpec{svc: svc})
	b.ReportAllocs()
	for range b.N {
		mustInitialToken(b, newTestInitiator(b, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagReplay}))
	}
}
