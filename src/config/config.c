/*
 * config.c - the YAML config into struct weir_config (see config.h, and
 * docs/config.md for the keys).
 *
 * Loading is three steps: ytree.c turns the text into a tree of nodes with
 * line numbers; the parse_* functions below fill a weir_config that starts
 * out holding every default, one section at a time, refusing unknown keys
 * before reading known ones; then check_* functions look across sections
 * (names, model inputs and cycles, listeners, consumer groups).
 *
 * The first error stops loading: a message that points at one line is
 * worth more than a list where the later entries are consequences. While
 * walking, ctx.path holds the key being read ("pipelines[0].time_unit") so
 * every message can name it.
 */
#include "config/config.h"
#include "config/ytree.h"
#include "core/limits.h"
#include "core/wtime.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Used when no file is given. Parsed by the same code as a file, so the
 * default can never disagree with what the loader thinks a default is. */
static const char default_yaml[] =
    "# weir's embedded default: used when no config file is given.\n"
    "data_dir: " CONFIG_DEFAULT_DATA_DIR "\n"
    "pipelines:\n"
    "  - name: default\n"
    "    source:\n"
    "      tcp: " CONFIG_DEFAULT_TCP_ADDR "\n"
    "      framing: ndjson\n";

/* Longest value after ${VAR} expansion. */
#define MAX_EXPANDED (64u << 10)

/* ---- the arena: every string and array a weir_config points to ---- */

union arena_hdr {
    union arena_hdr *next;
    max_align_t align_;
};

static void *amalloc(struct weir_config *cfg, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    union arena_hdr *h = calloc(1, sizeof *h + n);
    if (!h)
        return NULL;
    h->next = cfg->arena_;
    cfg->arena_ = h;
    return h + 1;
}

static char *astrdup(struct weir_config *cfg, const char *s)
{
    size_t n = strlen(s);
    char *d = amalloc(cfg, n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

void config_release(struct weir_config *cfg)
{
    if (!cfg)
        return;
    union arena_hdr *h = cfg->arena_;
    while (h) {
        union arena_hdr *next = h->next;
        free(h);
        h = next;
    }
    memset(cfg, 0, sizeof *cfg);
}

/* ---- context, key paths, errors ---- */

struct ctx {
    struct weir_config *cfg;
    const char *file;
    struct weir_errmsg *err;
    struct ynode *root;
    struct ynode *models_seq;  /* for line numbers in the cross checks */
    char path[256];
    size_t plen;
};

/* Copy at most max characters of s for a message, non-printables as '?'. */
static void printable(const char *s, size_t len, size_t max, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < cap; i++) {
        if (i == max) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[o] = '\0';
}

static void path_set(struct ctx *c, size_t len)
{
    c->plen = len;
    c->path[len] = '\0';
}

static size_t path_key(struct ctx *c, const char *key)
{
    size_t old = c->plen;
    char shown[48];
    printable(key, strlen(key), 40, shown, sizeof shown);
    int n = snprintf(c->path + c->plen, sizeof c->path - c->plen, "%s%s",
                     c->plen ? "." : "", shown);
    if (n > 0)
        path_set(c, c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n
                                                          : sizeof c->path - 1);
    return old;
}

static size_t path_index(struct ctx *c, size_t i)
{
    size_t old = c->plen;
    int n = snprintf(c->path + c->plen, sizeof c->path - c->plen, "[%zu]", i);
    if (n > 0)
        path_set(c, c->plen + (size_t)n < sizeof c->path ? c->plen + (size_t)n
                                                          : sizeof c->path - 1);
    return old;
}

static int fail(struct ctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, const struct ynode *at, const char *fmt, ...)
{
    char msg[768], where[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A block mapping or list starts at its first item; a message about
     * the whole of it reads better at the key that introduced it. */
    int line = at ? at->line : 0;
    if (at && at->kind != YNODE_SCALAR && at->key_line > 0)
        line = at->key_line;
    if (line > 0)
        snprintf(where, sizeof where, ":%d", line);
    if (c->plen)
        return errmsg_set(c->err, WEIR_ECONFIG, "%s%s: %s: %s", c->file, where, c->path, msg);
    return errmsg_set(c->err, WEIR_ECONFIG, "%s%s: %s", c->file, where, msg);
}

static int nomem(struct ctx *c)
{
    return errmsg_set(c->err, WEIR_ENOMEM, "%s: out of memory", c->file);
}

/* A value as written, for a message: 'seconds', or '${UNIT}' (expanded)
 * where the environment supplied it, so secrets never reach a message. */
static const char *shown(const struct ynode *v, char *out, size_t cap)
{
    char tmp[96];
    printable(v->text, v->len, 60, tmp, sizeof tmp);
    int expanded = v->expanded && strcmp(v->expanded, v->text) != 0;
    snprintf(out, cap, "'%s'%s", tmp, expanded ? " (expanded)" : "");
    return out;
}

static const char *describe(const struct ynode *v)
{
    switch (v->kind) {
    case YNODE_MAP: return "a mapping";
    case YNODE_SEQ: return "a list";
    case YNODE_SCALAR: break;
    }
    return "a single value";
}

/* ---- did you mean ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la >= 63 || lb >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The candidate nearest to s, if near enough to be a typo; else NULL. */
static const char *nearest(const char *s, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(s, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    if (best && (bestd <= 2 || bestd * 3 <= strlen(best)))
        return best;
    return NULL;
}

static void join_list(const char *const *items, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", items[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* ---- the tree ---- */

static size_t count_keys(const char *const *keys)
{
    size_t n = 0;
    while (keys[n])
        n++;
    return n;
}

/* m must be a mapping whose keys are all in keys (NULL-terminated), each
 * once. */
static int check_map(struct ctx *c, struct ynode *m, const char *const *keys)
{
    if (m->kind != YNODE_MAP)
        return fail(c, m, "expected a mapping (key: value), found %s", describe(m));
    size_t nkeys = count_keys(keys);
    for (struct ynode *k = m->first; k; k = k->next->next) {
        size_t i;
        for (i = 0; i < nkeys; i++)
            if (strcmp(k->text, keys[i]) == 0 && strlen(k->text) == k->len)
                break;
        if (i == nkeys) {
            char known[512];
            const char *hint = nearest(k->text, keys, nkeys);
            size_t old = path_key(c, k->text);
            int rc;
            if (hint) {
                rc = fail(c, k, "unknown key; did you mean '%s'?", hint);
            } else {
                join_list(keys, nkeys, known, sizeof known);
                rc = fail(c, k, "unknown key (known keys here: %s)", known);
            }
            path_set(c, old);
            return rc;
        }
        for (struct ynode *j = m->first; j != k; j = j->next->next) {
            if (strcmp(j->text, k->text) == 0) {
                size_t old = path_key(c, k->text);
                int rc = fail(c, k, "duplicate key (first given at line %d)", j->line);
                path_set(c, old);
                return rc;
            }
        }
    }
    return 0;
}

/* The value of key in m, or NULL when it is absent or null (so "key:"
 * with nothing after it means "the default"). */
static struct ynode *map_get(struct ynode *m, const char *key)
{
    for (struct ynode *k = m->first; k; k = k->next->next)
        if (strcmp(k->text, key) == 0)
            return k->next->is_null ? NULL : k->next;
    return NULL;
}

static int expand(struct ctx *c, struct ynode *v)
{
    struct buf b = BUF_INIT(MAX_EXPANDED);
    const char *s = v->text;
    int rc;
    if (buf_reserve(&b, v->len + 1))
        goto nomem;
    while (*s) {
        if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
            if (buf_puts(&b, "${"))
                goto toolong;
            s += 3;
            continue;
        }
        if (s[0] != '$' || s[1] != '{') {
            if (buf_putc(&b, *s++))
                goto toolong;
            continue;
        }
        const char *name = s + 2, *p = name, *def = NULL;
        size_t dlen = 0;
        if (!isalpha((unsigned char)*p) && *p != '_') {
            rc = fail(c, v, "'${' must start ${NAME} or ${NAME:-default} (write $${ for a literal ${)");
            goto out;
        }
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        size_t nlen = (size_t)(p - name);
        if (p[0] == ':' && p[1] == '-') {
            def = p + 2;
            p = strchr(def, '}');
            if (!p) {
                rc = fail(c, v, "'${%.*s:-' has no closing '}'", (int)(nlen > 64 ? 64 : nlen), name);
                goto out;
            }
            dlen = (size_t)(p - def);
        } else if (*p != '}') {
            rc = fail(c, v, "'${%.*s' must end with '}' (or ':-default}')", (int)(nlen > 64 ? 64 : nlen), name);
            goto out;
        }
        char var[128];
        if (nlen >= sizeof var) {
            rc = fail(c, v, "environment variable name longer than %zu characters", sizeof var - 1);
            goto out;
        }
        memcpy(var, name, nlen);
        var[nlen] = '\0';
        const char *val = getenv(var);
        if (def && (!val || !*val)) {
            if (buf_append(&b, def, dlen))
                goto toolong;
        } else if (!val) {
            rc = fail(c, v, "environment variable %s is not set (set it, or give a default: ${%s:-default})",
                      var, var);
            goto out;
        } else if (buf_puts(&b, val)) {
            goto toolong;
        }
        s = p + 1;
    }
    v->expanded = buf_detach(&b, NULL);
    return v->expanded ? 0 : nomem(c);
toolong:
    rc = b.len + 1 >= b.max ? fail(c, v, "longer than %u bytes after ${} expansion", MAX_EXPANDED)
                            : nomem(c);
    goto out;
nomem:
    rc = nomem(c);
out:
    buf_release(&b);
    return rc;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
 * Values must be text: a YAML escape ("\uD800") or an environment variable
 * can hold bytes that are not, and those cannot be written back out. */
static int valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s;
        int n;
        unsigned min, cp;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n + 1;
    }
    return 1;
}

/* The text of scalar v after ${VAR} expansion. */
static int scalar(struct ctx *c, struct ynode *v, const char **out)
{
    if (v->kind != YNODE_SCALAR)
        return fail(c, v, "expected a single value, found %s", describe(v));
    if (strlen(v->text) != v->len)
        return fail(c, v, "contains a NUL character");
    if (!v->expanded) {
        int rc = expand(c, v);
        if (rc)
            return rc;
        if (!valid_utf8((const unsigned char *)v->expanded))
            return fail(c, v, "is not valid UTF-8 text%s",
                        strcmp(v->expanded, v->text) ? " after ${} expansion" : "");
    }
    *out = v->expanded;
    return 0;
}

/* The i-th item of a list, or v itself when a single value stands for a
 * one-item list. */
static struct ynode *item_at(struct ynode *v, size_t i)
{
    if (v->kind != YNODE_SEQ)
        return v;
    struct ynode *it = v->first;
    while (it && i--)
        it = it->next;
    return it;
}

static size_t item_count(const struct ynode *v)
{
    return v->kind == YNODE_SEQ ? v->n : 1;
}

/* ---- values ---- */

struct enum_name {
    const char *name;
    int value;
};

static int val_string(struct ctx *c, struct ynode *v, char **out)
{
    const char *s;
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    if (!*s)
        return fail(c, v, "must not be empty");
    if (!(*out = astrdup(c->cfg, s)))
        return nomem(c);
    return 0;
}

/* Lexically clean an absolute path: no "." components, no doubled or
 * trailing '/'. ".." stays: removing it lexically is wrong across
 * symbolic links. */
static void clean_path(char *s)
{
    char *w = s;
    const char *r = s;
    while (*r) {
        while (*r == '/')
            r++;
        size_t n = strcspn(r, "/");
        if (n == 0)
            break;
        if (!(n == 1 && r[0] == '.')) {
            *w++ = '/';
            memmove(w, r, n);
            w += n;
        }
        r += n;
    }
    if (w == s)
        *w++ = '/';
    *w = '\0';
}

static int resolve(struct ctx *c, const struct ynode *at, const char *p, char **out)
{
    size_t dl = strlen(c->cfg->dir), pl = strlen(p);
    if (pl >= PATH_MAX || dl >= PATH_MAX)
        return fail(c, at, "path longer than %d bytes", PATH_MAX);
    char *s = amalloc(c->cfg, dl + pl + 2);
    if (!s)
        return nomem(c);
    if (p[0] == '/')
        memcpy(s, p, pl + 1);
    else
        snprintf(s, dl + pl + 2, "%s/%s", c->cfg->dir, p);
    clean_path(s);
    *out = s;
    return 0;
}

static int val_path(struct ctx *c, struct ynode *v, char **out)
{
    const char *s;
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    if (!*s)
        return fail(c, v, "must not be empty");
    return resolve(c, v, s, out);
}

static int valid_name(const char *s)
{
    if (!(islower((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

static int val_name(struct ctx *c, struct ynode *v, char **out)
{
    const char *s;
    char buf[128];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    if (!valid_name(s))
        return fail(c, v, "%s is not a valid name: use lowercase letters, digits and _, "
                    "starting with a letter or _ (it names a folder and a SQL view)",
                    shown(v, buf, sizeof buf));
    if (strlen(s) > CONFIG_NAME_MAX)
        return fail(c, v, "%s is longer than %d characters", shown(v, buf, sizeof buf),
                    CONFIG_NAME_MAX);
    if (!(*out = astrdup(c->cfg, s)))
        return nomem(c);
    return 0;
}

static int val_enum(struct ctx *c, struct ynode *v, const struct enum_name *tab, int *out)
{
    const char *s;
    char buf[128], list[256];
    const char *names[16];
    size_t n = 0;
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    for (; tab[n].name; n++) {
        if (strcmp(tab[n].name, s) == 0) {
            *out = tab[n].value;
            return 0;
        }
        names[n] = tab[n].name;
    }
    join_list(names, n, list, sizeof list);
    return fail(c, v, "%s is not one of %s", shown(v, buf, sizeof buf), list);
}

static int val_bool(struct ctx *c, struct ynode *v, int *out)
{
    const char *s;
    char buf[128];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        *out = 0;
    else
        return fail(c, v, "%s is not true or false", shown(v, buf, sizeof buf));
    return 0;
}

static int val_int(struct ctx *c, struct ynode *v, long min, long max, int *out)
{
    const char *s;
    char buf[128];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!isdigit((unsigned char)s[s[0] == '-']) || *end || errno == ERANGE)
        return fail(c, v, "%s is not a whole number", shown(v, buf, sizeof buf));
    if (x < min || x > max)
        return fail(c, v, "%s is out of range: %ld to %ld", shown(v, buf, sizeof buf), min, max);
    *out = (int)x;
    return 0;
}

static int val_size(struct ctx *c, struct ynode *v, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *s;
    char buf[128], a[32], b[32];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    uint64_t x;
    if (config_parse_size(s, &x)) {
        const char *u = s;
        while (isdigit((unsigned char)*u) || *u == ' ')
            u++;
        if (u > s && (strcmp(u, "K") == 0 || strcmp(u, "k") == 0 || strcmp(u, "M") == 0 ||
                      strcmp(u, "G") == 0 || strcmp(u, "T") == 0)) {
            char up = (char)toupper((unsigned char)*u);
            return fail(c, v, "%s is ambiguous: write %.*s%ciB (powers of 1024) or %.*s%cB "
                        "(powers of 1000)", shown(v, buf, sizeof buf),
                        (int)(u - s), s, up, (int)(u - s), s, up == 'K' ? 'k' : up);
        }
        return fail(c, v, "%s is not a size (a whole number and a unit: B, KiB, MiB, GiB, "
                    "TiB, kB, MB, GB, TB; e.g. 4MiB)", shown(v, buf, sizeof buf));
    }
    if (x < min || x > max) {
        config_format_size(min, a, sizeof a);
        config_format_size(max, b, sizeof b);
        return fail(c, v, "%s is out of range: %s to %s", shown(v, buf, sizeof buf), a, b);
    }
    *out = x;
    return 0;
}

/* min_ns <= 0 allows 0; allow_off accepts "off" as CONFIG_OFF. */
static int val_duration(struct ctx *c, struct ynode *v, int64_t min_ns, int64_t max_ns,
                        int allow_off, int64_t *out)
{
    const char *s;
    char buf[128], a[32], b[32];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    if (allow_off && strcmp(s, "off") == 0) {
        *out = CONFIG_OFF;
        return 0;
    }
    int64_t ns;
    if (wtime_parse_duration(s, &ns) || isspace((unsigned char)s[0]))
        return fail(c, v, "%s is not a duration (a whole number and a unit: ns, us, ms, s, m, "
                    "h, d, w; e.g. 100ms, 5m, 1d%s)", shown(v, buf, sizeof buf),
                    allow_off ? "; or off" : "");
    if (ns < min_ns || ns > max_ns) {
        config_format_duration(min_ns, a, sizeof a);
        config_format_duration(max_ns, b, sizeof b);
        return fail(c, v, "%s is out of range: %s to %s%s", shown(v, buf, sizeof buf), a, b,
                    allow_off ? ", or off" : "");
    }
    *out = ns;
    return 0;
}

static int val_addr(struct ctx *c, struct ynode *v, struct config_addr *out)
{
    const char *s;
    char buf[128];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    if (config_parse_addr(s, out)) {
        if (s[0] == ':' || (s[0] == '*' && s[1] == ':'))
            return fail(c, v, "%s leaves out the host: write 127.0.0.1%s (this machine only) "
                        "or 0.0.0.0%s (every interface)", shown(v, buf, sizeof buf),
                        strchr(s, ':'), strchr(s, ':'));
        return fail(c, v, "%s is not an address: write host:port (127.0.0.1:7601, "
                    "[::1]:7601, plant.example:7601)", shown(v, buf, sizeof buf));
    }
    return 0;
}

/* A dotted field path: "timestamp", "meta.ts". */
static int val_field(struct ctx *c, struct ynode *v, char **out)
{
    const char *s;
    char buf[128];
    int rc = scalar(c, v, &s);
    if (rc)
        return rc;
    size_t n = strlen(s);
    if (n == 0 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return fail(c, v, "%s is not a field path (names joined by dots, e.g. meta.ts)",
                    shown(v, buf, sizeof buf));
    if (!(*out = astrdup(c->cfg, s)))
        return nomem(c);
    return 0;
}

/* ---- key getters: absent keys leave *out (the default) alone ----
 *
 * Each get_X(c, map, key, ..., out) reads one optional key with val_X,
 * the key added to the error path while its value is read. They differ
 * only in the val_X they call, hence one macro rather than nine copies. */

static struct ynode *enter(struct ctx *c, struct ynode *m, const char *key, size_t *old)
{
    struct ynode *v = map_get(m, key);
    if (v)
        *old = path_key(c, key);
    return v;
}

#define GETTER(fn, val_call, ...)                                                    \
    static int fn(struct ctx *c, struct ynode *m, const char *key, __VA_ARGS__)     \
    {                                                                               \
        size_t old;                                                                 \
        struct ynode *v = enter(c, m, key, &old);                                   \
        if (!v)                                                                     \
            return 0;                                                               \
        int rc = val_call;                                                          \
        path_set(c, old);                                                           \
        return rc;                                                                  \
    }

GETTER(get_string, val_string(c, v, out), char **out)
GETTER(get_path, val_path(c, v, out), char **out)
GETTER(get_field, val_field(c, v, out), char **out)
GETTER(get_enum, val_enum(c, v, tab, out), const struct enum_name *tab, int *out)
GETTER(get_bool, val_bool(c, v, out), int *out)
GETTER(get_int, val_int(c, v, min, max, out), long min, long max, int *out)
GETTER(get_size, val_size(c, v, min, max, out), uint64_t min, uint64_t max, uint64_t *out)
GETTER(get_duration, val_duration(c, v, min, max, allow_off, out), int64_t min, int64_t max,
       int allow_off, int64_t *out)
GETTER(get_addr, val_addr(c, v, out), struct config_addr *out)

#undef GETTER

static int require(struct ctx *c, struct ynode *m, const char *key)
{
    if (map_get(m, key))
        return 0;
    return fail(c, m, "missing key '%s'", key);
}

/* Enum-typed fields are read through an int: the enums are small and
 * start at 0, so the round trip is exact. */
#define GET_ENUM(c, m, key, tab, field)                                              \
    do {                                                                            \
        int v_ = (int)(field);                                                      \
        int rc_ = get_enum(c, m, key, tab, &v_);                                    \
        if (rc_)                                                                    \
            return rc_;                                                             \
        field = v_;                                                                 \
    } while (0)

#define TRY(expr)                                                                    \
    do {                                                                            \
        int rc_ = (expr);                                                           \
        if (rc_)                                                                    \
            return rc_;                                                             \
    } while (0)

static const struct enum_name time_units[] = {
    {"s", CONFIG_TIME_S}, {"ms", CONFIG_TIME_MS}, {"us", CONFIG_TIME_US},
    {"ns", CONFIG_TIME_NS}, {"rfc3339", CONFIG_TIME_RFC3339}, {NULL, 0},
};
static const struct enum_name partitions[] = {
    {"hour", CONFIG_PARTITION_HOUR}, {"day", CONFIG_PARTITION_DAY}, {NULL, 0},
};
static const struct enum_name compactions[] = {
    {"auto", CONFIG_COMPACTION_AUTO}, {"manual", CONFIG_COMPACTION_MANUAL}, {NULL, 0},
};
static const struct enum_name fsyncs[] = {
    {"group", CONFIG_FSYNC_GROUP}, {"always", CONFIG_FSYNC_ALWAYS},
    {"never", CONFIG_FSYNC_NEVER}, {NULL, 0},
};
static const struct enum_name framings[] = {{"ndjson", CONFIG_FRAMING_NDJSON}, {NULL, 0}};
static const struct enum_name payloads[] = {
    {"json", CONFIG_PAYLOAD_JSON}, {"protobuf", CONFIG_PAYLOAD_PROTOBUF}, {NULL, 0},
};
static const struct enum_name log_levels[] = {
    {"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO}, {"debug", LOG_DEBUG},
    {NULL, 0},
};
static const struct enum_name log_formats[] = {{"text", LOG_TEXT}, {"json", LOG_JSON}, {NULL, 0}};

/* ---- sections ---- */

/* For the bounds below: generous, but each catches a unit mistake. */
#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)
#define SEC WTIME_NS_PER_S
#define HOUR WTIME_NS_PER_HOUR
#define DAY WTIME_NS_PER_DAY

static int parse_log(struct ctx *c, struct ynode *m)
{
    static const char *const keys[] = {"level", "format", NULL};
    TRY(check_map(c, m, keys));
    GET_ENUM(c, m, "level", log_levels, c->cfg->log_level);
    GET_ENUM(c, m, "format", log_formats, c->cfg->log_format);
    return 0;
}

static int parse_limits(struct ctx *c, struct ynode *m)
{
    static const char *const keys[] = {"max_record", "max_depth", "max_connections",
                                       "max_pending", "max_open_partitions", NULL};
    struct config_limits *l = &c->cfg->limits;
    TRY(check_map(c, m, keys));
    TRY(get_size(c, m, "max_record", 16, GiB, &l->max_record));
    TRY(get_int(c, m, "max_depth", 1, 4096, &l->max_depth));
    TRY(get_int(c, m, "max_connections", 1, 1 << 20, &l->max_connections));
    TRY(get_size(c, m, "max_pending", 64 * KiB, 64 * GiB, &l->max_pending));
    TRY(get_int(c, m, "max_open_partitions", 1, 1 << 16, &l->max_open_partitions));
    if (l->max_pending < l->max_record) {
        char a[32], b[32];
        size_t old = path_key(c, "max_pending");
        config_format_size(l->max_pending, a, sizeof a);
        config_format_size(l->max_record, b, sizeof b);
        int rc = fail(c, map_get(m, "max_pending") ? map_get(m, "max_pending") : m,
                      "%s is less than limits.max_record (%s): a worker must be able "
                      "to hold one record", a, b);
        path_set(c, old);
        return rc;
    }
    return 0;
}

static int valid_topic(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return 0;
    return 1;
}

/* brokers: "h:p", "h:p,h:p" or a list; joined with ',' for librdkafka. */
static int val_brokers(struct ctx *c, struct ynode *v, char **out)
{
    struct buf b = BUF_INIT(MAX_EXPANDED);
    size_t n = item_count(v);
    int rc = 0;
    if (v->kind == YNODE_SEQ && n == 0)
        return fail(c, v, "an empty list: give at least one broker host:port");
    if (v->kind == YNODE_MAP)
        return fail(c, v, "expected host:port or a list of them, found a mapping");
    for (size_t i = 0; i < n && !rc; i++) {
        struct ynode *it = item_at(v, i);
        size_t old = v->kind == YNODE_SEQ ? path_index(c, i) : c->plen;
        const char *s = "";
        char buf[128];
        rc = scalar(c, it, &s);
        for (const char *p = s; !rc;) {
            size_t len = strcspn(p, ",");
            char one[300];
            const char *tp = p;         /* the entry, trimmed */
            size_t tlen = len;
            while (tlen && *tp == ' ')
                tp++, tlen--;
            while (tlen && tp[tlen - 1] == ' ')
                tlen--;
            /* librdkafka accepts a "PLAINTEXT://" style prefix; check what follows */
            const char *hp = tp;
            size_t hlen = tlen;
            const char *scheme = memchr(hp, ':', hlen);
            if (scheme && scheme + 2 < hp + hlen && scheme[1] == '/' && scheme[2] == '/') {
                hlen -= (size_t)(scheme + 3 - hp);
                hp = scheme + 3;
            }
            struct config_addr a;
            if (hlen == 0 || hlen >= sizeof one) {
                rc = fail(c, it, "%s has an empty or too long broker address",
                          shown(it, buf, sizeof buf));
                break;
            }
            memcpy(one, hp, hlen);
            one[hlen] = '\0';
            if (config_parse_addr(one, &a)) {
                rc = fail(c, it, "%s is not a broker list (host:port, comma-separated)",
                          shown(it, buf, sizeof buf));
                break;
            }
            if ((b.len && buf_putc(&b, ',')) || buf_append(&b, tp, tlen))
                rc = nomem(c);
            if (!p[len])
                break;
            p += len + 1;
        }
        path_set(c, old);
    }
    if (!rc && !(*out = astrdup(c->cfg, b.data)))
        rc = nomem(c);
    buf_release(&b);
    return rc;
}

static int get_brokers(struct ctx *c, struct ynode *m, char **out)
{
    size_t old;
    struct ynode *v = enter(c, m, "brokers", &old);
    if (!v)
        return 0;
    int rc = val_brokers(c, v, out);
    path_set(c, old);
    return rc;
}

static int val_topic(struct ctx *c, struct ynode *v, char **out)
{
    char buf[128];
    TRY(val_string(c, v, out));
    if (!valid_topic(*out))
        return fail(c, v, "%s is not a Kafka topic name (letters, digits, '.', '_', '-'; "
                    "at most 249)", shown(v, buf, sizeof buf));
    return 0;
}

static int parse_kafka_options(struct ctx *c, struct ynode *m, const char *const *fixed,
                               const char *why, char ***options, size_t *noptions);

/* librdkafka properties a sink's guarantee depends on (docs/kafka.md, the
 * Kafka sink): its window and its idempotent, fully acknowledged writes. */
static const char *const kafka_sink_fixed_options[] = {
    "bootstrap.servers", "metadata.broker.list", "enable.idempotence", "acks",
    "request.required.acks", "queue.buffering.max.messages",
    "queue.buffering.max.kbytes", NULL};

static int parse_kafka_sink(struct ctx *c, struct ynode *m, struct config_kafka_sink *k)
{
    static const char *const keys[] = {"brokers", "topic", "key", "options", NULL};
    size_t old;
    TRY(check_map(c, m, keys));
    TRY(require(c, m, "brokers"));
    TRY(require(c, m, "topic"));
    TRY(get_brokers(c, m, &k->brokers));
    struct ynode *v = enter(c, m, "topic", &old);
    int rc = val_topic(c, v, &k->topic);
    path_set(c, old);
    if (rc)
        return rc;
    TRY(get_field(c, m, "key", &k->key));
    if ((v = enter(c, m, "options", &old))) {
        rc = parse_kafka_options(c, v, kafka_sink_fixed_options,
                                 "brokers is a key of its own; idempotent writes acknowledged "
                                 "by all replicas and the sink's window are what its "
                                 "guarantee rests on", &k->options, &k->noptions);
        path_set(c, old);
    }
    return rc;
}

static int parse_batch(struct ctx *c, struct ynode *m, struct config_batch *b)
{
    static const char *const keys[] = {"max_records", "max_bytes", "max_wait", NULL};
    int records = (int)b->max_records;
    TRY(check_map(c, m, keys));
    TRY(get_int(c, m, "max_records", 1, 10000000, &records));
    b->max_records = (uint64_t)records;
    TRY(get_size(c, m, "max_bytes", KiB, GiB, &b->max_bytes));
    TRY(get_duration(c, m, "max_wait", WTIME_NS_PER_MS, HOUR, 0, &b->max_wait_ns));
    return 0;
}

/* librdkafka properties weir sets itself: its offsets and rebalance
 * handling depend on them (exactly-once, docs/kafka.md). */
static const char *const kafka_fixed_options[] = {
    "bootstrap.servers", "metadata.broker.list", "group.id", "enable.auto.commit",
    "enable.auto.offset.store", "partition.assignment.strategy", "enable.partition.eof",
    NULL};

static int parse_kafka_options(struct ctx *c, struct ynode *m, const char *const *fixed,
                               const char *why, char ***options, size_t *noptions)
{
    if (m->kind != YNODE_MAP)
        return fail(c, m, "expected a mapping of librdkafka properties to values "
                    "(session.timeout.ms: 10000), found %s", describe(m));
    size_t n = m->n / 2;
    if (n > WEIR_MAX_CONFIG_ENTRIES)
        return fail(c, m, "more than %d options", WEIR_MAX_CONFIG_ENTRIES);
    if (n && !(*options = amalloc(c->cfg, n * sizeof **options)))
        return nomem(c);
    for (struct ynode *key = m->first; key; key = key->next->next) {
        struct ynode *v = key->next;
        size_t old = path_key(c, key->text);
        const char *val = NULL;
        int rc = 0;
        if (!key->len || strlen(key->text) != key->len ||
            strspn(key->text, "abcdefghijklmnopqrstuvwxyz0123456789._") != key->len)
            rc = fail(c, key, "not a librdkafka property name (lowercase words joined "
                      "by dots: session.timeout.ms)");
        for (size_t i = 0; !rc && fixed[i]; i++)
            if (strcmp(key->text, fixed[i]) == 0)
                rc = fail(c, key, "weir sets %s itself (%s)", key->text, why);
        if (!rc && v->is_null)
            rc = fail(c, key, "give a value");
        if (!rc)
            rc = scalar(c, v, &val);
        if (!rc) {
            size_t kl = strlen(key->text), vl = strlen(val);
            char *kv = amalloc(c->cfg, kl + vl + 2);
            if (!kv) {
                rc = nomem(c);
            } else {
                memcpy(kv, key->text, kl);
                kv[kl] = '=';
                memcpy(kv + kl + 1, val, vl + 1);
                (*options)[(*noptions)++] = kv;
            }
        }
        path_set(c, old);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_kafka_source(struct ctx *c, struct ynode *m, struct config_kafka_source *k)
{
    static const char *const keys[] = {"brokers", "topic", "group", "format",
                                       "descriptor_set", "message", "batch", "options",
                                       NULL};
    size_t old;
    TRY(check_map(c, m, keys));
    TRY(require(c, m, "brokers"));
    TRY(require(c, m, "topic"));
    TRY(get_brokers(c, m, &k->brokers));

    struct ynode *v = enter(c, m, "topic", &old);
    size_t n = item_count(v);
    int rc = 0;
    if (v->kind == YNODE_MAP)
        rc = fail(c, v, "expected a topic name or a list of them, found a mapping");
    else if (n == 0)
        rc = fail(c, v, "an empty list: give at least one topic");
    else if (!(k->topics = amalloc(c->cfg, n * sizeof *k->topics)))
        rc = nomem(c);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t o2 = v->kind == YNODE_SEQ ? path_index(c, i) : c->plen;
        rc = val_topic(c, item_at(v, i), &k->topics[i]);
        path_set(c, o2);
    }
    k->ntopics = n;
    path_set(c, old);
    if (rc)
        return rc;

    TRY(get_string(c, m, "group", &k->group));
    GET_ENUM(c, m, "format", payloads, k->format);
    TRY(get_path(c, m, "descriptor_set", &k->descriptor_set));
    TRY(get_string(c, m, "message", &k->message));
    if (k->format == CONFIG_PAYLOAD_PROTOBUF) {
        if (!k->descriptor_set || !k->message)
            return fail(c, m, "format: protobuf needs descriptor_set (a file from protoc "
                        "--descriptor_set_out) and message (the message type's full name)");
    } else if (k->descriptor_set || k->message) {
        struct ynode *at = map_get(m, "descriptor_set") ? map_get(m, "descriptor_set")
                                                        : map_get(m, "message");
        return fail(c, at, "descriptor_set and message are only used with format: protobuf");
    }
    if ((v = enter(c, m, "batch", &old))) {
        rc = parse_batch(c, v, &k->batch);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, m, "options", &old))) {
        rc = parse_kafka_options(c, v, kafka_fixed_options,
                                 "brokers and group are keys of their own; offsets are "
                                 "committed only once durable", &k->options, &k->noptions);
        path_set(c, old);
    }
    return rc;
}

static int parse_tls(struct ctx *c, struct ynode *m, struct config_tls *t)
{
    static const char *const keys[] = {"cert", "key", "ca", "handshake_timeout", NULL};
    TRY(check_map(c, m, keys));
    TRY(require(c, m, "cert"));
    TRY(require(c, m, "key"));
    TRY(get_path(c, m, "cert", &t->cert));
    TRY(get_path(c, m, "key", &t->key));
    TRY(get_duration(c, m, "handshake_timeout", WTIME_NS_PER_MS * 100, HOUR, 0,
                     &t->handshake_timeout_ns));
    return get_path(c, m, "ca", &t->ca);
}

static int parse_allow(struct ctx *c, struct ynode *v, struct config_source *s)
{
    size_t n = item_count(v);
    if (v->kind == YNODE_MAP)
        return fail(c, v, "expected a list of addresses or networks (10.0.0.0/8), found a mapping");
    if (n == 0)
        return fail(c, v, "an empty list would refuse every client: remove the key to allow all");
    if (!(s->allow = amalloc(c->cfg, n * sizeof *s->allow)))
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        struct ynode *it = item_at(v, i);
        size_t old = v->kind == YNODE_SEQ ? path_index(c, i) : c->plen;
        const char *str;
        char buf[128];
        int rc = scalar(c, it, &str);
        if (!rc && config_parse_cidr(str, &s->allow[i]))
            rc = fail(c, it, "%s is not an address or network (192.168.1.7, 10.0.0.0/8, fd00::/8)",
                      shown(it, buf, sizeof buf));
        path_set(c, old);
        if (rc)
            return rc;
    }
    s->nallow = n;
    return 0;
}

static int parse_source(struct ctx *c, struct ynode *m, struct config_source *s)
{
    static const char *const keys[] = {"tcp", "kafka", "framing", "allow", "tls",
                                       "idle_timeout", NULL};
    size_t old;
    struct ynode *v;
    TRY(check_map(c, m, keys));
    if (map_get(m, "tcp") && map_get(m, "kafka"))
        return fail(c, m, "give one of tcp, kafka (a pipeline has one source)");
    if ((v = enter(c, m, "kafka", &old))) {
        s->kind = CONFIG_SOURCE_KAFKA;
        int rc = parse_kafka_source(c, v, &s->kafka);
        path_set(c, old);
        if (rc)
            return rc;
        struct ynode *bad = map_get(m, "allow") ? map_get(m, "allow") : map_get(m, "tls");
        if (bad)
            return fail(c, bad, "allow and tls apply to tcp sources; configure Kafka "
                        "security on the brokers");
        if ((bad = map_get(m, "idle_timeout")))
            return fail(c, bad, "idle_timeout applies to tcp sources");
    }
    TRY(get_addr(c, m, "tcp", &s->tcp));
    GET_ENUM(c, m, "framing", framings, s->framing);
    TRY(get_duration(c, m, "idle_timeout", SEC, 100 * 366 * DAY, 1, &s->idle_timeout_ns));
    if ((v = enter(c, m, "allow", &old))) {
        int rc = parse_allow(c, v, s);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, m, "tls", &old))) {
        int rc = parse_tls(c, v, &s->tls);
        path_set(c, old);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_retention(struct ctx *c, struct ynode *m, struct config_retention *r)
{
    static const char *const keys[] = {"raw", "parquet", "quarantine", NULL};
    TRY(check_map(c, m, keys));
    TRY(get_duration(c, m, "raw", SEC, 100 * 366 * DAY, 1, &r->raw_ns));
    TRY(get_duration(c, m, "parquet", SEC, 100 * 366 * DAY, 1, &r->parquet_ns));
    TRY(get_duration(c, m, "quarantine", SEC, 100 * 366 * DAY, 1, &r->quarantine_ns));
    return 0;
}

static void kafka_source_defaults(struct config_kafka_source *k)
{
    k->format = CONFIG_PAYLOAD_JSON;
    k->batch.max_records = WEIR_DEFAULT_KAFKA_BATCH_RECORDS;
    k->batch.max_bytes = WEIR_DEFAULT_KAFKA_BATCH_BYTES;
    k->batch.max_wait_ns = WEIR_DEFAULT_KAFKA_BATCH_WAIT_MS * WTIME_NS_PER_MS;
}

static int pipeline_defaults(struct ctx *c, struct config_pipeline *p)
{
    p->source.kind = CONFIG_SOURCE_TCP;
    if (config_parse_addr(CONFIG_DEFAULT_TCP_ADDR, &p->source.tcp))
        return nomem(c); /* unreachable: the constant parses */
    p->source.framing = CONFIG_FRAMING_NDJSON;
    p->source.idle_timeout_ns = WEIR_DEFAULT_IDLE_TIMEOUT_MS * WTIME_NS_PER_MS;
    p->source.tls.handshake_timeout_ns = WEIR_DEFAULT_TLS_HANDSHAKE_MS * WTIME_NS_PER_MS;
    kafka_source_defaults(&p->source.kafka);
    if (!(p->source.kafka.group = astrdup(c->cfg, CONFIG_DEFAULT_KAFKA_GROUP)) ||
        !(p->time_field = astrdup(c->cfg, CONFIG_DEFAULT_TIME_FIELD)))
        return nomem(c);
    p->time_unit = CONFIG_TIME_S;
    p->partition = CONFIG_PARTITION_HOUR;
    p->time_max_ahead_ns = DAY;
    p->time_max_age_ns = 30 * DAY;
    p->compaction = CONFIG_COMPACTION_AUTO;
    p->fsync = CONFIG_FSYNC_GROUP;
    p->fsync_interval_ns = WEIR_DEFAULT_FSYNC_MS * WTIME_NS_PER_MS;
    p->fsync_bytes = WEIR_DEFAULT_FSYNC_BYTES;
    p->segment_bytes = WEIR_DEFAULT_SEGMENT_BYTES;
    p->max_record = c->cfg->limits.max_record;
    p->retention.raw_ns = CONFIG_OFF;
    p->retention.parquet_ns = CONFIG_OFF;
    p->retention.quarantine_ns = CONFIG_OFF;
    return 0;
}

/* transform: FILE, or {sql: FILE, name: DATASET} (docs/config.md). */
static int parse_transform(struct ctx *c, struct ynode *v, struct config_pipeline *p)
{
    static const char *const keys[] = {"sql", "name", NULL};
    size_t old;
    struct ynode *n;
    if (v->kind != YNODE_MAP)
        return val_path(c, v, &p->transform);
    TRY(check_map(c, v, keys));
    TRY(require(c, v, "sql"));
    TRY(get_path(c, v, "sql", &p->transform));
    if ((n = enter(c, v, "name", &old))) {
        int rc = val_name(c, n, &p->transform_name);
        path_set(c, old);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_pipeline(struct ctx *c, struct ynode *m, struct config_pipeline *p)
{
    static const char *const keys[] = {
        "name", "source", "schema", "lax", "format_assert", "time_field", "time_unit",
        "partition", "time_max_ahead", "time_max_age", "compaction", "fsync",
        "fsync_interval", "fsync_bytes", "segment_bytes", "max_record", "retention",
        "transform", "sink", NULL};
    static const char *const sink_keys[] = {"kafka", NULL};
    size_t old;
    struct ynode *v;
    TRY(check_map(c, m, keys));
    p->line = m->line;
    TRY(require(c, m, "name"));
    if ((v = enter(c, m, "name", &old))) {
        int rc = val_name(c, v, &p->name);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, m, "source", &old))) {
        int rc = parse_source(c, v, &p->source);
        path_set(c, old);
        if (rc)
            return rc;
    }
    TRY(get_path(c, m, "schema", &p->schema));
    TRY(get_bool(c, m, "lax", &p->lax));
    TRY(get_bool(c, m, "format_assert", &p->format_assert));
    TRY(get_field(c, m, "time_field", &p->time_field));
    GET_ENUM(c, m, "time_unit", time_units, p->time_unit);
    GET_ENUM(c, m, "partition", partitions, p->partition);
    TRY(get_duration(c, m, "time_max_ahead", 0, 100 * 366 * DAY, 1, &p->time_max_ahead_ns));
    TRY(get_duration(c, m, "time_max_age", 0, 100 * 366 * DAY, 1, &p->time_max_age_ns));
    GET_ENUM(c, m, "compaction", compactions, p->compaction);
    GET_ENUM(c, m, "fsync", fsyncs, p->fsync);
    TRY(get_duration(c, m, "fsync_interval", WTIME_NS_PER_MS, HOUR, 0, &p->fsync_interval_ns));
    TRY(get_size(c, m, "fsync_bytes", 1, GiB, &p->fsync_bytes));
    TRY(get_size(c, m, "segment_bytes", KiB, TiB, &p->segment_bytes));
    TRY(get_size(c, m, "max_record", 16, GiB, &p->max_record));
    if (p->max_record > c->cfg->limits.max_pending) {
        char a[32];
        config_format_size(c->cfg->limits.max_pending, a, sizeof a);
        size_t o2 = path_key(c, "max_record");
        char buf[128];
        struct ynode *at = map_get(m, "max_record");
        int rc = fail(c, at, "%s is more than limits.max_pending (%s): raise that too",
                      shown(at, buf, sizeof buf), a);
        path_set(c, o2);
        return rc;
    }
    if ((v = enter(c, m, "retention", &old))) {
        int rc = parse_retention(c, v, &p->retention);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, m, "transform", &old))) {
        int rc = parse_transform(c, v, p);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, m, "sink", &old))) {
        int rc = check_map(c, v, sink_keys);
        struct ynode *k = rc ? NULL : map_get(v, "kafka");
        if (!rc && !k)
            rc = fail(c, v, "give a sink (kafka), or remove the key");
        if (k) {
            size_t o2 = path_key(c, "kafka");
            if (!(p->sink_kafka = amalloc(c->cfg, sizeof *p->sink_kafka)))
                rc = nomem(c);
            else
                rc = parse_kafka_sink(c, k, p->sink_kafka);
            path_set(c, o2);
        }
        path_set(c, old);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- names: pipelines, models and dimensions are all SQL views ---- */

/* Where a name is already used, for a message; 0 if it is free. */
static int name_taken(struct ctx *c, const char *name, char *where, size_t cap)
{
    const struct weir_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->npipelines; i++)
        if (cfg->pipelines[i].name && strcmp(cfg->pipelines[i].name, name) == 0) {
            snprintf(where, cap, "pipeline '%s' (line %d)", name, cfg->pipelines[i].line);
            return 1;
        }
    for (size_t i = 0; i < cfg->ndimensions; i++)
        if (cfg->dimensions[i].name && strcmp(cfg->dimensions[i].name, name) == 0) {
            snprintf(where, cap, "dimension '%s' (line %d)", name, cfg->dimensions[i].line);
            return 1;
        }
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (cfg->models[i].name && strcmp(cfg->models[i].name, name) == 0) {
            snprintf(where, cap, "model '%s' (line %d)", name, cfg->models[i].line);
            return 1;
        }
    return 0;
}

static int check_name_free(struct ctx *c, struct ynode *at, const char *name)
{
    char where[200];
    if (!name_taken(c, name, where, sizeof where))
        return 0;
    return fail(c, at, "'%s' is already the name of %s; pipelines, models and dimensions "
                "share one namespace (their SQL views)", name, where);
}

/*
 * The dataset each transform writes becomes a pipeline of its own (source
 * DERIVED) after the configured ones, so that everything that works on
 * datasets (query views, compaction, retention, status, models' inputs)
 * sees it without a special case. It takes the partitioning, event time,
 * durability and retention of the pipeline it derives from; its schema is
 * generated from the transform's output (sql/xform.h) when serve or
 * replay starts, into <data_dir>/<name>/_schema.json.
 */
static int add_derived(struct ctx *c, struct ynode *list)
{
    struct weir_config *cfg = c->cfg;
    size_t n = cfg->npipelines, extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += cfg->pipelines[i].transform != NULL;
    if (!extra)
        return 0;
    struct config_pipeline *v = amalloc(cfg, (n + extra) * sizeof *v);
    if (!v)
        return nomem(c);
    memcpy(v, cfg->pipelines, n * sizeof *v);
    cfg->pipelines = v;
    struct ynode *it = list->first;
    for (size_t i = 0; i < n; i++, it = it ? it->next : NULL) {
        struct config_pipeline *p = &cfg->pipelines[i];
        if (!p->transform)
            continue;
        size_t old = path_index(c, i);
        size_t o2 = path_key(c, "transform");
        struct ynode *at = it ? map_get(it, "transform") : NULL;
        int rc = 0;
        char name[CONFIG_NAME_MAX + 32];
        if (p->source.kind != CONFIG_SOURCE_KAFKA)
            rc = fail(c, at, "a transform runs on a Kafka pipeline's micro-batches; "
                      "pipeline '%s' reads TCP: remove the transform, or read Kafka "
                      "(docs/kafka.md, \"Transforms and replay\")", p->name);
        if (!rc && !p->transform_name) {
            snprintf(name, sizeof name, "%s_transformed", p->name);
            if (strlen(name) > CONFIG_NAME_MAX)
                rc = fail(c, at, "the derived dataset's default name '%s' is longer than "
                          "%d characters: name it (transform: {sql: ..., name: ...})",
                          name, CONFIG_NAME_MAX);
            else if (!(p->transform_name = astrdup(cfg, name)))
                rc = nomem(c);
        }
        if (!rc)
            rc = check_name_free(c, at, p->transform_name);
        if (!rc) {
            struct config_pipeline *d = &cfg->pipelines[cfg->npipelines];
            *d = *p;
            d->name = p->transform_name;
            d->source.kind = CONFIG_SOURCE_DERIVED;
            d->derived_from = p->name;
            d->transform = d->transform_name = NULL;
            d->sink_kafka = NULL;
            d->lax = d->format_assert = 0;
            /* P already judged the event time when it took the record. */
            d->time_max_ahead_ns = d->time_max_age_ns = CONFIG_OFF;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s/_schema.json", cfg->data_dir, d->name);
            if (!(d->schema = astrdup(cfg, path)))
                rc = nomem(c);
            else
                cfg->npipelines++;
        }
        path_set(c, o2);
        path_set(c, old);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_pipelines(struct ctx *c, struct ynode *v)
{
    struct weir_config *cfg = c->cfg;
    if (v->kind != YNODE_SEQ)
        return fail(c, v, "expected a list of pipelines ('- name: ...'), found %s", describe(v));
    if (v->n == 0)
        return fail(c, v, "an empty list: give at least one pipeline (or remove the key "
                    "for the default one)");
    if (v->n > WEIR_MAX_CONFIG_ENTRIES)
        return fail(c, v, "more than %d pipelines", WEIR_MAX_CONFIG_ENTRIES);
    if (!(cfg->pipelines = amalloc(cfg, v->n * sizeof *cfg->pipelines)))
        return nomem(c);
    size_t i = 0;
    for (struct ynode *it = v->first; it; it = it->next, i++) {
        struct config_pipeline *p = &cfg->pipelines[i];
        size_t old = path_index(c, i);
        int rc = pipeline_defaults(c, p);
        if (!rc)
            rc = parse_pipeline(c, it, p);
        if (!rc) {
            size_t o2 = path_key(c, "name");
            rc = check_name_free(c, map_get(it, "name"), p->name);
            path_set(c, o2);
        }
        path_set(c, old);
        if (rc)
            return rc;
        cfg->npipelines = i + 1;
    }
    return add_derived(c, v);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcasecmp(s + n - m, suffix) == 0;
}

static int parse_dimensions(struct ctx *c, struct ynode *m)
{
    struct weir_config *cfg = c->cfg;
    if (m->kind != YNODE_MAP)
        return fail(c, m, "expected a mapping of view names to files (sensors: sensors.csv), "
                    "found %s", describe(m));
    size_t n = m->n / 2;
    if (n > WEIR_MAX_CONFIG_ENTRIES)
        return fail(c, m, "more than %d dimensions", WEIR_MAX_CONFIG_ENTRIES);
    if (n && !(cfg->dimensions = amalloc(cfg, n * sizeof *cfg->dimensions)))
        return nomem(c);
    size_t i = 0;
    for (struct ynode *k = m->first; k; k = k->next->next, i++) {
        struct config_dimension *d = &cfg->dimensions[i];
        struct ynode *v = k->next;
        size_t old = path_key(c, k->text);
        int rc = 0;
        char buf[128];
        d->line = k->line;
        /* A key is never ${}-expanded: check the text as written. */
        if (!valid_name(k->text) || strlen(k->text) != k->len)
            rc = fail(c, k, "not a valid view name: use lowercase letters, digits and _, "
                      "starting with a letter or _");
        else
            rc = val_name(c, k, &d->name);
        if (!rc)
            rc = check_name_free(c, k, d->name);
        if (!rc && v->is_null)
            rc = fail(c, k, "give the file (a .csv, .tsv or .parquet file)");
        if (!rc)
            rc = val_path(c, v, &d->path);
        if (!rc && !has_suffix(d->path, ".csv") && !has_suffix(d->path, ".tsv") &&
            !has_suffix(d->path, ".csv.gz") && !has_suffix(d->path, ".tsv.gz") &&
            !has_suffix(d->path, ".parquet"))
            rc = fail(c, v, "%s is not a .csv, .tsv or .parquet file (the extension "
                      "says how to read it)", shown(v, buf, sizeof buf));
        path_set(c, old);
        if (rc)
            return rc;
        cfg->ndimensions = i + 1;
    }
    return 0;
}

/* "table" or "schema.table", each part an SQL identifier. */
static int valid_table(const char *s)
{
    int parts = 0;
    while (*s) {
        size_t n = 0;
        if (!isalpha((unsigned char)*s) && *s != '_')
            return 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_')
            n++;
        if (n > CONFIG_NAME_MAX || ++parts > 2)
            return 0;
        s += n;
        if (*s == '.' && s[1])
            s++;
        else if (*s)
            return 0;
    }
    return parts > 0;
}

static int parse_warehouse(struct ctx *c, struct ynode *m, struct config_output *o,
                           const char *model)
{
    static const char *const keys[] = {"dsn", "table", NULL};
    size_t old;
    struct ynode *v;
    char buf[128];
    TRY(check_map(c, m, keys));
    TRY(require(c, m, "dsn"));
    TRY(get_string(c, m, "dsn", &o->dsn));
    if (!(v = enter(c, m, "table", &old))) {
        if (!(o->table = astrdup(c->cfg, model)))
            return nomem(c);
        return 0;
    }
    int rc = val_string(c, v, &o->table);
    if (!rc && !valid_table(o->table))
        rc = fail(c, v, "%s is not a table name (name or schema.name; letters, digits, _)",
                  shown(v, buf, sizeof buf));
    path_set(c, old);
    return rc;
}

static int parse_output(struct ctx *c, struct ynode *it, struct config_output *o,
                        const char *model)
{
    static const char *const kinds[] = {"lake", "postgres", "mysql", "parquet", "kafka", NULL};
    static const char *const parquet_keys[] = {"path", NULL};
    char buf[128];
    if (it->kind == YNODE_SCALAR) {
        const char *s;
        TRY(scalar(c, it, &s));
        if (strcmp(s, "lake") == 0) {
            o->kind = CONFIG_OUTPUT_LAKE;
            return 0;
        }
        const char *hint = nearest(s, kinds, 5);
        return fail(c, it, "%s is not an output: lake, or a mapping postgres: {...}, mysql: "
                    "{...}, parquet: {...}, kafka: {...}%s%s%s", shown(it, buf, sizeof buf),
                    hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    }
    TRY(check_map(c, it, kinds));
    if (it->n != 2)
        return fail(c, it, "one output per list item: start each with '- '");
    struct ynode *k = it->first, *v = k->next;
    if (strcmp(k->text, "lake") == 0)
        return fail(c, k, "write lake as a plain list item: '- lake'");
    size_t old = path_key(c, k->text);
    int rc = 0;
    if (v->is_null) {
        rc = fail(c, k, "give its settings ({...})");
    } else if (strcmp(k->text, "postgres") == 0 || strcmp(k->text, "mysql") == 0) {
        o->kind = k->text[0] == 'p' ? CONFIG_OUTPUT_POSTGRES : CONFIG_OUTPUT_MYSQL;
        rc = parse_warehouse(c, v, o, model);
    } else if (strcmp(k->text, "parquet") == 0) {
        o->kind = CONFIG_OUTPUT_PARQUET;
        rc = check_map(c, v, parquet_keys);
        if (!rc)
            rc = require(c, v, "path");
        if (!rc)
            rc = get_path(c, v, "path", &o->path);
    } else {
        o->kind = CONFIG_OUTPUT_KAFKA;
        rc = parse_kafka_sink(c, v, &o->kafka);
    }
    path_set(c, old);
    return rc;
}

static int parse_model(struct ctx *c, struct ynode *m, struct config_model *md)
{
    static const char *const keys[] = {"name", "sql", "inputs", "grain", "outputs", NULL};
    size_t old;
    struct ynode *v;
    TRY(check_map(c, m, keys));
    md->line = m->line;
    md->grain = CONFIG_PARTITION_HOUR;
    TRY(require(c, m, "name"));
    TRY(require(c, m, "sql"));
    TRY(require(c, m, "inputs"));
    v = enter(c, m, "name", &old);
    int rc = val_name(c, v, &md->name);
    if (!rc)
        rc = check_name_free(c, v, md->name);
    path_set(c, old);
    if (rc)
        return rc;
    TRY(get_path(c, m, "sql", &md->sql));

    v = enter(c, m, "inputs", &old);
    size_t n = item_count(v);
    if (v->kind == YNODE_MAP)
        rc = fail(c, v, "expected a list of pipeline or model names, found a mapping");
    else if (n == 0)
        rc = fail(c, v, "an empty list: a model needs at least one input, which decides "
                  "when it runs");
    else if (!(md->inputs = amalloc(c->cfg, n * sizeof *md->inputs)))
        rc = nomem(c);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t o2 = v->kind == YNODE_SEQ ? path_index(c, i) : c->plen;
        rc = val_name(c, item_at(v, i), &md->inputs[i]);
        for (size_t j = 0; j < i && !rc; j++)
            if (strcmp(md->inputs[i], md->inputs[j]) == 0)
                rc = fail(c, item_at(v, i), "'%s' is listed twice", md->inputs[i]);
        path_set(c, o2);
    }
    md->ninputs = n;
    path_set(c, old);
    if (rc)
        return rc;

    GET_ENUM(c, m, "grain", partitions, md->grain);

    v = enter(c, m, "outputs", &old);
    if (!v) {
        if (!(md->outputs = amalloc(c->cfg, sizeof *md->outputs)))
            return nomem(c);
        md->outputs[0].kind = CONFIG_OUTPUT_LAKE;
        md->noutputs = 1;
        return 0;
    }
    n = item_count(v);
    if (v->kind == YNODE_MAP)
        rc = fail(c, v, "expected a list ('- lake', '- postgres: {...}'), found a mapping");
    else if (n == 0)
        rc = fail(c, v, "an empty list: give at least one output (or remove the key for lake)");
    else if (!(md->outputs = amalloc(c->cfg, n * sizeof *md->outputs)))
        rc = nomem(c);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t o2 = v->kind == YNODE_SEQ ? path_index(c, i) : c->plen;
        rc = parse_output(c, item_at(v, i), &md->outputs[i], md->name);
        for (size_t j = 0; j < i && !rc; j++)
            if (md->outputs[i].kind == CONFIG_OUTPUT_LAKE &&
                md->outputs[j].kind == CONFIG_OUTPUT_LAKE)
                rc = fail(c, item_at(v, i), "lake is listed twice");
        path_set(c, o2);
    }
    md->noutputs = n;
    path_set(c, old);
    return rc;
}

static int parse_models(struct ctx *c, struct ynode *v)
{
    struct weir_config *cfg = c->cfg;
    if (v->kind != YNODE_SEQ)
        return fail(c, v, "expected a list of models ('- name: ...'), found %s", describe(v));
    if (v->n > WEIR_MAX_CONFIG_ENTRIES)
        return fail(c, v, "more than %d models", WEIR_MAX_CONFIG_ENTRIES);
    if (v->n && !(cfg->models = amalloc(cfg, v->n * sizeof *cfg->models)))
        return nomem(c);
    c->models_seq = v;
    size_t i = 0;
    for (struct ynode *it = v->first; it; it = it->next, i++) {
        size_t old = path_index(c, i);
        int rc = parse_model(c, it, &cfg->models[i]);
        path_set(c, old);
        if (rc)
            return rc;
        cfg->nmodels = i + 1;
    }
    return 0;
}

/* ---- checks across sections ---- */

static int model_index(const struct weir_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return (int)i;
    return -1;
}

static struct ynode *model_inputs_node(struct ctx *c, size_t i)
{
    struct ynode *m = item_at(c->models_seq, i);
    return map_get(m, "inputs");
}

static int check_model_inputs(struct ctx *c)
{
    const struct weir_config *cfg = c->cfg;
    const char **names = NULL;
    size_t nnames = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->nmodels && !rc; i++) {
        const struct config_model *md = &cfg->models[i];
        for (size_t j = 0; j < md->ninputs && !rc; j++) {
            const char *in = md->inputs[j];
            if (config_pipeline(cfg, in) || config_model(cfg, in))
                continue;
            struct ynode *v = model_inputs_node(c, i);
            size_t o1 = path_index(c, i);
            path_key(c, "inputs");
            if (v->kind == YNODE_SEQ)
                path_index(c, j);
            if (config_dimension(cfg, in)) {
                rc = fail(c, item_at(v, j), "'%s' is a dimension: dimensions are views every "
                          "model can read; list only pipelines and models here", in);
            } else {
                if (!names) {
                    names = calloc(cfg->npipelines + cfg->nmodels, sizeof *names);
                    if (!names) {
                        rc = nomem(c);
                        break;
                    }
                    for (size_t k = 0; k < cfg->npipelines; k++)
                        names[nnames++] = cfg->pipelines[k].name;
                    for (size_t k = 0; k < cfg->nmodels; k++)
                        names[nnames++] = cfg->models[k].name;
                }
                const char *hint = nearest(in, names, nnames);
                rc = fail(c, item_at(v, j), "'%s' is not a pipeline or a model%s%s%s", in,
                          hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
            }
            path_set(c, o1);
        }
    }
    free(names);
    return rc;
}

/* Depth-first search for a cycle among models; on finding one, writes the
 * cycle into a message. state: 0 new, 1 on the stack, 2 done. */
static int find_cycle(const struct weir_config *cfg, int at, unsigned char *state, int *stack,
                      int depth, char *msg, size_t cap)
{
    state[at] = 1;
    stack[depth] = at;
    const struct config_model *md = &cfg->models[at];
    for (size_t j = 0; j < md->ninputs; j++) {
        int to = model_index(cfg, md->inputs[j]);
        if (to < 0 || state[to] == 2)
            continue;
        if (state[to] == 1) {
            size_t o = 0;
            int from = 0;
            while (stack[from] != to)
                from++;
            msg[0] = '\0';
            for (int k = from; k <= depth && o < cap; k++) {
                int w = snprintf(msg + o, cap - o, "%s -> ", cfg->models[stack[k]].name);
                o += w > 0 ? (size_t)w : 0;
            }
            if (o < cap)
                snprintf(msg + o, cap - o, "%s", cfg->models[to].name);
            return to;
        }
        int r = find_cycle(cfg, to, state, stack, depth + 1, msg, cap);
        if (r >= 0)
            return r;
    }
    state[at] = 2;
    return -1;
}

static int check_model_cycles(struct ctx *c)
{
    const struct weir_config *cfg = c->cfg;
    if (cfg->nmodels == 0)
        return 0;
    unsigned char *state = calloc(cfg->nmodels, 1);
    int *stack = calloc(cfg->nmodels, sizeof *stack);
    int rc = 0;
    if (!state || !stack) {
        rc = nomem(c);
        goto out;
    }
    for (size_t i = 0; i < cfg->nmodels && !rc; i++) {
        char msg[512];
        if (state[i])
            continue;
        int at = find_cycle(cfg, (int)i, state, stack, 0, msg, sizeof msg);
        if (at >= 0) {
            size_t old = path_index(c, (size_t)at);
            path_key(c, "inputs");
            rc = fail(c, model_inputs_node(c, (size_t)at), "models depend on each other in "
                      "a cycle: %s", msg);
            path_set(c, old);
        }
    }
out:
    free(state);
    free(stack);
    return rc;
}

static int is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static int addr_overlap(const struct config_addr *a, const struct config_addr *b)
{
    if (a->port == 0 || a->port != b->port)
        return 0;
    return strcmp(a->host, b->host) == 0 || is_wildcard(a->host) || is_wildcard(b->host);
}

/* The node for a pipeline's source (or the entry itself if it has none). */
static struct ynode *source_node(struct ctx *c, size_t i, const char *key)
{
    struct ynode *seq = c->root ? map_get(c->root, "pipelines") : NULL;
    struct ynode *m = seq ? item_at(seq, i) : NULL;
    struct ynode *s = m ? map_get(m, "source") : NULL;
    struct ynode *k = s && s->kind == YNODE_MAP ? map_get(s, key) : NULL;
    return k ? k : s ? s : m ? m : c->root;
}

static int check_listeners(struct ctx *c)
{
    const struct weir_config *cfg = c->cfg;
    char a[300];
    for (size_t i = 0; i < cfg->npipelines; i++) {
        const struct config_pipeline *p = &cfg->pipelines[i];
        for (size_t j = 0; j < i; j++) {
            const struct config_pipeline *q = &cfg->pipelines[j];
            int clash = 0;
            if (p->source.kind == CONFIG_SOURCE_TCP && q->source.kind == CONFIG_SOURCE_TCP &&
                addr_overlap(&p->source.tcp, &q->source.tcp)) {
                config_format_addr(&p->source.tcp, a, sizeof a);
                clash = 1;
            } else if (p->source.kind == CONFIG_SOURCE_KAFKA &&
                       q->source.kind == CONFIG_SOURCE_KAFKA &&
                       strcmp(p->source.kafka.group, q->source.kafka.group) == 0 &&
                       strcmp(p->source.kafka.brokers, q->source.kafka.brokers) == 0) {
                for (size_t x = 0; x < p->source.kafka.ntopics && !clash; x++)
                    for (size_t y = 0; y < q->source.kafka.ntopics && !clash; y++)
                        if (strcmp(p->source.kafka.topics[x], q->source.kafka.topics[y]) == 0) {
                            snprintf(a, sizeof a, "topic '%s'", p->source.kafka.topics[x]);
                            clash = 2;
                        }
            }
            if (!clash)
                continue;
            path_key(c, "pipelines");
            path_index(c, i);
            path_key(c, "source");
            path_key(c, clash == 1 ? "tcp" : "kafka");
            int rc = clash == 1
                ? fail(c, source_node(c, i, "tcp"), "%s is already the address of pipeline "
                       "'%s' (line %d); give each pipeline its own port", a, q->name, q->line)
                : fail(c, source_node(c, i, "kafka"), "%s in group '%s' is already read by "
                       "pipeline '%s' (line %d): the two would split its partitions; give "
                       "each pipeline its own group", a, p->source.kafka.group, q->name,
                       q->line);
            path_set(c, 0);
            return rc;
        }
        if (cfg->metrics_enabled && p->source.kind == CONFIG_SOURCE_TCP &&
            addr_overlap(&p->source.tcp, &cfg->metrics)) {
            config_format_addr(&cfg->metrics, a, sizeof a);
            struct ynode *at = c->root ? map_get(c->root, "metrics") : NULL;
            path_key(c, "metrics");
            char who[128];
            if (p->line > 0)
                snprintf(who, sizeof who, "pipeline '%s' (line %d)", p->name, p->line);
            else
                snprintf(who, sizeof who, "the default pipeline '%s'", p->name);
            return fail(c, at ? at : source_node(c, i, "tcp"), "%s is also the tcp address "
                        "of %s", a, who);
        }
    }
    return 0;
}

/* ---- the root ---- */

static int default_workers(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : n;
}

static int valid_node(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CONFIG_NODE_MAX || s[0] == '.')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return 0;
    return 1;
}

static int default_node(struct ctx *c)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    host[CONFIG_NODE_MAX] = '\0';
    for (char *p = host; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            *p = '_';
    if (host[0] == '.' )
        host[0] = '_';
    if (!(c->cfg->node = astrdup(c->cfg, host[0] ? host : "node")))
        return nomem(c);
    return 0;
}

static int set_defaults(struct ctx *c)
{
    struct weir_config *cfg = c->cfg;
    TRY(resolve(c, NULL, CONFIG_DEFAULT_DATA_DIR, &cfg->data_dir));
    TRY(default_node(c));
    cfg->workers = default_workers();
    cfg->grace_ns = WEIR_DEFAULT_GRACE_S * WTIME_NS_PER_S;
    cfg->drain_timeout_ns = WEIR_DEFAULT_DRAIN_MS * WTIME_NS_PER_MS;
    cfg->metrics_enabled = 1;
    if (config_parse_addr(CONFIG_DEFAULT_METRICS_ADDR, &cfg->metrics))
        return nomem(c); /* unreachable: the constant parses */
    cfg->log_level = LOG_INFO;
    cfg->log_format = LOG_TEXT;
    cfg->limits.max_record = WEIR_DEFAULT_MAX_RECORD;
    cfg->limits.max_depth = WEIR_DEFAULT_MAX_DEPTH;
    cfg->limits.max_connections = WEIR_DEFAULT_MAX_CONNECTIONS;
    cfg->limits.max_pending = WEIR_DEFAULT_MAX_PENDING;
    cfg->limits.max_open_partitions = WEIR_DEFAULT_MAX_OPEN_PARTITIONS;
    return 0;
}

static int default_pipeline(struct ctx *c)
{
    struct weir_config *cfg = c->cfg;
    if (!(cfg->pipelines = amalloc(cfg, sizeof *cfg->pipelines)))
        return nomem(c);
    TRY(pipeline_defaults(c, &cfg->pipelines[0]));
    if (!(cfg->pipelines[0].name = astrdup(cfg, "default")))
        return nomem(c);
    cfg->npipelines = 1;
    return 0;
}

static int parse_root(struct ctx *c, struct ynode *root)
{
    static const char *const keys[] = {
        "data_dir", "node", "workers", "grace", "drain_timeout", "metrics", "log",
        "limits", "pipelines", "dimensions", "models", NULL};
    struct weir_config *cfg = c->cfg;
    size_t old;
    struct ynode *v;
    char buf[128];
    const char *s;

    TRY(set_defaults(c));
    if (!root || root->is_null) {
        c->root = NULL;
        TRY(default_pipeline(c));
        return check_listeners(c);
    }
    TRY(check_map(c, root, keys));
    TRY(get_path(c, root, "data_dir", &cfg->data_dir));
    if ((v = enter(c, root, "node", &old))) {
        int rc = scalar(c, v, &s);
        if (!rc && !valid_node(s))
            rc = fail(c, v, "%s is not a node id: letters, digits, '_', '.', '-', at most "
                      "%d, not starting with '.'", shown(v, buf, sizeof buf), CONFIG_NODE_MAX);
        if (!rc && !(cfg->node = astrdup(cfg, s)))
            rc = nomem(c);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, root, "workers", &old))) {
        int rc = v->kind == YNODE_SCALAR && strcmp(v->text, "auto") == 0
                     ? 0 : val_int(c, v, 1, 1024, &cfg->workers);
        path_set(c, old);
        if (rc)
            return rc;
    }
    TRY(get_duration(c, root, "grace", 0, 7 * DAY, 0, &cfg->grace_ns));
    TRY(get_duration(c, root, "drain_timeout", 0, HOUR, 0, &cfg->drain_timeout_ns));
    if ((v = enter(c, root, "metrics", &old))) {
        int rc = scalar(c, v, &s);
        if (!rc && strcmp(s, "off") == 0)
            cfg->metrics_enabled = 0;
        else if (!rc)
            rc = val_addr(c, v, &cfg->metrics);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, root, "log", &old))) {
        int rc = parse_log(c, v);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, root, "limits", &old))) {
        int rc = parse_limits(c, v);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, root, "pipelines", &old))) {
        int rc = parse_pipelines(c, v);
        path_set(c, old);
        if (rc)
            return rc;
    } else {
        TRY(default_pipeline(c));
    }
    if ((v = enter(c, root, "dimensions", &old))) {
        int rc = parse_dimensions(c, v);
        path_set(c, old);
        if (rc)
            return rc;
    }
    if ((v = enter(c, root, "models", &old))) {
        int rc = parse_models(c, v);
        if (!rc)
            rc = check_model_inputs(c);
        if (!rc)
            rc = check_model_cycles(c);
        path_set(c, old);
        if (rc)
            return rc;
    }
    return check_listeners(c);
}

/* ---- entry points ---- */

static int absolute_dir(const char *dir, char **out)
{
    char cwd[PATH_MAX];
    size_t n = strlen(dir);
    if (dir[0] == '/') {
        *out = strdup(dir);
        return *out ? 0 : WEIR_ENOMEM;
    }
    if (!getcwd(cwd, sizeof cwd))
        return weir_from_errno(errno);
    size_t cap = strlen(cwd) + n + 2;
    if (!(*out = malloc(cap)))
        return WEIR_ENOMEM;
    snprintf(*out, cap, "%s%s%s", cwd, n ? "/" : "", dir);
    return 0;
}

int config_load_string(const char *name, const char *text, size_t len,
                       const char *base_dir, struct weir_config *cfg,
                       struct weir_errmsg *err)
{
    struct ctx c = {0};
    struct ynode *root = NULL;
    char msg[512], *dir = NULL;
    int line = 0, rc;

    memset(cfg, 0, sizeof *cfg);
    c.cfg = cfg;
    c.err = err;
    c.file = name ? name : "<config>";
    if ((rc = absolute_dir(base_dir ? base_dir : "", &dir))) {
        errmsg_set(err, rc, "%s: cannot find the working directory: %s", c.file,
                   weir_strerror(rc));
        goto fail;
    }
    if (!(cfg->file = astrdup(cfg, c.file)) || !(cfg->dir = astrdup(cfg, dir))) {
        rc = nomem(&c);
        goto fail;
    }
    clean_path(cfg->dir);
    if (len > WEIR_MAX_CONFIG_BYTES) {
        rc = errmsg_set(err, WEIR_ECONFIG, "%s: larger than %u bytes; is this the config file?",
                        c.file, WEIR_MAX_CONFIG_BYTES);
        goto fail;
    }
    rc = ytree_parse(text, len, WEIR_MAX_CONFIG_DEPTH, &root, &line, msg, sizeof msg);
    if (rc == WEIR_ENOMEM) {
        nomem(&c);
        goto fail;
    }
    if (rc) {
        rc = errmsg_set(err, WEIR_ECONFIG, "%s:%d: YAML: %s", c.file, line, msg);
        goto fail;
    }
    c.root = root;
    if ((rc = parse_root(&c, root)))
        goto fail;
    ytree_free(root);
    free(dir);
    return 0;
fail:
    ytree_free(root);
    free(dir);
    config_release(cfg);
    return rc;
}

int config_load(const char *path, struct weir_config *cfg, struct weir_errmsg *err)
{
    if (!path)
        return config_load_string("<default>", default_yaml, sizeof default_yaml - 1, NULL,
                                  cfg, err);
    memset(cfg, 0, sizeof *cfg);
    char *text = NULL, *dir = NULL;
    struct stat st;
    int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return errmsg_set(err, weir_from_errno(e), "%s: %s", path, strerror(e));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = errmsg_set(err, WEIR_ECONFIG, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > (off_t)WEIR_MAX_CONFIG_BYTES) {
        rc = errmsg_set(err, WEIR_ECONFIG, "%s: larger than %u bytes; is this the config file?",
                        path, WEIR_MAX_CONFIG_BYTES);
        goto out;
    }
    size_t size = (size_t)st.st_size, got = 0;
    if (!(text = malloc(size + 1))) {
        rc = errmsg_set(err, WEIR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    while (got < size) {
        ssize_t n = read(fd, text + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            rc = errmsg_set(err, weir_from_errno(e), "%s: %s", path, strerror(e));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    const char *slash = strrchr(path, '/');
    if (!(dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(""))) {
        rc = errmsg_set(err, WEIR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    rc = config_load_string(path, text, got, dir, cfg, err);
out:
    close(fd);
    free(text);
    free(dir);
    return rc;
}

const struct config_pipeline *config_pipeline(const struct weir_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npipelines; i++)
        if (strcmp(cfg->pipelines[i].name, name) == 0)
            return &cfg->pipelines[i];
    return NULL;
}

const struct config_model *config_model(const struct weir_config *cfg, const char *name)
{
    int i = model_index(cfg, name);
    return i < 0 ? NULL : &cfg->models[i];
}

const struct config_dimension *config_dimension(const struct weir_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ndimensions; i++)
        if (strcmp(cfg->dimensions[i].name, name) == 0)
            return &cfg->dimensions[i];
    return NULL;
}
