// Package manpage generates the man pages in man/ from the same sources as
// the programs' -help (their flag sets, read from the -help output of the
// built programs) and the configuration reference (docs/configuration.md,
// checked against internal/config's table of keys), so that they never
// drift: TestPagesUpToDate fails when a committed page differs from what
// the generator writes now. Regenerate with
//
//	go run ./internal/manpage/gen
//
// The prose that is not in those sources (descriptions, signals, exit
// statuses, files) is in this file.
package manpage

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
)

// RegenerateCommand is how to rewrite man/ after a change.
const RegenerateCommand = "go run ./internal/manpage/gen"

// pageDate is the date in the pages' headers. It is fixed rather than
// today's so that the pages are reproducible; move it on when a release
// changes them.
const pageDate = "2026-12-03"

// A section is a titled part of a page, written in Markdown.
type section struct {
	title string
	body  string
}

// A page is one man page.
type page struct {
	name     string // as in NAME and the file name
	section  int
	manual   string
	summary  string // NAME's one-line description
	synopsis []string
	// program is the cmd/ directory whose -help gives OPTIONS; "" for none.
	program string
	// before OPTIONS (DESCRIPTION) and after it (EXIT STATUS, FILES ...).
	description string
	after       []section
}

// File is the page's file name in man/, e.g. "gss-acceptor.8".
func (p *page) File() string { return fmt.Sprintf("%s.%d", p.name, p.section) }

const (
	manualAdmin = "System Manager's Manual"
	manualUser  = "User Commands"
	manualFile  = "File Formats Manual"
)

// seeAlsoClients is the SEE ALSO of the client programs' pages, without
// the page itself.
func seeAlsoClients(self string) string {
	var refs []string
	for _, r := range []string{"gss-acceptor**(8)", "gss-acceptor-client**(1)", "gss-tunnel**(1)", "gss-bench**(1)", "kinit**(1)", "klist**(1)", "ktutil**(1)"} {
		if !strings.HasPrefix(r, self+"**") {
			refs = append(refs, "**"+r)
		}
	}
	return strings.Join(refs, ", ")
}

var pages = []*page{
	{
		name: "gss-acceptor", section: 8, manual: manualAdmin,
		summary: "Kerberos 5 GSS-API acceptor daemon with a pool of worker processes",
		synopsis: []string{
			"**gss-acceptor** [**-config** *file*] [*option* ...]",
			"**gss-acceptor** **-config** *file* **-check-config**",
			"**gss-acceptor** **-version**",
		},
		program: "gss-acceptor",
		description: `**gss-acceptor** accepts TCP connections from Kerberos 5 GSS-API clients
(MIT's gss-sample protocol, which **gss-client** from MIT krb5 speaks, or
the stream protocol of **gss-tunnel**(1)), establishes each client's
security context with the keys of a keytab, and hands the established
session, with its socket, to one of its **gss-worker**(8) processes,
which serves it: the gss-sample service, or a backend the decrypted
stream is relayed to (a TCP or unix socket, or a program run per session).

Only the acceptor reads the keytab; a worker holds the keys of its own
sessions only. The acceptor refuses replayed authenticators, enforces the
pre-authentication limits and the client allow-list, respawns workers
that exit, and serves Prometheus metrics for the whole pool.

Settings come from the YAML file named by **-config**
(**gss-acceptor.yaml**(5)); the options below override the file's values.
Without **-config** every key has its default and **-keytab** is
required. **-check-config** validates the configuration and the keytab
the way the daemon would start with them, prints the keytab's principals
and exits, like ` + "`nginx -t`" + `.

Under systemd the acceptor is ` + "`Type=notify`" + `: it sends ` + "`READY=1`" + ` once its
workers are up, ` + "`RELOADING=1`" + ` on **SIGHUP**, ` + "`STOPPING=1`" + ` on
**SIGTERM**, a status line every 10 seconds and watchdog keep-alives while
its accept loop runs. With socket activation (` + "`gss-acceptor.socket`" + `) it
takes its listening sockets from systemd and ignores ` + "`listen`" + `.`,
		after: []section{
			{"SIGNALS", `- **SIGTERM**, **SIGINT**: stop accepting, finish the handshakes in
  progress and let the workers drain: established sessions run to their
  end for up to ` + "`shutdown_timeout`" + `, then workers still running get
  **SIGTERM** and, 5 seconds later, **SIGKILL**. Exit 0 after a clean drain.
- **SIGHUP**: reload. Re-read the configuration file and the keytab; if
  either is bad the running configuration stays and the reason is logged.
  Otherwise new handshakes use the new keys (key rotation without a
  restart), the log level changes and the worker pool is resized without
  cutting a session. Keys that need a restart are named in a warning.
- **SIGUSR1**: reopen ` + "`log_file`" + ` after log rotation.`},
			{"EXIT STATUS", `- **0**: stopped after a clean drain, or **-check-config** found no problem.
- **1**: a failure at run time, or **-check-config** found a problem.
- **2**: a bad command line.
- **3**: could not start: a bad configuration, an unusable keytab, an
  address it cannot bind, no worker became ready. A restart cannot help
  until an operator fixes the cause.`},
			{"ENVIRONMENT", `- ` + "`LISTEN_FDS`" + `, ` + "`LISTEN_PID`" + `: listening sockets passed by systemd socket activation.
- ` + "`NOTIFY_SOCKET`" + `: where systemd status notifications go.
- ` + "`WATCHDOG_USEC`" + `, ` + "`WATCHDOG_PID`" + `: the systemd watchdog (` + "`WatchdogSec=`" + ` in the unit).`},
			{"FILES", `- ` + "`/etc/gss-acceptor/gss-acceptor.yaml`" + `: the configuration (**gss-acceptor.yaml**(5)).
- ` + "`/etc/gss-acceptor/INSTANCE.yaml`" + `: the configuration of the instance ` + "`gss-acceptor@INSTANCE.service`" + `.
- ` + "`/etc/gss-acceptor/gss-acceptor.keytab`" + `: the service keytab (` + "`keytab`" + `), readable by root only.
- ` + "`gss-worker`" + ` in the directory of the **gss-acceptor** binary, else ` + "`../libexec/gss-acceptor/gss-worker`" + ` from it (the Debian package: ` + "`/usr/libexec/gss-acceptor/gss-worker`" + `), unless ` + "`worker_path`" + ` names another: the worker program (**gss-worker**(8)).
- ` + "`gss-acceptor.service`" + `, ` + "`gss-acceptor@.service`" + `, ` + "`gss-acceptor.socket`" + `: the systemd units.`},
			{"SEE ALSO", "**gss-acceptor.yaml**(5), **gss-worker**(8), **gss-acceptor-client**(1), **gss-tunnel**(1), **gss-bench**(1), **ktutil**(1), **kadmin**(1), **systemctl**(1), **systemd.service**(5)"},
		},
	},
	{
		name: "gss-worker", section: 8, manual: manualAdmin,
		summary: "serves the sessions gss-acceptor hands to it",
		synopsis: []string{
			"**gss-worker** [*option* ...]",
		},
		program: "gss-worker",
		description: `**gss-worker** serves established GSS-API sessions. It is started by
**gss-acceptor**(8) only, which passes the options below from its
configuration (**gss-acceptor.yaml**(5)): run by hand it says so and exits
with status 2. It expects its channel to the acceptor on file descriptor
3 and its seal key in the first message on it, never in its arguments,
environment or files, and it never reads a keytab.

For each session the acceptor hands over the connection's socket and the
exported security context; the worker imports it and serves the session:
MIT's gss-sample service (` + "`-backend sample`" + `), or the stream protocol
relayed to a proxy backend (` + "`tcp:HOST:PORT`" + `, ` + "`unix:/PATH`" + `) or to a program
run per session (` + "`-backend exec`" + `). It reports each finished session to
the acceptor, which logs it and counts it in its metrics.`,
		after: []section{
			{"SIGNALS", `- **SIGTERM**: close the open sessions and exit (the acceptor sends it
  when the drain deadline has passed).
- **SIGINT**, **SIGHUP**, **SIGUSR1** are ignored: the acceptor decides what
  they mean and tells its workers over their channel.

When the acceptor exits, its workers finish their sessions and exit.`},
			{"FILES", "None: **gss-worker** reads no file. Its seal key and each session's context come over descriptor 3. It is found as `gss-worker` in the directory of the **gss-acceptor** binary, else as `../libexec/gss-acceptor/gss-worker` from it (`/usr/libexec/gss-acceptor/gss-worker` in the Debian package), unless `worker_path` names another."},
			{"EXIT STATUS", `- **0**: the acceptor told it to stop, or went away.
- **1**: a failure at run time; the acceptor starts a new worker.
- **2**: a fault no restart can fix (bad options, no channel on
  descriptor 3, a bad first message); the acceptor does not respawn it.`},
			{"SEE ALSO", "**gss-acceptor**(8), **gss-acceptor.yaml**(5)"},
		},
	},
	{
		name: "gss-acceptor-client", section: 1, manual: manualUser,
		summary: "Kerberos GSS-API client for the gss-sample protocol",
		synopsis: []string{
			"**gss-acceptor-client** [*option* ...] *host* *service* *message*",
		},
		program: "gss-client",
		description: `**gss-acceptor-client** is the Go client of gss-acceptor for MIT's
gss-sample protocol, with the options of MIT's **gss-client**: it
establishes a Kerberos 5 GSS-API security context with *host*
(**gss-acceptor**(8) or MIT's **gss-server**), sends *message* wrapped in
it and checks the MIC the server returns. It is built as **gss-client**
and installed as **gss-acceptor-client** so that it does not clash with
MIT's **gss-client** (package krb5-gss-samples); its **-help** calls it
gss-client.

*service* is ` + "`service@host`" + ` (as MIT's client takes it) or
` + "`service/host[@REALM]`" + `. Credentials come from a credential cache
(**-ccache**, else ` + "`KRB5CCNAME`" + `, as **kinit**(1) leaves them) or from a
keytab (**-keytab** with **-principal**).`,
		after: []section{
			{"EXIT STATUS", `- **0**: every connection established its context and every message
  was answered with a valid MIC.
- **1**: a failure: no credentials, a refused context, a bad MIC, a
  network error.
- **2**: a bad command line.`},
			{"ENVIRONMENT", `- ` + "`KRB5CCNAME`" + `: the credential cache, unless **-ccache** names one.
- ` + "`KRB5_CONFIG`" + `: the Kerberos configuration, unless **-krb5conf** names one; else ` + "`/etc/krb5.conf`" + `.`},
			{"EXAMPLES", "```\nkinit alice@EXAMPLE.COM\ngss-acceptor-client -port 4444 gss.example.com host@gss.example.com hello\n```"},
			{"FILES", "`/etc/krb5.conf`: the Kerberos configuration (realms, KDCs), unless `KRB5_CONFIG` or **-krb5conf** names another."},
			{"SEE ALSO", seeAlsoClients("gss-acceptor-client")},
		},
	},
	{
		name: "gss-tunnel", section: 1, manual: manualUser,
		summary: "carry plaintext connections to a gss-acceptor proxy backend through Kerberos GSS-API",
		synopsis: []string{
			"**gss-tunnel** **-listen** *address* **-connect** *host:port* **-service** *principal* [*option* ...]",
			"**gss-tunnel** **-stdio** **-connect** *host:port* **-service** *principal* [*option* ...]",
		},
		program: "gss-tunnel",
		description: `**gss-tunnel** is the client side of a **gss-acceptor**(8) proxy or exec
backend. It accepts local plaintext connections on **-listen** (or
carries one session over its standard input and output with **-stdio**,
for an SSH ` + "`ProxyCommand`" + ` or a pipe), and carries each through its own
Kerberos 5 GSS-API context to the acceptor at **-connect**, which relays
the decrypted stream to its backend. Each context has mutual
authentication, replay and sequence detection, and sealed records.

**-service** is ` + "`service@host`" + ` or ` + "`service/host[@REALM]`" + `. Credentials come
from the credential cache (` + "`KRB5CCNAME`" + `) or from **-keytab** with
**-principal**. A client the acceptor refuses (not in its ` + "`allow_clients`" + `)
gets the server's reason on standard error.`,
		after: []section{
			{"SIGNALS", "With **-listen**, **SIGINT** and **SIGTERM** stop accepting new local connections and end the program."},
			{"EXIT STATUS", `- **0**: the **-stdio** session ended cleanly, or **-listen** was stopped by a signal.
- **1**: a failure: no credentials, the acceptor unreachable or refusing, the session broken.
- **2**: a bad command line.`},
			{"ENVIRONMENT", `- ` + "`KRB5CCNAME`" + `: the credential cache.
- ` + "`KRB5_CONFIG`" + `: the Kerberos configuration, unless **-krb5conf** names one; else ` + "`/etc/krb5.conf`" + `.`},
			{"EXAMPLES", "```\ngss-tunnel -listen 127.0.0.1:6380 -connect gss.example.com:4444 -service redis@gss.example.com\nssh -o ProxyCommand='gss-tunnel -stdio -connect %h:4444 -service host@%h' gss.example.com\n```"},
			{"FILES", "`/etc/krb5.conf`: the Kerberos configuration (realms, KDCs), unless `KRB5_CONFIG` or **-krb5conf** names another."},
			{"SEE ALSO", seeAlsoClients("gss-tunnel")},
		},
	},
	{
		name: "gss-bench", section: 1, manual: manualUser,
		summary: "load generator for gss-sample servers",
		synopsis: []string{
			"**gss-bench** [*option* ...] *host* *service*",
		},
		program: "gss-bench",
		description: `**gss-bench** loads a gss-sample server, **gss-acceptor**(8) or MIT's
**gss-server** alike. It gets one service ticket, then builds a fresh
authenticator (new subkey, new sequence numbers) for every connection, as
a real client would, and reports handshakes per second, message round
trips per second, throughput and latency percentiles.

*service* is ` + "`service@host`" + ` or ` + "`service/host[@REALM]`" + `. Credentials come
from a credential cache (**-ccache**, else ` + "`KRB5CCNAME`" + `) or from a keytab
(**-keytab** with **-principal**).

Modes (**-mode**):

- ` + "`handshake`" + `: each of **-c** connections loops connect, establish,
  **-mcount** messages, NOOP, close.
- ` + "`session`" + `: each connection establishes once, then loops wrap and MIC
  round trips of **-size** bytes.
- ` + "`hold`" + `: opens **-hold** idle established sessions, then runs the
  handshake load beside them and checks the held sessions still answer.

Every run is bounded by **-duration** and, if set, **-n** operations; a
hard cap (**-max-time**) aborts whatever is still in flight.`,
		after: []section{
			{"EXIT STATUS", `- **0**: the run completed.
- **1**: the run failed or was aborted.
- **2**: a bad command line.`},
			{"ENVIRONMENT", `- ` + "`KRB5CCNAME`" + `: the credential cache, unless **-ccache** names one.
- ` + "`KRB5_CONFIG`" + `: the Kerberos configuration, unless **-krb5conf** names one; else ` + "`/etc/krb5.conf`" + `.`},
			{"FILES", "`/etc/krb5.conf`: the Kerberos configuration (realms, KDCs), unless `KRB5_CONFIG` or **-krb5conf** names another."},
			{"SEE ALSO", seeAlsoClients("gss-bench")},
		},
	},
	{
		name: "gss-acceptor.yaml", section: 5, manual: manualFile,
		summary: "configuration file of gss-acceptor",
		synopsis: []string{
			"`/etc/gss-acceptor/gss-acceptor.yaml`",
			"`/etc/gss-acceptor/INSTANCE.yaml`",
		},
		// description: docs/configuration.md, in Generate.
		after: []section{
			{"FILES", `- ` + "`/etc/gss-acceptor/gss-acceptor.yaml`" + `: the configuration of ` + "`gss-acceptor.service`" + `.
- ` + "`/etc/gss-acceptor/INSTANCE.yaml`" + `: the configuration of the instance ` + "`gss-acceptor@INSTANCE.service`" + `.`},
			{"SEE ALSO", "**gss-acceptor**(8), **gss-worker**(8), **systemd.service**(5)"},
		},
	},
}

// sectionOrder is the order of the sections after OPTIONS, as
// man-pages(7) has them.
var sectionOrder = []string{"SIGNALS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"}

// sectionTitle is a .SH argument: quoted only when it has a space.
func sectionTitle(t string) string {
	if strings.Contains(t, " ") {
		return macroArg(t)
	}
	return escape(t)
}

// Programs lists the cmd/ directories whose -help the pages use.
func Programs() []string {
	var out []string
	for _, p := range pages {
		if p.program != "" {
			out = append(out, p.program)
		}
	}
	return out
}

// Generate renders every page. help maps each of Programs to its -help
// output; configDoc is docs/configuration.md, whose key tables must agree
// with keys (internal/config's table). It returns the pages' contents by
// file name.
func Generate(help map[string]string, configDoc string, keys []config.KeyInfo) (map[string][]byte, error) {
	if err := checkConfigDoc(configDoc, keys); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, p := range pages {
		var w writer
		w.line(`.\" Generated by "` + RegenerateCommand + `" from the -help of the programs`)
		w.line(`.\" and docs/configuration.md. Do not edit: change those and regenerate.`)
		w.line(fmt.Sprintf(".TH %s %d %s %s %s", macroArg(strings.ToUpper(p.name)), p.section,
			macroArg(pageDate), macroArg("gss-acceptor"), macroArg(p.manual)))
		w.line(".nh")
		w.line(".ad l")
		w.line(".SH NAME")
		w.line(escape(p.name) + ` \- ` + escape(p.summary))
		w.line(".SH SYNOPSIS")
		for i, s := range p.synopsis {
			if i > 0 {
				w.line(".br")
			}
			w.text(inline(s))
		}
		w.line(".SH DESCRIPTION")
		if p.program == "" {
			w.para()
			w.text(inline("The configuration of **gss-acceptor**(8): one YAML file per " +
				"instance, named by its **-config** option."))
			w.markdown(configDoc)
		} else {
			w.markdown(p.description)
			h, ok := help[p.program]
			if !ok {
				return nil, fmt.Errorf("manpage: no -help output of %s", p.program)
			}
			flags, err := parseHelp(h)
			if err != nil {
				return nil, fmt.Errorf("manpage: %s: %w", p.program, err)
			}
			w.options(flags)
		}
		after := slices.Clone(p.after)
		slices.SortStableFunc(after, func(a, b section) int {
			return slices.Index(sectionOrder, a.title) - slices.Index(sectionOrder, b.title)
		})
		for _, s := range after {
			if !slices.Contains(sectionOrder, s.title) {
				return nil, fmt.Errorf("manpage: %s: section %q is not in sectionOrder", p.File(), s.title)
			}
			w.line(".SH " + sectionTitle(s.title))
			w.markdown(s.body)
		}
		out[p.File()] = []byte(w.b.String())
	}
	return out, nil
}

// checkConfigDoc checks that the key tables of docs/configuration.md (the
// tables whose first column is "key") list every key of internal/config
// once, and nothing else, each with its default: a default cell starts
// with the default in backticks, or, for a key without a fixed default
// (required or computed), with words.
func checkConfigDoc(doc string, keys []config.KeyInfo) error {
	want := map[string]config.KeyInfo{}
	for _, k := range keys {
		want[k.Name] = k
	}
	seen := map[string]int{}
	var problems []string
	inKeyTable := false
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			inKeyTable = false
			continue
		}
		cells := splitRow(line)
		if len(cells) > 0 && cells[0] == "key" {
			inKeyTable = true
			continue
		}
		if !inKeyTable || strings.Trim(cells[0], "-: ") == "" || len(cells) < 2 {
			continue
		}
		name := strings.Trim(cells[0], "`")
		seen[name]++
		k, ok := want[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("key %q is not a key of internal/config", name))
			continue
		}
		def := cells[1]
		switch {
		case k.Default == "" && strings.HasPrefix(def, "`"):
			problems = append(problems, fmt.Sprintf("%s: default %s, but the key has no fixed default", name, def))
		case k.Default != "" && !strings.HasPrefix(def, "`"+k.Default+"`"):
			problems = append(problems, fmt.Sprintf("%s: default cell %q does not start with `%s`", name, def, k.Default))
		}
	}
	for _, k := range keys {
		switch seen[k.Name] {
		case 0:
			problems = append(problems, fmt.Sprintf("key %s is missing", k.Name))
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("key %s is listed %d times", k.Name, seen[k.Name]))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("docs/configuration.md disagrees with internal/config:\n\t%s", strings.Join(problems, "\n\t"))
	}
	return nil
}
