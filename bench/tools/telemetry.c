/*
 * telemetry.c - the record generator, hash and manifest of telemetry.h.
 *
 * Records are built with small bounded appenders instead of snprintf: the
 * tools generate millions of lines before a timed run, and printf's float
 * formatting is both the slow part and locale-dependent. Values are kept as
 * integer hundredths, so the digits written are exact.
 */
#include "telemetry.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[TEL_KIND_COUNT] = {
    [TEL_VALID] = "valid",
    [TEL_UNIT_KELVIN] = "unit_kelvin",
    [TEL_KIND_WRONG] = "kind_wrong",
    [TEL_NO_SENSOR_ID] = "no_sensor_id",
    [TEL_NO_MEASUREMENT] = "no_measurement",
    [TEL_TIMESTAMP_STRING] = "timestamp_string",
    [TEL_SENSOR_ID_FLOAT] = "sensor_id_float",
    [TEL_VALUE_NULL] = "value_null",
    [TEL_VALUE_OBJECT] = "value_object",
    [TEL_VALUE_ARRAY] = "value_array",
    [TEL_TRUNCATED] = "truncated",
    [TEL_GARBAGE] = "garbage",
    [TEL_TRAILING_COMMA] = "trailing_comma",
    [TEL_BAD_UTF8] = "bad_utf8",
    [TEL_EXTRA_BRACE] = "extra_brace",
    [TEL_EMPTY_OBJECT] = "empty_object",
};

const char *tel_kind_name(enum tel_kind kind)
{
    if ((unsigned)kind >= TEL_KIND_COUNT)
        return "?";
    return kind_names[kind];
}

void tel_config_default(struct tel_config *cfg)
{
    cfg->records = 2000000;
    cfg->invalid_frac = 0.05;
    cfg->str_values = 0.0;
    cfg->hours = 3;
    cfg->seed = 1;
    cfg->t0 = TEL_T0_DEFAULT;
}

/* A fraction in [0, 1] as a bound for 53-bit draws; 1.0 gives 2^53, which
 * every draw is below. */
static uint64_t frac_bound(double f)
{
    return (uint64_t)ldexp(f, 53);
}

int tel_gen_init(struct tel_gen *g, const struct tel_config *cfg, char *err,
                 size_t errlen)
{
    const char *why = NULL;

    if (!(cfg->invalid_frac >= 0.0 && cfg->invalid_frac <= 1.0))
        why = "invalid fraction must be in [0, 1]";
    else if (!(cfg->str_values >= 0.0 && cfg->str_values <= 1.0))
        why = "string value fraction must be in [0, 1]";
    else if (cfg->hours < 1 || cfg->hours > 24 * 366)
        why = "hours must be in [1, 8784]";
    else if (cfg->t0 < 0 || cfg->t0 % 3600 != 0 || cfg->t0 > INT64_C(1) << 40)
        why = "t0 must be a whole hour after 1970";
    else if (cfg->records > UINT64_C(1) << 40 ||
             cfg->records > (UINT64_MAX >> 1) / ((uint64_t)cfg->hours * 3600))
        why = "too many records"; /* i * span in tel_gen_record must fit */
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
        return -1;
    }
    g->cfg = *cfg;
    g->invalid_below = frac_bound(cfg->invalid_frac);
    g->str_below = frac_bound(cfg->str_values);
    return 0;
}

/* splitmix64 (Steele, Lea, Flood 2014): a tiny generator whose every output
 * is a full 64-bit mix, so seeding it per record is cheap and sound. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
    *s += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(*s);
}

/* Uniform in [0, n) for small n; the modulo bias (n / 2^64) is irrelevant
 * here. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return rng_next(s) % n;
}

/* Bounded appender on a record's line. Overflow is a bug in this file (no
 * kind comes near TEL_LINE_MAX), so it is asserted, not reported. One byte
 * is always left free, for the newline a writer may add. */
struct out {
    char *p;
    size_t len;
};

static void put_mem(struct out *o, const char *s, size_t n)
{
    assert(o->len + n < TEL_LINE_MAX);
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_mem(o, tmp + sizeof tmp - n, n);
}

static void put_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        put_mem(o, "-", 1);
        put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(o, (uint64_t)v);
    }
}

/* hundredths as a decimal with `decimals` digits (0, 1 or 2) after the
 * point; 0 writes a JSON integer. */
static void put_fixed(struct out *o, int64_t hundredths, int decimals)
{
    uint64_t a = hundredths < 0 ? (uint64_t)0 - (uint64_t)hundredths
                                : (uint64_t)hundredths;

    if (decimals == 0)
        a = (a + 50) / 100 * 100;
    else if (decimals == 1)
        a = (a + 5) / 10 * 10;
    if (hundredths < 0 && a != 0)
        put_mem(o, "-", 1);
    put_u64(o, a / 100);
    if (decimals == 0)
        return;
    put_mem(o, ".", 1);
    char d[2] = {(char)('0' + a / 10 % 10), (char)('0' + a % 10)};
    put_mem(o, d, (size_t)decimals);
}

/* The parts of a record before its kind bends them. */
struct fields {
    int64_t timestamp;
    uint64_t sensor_id;
    int fahrenheit;
    int64_t hundredths;
    int decimals;
    int value_is_string;
    unsigned bad_utf8; /* which invalid sequence, for TEL_BAD_UTF8 */
};

/* Sequences that no strict UTF-8 decoder accepts: a byte that never occurs,
 * a lone continuation byte, an overlong "/", an encoded surrogate (which
 * Python's json.loads(bytes) lets through with surrogatepass), and a
 * sequence cut short before the closing quote. */
static const char *const bad_utf8_seqs[] = {
    "\xff", "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82",
};
#define BAD_UTF8_SEQS (sizeof bad_utf8_seqs / sizeof bad_utf8_seqs[0])

static void put_value(struct out *o, const struct fields *f, enum tel_kind kind)
{
    switch (kind) {
    case TEL_VALUE_NULL:
        put_str(o, "null");
        return;
    case TEL_VALUE_OBJECT:
        put_str(o, "{}");
        return;
    case TEL_VALUE_ARRAY:
        put_mem(o, "[", 1);
        put_fixed(o, f->hundredths, 2);
        put_mem(o, "]", 1);
        return;
    case TEL_BAD_UTF8:
        put_mem(o, "\"", 1);
        put_fixed(o, f->hundredths, 1);
        put_str(o, bad_utf8_seqs[f->bad_utf8 % BAD_UTF8_SEQS]);
        put_mem(o, "\"", 1);
        return;
    default:
        break;
    }
    if (f->value_is_string) {
        /* Strings a sensor might send: a number it formatted itself, or a
         * status word. Both are valid under value: float | str. */
        put_mem(o, "\"", 1);
        if (f->decimals == 0)
            put_str(o, f->hundredths & 1 ? "n/a" : "overrange");
        else
            put_fixed(o, f->hundredths, f->decimals);
        put_mem(o, "\"", 1);
        return;
    }
    put_fixed(o, f->hundredths, f->decimals);
}

/* The record as the seed's json.dumps would write it, bent by kind. */
static void put_object(struct out *o, const struct fields *f, enum tel_kind kind)
{
    if (kind == TEL_EMPTY_OBJECT) {
        put_str(o, "{}");
        return;
    }
    put_str(o, "{\"timestamp\": ");
    if (kind == TEL_TIMESTAMP_STRING) {
        put_mem(o, "\"", 1);
        put_i64(o, f->timestamp);
        put_mem(o, "\"", 1);
    } else {
        put_i64(o, f->timestamp);
    }
    if (kind != TEL_NO_SENSOR_ID) {
        put_str(o, ", \"sensor_id\": ");
        put_u64(o, f->sensor_id);
        if (kind == TEL_SENSOR_ID_FLOAT)
            put_str(o, ".5");
    }
    if (kind == TEL_NO_MEASUREMENT) {
        put_mem(o, "}", 1);
        return;
    }
    put_str(o, ", \"measurement\": {\"kind\": ");
    put_str(o, kind == TEL_KIND_WRONG ? "\"Humidity\"" : "\"Temperature\"");
    put_str(o, ", \"value\": ");
    put_value(o, f, kind);
    put_str(o, ", \"unit\": ");
    if (kind == TEL_UNIT_KELVIN)
        put_str(o, "\"Kelvin\"");
    else
        put_str(o, f->fahrenheit ? "\"Fahrenheit\"" : "\"Celcius\"");
    put_str(o, kind == TEL_TRAILING_COMMA ? ",}}" : "}}");
    if (kind == TEL_EXTRA_BRACE)
        put_mem(o, "}", 1);
}

/* Not JSON for any parser: it starts with a letter that begins no JSON
 * literal, then printable ASCII (no newline). */
static void put_garbage(struct out *o, uint64_t *rng, const struct fields *f)
{
    static const char *const heads[] = {
        "ERROR sensor ", "WARN reading ", "<reading id=", "sensor=",
    };
    size_t n;

    put_str(o, heads[rng_below(rng, 4)]);
    put_u64(o, f->sensor_id);
    put_mem(o, " ", 1);
    n = 20 + (size_t)rng_below(rng, 60);
    for (size_t k = 0; k < n; k++) {
        char c = (char)(0x20 + rng_below(rng, 0x7f - 0x20));
        put_mem(o, &c, 1);
    }
}

void tel_gen_record(const struct tel_gen *g, uint64_t i, struct tel_record *r)
{
    const struct tel_config *c = &g->cfg;
    uint64_t rng = c->seed * UINT64_C(0xd1342543de82ef95) + i;
    struct fields f;
    enum tel_kind kind = TEL_VALID;
    uint64_t span = (uint64_t)c->hours * 3600;
    uint64_t n = c->records ? c->records : 1;
    struct out o = {r->line, 0};

    rng = mix64(rng ^ UINT64_C(0x2545f4914f6cdd1d));
    if ((rng_next(&rng) >> 11) < g->invalid_below)
        kind = (enum tel_kind)(1 + rng_below(&rng, TEL_INVALID_KINDS));

    /* i * span fits (tel_gen_init bounds records * span) for i < records.
     * Past the end the time line goes on, but the hour is clamped. */
    f.timestamp = c->t0 + (int64_t)(i * span / n);
    f.sensor_id = 10001 + rng_below(&rng, TEL_SENSORS);
    f.fahrenheit = (int)(rng_next(&rng) & 1);
    /* Celcius -20.00 .. 45.00, Fahrenheit -4.00 .. 113.00. */
    if (f.fahrenheit)
        f.hundredths = -400 + (int64_t)rng_below(&rng, 11701);
    else
        f.hundredths = -2000 + (int64_t)rng_below(&rng, 6501);
    /* Mostly two decimals, many one, a few integers (which a strict float
     * field must still accept). */
    uint64_t d = rng_below(&rng, 100);
    f.decimals = d < 4 ? 0 : d < 40 ? 1 : 2;
    f.value_is_string = kind == TEL_VALID &&
                        (rng_next(&rng) >> 11) < g->str_below;
    f.bad_utf8 = (unsigned)rng_below(&rng, BAD_UTF8_SEQS);

    r->index = i;
    r->kind = kind;
    r->timestamp = f.timestamp;
    r->hour = (unsigned)((uint64_t)(f.timestamp - c->t0) / 3600);
    if (r->hour >= c->hours)
        r->hour = c->hours - 1;

    if (kind == TEL_GARBAGE) {
        put_garbage(&o, &rng, &f);
    } else if (kind == TEL_TRUNCATED) {
        put_object(&o, &f, TEL_VALID);
        /* Any proper, non-empty prefix of an object is not JSON. */
        o.len = 1 + (size_t)rng_below(&rng, o.len - 1);
    } else {
        put_object(&o, &f, kind);
    }
    r->len = o.len;
}

uint64_t tel_hash64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t k = 0; k < n; k++) {
        h ^= b[k];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

uint64_t tel_hash64(const void *p, size_t n)
{
    return tel_hash64_update(TEL_HASH64_INIT, p, n);
}

int tel_manifest_init(struct tel_manifest *m, const struct tel_config *cfg)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->hours = calloc(cfg->hours ? cfg->hours : 1, sizeof *m->hours);
    return m->hours ? 0 : -1;
}

void tel_manifest_add(struct tel_manifest *m, const struct tel_record *r)
{
    uint64_t h = tel_hash64(r->line, r->len);

    m->records++;
    m->bytes += r->len + 1;
    m->checksum_all += h;
    m->by_kind[r->kind]++;
    if (r->kind != TEL_VALID) {
        m->invalid++;
        return;
    }
    m->valid++;
    assert(r->hour < m->cfg.hours);
    m->hours[r->hour].valid++;
    m->hours[r->hour].bytes += r->len + 1;
    m->hours[r->hour].checksum += h;
}

int tel_manifest_write(const struct tel_manifest *m, FILE *f)
{
    const struct tel_config *c = &m->cfg;

    fprintf(f, "{\n  \"records\": %llu,\n  \"valid\": %llu,\n"
               "  \"invalid\": %llu,\n  \"bytes\": %llu,\n"
               "  \"checksum_all\": \"%016llx\",\n",
            (unsigned long long)m->records, (unsigned long long)m->valid,
            (unsigned long long)m->invalid, (unsigned long long)m->bytes,
            (unsigned long long)m->checksum_all);
    fprintf(f, "  \"config\": {\"records\": %llu, \"invalid_frac\": %.17g, "
               "\"str_values\": %.17g, \"hours\": %u, \"seed\": %llu, "
               "\"t0\": %lld},\n",
            (unsigned long long)c->records, c->invalid_frac, c->str_values,
            c->hours, (unsigned long long)c->seed, (long long)c->t0);
    fprintf(f, "  \"checksum\": \"sum mod 2^64 of 64-bit FNV-1a over each "
               "line without its newline\",\n");
    fprintf(f, "  \"by_kind\": {");
    for (int k = 0; k < TEL_KIND_COUNT; k++)
        fprintf(f, "%s\"%s\": %llu", k ? ", " : "", kind_names[k],
                (unsigned long long)m->by_kind[k]);
    fprintf(f, "},\n  \"hours\": [\n");
    for (unsigned h = 0; h < c->hours; h++)
        fprintf(f, "    {\"hour\": %u, \"start\": %lld, \"valid\": %llu, "
                   "\"bytes\": %llu, \"checksum\": \"%016llx\"}%s\n",
                h, (long long)(c->t0 + (int64_t)h * 3600),
                (unsigned long long)m->hours[h].valid,
                (unsigned long long)m->hours[h].bytes,
                (unsigned long long)m->hours[h].checksum,
                h + 1 < c->hours ? "," : "");
    fprintf(f, "  ]\n}\n");
    return ferror(f) ? -1 : 0;
}

int tel_manifest_save(const struct tel_manifest *m, const char *path)
{
    char tmp[4096];
    FILE *f;
    int rc;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return -1;
    f = fopen(tmp, "w");
    if (!f)
        return -1;
    rc = tel_manifest_write(m, f);
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0)
        remove(tmp);
    return rc;
}

void tel_manifest_release(struct tel_manifest *m)
{
    free(m->hours);
    m->hours = NULL;
}

int tel_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int tel_parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    if (!s || !*s || *s == ' ')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

double tel_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
