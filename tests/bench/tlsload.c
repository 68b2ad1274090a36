/* SPDX-License-Identifier: BSD-2-Clause */
/* tlsload — a small, cheap TLS 1.2 / 1.3 load client for the side-by-side
 * benchmark (tests/bench/run.sh).  One thread, epoll, non-blocking OpenSSL.
 * Loopback only: it refuses any destination or source outside 127.0.0.0/8.
 * TLS 1.2 only by default; -3: TLS 1.3 only.
 *
 *   tlsload hs   -p PORT [-3] [-c CONC] [-d SECONDS] [-n MAXCONNS] [-r] [-u PATH] [-S NSRC]
 *                [-s FIRSTSRC] [-R RATE]
 *       CONC clients, each repeatedly: new TCP connection, TLS handshake,
 *       "GET PATH HTTP/1.1" with Connection: close, read the whole response,
 *       close.  Stops after SECONDS or MAXCONNS connections.  -r: offer the
 *       session ticket of the first full handshake on every later connection
 *       (resumption), and count how many were actually resumed.  In TLS 1.3
 *       the ticket is a post-handshake NewSessionTicket: it is taken from the
 *       new-session callback while the first response is read, and OpenSSL's
 *       client session cache is then turned off so that the same ticket can
 *       be offered again and again (see main()).  -R: start at most RATE
 *       new connections per second (evenly spaced; default: as fast as
 *       CONC allows), for a paced client that stays under a rate limit.
 *
 *   tlsload hold -p PORT -n N [-3] [-c CONC] [-t TIMEOUT] [-S NSRC] [-s FIRSTSRC] [-r]
 *       Establish N TLS connections (handshake done, nothing sent), at most
 *       CONC handshakes in flight, then print "READY ..." and keep them open
 *       until stdin says "check" (report how many the server closed) or
 *       "quit" / EOF.  After its handshake a connection's SSL object is freed
 *       without a close_notify, so the client keeps only the socket.  With
 *       -r in TLS 1.3 the first connection also waits (up to 5 s) for the
 *       server's NewSessionTicket before it is held.
 *
 * Source addresses FIRSTSRC .. FIRSTSRC+NSRC-1 (default 127.0.0.2 ..
 * 127.0.0.(1+NSRC)) are used round-robin (with IP_BIND_ADDRESS_NO_PORT) so
 * that many connections do not run out of ephemeral ports; -S 1 -s ADDR
 * makes every connection come from ADDR.  Output: one line of key=value
 * pairs; p50_ms and p99_ms are percentiles of the time per successful
 * connection, from connect() to the response fully read (hs) or to the
 * handshake done (hold), -1 if none succeeded; lerr counts the failed connections (of err) whose
 * socket(), bind() or connect() failed at once, on the client side.
 *
 * build: cc -O2 -o tlsload tlsload.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum st { ST_CONNECT, ST_HS, ST_TICKET, ST_WRITE, ST_READ };

struct conn {
	int fd;
	SSL *ssl;
	enum st st;
	size_t got;      /* bytes of response read */
	long need;       /* total response size once headers parsed, -1 unknown */
	char head[1024];
	size_t headlen;
	double t_ticket; /* ST_TICKET: when it started waiting for the ticket */
	double t_start;  /* when connect() was called */
};

static SSL_CTX *ctx;
static int ep;
static struct sockaddr_in dst;
static int nsrc = 8, src_next;
static uint32_t src_first = 0x7f000002u; /* 127.0.0.2 */
static int mode_hold, reuse, tls13;
static SSL_SESSION *ticket;
static char req[512];
static size_t reqlen;
static long n_ok, n_err, n_resumed, n_started, max_conns = -1;
static long n_lerr; /* of n_err: socket(), bind() or connect() failed at once */
static char cipher[64] = "?", group[32] = "?", proto[16] = "?";
static int *held;
static long n_held;
static double *lat; /* seconds per successful connection */
static size_t n_lat, cap_lat;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
}

static void record_params(SSL *ssl)
{
	EVP_PKEY *k = NULL;
	snprintf(cipher, sizeof cipher, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
	snprintf(proto, sizeof proto, "%s", SSL_get_version(ssl));
	if (tls13) {
		/* the negotiated group by name (also hybrid ones such as
		 * X25519MLKEM768, which have no single peer EVP_PKEY) */
		const char *g = SSL_group_to_name(ssl, SSL_get_negotiated_group(ssl));
		if (g && *g) {
			snprintf(group, sizeof group, "%s", g);
			return;
		}
	}
	if (SSL_get_peer_tmp_key(ssl, &k) && k) {
		char g[32] = "";
		size_t gl = 0;
		if (EVP_PKEY_get_group_name(k, g, sizeof g, &gl) && gl)
			snprintf(group, sizeof group, "%s", g);
		else
			snprintf(group, sizeof group, "%s", EVP_PKEY_get0_type_name(k));
		EVP_PKEY_free(k);
	}
}

/* TLS 1.3: tickets arrive after the handshake; keep the first one */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	if (!reuse || ticket || !SSL_SESSION_is_resumable(sess))
		return 0;
	ticket = sess;
	return 1; /* we keep the reference */
}

/* TLS 1.3 fallback should new_session() not have fired: the connection's
 * current session, if it has a ticket */
static void take_session(SSL *ssl)
{
	SSL_SESSION *s = SSL_get1_session(ssl);
	if (s && SSL_SESSION_is_resumable(s))
		ticket = s;
	else
		SSL_SESSION_free(s);
}

static int start_conn(struct conn *c)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (nsrc > 0) {
		struct sockaddr_in s = { .sin_family = AF_INET };
		s.sin_addr.s_addr = htonl(src_first + (uint32_t)(src_next++ % nsrc));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&s, sizeof s) < 0) {
			close(fd);
			return -1;
		}
	}
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->need = -1;
	c->t_start = now();
	n_started++;
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
		close(fd);
		c->fd = -1;
		return -1;
	}
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, fd);
	if (reuse && ticket)
		SSL_set_session(c->ssl, ticket);
	c->st = ST_CONNECT;
	set_events(c, EPOLLOUT);
	return 0;
}

static void add_latency(double t)
{
	if (n_lat == cap_lat) {
		size_t n = cap_lat ? 2 * cap_lat : 4096;
		double *p = realloc(lat, n * sizeof *p);
		if (!p)
			return; /* out of memory: the percentiles use fewer samples */
		lat = p;
		cap_lat = n;
	}
	lat[n_lat++] = t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* nearest-rank percentile of the recorded latencies, in ms; -1 if none */
static double percentile_ms(double p)
{
	if (n_lat == 0)
		return -1;
	size_t k = (size_t)(p * n_lat + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n_lat)
		k = n_lat;
	return lat[k - 1] * 1e3;
}

static void end_conn(struct conn *c, int ok)
{
	if (ok) {
		n_ok++;
		add_latency(now() - c->t_start);
	} else
		n_err++;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl) {
		/* mark it shut down (sends nothing) so that OpenSSL does not flag the
		 * shared session not-resumable when the SSL object is freed */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
	}
	c->ssl = NULL;
	if (mode_hold && ok)
		held[n_held++] = c->fd;
	else
		close(c->fd);
	c->fd = -1;
}

/* returns 1 while the connection goes on, 0 when it ended */
static int ssl_want(struct conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		set_events(c, EPOLLIN);
		return 1;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		set_events(c, EPOLLOUT);
		return 1;
	}
	return -1;
}

static void step(struct conn *c)
{
	int r;
	char buf[16384];
	if (c->st == ST_CONNECT) {
		int err = 0;
		socklen_t l = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			end_conn(c, 0);
			return;
		}
		c->st = ST_HS;
	}
	if (c->st == ST_HS) {
		r = SSL_connect(c->ssl);
		if (r != 1) {
			if (ssl_want(c, r) < 0) {
				ERR_clear_error();
				end_conn(c, 0);
			}
			return;
		}
		if (SSL_session_reused(c->ssl))
			n_resumed++;
		if (n_ok == 0 && !strcmp(cipher, "?"))
			record_params(c->ssl);
		if (reuse && !ticket && !tls13)
			ticket = SSL_get1_session(c->ssl);
		if (mode_hold && reuse && !ticket && tls13) {
			c->st = ST_TICKET;
			c->t_ticket = now();
		} else if (mode_hold) {
			end_conn(c, 1);
			return;
		} else {
			c->st = ST_WRITE;
		}
	}
	if (c->st == ST_TICKET) {
		/* hold -r, TLS 1.3: read until the NewSessionTicket was processed
		 * (new_session() sets ticket) or 5 s passed, then hold the socket */
		for (;;) {
			if (ticket || now() - c->t_ticket > 5) {
				end_conn(c, 1);
				return;
			}
			r = SSL_read(c->ssl, buf, sizeof buf);
			if (r > 0)
				continue;
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				if (ticket)
					continue;
				set_events(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			ERR_clear_error();
			end_conn(c, 0);
			return;
		}
	}
	if (c->st == ST_WRITE) {
		r = SSL_write(c->ssl, req, (int)reqlen);
		if (r <= 0) {
			if (ssl_want(c, r) < 0) {
				ERR_clear_error();
				end_conn(c, 0);
			}
			return;
		}
		c->st = ST_READ;
	}
	for (;;) {
		r = SSL_read(c->ssl, buf, sizeof buf);
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				set_events(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			ERR_clear_error();
			if (reuse && !ticket && tls13)
				take_session(c->ssl);
			/* EOF: fine if the whole response (or at least a head) came */
			end_conn(c, c->need >= 0 ? c->got >= (size_t)c->need : c->got > 0);
			return;
		}
		if (c->need < 0) {
			size_t k = sizeof c->head - 1 - c->headlen;
			if ((size_t)r < k)
				k = r;
			memcpy(c->head + c->headlen, buf, k);
			c->headlen += k;
			c->head[c->headlen] = 0;
			char *eoh = strstr(c->head, "\r\n\r\n");
			if (eoh) {
				char *cl = strcasestr(c->head, "\ncontent-length:");
				if (cl)
					c->need = (eoh + 4 - c->head) + atol(cl + 16);
			}
		}
		c->got += r;
		if (c->need >= 0 && c->got >= (size_t)c->need) {
			/* the server sent its ticket before the response, so
			 * new_session() has normally taken it by now */
			if (reuse && !ticket && tls13)
				take_session(c->ssl);
			end_conn(c, 1);
			return;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: tlsload hs|hold -p PORT [-3] [-c CONC] [-d SECS] [-n N] [-t TIMEOUT] [-r] [-u PATH]\n"
			"               [-S NSRC] [-s FIRSTSRC] [-R RATE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int port = 0, conc = 32, opt;
	double secs = 5, timeout = 120, rate = 0;
	const char *path = "/100b";
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "hold"))
		mode_hold = 1;
	else if (strcmp(argv[1], "hs"))
		usage();
	optind = 2;
	struct in_addr a;
	while ((opt = getopt(argc, argv, "3p:c:d:n:t:ru:S:s:R:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'n': max_conns = atol(optarg); break;
		case 't': timeout = atof(optarg); break;
		case 'r': reuse = 1; break;
		case '3': tls13 = 1; break;
		case 'u': path = optarg; break;
		case 'S': nsrc = atoi(optarg); break;
		case 's':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				usage();
			src_first = ntohl(a.s_addr);
			break;
		case 'R': rate = atof(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || (mode_hold && max_conns <= 0) || nsrc > 250 || rate < 0)
		usage();
	/* loopback only: every source address in 127.0.0.0/8, not 127.0.0.0 */
	if (nsrc > 0 && ((src_first >> 24) != 127 || ((src_first + nsrc - 1) >> 24) != 127 ||
			 (src_first & 0xffffffu) == 0)) {
		fprintf(stderr, "tlsload: source addresses must be in 127.0.0.0/8\n");
		exit(2);
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);

	dst.sin_family = AF_INET;
	dst.sin_port = htons(port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);

	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (tls13)
		SSL_CTX_sess_set_new_cb(ctx, new_session);

	ep = epoll_create1(0);
	if (mode_hold)
		held = calloc(max_conns, sizeof *held);
	struct conn *cs = calloc(conc, sizeof *cs);
	struct epoll_event evs[256];
	double t0 = now(), limit = mode_hold ? timeout : secs;
	int active = 0;
	/* with -r, do the first (full) handshake alone to get the ticket */
	int first_alone = reuse;
	for (int i = 0; i < conc; i++)
		cs[i].fd = -1;
	for (;;) {
		double t = now();
		int stop_new = (t - t0 >= limit) || (max_conns >= 0 && n_started >= max_conns);
		active = 0;
		for (int i = 0; i < conc; i++) {
			/* -R: the n-th connection starts at t0 + (n - 1) / rate */
			int paced = rate > 0 && n_started >= (long)(rate * (t - t0)) + 1;
			if (cs[i].fd < 0 && !stop_new && !paced && !(first_alone && n_started > 0)) {
				if (start_conn(&cs[i]) < 0) {
					n_err++;
					n_lerr++;
				}
				stop_new = max_conns >= 0 && n_started >= max_conns;
			}
			if (cs[i].fd >= 0 && cs[i].st == ST_TICKET && t - cs[i].t_ticket > 5)
				end_conn(&cs[i], 1); /* no ticket came: hold it anyway */
			if (cs[i].fd >= 0)
				active++;
		}
		if (first_alone && ticket) {
			first_alone = 0;
			/* An OpenSSL TLS 1.3 client with SSL_SESS_CACHE_CLIENT
			 * marks a session not resumable once a handshake resumed
			 * it (tickets are meant to be used once), which would end
			 * resumption after one connection; the cache was only on
			 * for new_session(), so turn it off now that we have the
			 * ticket, which every later connection then offers. */
			if (tls13)
				SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		}
		if (first_alone && active == 0 && n_started > 0)
			first_alone = 0; /* the first one failed; go on without */
		if (active == 0 && stop_new)
			break;
		if (t - t0 > limit + 10) /* stuck connections: give up on them */
			break;
		int wait_ms = 100;
		if (rate > 0 && !stop_new) {
			double next = t0 + n_started / rate - now();
			wait_ms = next <= 0 ? 1 : next >= 0.1 ? 100 : (int)(next * 1e3) + 1;
		}
		int n = epoll_wait(ep, evs, 256, wait_ms);
		for (int i = 0; i < n; i++)
			step(evs[i].data.ptr);
	}
	double el = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (n_lat)
		qsort(lat, n_lat, sizeof *lat, cmp_double);
	printf("%s ok=%ld err=%ld resumed=%ld secs=%.3f rate=%.1f cipher=%s group=%s client_cpu_s=%.3f stuck=%d proto=%s"
	       " p50_ms=%.3f p99_ms=%.3f lerr=%ld\n",
	       mode_hold ? "READY" : "DONE", n_ok, n_err, n_resumed, el, n_ok / el, cipher, group, cpu, active, proto,
	       percentile_ms(0.50), percentile_ms(0.99), n_lerr);
	fflush(stdout);
	if (!mode_hold)
		return 0;
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		if (!strncmp(line, "check", 5)) {
			long closed = 0;
			for (long i = 0; i < n_held; i++) {
				char b;
				ssize_t r = recv(held[i], &b, 1, MSG_PEEK | MSG_DONTWAIT);
				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
					closed++;
			}
			printf("CHECK held=%ld closed=%ld\n", n_held, closed);
			fflush(stdout);
		} else
			break;
	}
	for (long i = 0; i < n_held; i++)
		close(held[i]);
	return 0;
}
