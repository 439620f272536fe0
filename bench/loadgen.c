/*
 * loadgen: a single-threaded epoll WebSocket client for fxgate's fan-out benchmark.
 *
 * Opens N connections to a ws:// URL (ramped, with backoff), subscribes each with one
 * masked text frame, then reads for a warm-up of W seconds and a measured window of
 * D seconds. For every market_data message it reads the top-level "timestamp" (tick
 * creation time, ISO 8601 UTC), the data "symbol" and the stream "offset": latency goes
 * into a 0.1 ms histogram, offset gaps per (connection, symbol) count as loss. At the end
 * it prints one JSON line on stdout. Progress goes to stderr, including the lines
 * "# window start" and "# window end" that bench/fanout.py uses to sample the server's
 * CPU over the same window.
 *
 * Other dialects (bench/dialects.py): --hello FRAME (repeatable) replaces the subscribe
 * frame, --subscribed and --market give substrings that mark the subscription answer and
 * the market-data frames, and --engineio speaks Engine.IO v4 / Socket.IO v5 over the
 * WebSocket. Those frames go through a generic reader (any nesting, ISO or numeric
 * timestamps, offsets where present, loss by counting otherwise); without --subscribed and
 * --market the canonical envelope's own parser runs, unchanged.
 *
 * No external libraries: gcc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define READ_SZ (64 * 1024)
#define MAX_SYMBOLS 64
#define HIST_BUCKETS 100000 /* 0.1 ms each: 0 .. 10 s */
#define MAX_INFLIGHT 256
#define MAX_ATTEMPTS 30
#define MAX_FRAME (64u * 1024u * 1024u)

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED, ST_FAILED };
enum { PH_CONNECT, PH_WARMUP, PH_MEASURE };

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    int fd;
    int state;
    int attempts;
    int subscribed;
    double retry_at;
    buf_t in;   /* bytes of an incomplete frame (or handshake) kept between reads */
    buf_t out;  /* bytes not yet accepted by the socket */
    size_t out_off;
    buf_t frag; /* a fragmented message being reassembled */
    int frag_op;
    int want_out;
    int eio_stage;     /* Engine.IO: 0 awaiting the open packet, 1 the Socket.IO connect, 2 up */
    struct gen_s *gen; /* generic dialects: per-symbol counts (loss without offsets) */
    int deflate;       /* permessage-deflate agreed */
    int frag_rsv1;     /* the fragmented message being reassembled is compressed */
    struct z_stream_s *zs; /* own inflate stream, when the server keeps its context */
    int64_t last_off[MAX_SYMBOLS];
} conn_t;

/* Per connection and symbol, for dialects without offsets: the newest tick time seen, how
 * many ticks in a row carried it (two ticks may share a millisecond), and how many ticks
 * with a time inside the loss window arrived. */
typedef struct gen_s {
    double last_ts[MAX_SYMBOLS];
    uint32_t run[MAX_SYMBOLS];
    uint32_t count[MAX_SYMBOLS];
} gen_t;

/* ---- options ---- */
static int o_clients = 10;
static double o_duration = 10, o_warmup = 2, o_rate = 300, o_connect_timeout = 0;
static const char *o_url = NULL;
static const char *o_subscribe = "{\"type\":\"subscribe\",\"channels\":[\"market-data\"]}";
static int o_verbose = 0;
#define MAX_HELLO 64
static const char *o_hello[MAX_HELLO]; /* frames sent once the socket is open */
static int o_nhello;
static const char *o_sub_marker, *o_market_marker; /* generic dialects only */
static size_t g_sub_marker_len, g_market_marker_len;
static int o_engineio, o_deflate;
static double o_loss_grace = -1;
static int g_generic; /* markers given: the generic reader instead of the canonical parser */

/* ---- target ---- */
static char g_host[320], g_port[16], g_path[4096];
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;

/* ---- state ---- */
static conn_t *g_conns;
static int g_ep;
static int g_phase = PH_CONNECT;
static int g_inflight, g_open, g_subscribed, g_failed, g_ever_open;
static int g_started; /* first attempts launched */
static double g_t0;
static char *g_rbuf;
static size_t g_rbuf_cap;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

/* ---- symbols ---- */
static char g_sym[MAX_SYMBOLS][32];
static size_t g_sym_len[MAX_SYMBOLS];
static int g_nsym;
static uint64_t g_sym_overflow;
static int64_t g_sym_max_off[MAX_SYMBOLS];   /* highest offset any connection has seen */
static int64_t g_sym_start_off[MAX_SYMBOLS]; /* ... when the window opened */
static double g_sym_max_ts[MAX_SYMBOLS];      /* newest tick time any connection has seen */
static uint32_t g_sym_max_run[MAX_SYMBOLS];   /* ... and the most ticks one saw carry it */
static uint64_t g_sym_ticks[MAX_SYMBOLS];     /* distinct tick times inside the loss window */
static double g_loss_lo, g_loss_hi;           /* the loss window, wall ms (tick times) */
static int g_used_offsets, g_used_counts;

/* ---- stats (reset when the window opens, except the whole-run ones) ---- */
static uint64_t s_messages, s_market, s_lat_n, s_gaps, s_dups, s_snapshots, s_bytes, s_parse_err;
static double s_lat_sum, s_lat_max;
static uint64_t *s_hist;
static uint64_t *s_first_hist; /* latency of each tick's first delivery to any client */
/* The same latencies measured when the load generator read the bytes rather than when
 * they reached its socket (kernel receive time, SO_TIMESTAMPNS): the difference is the
 * load generator's own queueing, one thread reading every connection in turn. */
static uint64_t *s_read_hist;
static double s_read_max;
static double g_read_lag; /* read time - arrival time of the current recv(), ms */
static uint64_t r_kernel_ts, r_no_kernel_ts;
static uint64_t s_first_n;
static double s_first_max;
static uint64_t s_hist_over;
static uint64_t r_closed_by_server, r_eof, r_connect_failed, r_retries, r_pings;
static int r_close_code[16], r_close_cnt[16], r_nclose;
static int r_http_status_fail; /* last non-101 status that failed a connection */
static uint64_t r_sio_refused, r_quote_overflow;
static char g_unmatched[240]; /* the first frame no marker matched: a hint for a new row */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static uint64_t rng_next(void)
{
    uint64_t x = g_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return g_rng = x;
}

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void buf_reserve(buf_t *b, size_t need)
{
    if (b->cap >= need)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        die("out of memory");
    b->cap = cap;
}

static void buf_append(buf_t *b, const void *data, size_t n)
{
    buf_reserve(b, b->len + n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_free(buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------- */
/* Minimal JSON scanning: enough to walk the keys of an object and skip values. */

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at the opening quote; returns the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *e)
{
    p++;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (!q)
            return NULL;
        size_t bs = 0;
        for (const char *r = q - 1; r >= p && *r == '\\'; r--)
            bs++;
        if ((bs & 1) == 0)
            return q + 1;
        p = q + 1;
    }
}

static const char *skip_value(const char *p, const char *e)
{
    if (p >= e)
        return NULL;
    if (*p == '"')
        return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, e);
                if (!p)
                    return NULL;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
        p++;
    return p;
}

#define KEY_IS(k, kl, lit) ((kl) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff…][Z|±HH:MM]" (s..e, without quotes) into epoch ms. */
static int parse_iso_ms(const char *s, const char *e, double *out)
{
    int Y, M, D, h, m, sec;
    if (e - s < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &m) || digits(s + 17, 2, &sec))
        return -1;
    const char *p = s + 19;
    double frac = 0, scale = 100.0;
    if (p < e && *p == '.') {
        p++;
        while (p < e && *p >= '0' && *p <= '9') {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    double tz_ms = 0;
    if (p < e && (*p == '+' || *p == '-') && e - p >= 6) {
        int th, tm;
        if (digits(p + 1, 2, &th) || digits(p + 4, 2, &tm))
            return -1;
        tz_ms = (th * 60 + tm) * 60000.0 * (*p == '+' ? 1 : -1);
    }
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    *out = ((double)(days * 86400 + h * 3600 + m * 60 + sec)) * 1000.0 + frac - tz_ms;
    return 0;
}

typedef struct {
    int is_market, is_subscription, is_snapshot, have_ts, have_data_ts, have_off;
    double ts, data_ts;
    int64_t offset;
    const char *sym;
    size_t sym_len;
} msg_t;

static const char *parse_data(const char *p, const char *e, msg_t *m)
{
    /* p at '{' */
    p++;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != '"')
            return NULL;
        const char *k = p + 1;
        p = skip_string(p, e);
        if (!p)
            return NULL;
        size_t kl = (size_t)(p - 1 - k);
        p = skip_ws(p, e);
        if (p >= e || *p != ':')
            return NULL;
        p = skip_ws(p + 1, e);
        const char *v = p;
        p = skip_value(p, e);
        if (!p)
            return NULL;
        if (KEY_IS(k, kl, "symbol") && *v == '"') {
            m->sym = v + 1;
            m->sym_len = (size_t)(p - v - 2);
        } else if (KEY_IS(k, kl, "snapshot")) {
            m->is_snapshot = (*v == 't');
        } else if (KEY_IS(k, kl, "timestamp") && *v == '"') {
            if (parse_iso_ms(v + 1, p - 1, &m->data_ts) == 0)
                m->have_data_ts = 1;
        }
        p = skip_ws(p, e);
        if (p < e && *p == ',')
            p++;
    }
}

static int parse_message(const char *p, const char *e, msg_t *m)
{
    memset(m, 0, sizeof(*m));
    p = skip_ws(p, e);
    if (p >= e || *p != '{')
        return -1;
    p++;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e)
            return -1;
        if (*p == '}')
            return 0;
        if (*p != '"')
            return -1;
        const char *k = p + 1;
        p = skip_string(p, e);
        if (!p)
            return -1;
        size_t kl = (size_t)(p - 1 - k);
        p = skip_ws(p, e);
        if (p >= e || *p != ':')
            return -1;
        p = skip_ws(p + 1, e);
        const char *v = p;
        if (KEY_IS(k, kl, "data") && *v == '{') {
            p = parse_data(p, e, m);
        } else {
            p = skip_value(p, e);
        }
        if (!p)
            return -1;
        if (KEY_IS(k, kl, "type") && *v == '"') {
            size_t vl = (size_t)(p - v - 2);
            if (vl == 11 && memcmp(v + 1, "market_data", 11) == 0)
                m->is_market = 1;
            else if (vl == 12 && memcmp(v + 1, "subscription", 12) == 0)
                m->is_subscription = 1;
        } else if (KEY_IS(k, kl, "timestamp") && *v == '"') {
            if (parse_iso_ms(v + 1, p - 1, &m->ts) == 0)
                m->have_ts = 1;
        } else if (KEY_IS(k, kl, "offset") && (*v == '-' || (*v >= '0' && *v <= '9'))) {
            m->offset = strtoll(v, NULL, 10);
            m->have_off = 1;
        }
        p = skip_ws(p, e);
        if (p < e && *p == ',')
            p++;
    }
}

static int symbol_index(const char *s, size_t n)
{
    for (int i = 0; i < g_nsym; i++)
        if (g_sym_len[i] == n && memcmp(g_sym[i], s, n) == 0)
            return i;
    if (g_nsym >= MAX_SYMBOLS || n >= sizeof(g_sym[0]))
        return -1;
    g_sym_max_off[g_nsym] = INT64_MIN;
    g_sym_start_off[g_nsym] = INT64_MIN;
    g_sym_max_ts[g_nsym] = -1;
    memcpy(g_sym[g_nsym], s, n);
    g_sym[g_nsym][n] = 0;
    g_sym_len[g_nsym] = n;
    return g_nsym++;
}

/* ------------------------------------------------------------------------- */
/* Sockets */

static void conn_close(conn_t *c, int new_state);
static void schedule_retry(conn_t *c, const char *why);

static void set_events(conn_t *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static int flush_out(conn_t *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, 1);
            return 0;
        }
        return -1;
    }
    c->out.len = c->out_off = 0;
    set_events(c, 0);
    return 0;
}

/* Queue one masked frame (client frames must be masked, RFC 6455 5.3). */
static int send_frame(conn_t *c, int opcode, const void *payload, size_t len)
{
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t key = (uint32_t)rng_next();
    unsigned char mask[4];
    memcpy(mask, &key, 4);
    memcpy(hdr + h, mask, 4);
    h += 4;
    buf_append(&c->out, hdr, h);
    buf_reserve(&c->out, c->out.len + len);
    unsigned char *dst = (unsigned char *)c->out.p + c->out.len;
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ mask[i & 3];
    c->out.len += len;
    return flush_out(c);
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}

static void start_connect(conn_t *c)
{
    int fd = socket(g_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            die("out of file descriptors: raise RLIMIT_NOFILE (ulimit -n)");
        schedule_retry(c, "socket");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The kernel's receive time of the bytes, returned with each read (see on_readable). */
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    c->fd = fd;
    c->attempts++;
    int r = connect(fd, (struct sockaddr *)&g_addr, g_addrlen);
    if (r < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        c->fd = -1;
        errno = err;
        schedule_retry(c, "connect");
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
    c->want_out = 1;
    c->state = ST_CONNECTING;
    g_inflight++;
}

static void schedule_retry(conn_t *c, const char *why)
{
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
        g_inflight--;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->in.len = 0;
    c->out.len = c->out_off = 0;
    if (c->attempts >= MAX_ATTEMPTS || g_phase != PH_CONNECT) {
        c->state = ST_FAILED;
        g_failed++;
        r_connect_failed++;
        if (o_verbose)
            fprintf(stderr, "loadgen: connection %ld failed (%s: %s)\n", (long)(c - g_conns), why,
                    strerror(errno));
        return;
    }
    double backoff = 0.05 * (double)(1u << (c->attempts < 6 ? c->attempts : 6));
    if (backoff > 2.0)
        backoff = 2.0;
    backoff *= 0.5 + (double)(rng_next() % 1000) / 1000.0;
    c->retry_at = mono_now() + backoff;
    c->state = ST_IDLE;
    r_retries++;
}

static void send_handshake(conn_t *c)
{
    unsigned char key[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t v = rng_next();
        memcpy(key + i, &v, 8);
    }
    char key64[32];
    base64(key, 16, key64);
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: fxgate-loadgen\r\n%s\r\n",
                     g_path, g_host, g_port, key64,
                     o_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                 "client_max_window_bits\r\n"
                               : "");
    if (n <= 0 || (size_t)n >= sizeof(req))
        die("request too long");
    buf_append(&c->out, req, (size_t)n);
    c->state = ST_HANDSHAKE;
    if (flush_out(c) < 0)
        schedule_retry(c, "send handshake");
}

static void conn_close(conn_t *c, int new_state)
{
    if (c->state == ST_OPEN) {
        g_open--;
        if (c->subscribed)
            g_subscribed--;
    }
    if (c->fd >= 0) {
        epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = new_state;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->frag);
    free(c->gen);
    c->gen = NULL;
    if (c->zs) { /* its inflate state is left to the process's exit: a few per run */
        free(c->zs);
        c->zs = NULL;
    }
}

static void record_close_code(int code)
{
    for (int i = 0; i < r_nclose; i++)
        if (r_close_code[i] == code) {
            r_close_cnt[i]++;
            return;
        }
    if (r_nclose < 16) {
        r_close_code[r_nclose] = code;
        r_close_cnt[r_nclose++] = 1;
    }
}

/* ------------------------------------------------------------------------- */
/* Messages */

static void record_latency(double lat, int first);

static void on_message(conn_t *c, const char *p, size_t len, double now_ms)
{
    int measuring = g_phase == PH_MEASURE;
    if (measuring) {
        s_messages++;
        s_bytes += len;
    }
    msg_t m;
    int first = 0;
    if (parse_message(p, p + len, &m) < 0) {
        if (measuring)
            s_parse_err++;
        return;
    }
    if (m.is_subscription && !c->subscribed) {
        c->subscribed = 1;
        g_subscribed++;
        return;
    }
    if (!m.is_market)
        return;
    if (m.is_snapshot) {
        if (measuring)
            s_snapshots++;
    }
    if (measuring)
        s_market++;
    if (m.sym && m.have_off) {
        int si = symbol_index(m.sym, m.sym_len);
        if (si < 0) {
            g_sym_overflow++;
        } else {
            int64_t last = c->last_off[si];
            if (last != INT64_MIN) {
                if (m.offset > last + 1) {
                    if (measuring)
                        s_gaps += (uint64_t)(m.offset - last - 1);
                } else if (m.offset <= last) {
                    if (measuring)
                        s_dups++;
                }
            }
            if (last == INT64_MIN || m.offset > last)
                c->last_off[si] = m.offset;
            if (m.offset > g_sym_max_off[si]) {
                g_sym_max_off[si] = m.offset;
                first = 1;
            }
        }
    }
    if (!measuring || m.is_snapshot)
        return;
    double ts = m.have_ts ? m.ts : (m.have_data_ts ? m.data_ts : -1);
    if (ts < 0)
        return;
    record_latency(now_ms - ts, first);
}

/* ------------------------------------------------------------------------- */
/* Generic dialects (bench/dialects.py): frames told apart by marker substrings, quotes
 * found wherever they are nested. */

typedef struct {
    const char *sym;
    size_t sym_len;
    double ts;
    int64_t off;
    unsigned char have_ts, have_off, snapshot, have_bid;
} quote_t;

#define MAX_QUOTES 64
#define MAX_DEPTH 4

typedef struct {
    quote_t q[MAX_QUOTES];
    int nq;
    quote_t env; /* the top-level object's own fields, when it is not a quote itself */
} gmsg_t;

/* An ISO 8601 string, or a number: epoch milliseconds above 1e11, else epoch seconds. */
static int parse_ts_value(const char *v, const char *end, double *out)
{
    if (*v == '"')
        return parse_iso_ms(v + 1, end - 1, out);
    if (*v == '-' || (*v >= '0' && *v <= '9')) {
        char *endp;
        double x = strtod(v, &endp);
        if (endp == v)
            return -1;
        *out = x > 1e11 ? x : x * 1000.0;
        return 0;
    }
    return -1;
}

/* A key that looks like an instrument (EURUSD, BTC/USD): the symbol of a keyed quote map. */
static int symbol_like(const char *k, size_t kl)
{
    int upper = 0;
    if (kl == 0 || kl >= sizeof(g_sym[0]))
        return 0;
    for (size_t i = 0; i < kl; i++) {
        char ch = k[i];
        if (ch >= 'A' && ch <= 'Z')
            upper = 1;
        else if (!((ch >= '0' && ch <= '9') || ch == '/' || ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return upper;
}

static const char *walk_value(const char *p, const char *e, int depth, gmsg_t *g,
                              const char *pkey, size_t pkl);

static const char *walk_object(const char *p, const char *e, int depth, gmsg_t *g,
                               const char *pkey, size_t pkl)
{
    quote_t cur;
    memset(&cur, 0, sizeof(cur));
    int nested_before = g->nq;
    p++;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == '}') {
            p++;
            break;
        }
        if (*p != '"')
            return NULL;
        const char *k = p + 1;
        p = skip_string(p, e);
        if (!p)
            return NULL;
        size_t kl = (size_t)(p - 1 - k);
        p = skip_ws(p, e);
        if (p >= e || *p != ':')
            return NULL;
        p = skip_ws(p + 1, e);
        const char *v = p;
        if (p < e && (*p == '{' || *p == '[') && depth < MAX_DEPTH)
            p = walk_value(p, e, depth + 1, g, k, kl);
        else
            p = skip_value(p, e);
        if (!p)
            return NULL;
        if (KEY_IS(k, kl, "symbol") && *v == '"') {
            cur.sym = v + 1;
            cur.sym_len = (size_t)(p - v - 2);
        } else if (KEY_IS(k, kl, "timestamp")) {
            if (parse_ts_value(v, p, &cur.ts) == 0)
                cur.have_ts = 1;
        } else if (KEY_IS(k, kl, "offset") && (*v == '-' || (*v >= '0' && *v <= '9'))) {
            cur.off = strtoll(v, NULL, 10);
            cur.have_off = 1;
        } else if (KEY_IS(k, kl, "snapshot")) {
            cur.snapshot = *v == 't';
        } else if (KEY_IS(k, kl, "bid")) {
            cur.have_bid = 1;
        }
        p = skip_ws(p, e);
        if (p < e && *p == ',')
            p++;
    }
    if (!cur.sym && cur.have_bid && pkey && symbol_like(pkey, pkl)) {
        cur.sym = pkey;
        cur.sym_len = pkl;
    }
    /* An object with a symbol around quotes of its own ({"symbol":"EUR/USD","data":{
     * "symbol":…}}) is their envelope, not one more quote. */
    if (cur.sym && g->nq == nested_before) {
        if (g->nq < MAX_QUOTES)
            g->q[g->nq++] = cur;
        else
            r_quote_overflow++;
    } else if (depth == 0) {
        g->env = cur;
    }
    return p;
}

static const char *walk_array(const char *p, const char *e, int depth, gmsg_t *g)
{
    p++;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == ']')
            return p + 1;
        if ((*p == '{' || *p == '[') && depth < MAX_DEPTH)
            p = walk_value(p, e, depth + 1, g, NULL, 0);
        else
            p = skip_value(p, e);
        if (!p)
            return NULL;
        p = skip_ws(p, e);
        if (p < e && *p == ',')
            p++;
    }
}

static const char *walk_value(const char *p, const char *e, int depth, gmsg_t *g,
                              const char *pkey, size_t pkl)
{
    if (p >= e)
        return NULL;
    if (*p == '{')
        return walk_object(p, e, depth, g, pkey, pkl);
    if (*p == '[')
        return walk_array(p, e, depth, g);
    return skip_value(p, e);
}

static void record_latency(double lat, int first)
{
    if (lat < 0)
        lat = 0;
    double rlat = lat + g_read_lag;
    size_t rb = (size_t)(rlat * 10.0);
    s_read_hist[rb < HIST_BUCKETS ? rb : HIST_BUCKETS - 1]++;
    if (rlat > s_read_max)
        s_read_max = rlat;
    if (first) {
        size_t fb = (size_t)(lat * 10.0);
        s_first_hist[fb < HIST_BUCKETS ? fb : HIST_BUCKETS - 1]++;
        s_first_n++;
        if (lat > s_first_max)
            s_first_max = lat;
    }
    s_lat_n++;
    s_lat_sum += lat;
    if (lat > s_lat_max)
        s_lat_max = lat;
    size_t b = (size_t)(lat * 10.0);
    if (b < HIST_BUCKETS)
        s_hist[b]++;
    else
        s_hist_over++;
}

/* Offsets: as the canonical parser does. Returns 1 when this is the tick's first arrival. */
static int account_offset(conn_t *c, int si, int64_t off, int measuring)
{
    int first = 0;
    int64_t last = c->last_off[si];
    g_used_offsets = 1;
    if (last != INT64_MIN) {
        if (off > last + 1) {
            if (measuring)
                s_gaps += (uint64_t)(off - last - 1);
        } else if (off <= last) {
            if (measuring)
                s_dups++;
        }
    }
    if (last == INT64_MIN || off > last)
        c->last_off[si] = off;
    if (off > g_sym_max_off[si]) {
        g_sym_max_off[si] = off;
        first = 1;
    }
    return first;
}

/* No offsets: count the ticks of each (connection, symbol) whose time falls inside the
 * loss window; at the end every connection should have as many as the feed made. A tick
 * is known by its time and, when several share one, by its rank among them (the k-th
 * EURUSD tick of 12:00:00.123); the feed's count is the ticks any connection saw. Returns
 * 1 on the tick's first arrival. */
static int account_count(conn_t *c, int si, double ts, int measuring)
{
    int first = 0;
    int in_window = measuring && ts >= g_loss_lo && ts < g_loss_hi;
    uint32_t run = 1;
    g_used_counts = 1;
    if (c->gen) {
        gen_t *g = c->gen;
        if (ts < g->last_ts[si]) { /* older than one already seen */
            if (measuring)
                s_dups++;
            return 0;
        }
        run = ts == g->last_ts[si] ? g->run[si] + 1 : 1;
        g->last_ts[si] = ts;
        g->run[si] = run;
        if (in_window)
            g->count[si]++;
    }
    if (ts > g_sym_max_ts[si] || (ts == g_sym_max_ts[si] && run > g_sym_max_run[si])) {
        first = 1;
        if (in_window)
            g_sym_ticks[si]++;
        g_sym_max_ts[si] = ts;
        g_sym_max_run[si] = run;
    }
    return first;
}

static int send_hello(conn_t *c, int from)
{
    for (int i = from; i < o_nhello; i++)
        if (send_frame(c, 0x1, o_hello[i], strlen(o_hello[i])) < 0)
            return -1;
    return 0;
}

static void market_quotes(conn_t *c, const char *p, const char *e, double now_ms, int measuring)
{
    gmsg_t g;
    g.nq = 0;
    memset(&g.env, 0, sizeof(g.env));
    if (!walk_value(skip_ws(p, e), e, 0, &g, NULL, 0)) {
        if (measuring)
            s_parse_err++;
        return;
    }
    if (g.nq == 0) /* a market frame without a symbol: one update, no per-symbol accounting */
        g.q[g.nq++] = g.env;
    for (int i = 0; i < g.nq; i++) {
        quote_t *q = &g.q[i];
        if (!q->have_ts && g.env.have_ts) {
            q->ts = g.env.ts;
            q->have_ts = 1;
        }
        if (!q->have_off && g.env.have_off && g.nq == 1) {
            q->off = g.env.off;
            q->have_off = 1;
        }
        int snapshot = q->snapshot || g.env.snapshot;
        if (measuring) {
            s_market++;
            if (snapshot)
                s_snapshots++;
        }
        int first = 0;
        if (q->sym) {
            int si = symbol_index(q->sym, q->sym_len);
            if (si < 0)
                g_sym_overflow++;
            else if (q->have_off)
                first = account_offset(c, si, q->off, measuring);
            else if (q->have_ts)
                first = account_count(c, si, q->ts, measuring);
        }
        if (measuring && !snapshot && q->have_ts)
            record_latency(now_ms - q->ts, first);
    }
}

/* Engine.IO packets on an open socket; returns 1 when the frame was consumed here, 0 when
 * it is a Socket.IO event to read, -1 when the connection closed. */
static int engineio_packet(conn_t *c, const char *p, size_t len)
{
    if (len == 0)
        return 1;
    switch (p[0]) {
    case '0': /* open: {"sid","pingInterval","pingTimeout","maxPayload"} */
        if (c->eio_stage == 0) { /* hello[0] is the Socket.IO connect; the rest follows its ack */
            c->eio_stage = 1;
            if (o_nhello > 0 && send_frame(c, 0x1, o_hello[0], strlen(o_hello[0])) < 0)
                goto gone;
        }
        return 1;
    case '2': { /* the server's ping: pong with the same payload */
        char pong[128];
        if (len > sizeof(pong))
            len = sizeof(pong);
        pong[0] = '3';
        memcpy(pong + 1, p + 1, len - 1);
        r_pings++;
        if (send_frame(c, 0x1, pong, len) < 0)
            goto gone;
        return 1;
    }
    case '1': /* Engine.IO close */
        record_close_code(1);
        r_closed_by_server++;
        conn_close(c, ST_CLOSED);
        return -1;
    case '4':
        if (len >= 2 && p[1] == '0') { /* Socket.IO connect ack: {"sid"} */
            if (c->eio_stage == 1) {
                c->eio_stage = 2;
                if (send_hello(c, 1) < 0)
                    goto gone;
            }
            return 1;
        }
        if (len >= 2 && p[1] == '4') { /* connect_error: refused */
            if (!r_sio_refused++)
                fprintf(stderr, "loadgen: Socket.IO connect refused: %.*s\n",
                        (int)(len < 300 ? len : 300), p);
            conn_close(c, ST_FAILED);
            g_failed++;
            r_connect_failed++;
            return -1;
        }
        if (len >= 2 && p[1] == '1') { /* Socket.IO disconnect */
            record_close_code(41);
            r_closed_by_server++;
            conn_close(c, ST_CLOSED);
            return -1;
        }
        return 0;
    default: /* 3 pong, 5 upgrade, 6 noop */
        return 1;
    }
gone:
    r_eof++;
    r_closed_by_server++;
    conn_close(c, ST_CLOSED);
    return -1;
}

/* Returns -1 when the connection closed while handling the frame. */
static int on_message_generic(conn_t *c, const char *p, size_t len, double now_ms)
{
    int measuring = g_phase == PH_MEASURE;
    if (measuring) {
        s_messages++;
        s_bytes += len;
    }
    const char *e = p + len;
    if (o_engineio) {
        int r = engineio_packet(c, p, len);
        if (r)
            return r < 0 ? -1 : 0;
    }
    if (!c->subscribed && memmem(p, len, o_sub_marker, g_sub_marker_len)) {
        c->subscribed = 1; /* and read on: the marker may be the first market frame's */
        g_subscribed++;
    }
    if (!memmem(p, len, o_market_marker, g_market_marker_len)) {
        if (!g_unmatched[0] && !c->subscribed)
            snprintf(g_unmatched, sizeof(g_unmatched), "%.*s",
                     (int)(len < sizeof(g_unmatched) - 1 ? len : sizeof(g_unmatched) - 1), p);
        return 0;
    }
    if (o_engineio) { /* 42[...], 42<ack id>[...], 42/namespace,[...] */
        p++;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p < e && *p == '/') {
            const char *comma = memchr(p, ',', (size_t)(e - p));
            p = comma ? comma + 1 : e;
        }
    }
    market_quotes(c, p, e, now_ms, measuring);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* permessage-deflate (RFC 7692), for --deflate rows: zlib is loaded with dlopen when the
 * row asks for it, so the load generator still builds with no library at all. */

#if !defined(LOADGEN_NO_ZLIB_H) && __has_include(<zlib.h>)
#define ZLIB_CONST
#include <zlib.h>
#else /* zlib's ABI, stable since 1.0: the fields and the two calls used here */
typedef struct z_stream_s {
    const unsigned char *next_in;
    unsigned avail_in;
    unsigned long total_in;
    unsigned char *next_out;
    unsigned avail_out;
    unsigned long total_out;
    const char *msg;
    void *state;
    void *zalloc, *zfree, *opaque;
    int data_type;
    unsigned long adler, reserved;
} z_stream;
#define Z_OK 0
#define Z_STREAM_END 1
#define Z_BUF_ERROR (-5)
#define Z_SYNC_FLUSH 2
#define ZLIB_VERSION "1.2.13" /* zlib checks the major version only */
#endif

static int (*zf_inflateInit2_)(z_stream *, int, const char *, int);
static int (*zf_inflate)(z_stream *, int);
static int (*zf_inflateReset)(z_stream *);
static z_stream g_zs; /* shared when the server takes no context over between messages */
static int g_zs_ready;
static buf_t g_inflated;
static uint64_t r_deflate_negotiated, r_inflated, r_inflate_err;

static void zlib_load(void)
{
    void *h = dlopen("libz.so.1", RTLD_NOW);
    if (!h)
        h = dlopen("libz.so", RTLD_NOW);
    if (!h)
        die("--deflate needs zlib (libz.so.1)");
    zf_inflateInit2_ = (int (*)(z_stream *, int, const char *, int))dlsym(h, "inflateInit2_");
    zf_inflate = (int (*)(z_stream *, int))dlsym(h, "inflate");
    zf_inflateReset = (int (*)(z_stream *))dlsym(h, "inflateReset");
    if (!zf_inflateInit2_ || !zf_inflate || !zf_inflateReset)
        die("zlib without inflateInit2_/inflate/inflateReset");
}

static int zs_init(z_stream *zs)
{
    memset(zs, 0, sizeof(*zs));
    return zf_inflateInit2_(zs, -15, ZLIB_VERSION, (int)sizeof(z_stream)) == Z_OK ? 0 : -1;
}

/* Inflates one compressed message (the tail 00 00 ff ff appended, RFC 7692 7.2.2) into
 * g_inflated; returns -1 on a corrupt stream. */
static int inflate_message(conn_t *c, const unsigned char *in, size_t n)
{
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    z_stream *zs = c->zs;
    if (!zs) {
        if (!g_zs_ready) {
            if (zs_init(&g_zs) < 0)
                die("inflateInit2 failed");
            g_zs_ready = 1;
        }
        zs = &g_zs;
        zf_inflateReset(zs);
    }
    g_inflated.len = 0;
    for (int part = 0; part < 2; part++) {
        zs->next_in = part ? tail : in;
        zs->avail_in = (unsigned)(part ? sizeof(tail) : n);
        while (zs->avail_in > 0) {
            buf_reserve(&g_inflated, g_inflated.len + 65536);
            zs->next_out = (unsigned char *)g_inflated.p + g_inflated.len;
            zs->avail_out = (unsigned)(g_inflated.cap - g_inflated.len);
            int rc = zf_inflate(zs, Z_SYNC_FLUSH);
            g_inflated.len = g_inflated.cap - zs->avail_out;
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
                r_inflate_err++;
                return -1;
            }
            if (rc == Z_STREAM_END)
                break;
        }
    }
    r_inflated++;
    return 0;
}

/* The handshake's answer: whether deflate was agreed, and whether the server keeps its
 * compression context between messages (then this connection needs its own stream). */
static void deflate_negotiate(conn_t *c, const char *hdr, size_t n)
{
    if (!memmem(hdr, n, "permessage-deflate", 18))
        return;
    c->deflate = 1;
    r_deflate_negotiated++;
    if (memmem(hdr, n, "server_no_context_takeover", 26))
        return;
    c->zs = malloc(sizeof(z_stream));
    if (!c->zs || zs_init(c->zs) < 0)
        die("inflateInit2 failed");
}

/* Parses complete frames in p[0..n); returns bytes consumed, or -1 if the connection closed. */
static ssize_t parse_frames(conn_t *c, char *p, size_t n, double now_ms)
{
    size_t pos = 0;
    while (n - pos >= 2) {
        unsigned char *f = (unsigned char *)p + pos;
        int fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80, rsv1 = f[0] & 0x40;
        uint64_t len = f[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (n - pos < 4)
                break;
            len = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (len == 127) {
            if (n - pos < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            h = 10;
        }
        if (len > MAX_FRAME) {
            fprintf(stderr, "loadgen: frame of %llu bytes, giving up on connection\n",
                    (unsigned long long)len);
            conn_close(c, ST_CLOSED);
            return -1;
        }
        if (masked)
            h += 4;
        if (n - pos < h + len)
            break;
        unsigned char *pl = f + h;
        if (masked) {
            unsigned char *mk = f + h - 4;
            for (uint64_t i = 0; i < len; i++)
                pl[i] ^= mk[i & 3];
        }
        pos += h + (size_t)len;
        switch (op) {
        case 0x1:
        case 0x2:
            if (rsv1 && c->deflate && fin) {
                if (inflate_message(c, pl, (size_t)len) < 0) {
                    if (g_phase == PH_MEASURE)
                        s_parse_err++;
                } else if (on_message_generic(c, g_inflated.p, g_inflated.len, now_ms) < 0) {
                    return -1;
                }
            } else if (fin) {
                if (!g_generic)
                    on_message(c, (char *)pl, (size_t)len, now_ms);
                else if (on_message_generic(c, (char *)pl, (size_t)len, now_ms) < 0)
                    return -1;
            } else {
                c->frag.len = 0;
                c->frag_op = op;
                c->frag_rsv1 = rsv1 && c->deflate;
                buf_append(&c->frag, pl, (size_t)len);
            }
            break;
        case 0x0:
            buf_append(&c->frag, pl, (size_t)len);
            if (fin) {
                const char *msg = c->frag.p;
                size_t msg_len = c->frag.len;
                if (c->frag_rsv1) {
                    c->frag_rsv1 = 0;
                    if (inflate_message(c, (unsigned char *)c->frag.p, c->frag.len) < 0) {
                        if (g_phase == PH_MEASURE)
                            s_parse_err++;
                        c->frag.len = 0;
                        break;
                    }
                    msg = g_inflated.p;
                    msg_len = g_inflated.len;
                }
                if (!g_generic) {
                    on_message(c, msg, msg_len, now_ms);
                } else if (on_message_generic(c, msg, msg_len, now_ms) < 0) {
                    return -1;
                }
                c->frag.len = 0;
            }
            break;
        case 0x8: {
            int code = len >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
            record_close_code(code);
            r_closed_by_server++;
            unsigned char cp[2] = {(unsigned char)(code >> 8), (unsigned char)code};
            if (code != 1005)
                send_frame(c, 0x8, cp, 2);
            else
                send_frame(c, 0x8, "", 0);
            if (o_verbose)
                fprintf(stderr, "loadgen: server closed connection %ld with %d\n",
                        (long)(c - g_conns), code);
            conn_close(c, ST_CLOSED);
            return -1;
        }
        case 0x9:
            r_pings++;
            if (send_frame(c, 0xA, pl, (size_t)len) < 0) {
                r_eof++;
                r_closed_by_server++;
                conn_close(c, ST_CLOSED);
                return -1;
            }
            break;
        default: /* pong or reserved: ignore */
            break;
        }
    }
    return (ssize_t)pos;
}

static int http_status(const char *p, size_t n)
{
    /* "HTTP/1.1 101 Switching Protocols" */
    const char *sp = memchr(p, ' ', n);
    if (!sp || (size_t)(sp - p) + 4 > n)
        return -1;
    return atoi(sp + 1);
}

static void on_readable(conn_t *c)
{
    size_t keep = c->in.len;
    if (g_rbuf_cap < keep + READ_SZ) {
        g_rbuf_cap = keep + READ_SZ;
        g_rbuf = realloc(g_rbuf, g_rbuf_cap);
        if (!g_rbuf)
            die("out of memory");
    }
    if (keep)
        memcpy(g_rbuf, c->in.p, keep);
    /* recvmsg for SO_TIMESTAMPNS: for TCP, the receive time of the last segment this read
     * consumed. Every frame of the read is timed by it, which overstates the latency of
     * the earlier ones (never understates any). */
    struct iovec iov = {g_rbuf + keep, READ_SZ};
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    ssize_t r = recvmsg(c->fd, &msg, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
    }
    if (r <= 0) {
        if (c->state == ST_HANDSHAKE) {
            if (r == 0)
                errno = ECONNRESET;
            schedule_retry(c, "handshake");
        } else {
            r_eof++;
            r_closed_by_server++;
            record_close_code(1006);
            conn_close(c, ST_CLOSED);
        }
        return;
    }
    double read_ms = wall_ms();
    double now_ms = read_ms;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    for (; cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec kt;
            memcpy(&kt, CMSG_DATA(cm), sizeof(kt));
            double k = kt.tv_sec * 1000.0 + kt.tv_nsec / 1e6;
            if (k > 0 && k <= read_ms)
                now_ms = k;
            break;
        }
    }
    if (now_ms < read_ms)
        r_kernel_ts++;
    else
        r_no_kernel_ts++;
    g_read_lag = read_ms - now_ms;
    size_t n = keep + (size_t)r;
    char *p = g_rbuf;
    if (c->state == ST_HANDSHAKE) {
        char *end = memmem(p, n, "\r\n\r\n", 4);
        if (!end) {
            if (n > 65536) {
                errno = EPROTO;
                schedule_retry(c, "handshake too long");
                return;
            }
            c->in.len = 0;
            buf_append(&c->in, p, n);
            return;
        }
        int status = http_status(p, (size_t)(end - p));
        if (status != 101) {
            if (status == 429 || status == 503 || status < 0) {
                errno = EAGAIN;
                schedule_retry(c, "http status");
            } else {
                r_http_status_fail = status;
                fprintf(stderr, "loadgen: connection %ld refused with HTTP %d\n",
                        (long)(c - g_conns), status);
                g_inflight--;
                conn_close(c, ST_FAILED);
                g_failed++;
                r_connect_failed++;
            }
            return;
        }
        g_inflight--;
        c->state = ST_OPEN;
        g_open++;
        g_ever_open++;
        size_t hl = (size_t)(end + 4 - p);
        if (o_deflate)
            deflate_negotiate(c, p, hl);
        p += hl;
        n -= hl;
        if (g_generic) {
            c->gen = malloc(sizeof(gen_t));
            if (!c->gen)
                die("out of memory");
            for (int s = 0; s < MAX_SYMBOLS; s++) {
                c->gen->last_ts[s] = -1;
                c->gen->run[s] = 0;
                c->gen->count[s] = 0;
            }
        }
        /* Engine.IO waits for the server's open packet before its first frame. */
        if (!o_engineio && send_hello(c, 0) < 0) {
            r_eof++;
            r_closed_by_server++;
            conn_close(c, ST_CLOSED);
            return;
        }
    }
    ssize_t used = parse_frames(c, p, n, now_ms);
    if (used < 0)
        return;
    c->in.len = 0;
    if ((size_t)used < n)
        buf_append(&c->in, p + used, n - (size_t)used);
}

static void on_event(conn_t *c, uint32_t ev)
{
    if (c->state == ST_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err || (ev & (EPOLLERR | EPOLLHUP))) {
                errno = err ? err : ECONNREFUSED;
                schedule_retry(c, "connect");
                return;
            }
            send_handshake(c);
        }
        return;
    }
    if (c->state != ST_HANDSHAKE && c->state != ST_OPEN)
        return;
    if (ev & EPOLLOUT) {
        if (flush_out(c) < 0) {
            if (c->state == ST_HANDSHAKE) {
                schedule_retry(c, "send");
            } else {
                r_eof++;
                r_closed_by_server++;
                conn_close(c, ST_CLOSED);
            }
            return;
        }
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int was_handshake = c->state == ST_HANDSHAKE;
        if (was_handshake && (ev & (EPOLLERR | EPOLLHUP)) && !(ev & EPOLLIN)) {
            errno = ECONNRESET;
            schedule_retry(c, "handshake");
            return;
        }
        on_readable(c);
    }
}

/* ------------------------------------------------------------------------- */

static void parse_url(const char *url)
{
    const char *p = url;
    if (strncmp(p, "ws://", 5) == 0)
        p += 5;
    else if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else
        die("--url must start with ws:// (wss is not supported)");
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (hostport >= sizeof(hp))
        die("host too long");
    memcpy(hp, p, hostport);
    hp[hostport] = 0;
    snprintf(g_path, sizeof(g_path), "%s", slash ? slash : "/");
    char *colon = strrchr(hp, ':');
    if (colon && hp[0] != '[') {
        *colon = 0;
        snprintf(g_port, sizeof(g_port), "%s", colon + 1);
    } else {
        snprintf(g_port, sizeof(g_port), "80");
    }
    snprintf(g_host, sizeof(g_host), "%s", hp);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(g_host, g_port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", g_host, g_port, gai_strerror(rc));
        exit(2);
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --url ws://HOST:PORT/PATH?token=JWT [--clients N] [--duration D]\n"
            "               [--warmup W] [--rate CONNECTS_PER_SEC] [--connect-timeout S]\n"
            "               [--subscribe JSON] [--verbose]\n"
            "               [--hello FRAME]... [--subscribed MARKER --market MARKER]\n"
            "               [--engineio] [--deflate] [--loss-grace S]\n"
            "Prints one JSON line with the measured window's statistics.\n");
    exit(2);
}

static double hist_percentile(const uint64_t *hist, uint64_t n, double max, double q)
{
    if (n == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)n);
    if (want >= n)
        want = n - 1;
    uint64_t cum = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        cum += hist[i];
        if (cum > want) {
            double upper = (double)(i + 1) / 10.0; /* bucket's upper edge */
            return upper < max ? upper : max;
        }
    }
    return max;
}

static double percentile(double q)
{
    return hist_percentile(s_hist, s_lat_n, s_lat_max, q);
}

static double rusage_secs(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o_verbose = 1;
            continue;
        }
        if (!strcmp(a, "--engineio")) {
            o_engineio = 1;
            continue;
        }
        if (!strcmp(a, "--deflate")) {
            o_deflate = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            usage();
        if (!v)
            usage();
        if (!strcmp(a, "--url"))
            o_url = v;
        else if (!strcmp(a, "--clients"))
            o_clients = atoi(v);
        else if (!strcmp(a, "--duration"))
            o_duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            o_warmup = atof(v);
        else if (!strcmp(a, "--rate"))
            o_rate = atof(v);
        else if (!strcmp(a, "--connect-timeout"))
            o_connect_timeout = atof(v);
        else if (!strcmp(a, "--subscribe"))
            o_subscribe = v;
        else if (!strcmp(a, "--hello")) {
            if (o_nhello >= MAX_HELLO)
                die("too many --hello frames");
            o_hello[o_nhello++] = v;
        } else if (!strcmp(a, "--subscribed"))
            o_sub_marker = v;
        else if (!strcmp(a, "--market"))
            o_market_marker = v;
        else if (!strcmp(a, "--loss-grace"))
            o_loss_grace = atof(v);
        else
            usage();
        i++;
    }
    if (!o_url || o_clients <= 0 || o_duration <= 0 || o_warmup < 0 || o_rate <= 0)
        usage();
    if (o_connect_timeout <= 0)
        o_connect_timeout = 30 + o_clients / o_rate * 3;
    g_generic = o_sub_marker || o_market_marker || o_engineio;
    if (o_nhello == 0 && !g_generic) /* a dialect may send nothing (it pushes unasked) */
        o_hello[o_nhello++] = o_subscribe;
    if (g_generic && (!o_sub_marker || !o_market_marker || !*o_sub_marker || !*o_market_marker))
        die("--subscribed and --market are both needed for a dialect (and --engineio)");
    if (g_generic) {
        g_sub_marker_len = strlen(o_sub_marker);
        g_market_marker_len = strlen(o_market_marker);
    }
    if (o_deflate)
        zlib_load();
    if (o_loss_grace < 0)
        o_loss_grace = o_duration / 2 < 2.0 ? o_duration / 2 : 2.0;
    if (o_loss_grace >= o_duration)
        die("--loss-grace must be shorter than --duration");

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o_clients + 16)
        fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %llu < clients %d\n",
                (unsigned long long)rl.rlim_cur, o_clients);

    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) == sizeof(seed) && seed)
        g_rng = seed;
    parse_url(o_url);

    g_conns = calloc((size_t)o_clients, sizeof(conn_t));
    s_hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    s_first_hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    s_read_hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (!g_conns || !s_hist || !s_first_hist || !s_read_hist)
        die("out of memory");
    for (int i = 0; i < o_clients; i++) {
        g_conns[i].fd = -1;
        g_conns[i].state = ST_IDLE;
        for (int s = 0; s < MAX_SYMBOLS; s++)
            g_conns[i].last_off[s] = INT64_MIN;
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die("epoll_create1 failed");

    struct epoll_event evs[1024];
    g_t0 = mono_now();
    double connect_deadline = g_t0 + o_connect_timeout;
    double phase_end = 0, window_start = 0, cpu0 = 0, connect_secs = 0, last_report = g_t0;
    int connected_at_window = 0;

    for (;;) {
        double now = mono_now();
        if (g_phase == PH_CONNECT) {
            /* Token bucket: at most o_rate new first attempts per second, MAX_INFLIGHT at once. */
            int allowed = (int)((now - g_t0) * o_rate) + 1;
            while (g_started < o_clients && g_started < allowed && g_inflight < MAX_INFLIGHT)
                start_connect(&g_conns[g_started++]);
            for (int i = 0; i < g_started && g_inflight < MAX_INFLIGHT; i++) {
                conn_t *c = &g_conns[i];
                if (c->state == ST_IDLE && c->retry_at <= now)
                    start_connect(c);
            }
            if (now - last_report >= 2.0) {
                fprintf(stderr, "# connecting: %d open, %d subscribed, %d failed of %d\n", g_open,
                        g_subscribed, g_failed, o_clients);
                last_report = now;
            }
            int settled = g_started == o_clients && g_subscribed + g_failed +
                                                            (int)r_closed_by_server >=
                                                        o_clients;
            if (settled || now >= connect_deadline) {
                connect_secs = now - g_t0;
                for (int i = 0; i < o_clients; i++) {
                    conn_t *c = &g_conns[i];
                    if (c->state == ST_IDLE || c->state == ST_CONNECTING ||
                        c->state == ST_HANDSHAKE) {
                        conn_close(c, ST_FAILED);
                        g_failed++;
                        r_connect_failed++;
                    }
                }
                g_inflight = 0;
                fprintf(stderr, "# connected: %d open, %d subscribed, %d failed in %.1f s\n",
                        g_open, g_subscribed, g_failed, connect_secs);
                if (g_generic && g_subscribed < g_open && g_unmatched[0])
                    fprintf(stderr,
                            "loadgen: no subscribed marker on %d connections; a frame that "
                            "matched no marker: %s\n",
                            g_open - g_subscribed, g_unmatched);
                g_phase = PH_WARMUP;
                phase_end = now + o_warmup;
            }
        }
        if (g_phase == PH_WARMUP && now >= phase_end) {
            g_phase = PH_MEASURE;
            window_start = now;
            phase_end = now + o_duration;
            cpu0 = rusage_secs();
            connected_at_window = g_open;
            memcpy(g_sym_start_off, g_sym_max_off, sizeof(g_sym_max_off));
            g_loss_lo = wall_ms();
            g_loss_hi = g_loss_lo + (o_duration - o_loss_grace) * 1000.0;
            fprintf(stderr, "# window start\n");
            fflush(stderr);
        }
        if (g_phase == PH_MEASURE && now >= phase_end)
            break;
        if (g_phase != PH_CONNECT && g_open == 0 && g_phase == PH_WARMUP && g_ever_open == 0) {
            /* Nothing connected: no point warming up. */
            phase_end = now;
        }

        int timeout_ms = 10;
        if (g_phase != PH_CONNECT) {
            double left = phase_end - now;
            timeout_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
            if (timeout_ms > 100)
                timeout_ms = 100;
        }
        int nev = epoll_wait(g_ep, evs, 1024, timeout_ms);
        if (nev < 0 && errno != EINTR)
            die("epoll_wait failed");
        for (int i = 0; i < nev; i++)
            on_event((conn_t *)evs[i].data.ptr, evs[i].events);
    }

    double window = mono_now() - window_start;
    double cpu = rusage_secs() - cpu0;
    /* Ticks the feed produced in the window, as seen by the clients: offsets advanced. */
    uint64_t feed_ticks = 0;
    for (int i = 0; i < g_nsym; i++)
        if (g_sym_start_off[i] != INT64_MIN && g_sym_max_off[i] > g_sym_start_off[i])
            feed_ticks += (uint64_t)(g_sym_max_off[i] - g_sym_start_off[i]);
    /* Without offsets: what each subscribed connection missed of the ticks timed inside
     * the loss window (the feed's count there: the distinct tick times anyone saw). */
    uint64_t count_ticks = 0, missing = 0;
    for (int i = 0; i < g_nsym; i++)
        count_ticks += g_sym_ticks[i];
    for (int i = 0; i < o_clients && count_ticks; i++) {
        conn_t *c = &g_conns[i];
        if (c->state != ST_OPEN || !c->subscribed || !c->gen)
            continue;
        for (int si = 0; si < g_nsym; si++)
            if (g_sym_ticks[si] > c->gen->count[si])
                missing += g_sym_ticks[si] - c->gen->count[si];
    }
    double feed_rate = window > 0 ? feed_ticks / window : 0.0;
    if (!feed_ticks && count_ticks) {
        feed_ticks = count_ticks;
        feed_rate = count_ticks / ((g_loss_hi - g_loss_lo) / 1000.0);
    }
    const char *loss_method = g_used_offsets ? (g_used_counts ? "offset+count" : "offset")
                                             : (g_used_counts ? "count" : "none");
    if (!g_generic)
        loss_method = "offset";
    fprintf(stderr, "# window end\n");
    fflush(stderr);

    printf("{\"clients\":%d,\"connected\":%d,\"duration\":%.3f,\"messages\":%llu,"
           "\"msgs_per_sec\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,"
           "\"gaps\":%llu,\"closed_by_server\":%llu,\"client_cpu_pct\":%.1f,"
           "\"p90_ms\":%.1f,\"p999_ms\":%.1f,\"mean_ms\":%.2f,\"latency_samples\":%llu,"
           "\"market_data\":%llu,\"snapshots\":%llu,\"dups\":%llu,\"parse_errors\":%llu,"
           "\"bytes\":%llu,\"symbols\":%d,\"open_at_end\":%d,\"connect_failed\":%llu,"
           "\"connect_retries\":%llu,\"connect_secs\":%.2f,\"pings\":%llu,\"eof\":%llu,"
           "\"feed_ticks\":%llu,\"feed_ticks_per_sec\":%.1f,\"first_p50_ms\":%.1f,"
           "\"first_p99_ms\":%.1f,\"first_max_ms\":%.1f,\"market_per_sec\":%.1f,"
           "\"offset_gaps\":%llu,\"missing_by_count\":%llu,\"loss_method\":\"%s\","
           "\"loss_window_secs\":%.3f,\"sio_refused\":%llu,\"quote_overflow\":%llu,"
           "\"deflate_negotiated\":%llu,\"inflated\":%llu,\"inflate_errors\":%llu,"
           "\"read_p50_ms\":%.1f,\"read_p99_ms\":%.1f,\"read_max_ms\":%.1f,"
           "\"kernel_ts_reads\":%llu,\"plain_reads\":%llu,"
           "\"close_codes\":{",
           o_clients, connected_at_window, window, (unsigned long long)s_messages,
           window > 0 ? s_messages / window : 0.0, percentile(0.50), percentile(0.99), s_lat_max,
           (unsigned long long)(s_gaps + missing), (unsigned long long)r_closed_by_server,
           window > 0 ? 100.0 * cpu / window : 0.0, percentile(0.90), percentile(0.999),
           s_lat_n ? s_lat_sum / (double)s_lat_n : 0.0, (unsigned long long)s_lat_n,
           (unsigned long long)s_market, (unsigned long long)s_snapshots,
           (unsigned long long)s_dups, (unsigned long long)s_parse_err,
           (unsigned long long)s_bytes, g_nsym, g_open, (unsigned long long)r_connect_failed,
           (unsigned long long)r_retries, connect_secs, (unsigned long long)r_pings,
           (unsigned long long)r_eof, (unsigned long long)feed_ticks,
           feed_rate, hist_percentile(s_first_hist, s_first_n, s_first_max, 0.50),
           hist_percentile(s_first_hist, s_first_n, s_first_max, 0.99), s_first_max,
           window > 0 ? s_market / window : 0.0, (unsigned long long)s_gaps,
           (unsigned long long)missing, loss_method,
           g_used_counts ? (g_loss_hi - g_loss_lo) / 1000.0 : 0.0,
           (unsigned long long)r_sio_refused, (unsigned long long)r_quote_overflow,
           (unsigned long long)r_deflate_negotiated, (unsigned long long)r_inflated,
           (unsigned long long)r_inflate_err,
           hist_percentile(s_read_hist, s_lat_n, s_read_max, 0.50),
           hist_percentile(s_read_hist, s_lat_n, s_read_max, 0.99), s_read_max,
           (unsigned long long)r_kernel_ts, (unsigned long long)r_no_kernel_ts);
    for (int i = 0; i < r_nclose; i++)
        printf("%s\"%d\":%d", i ? "," : "", r_close_code[i], r_close_cnt[i]);
    printf("}");
    if (r_http_status_fail)
        printf(",\"http_status_failed\":%d", r_http_status_fail);
    printf("}\n");
    fflush(stdout);
    return 0;
}
