/*
 * The floor: the least a server can do on this host to deliver the fan-out benchmark's
 * ticks, for `bench/fanout.py --reference floor`.
 *
 * fxgate's p99 at N = 1,000 is one pass over the sockets, and on loopback most of a
 * send's cost is the kernel's (the receiver's TCP included). This server has nothing
 * of fxgate but the shape of its writer: one event loop, one epoll, each tick framed
 * once and appended to every subscribed connection's buffer, dirty connections flushed
 * first-in first-out, one send() each, 64 per loop iteration, ticks that come due
 * between chunks published at once. No interpreter, no JSON encoder, no hub, no store:
 * what it measures is what the host charges for the same sends, in the same run as the
 * daemon, so that a p99 can be read against what any server would get.
 *
 * The feed is the paper feed's: per symbol, exponential gaps at --tick-rate ticks/s,
 * each tick stamped (top-level "timestamp") with the time it was due, so that a server
 * that falls behind shows as latency. Messages have the canonical endpoint's envelope
 * and about its size, with an offset per symbol, so the load generator counts loss the
 * same way.
 *
 * It speaks only as much HTTP and WebSocket as bench/loadgen.c uses: GET /health
 * answers 200, a GET asking for websocket is upgraded (Sec-WebSocket-Accept is not
 * computed: the load generator does not check it), any other GET gets 404. The first
 * client frame is taken as the subscribe and answered with a "subscription" message;
 * later frames are read and ignored, and a close frame closes. Not a WebSocket server
 * for anything else.
 *
 *   bench/bin/floor --tick-rate 17 --symbols EURUSD,GBPUSD serve --host 127.0.0.1 --port 9000
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 64                 /* writers per loop iteration, as fxgate's Flusher */
#define MAX_SYMBOLS 64
#define MAX_OUT (16u << 20)      /* a client this far behind is closed */
#define IN_CAP 8192

enum { HTTP, OPEN, SUBSCRIBED };

typedef struct {
    int state, dirty, blocked;
    char in[IN_CAP];
    size_t in_len;
    char *out;
    size_t out_len, out_off, out_cap;
} conn_t;

static conn_t **g_conns;
static int g_max_fd;
static int *g_fifo; /* ring of dirty fds, each at most once */
static size_t g_fifo_head, g_fifo_len, g_fifo_cap;
static int *g_subs; /* subscribed fds, in the order they subscribed */
static size_t g_nsubs;
static volatile sig_atomic_t g_stop;
static int g_ep;

typedef struct {
    char name[16];
    double bid, spread, open;
    int digits;
    double next_due; /* monotonic seconds */
    long long offset;
} symbol_t;

static symbol_t g_sym[MAX_SYMBOLS];
static int g_nsym;
static double g_rate = 17.0;
static double g_mono0, g_wall0;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double uniform(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static double expovariate(double rate) { return -log(1.0 - uniform()) / rate; }

static void iso_ms(double wall, char *out, size_t cap)
{
    time_t secs = (time_t)wall;
    int ms = (int)((wall - (double)secs) * 1000.0);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

static void out_append(conn_t *c, const char *data, size_t len)
{
    if (c->out_off && c->out_len + len > c->out_cap) { /* what was sent makes room */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out) {
            perror("realloc");
            exit(1);
        }
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void mark_dirty(int fd, conn_t *c)
{
    if (c->dirty || c->blocked)
        return;
    c->dirty = 1;
    g_fifo[(g_fifo_head + g_fifo_len) % g_fifo_cap] = fd;
    g_fifo_len++;
}

static void close_conn(int fd)
{
    conn_t *c = g_conns[fd];
    if (!c)
        return;
    if (c->state == SUBSCRIBED) {
        for (size_t i = 0; i < g_nsubs; i++)
            if (g_subs[i] == fd) {
                g_subs[i] = g_subs[--g_nsubs];
                break;
            }
    }
    /* A dirty fd stays in the ring: flush() skips fds without a connection. */
    epoll_ctl(g_ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->out);
    free(c);
    g_conns[fd] = NULL;
}

/* One server frame (FIN, text, unmasked) around payload, into dst. */
static size_t text_frame(char *dst, const char *payload, size_t len)
{
    size_t h = 0;
    dst[h++] = (char)0x81;
    if (len < 126) {
        dst[h++] = (char)len;
    } else {
        dst[h++] = 126;
        dst[h++] = (char)(len >> 8);
        dst[h++] = (char)(len & 0xff);
    }
    memcpy(dst + h, payload, len);
    return h + len;
}

static void send_text(int fd, conn_t *c, const char *payload)
{
    char frame[1024];
    size_t n = text_frame(frame, payload, strlen(payload));
    out_append(c, frame, n);
    mark_dirty(fd, c);
}

/* Frames the tick once and appends the same bytes to every subscribed connection. */
static void publish(symbol_t *s, double due)
{
    double pip = pow(10.0, -s->digits);
    s->bid += (uniform() - 0.5) * 4 * pip;
    double ask = s->bid + s->spread * pip;
    s->offset++;
    char ts[96], json[768], frame[800];
    iso_ms(g_wall0 + (due - g_mono0), ts, sizeof ts);
    int n = snprintf(json, sizeof json,
                     "{\"type\":\"market_data\",\"channel\":\"market-data\",\"data\":{"
                     "\"symbol\":\"%s\",\"bid\":%.*f,\"ask\":%.*f,\"last\":%.*f,\"volume\":1,"
                     "\"spread\":%.0f,\"timestamp\":\"%s\",\"change\":%.*f,"
                     "\"changePercent\":%.4f,\"dayHigh\":%.*f,\"dayLow\":%.*f,\"open\":%.*f,"
                     "\"close\":%.*f},\"timestamp\":\"%s\",\"id\":\"msg_floor_%lld\","
                     "\"offset\":%lld,\"epoch\":\"floor\"}",
                     s->name, s->digits, s->bid, s->digits, ask, s->digits, s->bid, s->spread,
                     ts, s->digits, s->bid - s->open, (s->bid - s->open) / s->open * 100,
                     s->digits, s->open * 1.001, s->digits, s->open * 0.999, s->digits, s->open,
                     s->digits, s->open, ts, s->offset, s->offset);
    size_t len = text_frame(frame, json, (size_t)n);
    for (size_t i = 0; i < g_nsubs; i++) {
        int fd = g_subs[i];
        conn_t *c = g_conns[fd];
        out_append(c, frame, len);
        if (c->out_len - c->out_off > MAX_OUT) {
            close_conn(fd);
            i--;
            continue;
        }
        mark_dirty(fd, c);
    }
}

static void publish_due(void)
{
    double now = mono();
    for (;;) {
        symbol_t *first = NULL;
        for (int i = 0; i < g_nsym; i++)
            if (g_sym[i].next_due <= now && (!first || g_sym[i].next_due < first->next_due))
                first = &g_sym[i];
        if (!first)
            return;
        double due = first->next_due;
        first->next_due += expovariate(g_rate);
        publish(first, due);
    }
}

static double next_due(void)
{
    double t = INFINITY;
    for (int i = 0; i < g_nsym; i++)
        if (g_sym[i].next_due < t)
            t = g_sym[i].next_due;
    return t;
}

static void want_output(int fd, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = fd};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, fd, &ev);
}

/* One send of everything queued; what the kernel does not take waits for EPOLLOUT. */
static void flush_conn(int fd, conn_t *c)
{
    c->dirty = 0;
    size_t left = c->out_len - c->out_off;
    if (!left)
        return;
    ssize_t n = send(fd, c->out + c->out_off, left, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            close_conn(fd);
            return;
        }
        n = 0;
    }
    if ((size_t)n == left) {
        c->out_len = c->out_off = 0;
        if (c->blocked) {
            c->blocked = 0;
            want_output(fd, 0);
        }
        return;
    }
    c->out_off += (size_t)n;
    if (!c->blocked) {
        c->blocked = 1;
        want_output(fd, 1);
    }
}

static void flush_chunk(void)
{
    for (int k = 0; k < CHUNK && g_fifo_len; k++) {
        int fd = g_fifo[g_fifo_head];
        g_fifo_head = (g_fifo_head + 1) % g_fifo_cap;
        g_fifo_len--;
        conn_t *c = g_conns[fd];
        if (c && c->dirty)
            flush_conn(fd, c);
    }
}

static void on_http(int fd, conn_t *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return;
    size_t used = (size_t)(end + 4 - c->in);
    if (c->in_len >= 11 && memcmp(c->in, "GET /health", 11) == 0) {
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
        (void)!write(fd, ok, strlen(ok));
        close_conn(fd);
        return;
    }
    if (!memmem(c->in, used, "websocket", 9)) { /* /metrics and the like: none here */
        const char *no = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!write(fd, no, strlen(no));
        close_conn(fd);
        return;
    }
    const char *up = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: floor\r\n\r\n";
    out_append(c, up, strlen(up));
    mark_dirty(fd, c);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->state = OPEN;
}

/* Client frames: the first is the subscribe; a close frame closes. */
static void on_frames(int fd, conn_t *c)
{
    for (;;) {
        if (c->in_len < 2)
            return;
        unsigned char *p = (unsigned char *)c->in;
        int opcode = p[0] & 0x0f;
        size_t len = p[1] & 0x7f, h = 2;
        if (len == 126) {
            if (c->in_len < 4)
                return;
            len = ((size_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            close_conn(fd);
            return;
        }
        if (p[1] & 0x80)
            h += 4;
        if (h + len > IN_CAP) {
            close_conn(fd);
            return;
        }
        if (c->in_len < h + len)
            return;
        memmove(c->in, c->in + h + len, c->in_len - h - len);
        c->in_len -= h + len;
        if (opcode == 8) {
            close_conn(fd);
            return;
        }
        if (c->state == OPEN && opcode == 1) {
            c->state = SUBSCRIBED;
            g_subs[g_nsubs++] = fd;
            send_text(fd, c,
                      "{\"type\":\"subscription\",\"status\":\"success\",\"channels\":[{"
                      "\"name\":\"market-data\",\"subscribed\":true,\"filters\":{}}]}");
        }
    }
}

static void on_readable(int fd, conn_t *c)
{
    for (;;) {
        if (c->in_len == IN_CAP) {
            close_conn(fd);
            return;
        }
        ssize_t n = read(fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_conn(fd);
            return;
        }
        if (n < 0)
            return;
        c->in_len += (size_t)n;
        if (c->state == HTTP)
            on_http(fd, c);
        if (!g_conns[fd])
            return;
        if (c->state != HTTP)
            on_frames(fd, c);
        if (!g_conns[fd])
            return;
    }
}

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void add_symbols(const char *csv)
{
    char *copy = strdup(csv), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && g_nsym < MAX_SYMBOLS;
         t = strtok_r(NULL, ",", &save)) {
        symbol_t *s = &g_sym[g_nsym++];
        snprintf(s->name, sizeof s->name, "%s", t);
        int jpy = strstr(t, "JPY") != NULL, gold = strncmp(t, "XAU", 3) == 0;
        s->digits = jpy ? 3 : gold ? 2 : 5;
        s->bid = jpy ? 150.0 : gold ? 2050.0 : 1.1;
        s->open = s->bid;
        s->spread = 15;
    }
    free(copy);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 9000;
    const char *symbols = "EURUSD,GBPUSD,USDJPY,USDCHF,AUDUSD,USDCAD,NZDUSD,EURGBP,EURJPY,XAUUSD";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tick-rate") && i + 1 < argc)
            g_rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--symbols") && i + 1 < argc)
            symbols = argv[++i];
        else if (strcmp(argv[i], "serve")) {
            fprintf(stderr, "floor: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    add_symbols(symbols);
    if (!g_nsym || g_rate <= 0) {
        fprintf(stderr, "floor: needs symbols and a positive --tick-rate\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    g_max_fd = (int)(rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur);
    g_conns = calloc((size_t)g_max_fd, sizeof *g_conns);
    g_fifo_cap = 2 * (size_t)g_max_fd; /* a reused fd may be in it twice */
    g_fifo = calloc(g_fifo_cap, sizeof *g_fifo);
    g_subs = calloc((size_t)g_max_fd, sizeof *g_subs);

    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 ||
        bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 4096)) {
        perror("floor: listen");
        return 1;
    }
    g_ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, ls, &lev);

    g_mono0 = mono();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    g_wall0 = (double)wall.tv_sec + (double)wall.tv_nsec * 1e-9;
    for (int i = 0; i < g_nsym; i++)
        g_sym[i].next_due = g_mono0 + expovariate(g_rate);
    fprintf(stderr, "floor: listening on %s:%d, %d symbols at %g ticks/s each\n", host, port,
            g_nsym, g_rate);

    struct epoll_event evs[256];
    while (!g_stop) {
        int timeout = 0;
        if (!g_fifo_len) {
            /* epoll's timeout is in ms: round up, and publish what is due on waking. */
            double wait = next_due() - mono();
            timeout = wait <= 0 ? 0 : (int)ceil(wait * 1000.0);
        }
        int n = epoll_wait(g_ep, evs, 256, timeout);
        if (n < 0 && errno != EINTR) {
            perror("floor: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (cfd < 0)
                        break;
                    if (cfd >= g_max_fd) {
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    g_conns[cfd] = calloc(1, sizeof(conn_t));
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(g_ep, EPOLL_CTL_ADD, cfd, &ev);
                }
                continue;
            }
            conn_t *c = g_conns[fd];
            if (c && (evs[i].events & EPOLLOUT))
                flush_conn(fd, c);
            c = g_conns[fd];
            if (c && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(fd, c);
        }
        publish_due();
        flush_chunk();
    }
    fprintf(stderr, "floor: stopped\n");
    return 0;
}
