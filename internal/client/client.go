// Package client is a Go client for the gss-sample protocol (MIT's
// gss-client and gss-server, and gss-acceptor): it gets a service ticket
// with gokrb5, establishes a Kerberos GSS-API context over TCP and
// exchanges wrapped messages, verifying the server's MICs.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// readBufferSize is the frame reader's buffer.
const readBufferSize = 16 << 10

// Credentials obtain service tickets for one client principal.
type Credentials struct {
	cl *krbclient.Client
}

// LoadKrb5Conf reads a krb5.conf: path, else $KRB5_CONFIG, else
// /etc/krb5.conf. Directives gokrb5 does not know are ignored.
func LoadKrb5Conf(path string) (*krbconfig.Config, error) {
	if path == "" {
		path = os.Getenv("KRB5_CONFIG")
	}
	if path == "" {
		path = "/etc/krb5.conf"
	}
	if i := strings.IndexByte(path, ':'); i >= 0 {
		path = path[:i] // a profile path list: the first file
	}
	cfg, err := krbconfig.Load(path)
	if err != nil {
		var ud krbconfig.UnsupportedDirective
		if !errors.As(err, &ud) {
			return nil, fmt.Errorf("client: krb5.conf %s: %w", path, err)
		}
	}
	return cfg, nil
}

// FromCCache uses the TGT in a credential cache (path, else $KRB5CCNAME).
func FromCCache(ccachePath string, cfg *krbconfig.Config) (*Credentials, error) {
	if ccachePath == "" {
		ccachePath = os.Getenv("KRB5CCNAME")
	}
	ccachePath = strings.TrimPrefix(ccachePath, "FILE:")
	if ccachePath == "" {
		ccachePath = fmt.Sprintf("/tmp/krb5cc_%d", os.Getuid())
	}
	cc, err := credentials.LoadCCache(ccachePath)
	if err != nil {
		return nil, fmt.Errorf("client: credential cache %s: %w", ccachePath, err)
	}
	cl, err := krbclient.NewFromCCache(cc, cfg, krbclient.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("client: credential cache %s: %w", ccachePath, err)
	}
	return &Credentials{cl: cl}, nil
}

// FromKeytab logs in as principal ("user" or "user@REALM") with a keytab.
func FromKeytab(principal, keytabPath string, cfg *krbconfig.Config) (*Credentials, error) {
	kt, err := keytab.Load(keytabPath)
	if err != nil {
		return nil, fmt.Errorf("client: keytab %s: %w", keytabPath, err)
	}
	user, realm, _ := strings.Cut(principal, "@")
	if realm == "" {
		realm = cfg.LibDefaults.DefaultRealm
	}
	cl := krbclient.NewWithKeytab(user, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		return nil, fmt.Errorf("client: login as %s@%s: %w", user, realm, err)
	}
	return &Credentials{cl: cl}, nil
}

// Ticket is a service ticket with its session key, from which any number
// of contexts can be established (each with a fresh authenticator).
type Ticket struct {
	CName      types.PrincipalName
	CRealm     string
	Ticket     messages.Ticket
	SessionKey types.EncryptionKey
}

// ServiceTicket gets a ticket for a service named "service@host" (GSS
// host-based form, as MIT's gss-client takes it) or "service/host[@REALM]".
func (c *Credentials) ServiceTicket(service string) (*Ticket, error) {
	spn := ServicePrincipal(service)
	tkt, key, err := c.cl.GetServiceTicket(spn)
	if err != nil {
		return nil, fmt.Errorf("client: service ticket for %s: %w", spn, err)
	}
	return &Ticket{
		CName:      c.cl.Credentials.CName(),
		CRealm:     c.cl.Credentials.Domain(),
		Ticket:     tkt,
		SessionKey: key,
	}, nil
}

// InitialToken makes a fresh initiator for t (new subkey, sequence number
// and authenticator time, as every real connection has) and returns it
// with its first context token.
func (t *Ticket) InitialToken(cfg gss.InitiatorConfig) (*gss.Initiator, []byte, error) {
	init, err := gss.NewInitiator(t.CName, t.CRealm, t.Ticket, t.SessionKey, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	tok, err := init.InitialToken()
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	return init, tok, nil
}

// ServicePrincipal turns a host-based service name "service@host" into
// the principal "service/host"; other forms pass through.
func ServicePrincipal(service string) string {
	if !strings.Contains(service, "/") {
		if svc, host, ok := strings.Cut(service, "@"); ok {
			return svc + "/" + host
		}
	}
	return service
}

// Options control one connection.
type Options struct {
	// Flags requested from the context: MIT gss-client's default is
	// FlagMutual|FlagReplay (-seq adds FlagSequence).
	Flags   gss.Flags
	Timeout time.Duration // per read/write; 0: 30 s
}

// Conn is an established gss-sample session.
type Conn struct {
	conn    net.Conn
	r       *wire.Reader
	ctx     *gss.Context
	timeout time.Duration
}

// Dial connects to addr and establishes a context with t.
func Dial(ctx context.Context, addr string, t *Ticket, o Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c, err := Establish(nc, t, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Establish runs the gss-sample opening and the context exchange on nc.
func Establish(nc net.Conn, t *Ticket, o Options) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &Conn{conn: nc, r: wire.NewReader(nc, readBufferSize), timeout: o.Timeout}
	init, tok, err := t.InitialToken(gss.InitiatorConfig{Flags: o.Flags})
	if err != nil {
		return nil, err
	}
	// The opener and the first context token go out together: one write.
	out := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	out = wire.AppendFrame(out, wire.FlagContext, tok)
	if err := c.write(out); err != nil {
		return nil, err
	}
	if o.Flags&gss.FlagMutual != 0 {
		f, err := c.read(64 << 10)
		if err != nil {
			return nil, fmt.Errorf("client: reading the server's context token: %w", err)
		}
		if f.Flags&wire.FlagContext == 0 {
			return nil, fmt.Errorf("client: server sent flags %#02x, want a context token", f.Flags)
		}
		c.ctx, err = init.Complete(f.Body)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	} else if c.ctx, err = init.Context(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

// Raw returns the connection and the frame reader holding any bytes read
// ahead of the last context token, for a protocol that follows context
// establishment (internal/stream). The Conn's own methods must not be used
// after.
func (c *Conn) Raw() (net.Conn, *wire.Reader) { return c.conn, c.r }

// LocalAddr returns the client end's address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Context returns the established security context.
func (c *Conn) Context() *gss.Context { return c.ctx }

// MessageOptions choose how one message is sent, as gss-client's -nw,
// -nx and -nm do.
type MessageOptions struct {
	NoWrap    bool // send the plaintext (-nw)
	NoEncrypt bool // integrity-only wrap (-nx)
	NoMIC     bool // do not ask for a MIC back (-nm)
}

// ErrBadMIC is returned by Exchange when the server's MIC does not verify.
var ErrBadMIC = errors.New("client: server MIC did not verify")

// Exchange sends msg as a DATA frame and reads the server's reply: a MIC
// of msg, verified here, or a NOOP when no MIC was asked for.
func (c *Conn) Exchange(msg []byte, o MessageOptions) error {
	flags := wire.FlagData
	body := msg
	if !o.NoWrap {
		tok, err := c.ctx.Wrap(msg, !o.NoEncrypt)
		if err != nil {
			return fmt.Errorf("client: wrap: %w", err)
		}
		body = tok
		flags |= wire.FlagWrapped
	}
	if !o.NoEncrypt {
		flags |= wire.FlagEncrypted
	}
	if !o.NoMIC {
		flags |= wire.FlagSendMIC
	}
	if err := c.write(wire.AppendFrame(nil, flags, body)); err != nil {
		return err
	}
	f, err := c.read(64 << 10)
	if err != nil {
		return fmt.Errorf("client: reading the reply: %w", err)
	}
	if o.NoMIC {
		if f.Flags&wire.FlagNoop == 0 {
			return fmt.Errorf("client: reply flags %#02x, want NOOP", f.Flags)
		}
		return nil
	}
	if f.Flags&wire.FlagMIC == 0 {
		return fmt.Errorf("client: reply flags %#02x, want MIC", f.Flags)
	}
	if err := c.ctx.VerifyMIC(msg, f.Body); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMIC, err)
	}
	return nil
}

// Close ends the session with a NOOP, deletes the context and closes.
func (c *Conn) Close() error {
	err := c.write(wire.AppendFrame(nil, wire.FlagNoop, nil))
	c.ctx.Delete()
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort closes the connection without ending the session.
func (c *Conn) Abort() error {
	if c.ctx != nil {
		c.ctx.Delete()
	}
	return c.conn.Close()
}

func (c *Conn) write(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

func (c *Conn) read(max int) (wire.Frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.r.ReadFrame(max)
}
