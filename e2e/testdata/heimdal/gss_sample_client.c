/*
 * A gss-sample protocol client linked against Heimdal's GSS-API library
 * (Debian heimdal-multidev: headers in /usr/include/heimdal, library in
 * /usr/lib/x86_64-linux-gnu/heimdal), so that gss-acceptor is exercised by
 * a second, independent Kerberos implementation on the same machine as MIT.
 *
 * Build:
 *   cc $(krb5-config.heimdal --cflags gssapi) -o heimdal-gss-client \
 *      gss_sample_client.c $(krb5-config.heimdal --libs gssapi)
 *
 * Usage:
 *   heimdal-gss-client [-spnego] [-nomutual] [-seq] [-mcount N] HOST PORT SERVICE MESSAGE
 *
 * It speaks MIT's gss-sample protocol (src/appl/gss-sample/gss-misc.c):
 * NOOP|CONTEXT_NEXT, the context tokens, then per message a sealed Wrap
 * token with SEND_MIC, whose MIC reply it verifies, then NOOP. It prints
 * "context flags=<hex>" once established and "Signature verified." per
 * verified MIC; errors go to stderr with exit status 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_spnego.h>

#define TOKEN_NOOP (1 << 0)
#define TOKEN_CONTEXT (1 << 1)
#define TOKEN_DATA (1 << 2)
#define TOKEN_MIC (1 << 3)
#define TOKEN_CONTEXT_NEXT (1 << 4)
#define TOKEN_WRAPPED (1 << 5)
#define TOKEN_ENCRYPTED (1 << 6)
#define TOKEN_SEND_MIC (1 << 7)

#define MAX_FRAME (1 << 20)

static void
die_gss(const char *what, OM_uint32 major, OM_uint32 minor)
{
	OM_uint32 min, ctx = 0;
	gss_buffer_desc msg;

	fprintf(stderr, "heimdal-gss-client: %s:", what);
	do {
		gss_display_status(&min, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &msg);
		fprintf(stderr, " %.*s", (int)msg.length, (char *)msg.value);
		gss_release_buffer(&min, &msg);
	} while (ctx != 0);
	ctx = 0;
	do {
		gss_display_status(&min, minor, GSS_C_MECH_CODE, GSS_C_NO_OID, &ctx, &msg);
		fprintf(stderr, "; %.*s", (int)msg.length, (char *)msg.value);
		gss_release_buffer(&min, &msg);
	} while (ctx != 0);
	fputc('\n', stderr);
	exit(1);
}

static void
die(const char *what)
{
	fprintf(stderr, "heimdal-gss-client: %s: %s\n", what, errno ? strerror(errno) : "protocol error");
	exit(1);
}

static void
write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		b += w;
		n -= (size_t)w;
	}
}

static void
read_all(int fd, void *p, size_t n)
{
	unsigned char *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = 0;
		if (r <= 0)
			die("read");
		b += r;
		n -= (size_t)r;
	}
}

static void
send_frame(int fd, int flags, const void *body, size_t len)
{
	unsigned char hdr[5];
	uint32_t n = htonl((uint32_t)len);

	hdr[0] = (unsigned char)flags;
	memcpy(hdr + 1, &n, 4);
	write_all(fd, hdr, 5);
	if (len > 0)
		write_all(fd, body, len);
}

/* recv_frame reads one frame; the caller frees buf->value. */
static int
recv_frame(int fd, gss_buffer_t buf)
{
	unsigned char hdr[5];
	uint32_t n;

	read_all(fd, hdr, 5);
	memcpy(&n, hdr + 1, 4);
	n = ntohl(n);
	if (n > MAX_FRAME) {
		errno = 0;
		die("frame too large");
	}
	buf->length = n;
	buf->value = malloc(n ? n : 1);
	if (buf->value == NULL)
		die("malloc");
	read_all(fd, buf->value, n);
	return hdr[0];
}

static int
dial(const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = { 30, 0 };
	int fd = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = 0;
		die("resolving the server address");
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("connect");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

int
main(int argc, char **argv)
{
	OM_uint32 maj, min, ret_flags = 0;
	OM_uint32 req = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG;
	gss_OID mech = GSS_KRB5_MECHANISM;
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_name_t target;
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out, name, msg, wrapped;
	long mcount = 1;
	int fd, flags, conf_state, i;

	while (argc > 1 && argv[1][0] == '-') {
		if (strcmp(argv[1], "-spnego") == 0) {
			mech = GSS_SPNEGO_MECHANISM;
		} else if (strcmp(argv[1], "-nomutual") == 0) {
			req &= ~GSS_C_MUTUAL_FLAG;
		} else if (strcmp(argv[1], "-seq") == 0) {
			req |= GSS_C_SEQUENCE_FLAG;
		} else if (strcmp(argv[1], "-mcount") == 0 && argc > 2) {
			mcount = strtol(argv[2], NULL, 10);
			argc--;
			argv++;
		} else {
			break;
		}
		argc--;
		argv++;
	}
	if (argc != 5 || mcount < 0) {
		fprintf(stderr, "usage: heimdal-gss-client [-spnego] [-nomutual] [-seq] [-mcount N] host port service msg\n");
		return 2;
	}

	name.value = argv[3];
	name.length = strlen(argv[3]);
	maj = gss_import_name(&min, &name, GSS_C_NT_HOSTBASED_SERVICE, &target);
	if (GSS_ERROR(maj))
		die_gss("gss_import_name", maj, min);

	fd = dial(argv[1], argv[2]);
	send_frame(fd, TOKEN_NOOP | TOKEN_CONTEXT_NEXT, NULL, 0);
	for (;;) {
		maj = gss_init_sec_context(&min, GSS_C_NO_CREDENTIAL, &ctx, target, mech, req, 0,
		    GSS_C_NO_CHANNEL_BINDINGS, in.length ? &in : GSS_C_NO_BUFFER, NULL, &out, &ret_flags, NULL);
		free(in.value);
		in.value = NULL;
		in.length = 0;
		if (out.length > 0)
			send_frame(fd, TOKEN_CONTEXT, out.value, out.length);
		gss_release_buffer(&min, &out);
		if (GSS_ERROR(maj))
			die_gss("gss_init_sec_context", maj, min);
		if (maj != GSS_S_CONTINUE_NEEDED)
			break;
		flags = recv_frame(fd, &in);
		if (flags != TOKEN_CONTEXT) {
			errno = 0;
			die("expected a context token");
		}
	}
	printf("context flags=%x\n", (unsigned)ret_flags);
	fflush(stdout);

	msg.value = argv[4];
	msg.length = strlen(argv[4]);
	for (i = 0; i < mcount; i++) {
		gss_buffer_desc mic;
		gss_qop_t qop;

		maj = gss_wrap(&min, ctx, 1, GSS_C_QOP_DEFAULT, &msg, &conf_state, &wrapped);
		if (GSS_ERROR(maj))
			die_gss("gss_wrap", maj, min);
		if (!conf_state) {
			errno = 0;
			die("gss_wrap did not encrypt");
		}
		send_frame(fd, TOKEN_DATA | TOKEN_WRAPPED | TOKEN_ENCRYPTED | TOKEN_SEND_MIC,
		    wrapped.value, wrapped.length);
		gss_release_buffer(&min, &wrapped);
		flags = recv_frame(fd, &mic);
		if (flags != TOKEN_MIC) {
			errno = 0;
			die("expected a MIC token");
		}
		maj = gss_verify_mic(&min, ctx, &msg, &mic, &qop);
		free(mic.value);
		if (GSS_ERROR(maj))
			die_gss("gss_verify_mic", maj, min);
		printf("Signature verified.\n");
		fflush(stdout);
	}
	send_frame(fd, TOKEN_NOOP, NULL, 0);
	close(fd);
	gss_delete_sec_context(&min, &ctx, GSS_C_NO_BUFFER);
	gss_release_name(&min, &target);
	return 0;
}
