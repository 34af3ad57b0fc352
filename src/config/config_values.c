/*
 * config_values.c - the value syntaxes of the config that other code also
 * parses (sizes, addresses, CIDR allow-lists) and DSN masking.
 *
 * Pure functions with no state, so the CLI can use them for its own
 * options and the tests can hit every edge. docs/config.md describes the
 * syntaxes for users.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int config_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", UINT64_C(1) << 10},
        {"MiB", UINT64_C(1) << 20},
        {"GiB", UINT64_C(1) << 30},
        {"TiB", UINT64_C(1) << 40},
        {"kB", UINT64_C(1000)},
        {"KB", UINT64_C(1000)},
        {"MB", UINT64_C(1000000)},
        {"GB", UINT64_C(1000000000)},
        {"TB", UINT64_C(1000000000000)},
    };
    if (!isdigit((unsigned char)s[0]))
        return WEIR_EPARSE;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return WEIR_EPARSE;
    if (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].name) != 0)
            continue;
        if (units[i].name[0] == '\0' && end != s && end[-1] == ' ')
            return WEIR_EPARSE; /* "4 " */
        if (v > UINT64_MAX / units[i].mult)
            return WEIR_EPARSE;
        *bytes = (uint64_t)v * units[i].mult;
        return 0;
    }
    return WEIR_EPARSE;
}

static int valid_hostname(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
            return 0;
    }
    return 1;
}

int config_parse_addr(const char *s, struct config_addr *addr)
{
    const char *host, *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return WEIR_EPARSE;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        char tmp[64];
        struct in6_addr a6;
        if (hlen == 0 || hlen >= sizeof tmp)
            return WEIR_EPARSE;
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return WEIR_EPARSE;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s)
            return WEIR_EPARSE; /* no port, or ":port" */
        host = s;
        hlen = (size_t)(colon - s);
        /* A bare IPv6 literal ("::1:80") is ambiguous: brackets are required. */
        if (memchr(host, ':', hlen) || !valid_hostname(host, hlen))
            return WEIR_EPARSE;
    }
    const char *p = colon + 1;
    if (!isdigit((unsigned char)*p) || strlen(p) > 5)
        return WEIR_EPARSE;
    long port = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return WEIR_EPARSE;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535 || hlen >= sizeof addr->host)
        return WEIR_EPARSE;
    memcpy(addr->host, host, hlen);
    addr->host[hlen] = '\0';
    addr->port = (uint16_t)port;
    return 0;
}

size_t config_format_addr(const struct config_addr *addr, char *out, size_t cap)
{
    int n;
    if (strchr(addr->host, ':'))
        n = snprintf(out, cap, "[%s]:%u", addr->host, (unsigned)addr->port);
    else
        n = snprintf(out, cap, "%s:%u", addr->host, (unsigned)addr->port);
    return n < 0 ? 0 : (size_t)n;
}

int config_parse_cidr(const char *s, struct config_cidr *cidr)
{
    char tmp[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof tmp)
        return WEIR_EPARSE;
    memcpy(tmp, s, alen);
    tmp[alen] = '\0';
    memset(cidr, 0, sizeof *cidr);
    int maxbits;
    if (inet_pton(AF_INET, tmp, cidr->addr) == 1) {
        cidr->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, tmp, cidr->addr) == 1) {
        cidr->family = AF_INET6;
        maxbits = 128;
    } else {
        return WEIR_EPARSE;
    }
    int prefix = maxbits;
    if (slash) {
        const char *p = slash + 1;
        if (!isdigit((unsigned char)*p) || strlen(p) > 3)
            return WEIR_EPARSE;
        prefix = 0;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return WEIR_EPARSE;
            prefix = prefix * 10 + (*p - '0');
        }
        if (prefix > maxbits)
            return WEIR_EPARSE;
    }
    cidr->prefix = prefix;
    /* Mask the host bits so matching is a plain compare. */
    for (int bit = prefix; bit < maxbits; bit++)
        cidr->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    return 0;
}

static int cidr_match(const struct config_cidr *c, int family, const uint8_t *a)
{
    if (c->family != family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == c->addr[full];
}

int config_allow_peer(const struct config_source *src, const struct sockaddr *sa)
{
    if (src->nallow == 0)
        return 1;
    int family;
    uint8_t a[16];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        family = AF_INET;
        memcpy(a, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            family = AF_INET;
            memcpy(a, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            family = AF_INET6;
            memcpy(a, in6->sin6_addr.s6_addr, 16);
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < src->nallow; i++)
        if (cidr_match(&src->allow[i], family, a))
            return 1;
    return 0;
}

/* Append to a bounded output the way snprintf counts: always count, copy
 * what fits. */
struct out {
    char *p;
    size_t cap, len;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->len++)
        if (o->len + 1 < o->cap)
            o->p[o->len] = s[i];
}

static int is_secret_key(const char *k, size_t n)
{
    static const char *const keys[] = {"password", "pass", "pwd", "passwd", "sslpassword"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i]) == n && strncasecmp(keys[i], k, n) == 0)
            return 1;
    return 0;
}

/* URI form: scheme://user:secret@host/db?password=secret&x=y */
static void mask_uri(const char *dsn, const char *scheme_end, struct out *o)
{
    const char *auth = scheme_end + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i; /* the last '@' ends the user info */
    const char *p = dsn;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            out_put(o, dsn, (size_t)(colon + 1 - dsn));
            out_put(o, "****", 4);
            p = at;
        }
    }
    const char *q = strchr(p, '?');
    if (!q) {
        out_put(o, p, strlen(p));
        return;
    }
    out_put(o, p, (size_t)(q + 1 - p));
    p = q + 1;
    while (*p) {
        size_t plen = strcspn(p, "&#");
        const char *eq = memchr(p, '=', plen);
        if (eq && is_secret_key(p, (size_t)(eq - p))) {
            out_put(o, p, (size_t)(eq + 1 - p));
            out_put(o, "****", 4);
        } else {
            out_put(o, p, plen);
        }
        p += plen;
        if (*p == '&') {
            out_put(o, "&", 1);
            p++;
        } else if (*p == '#') {
            out_put(o, p, strlen(p));
            break;
        }
    }
}

/* key=value form: "host=x password=secret", "password = 'a b\' c'". */
static void mask_kv(const char *dsn, struct out *o)
{
    const char *p = dsn;
    while (*p) {
        const char *ws = p;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ';')
            p++;
        out_put(o, ws, (size_t)(p - ws));
        if (!*p)
            break;
        const char *key = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != ';')
            p++;
        size_t klen = (size_t)(p - key);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=') {
            out_put(o, key, (size_t)(p - key));
            continue;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        out_put(o, key, (size_t)(p - key));
        const char *val = p;
        if (*p == '\'' || *p == '"') {
            char quote = *p++;
            while (*p && *p != quote) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p)
                p++;
        }
        /* Up to the next separator, also after a closing quote: a secret
         * written 'abc'def must not leak its tail. */
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != ';')
            p++;
        if (is_secret_key(key, klen))
            out_put(o, "****", 4);
        else
            out_put(o, val, (size_t)(p - val));
    }
}

size_t config_mask_dsn(const char *dsn, char *out, size_t cap)
{
    struct out o = {out, cap, 0};
    const char *scheme_end = strstr(dsn, "://");
    int uri = 0;
    if (scheme_end && scheme_end > dsn) {
        uri = 1;
        for (const char *s = dsn; s < scheme_end; s++)
            if (!isalnum((unsigned char)*s) && *s != '+' && *s != '-' && *s != '.')
                uri = 0;
    }
    if (uri)
        mask_uri(dsn, scheme_end, &o);
    else
        mask_kv(dsn, &o);
    if (cap > 0)
        out[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

const char *config_time_unit_name(enum config_time_unit u)
{
    switch (u) {
    case CONFIG_TIME_S: return "s";
    case CONFIG_TIME_MS: return "ms";
    case CONFIG_TIME_US: return "us";
    case CONFIG_TIME_NS: return "ns";
    case CONFIG_TIME_RFC3339: return "rfc3339";
    }
    return "?";
}

const char *config_partition_name(enum config_partition p)
{
    return p == CONFIG_PARTITION_DAY ? "day" : "hour";
}

const char *config_output_kind_name(enum config_output_kind k)
{
    switch (k) {
    case CONFIG_OUTPUT_LAKE: return "lake";
    case CONFIG_OUTPUT_POSTGRES: return "postgres";
    case CONFIG_OUTPUT_MYSQL: return "mysql";
    case CONFIG_OUTPUT_PARQUET: return "parquet";
    case CONFIG_OUTPUT_KAFKA: return "kafka";
    }
    return "?";
}

size_t config_format_size(uint64_t bytes, char *out, size_t cap)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    int n = -1;
    for (int i = 0; i < 4 && bytes; i++) {
        uint64_t mult = UINT64_C(1) << (10 * (4 - i));
        if (bytes % mult == 0) {
            n = snprintf(out, cap, "%llu%s", (unsigned long long)(bytes / mult), units[i]);
            break;
        }
    }
    if (n < 0)
        n = snprintf(out, cap, "%llu", (unsigned long long)bytes);
    return n < 0 ? 0 : (size_t)n;
}

size_t config_format_duration(int64_t ns, char *out, size_t cap)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"d", INT64_C(86400000000000)}, {"h", INT64_C(3600000000000)},
        {"m", INT64_C(60000000000)},    {"s", INT64_C(1000000000)},
        {"ms", INT64_C(1000000)},       {"us", INT64_C(1000)},
    };
    int n;
    if (ns == CONFIG_OFF)
        n = snprintf(out, cap, "off");
    else if (ns == 0)
        n = snprintf(out, cap, "0s");
    else {
        size_t i = 0;
        while (i < sizeof units / sizeof units[0] && ns % units[i].ns != 0)
            i++;
        if (i < sizeof units / sizeof units[0])
            n = snprintf(out, cap, "%lld%s", (long long)(ns / units[i].ns), units[i].name);
        else
            n = snprintf(out, cap, "%lldns", (long long)ns);
    }
    return n < 0 ? 0 : (size_t)n;
}
