/*
 * protobuf.c - descriptor sets, binary messages to JSON, and the JSON
 * Schema of the result; see protobuf.h and docs/kafka.md.
 *
 * One wire-format reader (next_field) serves both the descriptor set
 * (itself a Protobuf message of descriptor.proto) and the payloads.
 *
 * Decoding a message is two steps, because the wire gives fields in any
 * order, may split a repeated field, repeat a singular one, and JSON wants
 * each member once:
 *
 *   1. collect: read every field of the message's bytes into `occ`
 *      entries (field index, order seen, where its value is), checking the
 *      wire format; unknown fields are skipped here;
 *   2. sort the entries by (field index, order seen) and write the fields
 *      in declaration order, each from its run of entries.
 *
 * A singular sub-message is decoded from ALL its entries as one message
 * (the spec's merge), so the entries of step 1 are also the "ranges" a
 * message is read from. Entries live in one array per decoder used as a
 * stack: a sub-message's entries go above its parent's and are dropped
 * when it is done, so memory is bounded by the fields on the wire.
 *
 * Descriptor field numbers used below are those of
 * google/protobuf/descriptor.proto (stable since proto2).
 */
#include "schema/protobuf.h"
#include "core/limits.h"
#include "core/wtime.h"
#include "schema/json.h"
#include "schema/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* FieldDescriptorProto.Type */
enum {
    T_DOUBLE = 1, T_FLOAT, T_INT64, T_UINT64, T_INT32, T_FIXED64, T_FIXED32,
    T_BOOL, T_STRING, T_GROUP, T_MESSAGE, T_BYTES, T_UINT32, T_ENUM,
    T_SFIXED32, T_SFIXED64, T_SINT32, T_SINT64,
};
enum { L_OPTIONAL = 1, L_REQUIRED = 2, L_REPEATED = 3 };
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* Well-known types decoded specially. */
enum wkt {
    WKT_NONE = 0, WKT_TIMESTAMP, WKT_DURATION, WKT_DOUBLE, WKT_FLOAT,
    WKT_INT64, WKT_UINT64, WKT_INT32, WKT_UINT32, WKT_BOOL, WKT_STRING,
    WKT_BYTES,
};

/* Deepest nesting of message types inside message types in a descriptor
 * (DescriptorProto.nested_type); real files nest a few levels. */
#define MAX_DESC_NESTING 64

struct pb_enum_value {
    char *name;
    char *quoted;           /* "\"NAME\"", written as is */
    size_t quoted_len;
    int32_t number;
};

struct pb_enum {
    char *full;
    struct pb_enum_value *values;   /* declaration order */
    size_t nvalues;
};

struct pb_msg;

struct pb_field {
    char *name;
    char *key;              /* "\"name\":", written as is */
    size_t key_len;
    char *json_name;
    char *type_name;        /* as in the descriptor (".pkg.Type"), or NULL */
    int32_t number;
    int label, type;
    int32_t oneof;          /* index into the message's oneofs, or -1 */
    int proto3_optional;
    int packed;             /* [packed = ...]: -1 unset; decoding takes both */
    int presence;           /* absent on the wire: absent in the JSON */
    struct pb_msg *msg;     /* T_MESSAGE, resolved */
    struct pb_enum *en;     /* T_ENUM, resolved */
};

struct pb_msg {
    char *full;
    struct pb_field *fields;    /* declaration order */
    size_t nfields, capfields;
    uint32_t *by_number;        /* field indexes sorted by number */
    size_t noneofs;
    int map_entry;
    int proto3;
    enum wkt wkt;
    int resolved;
};

struct protobuf {
    struct pb_msg **msgs;
    size_t nmsgs, capmsgs;
    struct pb_enum **enums;
    size_t nenums, capenums;
    struct pb_msg *root;
    uint32_t max_depth;
    size_t max_oneofs;
};

/* ---- the wire --------------------------------------------------------- */

struct wf {
    uint32_t num;
    int wt;
    uint64_t v;        /* VARINT, I64, I32: the value */
    size_t off, len;   /* LEN: the bytes; others: where the value is */
    size_t at;         /* offset of the tag */
};

static int get_varint(const uint8_t *b, size_t end, size_t *pos, uint64_t *v)
{
    uint64_t x = 0;
    size_t p = *pos;
    for (int i = 0; i < 10; i++) {
        if (p >= end)
            return -1;
        uint8_t c = b[p++];
        if (i == 9 && c > 1)
            return -2;
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *pos = p;
            *v = x;
            return 0;
        }
    }
    return -2;
}

/*
 * Read the field at *pos in b[..end). 0 and *pos past it, or -1 with *why
 * and *where (the offset of the problem).
 */
static int next_field(const uint8_t *b, size_t end, size_t *pos, struct wf *f,
                      const char **why, size_t *where)
{
    uint64_t tag, n;
    size_t p = *pos;
    f->at = p;
    *where = p;
    int r = get_varint(b, end, &p, &tag);
    if (r) {
        *why = r == -1 ? "truncated tag" : "tag varint longer than 10 bytes";
        return -1;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if (tag >> 3 == 0 || tag >> 3 > 536870911u) {
        *why = "field number 0 or past 2^29-1 (not a Protobuf message?)";
        return -1;
    }
    *where = p;
    f->off = p;
    switch (f->wt) {
    case WT_VARINT:
        r = get_varint(b, end, &p, &f->v);
        if (r) {
            *why = r == -1 ? "truncated varint" : "varint longer than 10 bytes";
            return -1;
        }
        f->len = p - f->off;
        break;
    case WT_I64:
        if (end - p < 8) {
            *why = "truncated 64-bit value";
            return -1;
        }
        f->v = 0;
        for (int i = 7; i >= 0; i--)
            f->v = f->v << 8 | b[p + (size_t)i];
        f->len = 8;
        p += 8;
        break;
    case WT_I32:
        if (end - p < 4) {
            *why = "truncated 32-bit value";
            return -1;
        }
        f->v = (uint64_t)b[p] | (uint64_t)b[p + 1] << 8 | (uint64_t)b[p + 2] << 16 |
               (uint64_t)b[p + 3] << 24;
        f->len = 4;
        p += 4;
        break;
    case WT_LEN:
        r = get_varint(b, end, &p, &n);
        if (r) {
            *why = r == -1 ? "truncated length" : "length varint longer than 10 bytes";
            return -1;
        }
        if (n > end - p) {
            *why = "length past the end of the message";
            return -1;
        }
        f->off = p;
        f->len = (size_t)n;
        p += (size_t)n;
        break;
    case WT_SGROUP:
    case WT_EGROUP:
        *where = f->at;
        *why = "groups (wire types 3 and 4) are not supported";
        return -1;
    default:
        *where = f->at;
        *why = "invalid wire type 6 or 7 (not a Protobuf message?)";
        return -1;
    }
    *pos = p;
    return 0;
}

/* ---- loading the descriptor set --------------------------------------- */

struct loader {
    struct protobuf *pb;
    const uint8_t *b;
    const char *what;
    struct weir_errmsg *e;
};

static int bad_set(struct loader *L, size_t at, const char *why)
{
    return errmsg_set(L->e, WEIR_EPARSE,
                      "%s: not a Protobuf descriptor set (at byte %zu: %s); make it "
                      "with protoc --descriptor_set_out=FILE --include_imports",
                      L->what, at, why);
}

static int each_field(struct loader *L, size_t off, size_t len, struct wf *f,
                      size_t *pos)
{
    const char *why;
    size_t where;
    if (*pos >= off + len)
        return 1;
    if (next_field(L->b, off + len, pos, f, &why, &where))
        return bad_set(L, where, why);
    return 0;
}

static int ident_ok(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static char *dup_n(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* A string field's value: a new C string, or NULL with e set. */
static char *str_of(struct loader *L, const struct wf *f)
{
    if (f->wt != WT_LEN) {
        bad_set(L, f->at, "a string field with the wrong wire type");
        return NULL;
    }
    if (memchr(L->b + f->off, 0, f->len) || !json_utf8_valid((const char *)L->b + f->off, f->len)) {
        bad_set(L, f->off, "a name that is not UTF-8 text");
        return NULL;
    }
    char *s = dup_n(L->b + f->off, f->len);
    if (!s)
        errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
    return s;
}

static int set_str(struct loader *L, const struct wf *f, char **dst)
{
    char *s = str_of(L, f);
    if (!s)
        return L->e->code ? L->e->code : WEIR_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

static char *join_name(const char *scope, const char *name)
{
    size_t a = strlen(scope), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, scope, a);
    size_t o = a;
    if (a)
        s[o++] = '.';
    memcpy(s + o, name, b + 1);
    return s;
}

/* "\"" s "\"" suffix, for names that need no escaping (identifiers). */
static char *quote(const char *s, const char *suffix, size_t *len)
{
    size_t a = strlen(s), b = strlen(suffix);
    char *q = malloc(a + b + 3);
    if (!q)
        return NULL;
    q[0] = '"';
    memcpy(q + 1, s, a);
    q[a + 1] = '"';
    memcpy(q + a + 2, suffix, b + 1);
    *len = a + b + 2;
    return q;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    void *p = realloc(*v, c * size);
    if (!p)
        return WEIR_ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

static void enum_free(struct pb_enum *en)
{
    if (!en)
        return;
    for (size_t i = 0; i < en->nvalues; i++) {
        free(en->values[i].name);
        free(en->values[i].quoted);
    }
    free(en->values);
    free(en->full);
    free(en);
}

static void field_release(struct pb_field *f)
{
    free(f->name);
    free(f->key);
    free(f->json_name);
    free(f->type_name);
}

static void msg_free(struct pb_msg *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfields; i++)
        field_release(&m->fields[i]);
    free(m->fields);
    free(m->by_number);
    free(m->full);
    free(m);
}

static int parse_enum(struct loader *L, size_t off, size_t len, const char *scope)
{
    struct wf f, g;
    size_t pos = off, cap = 0;
    int rc;
    struct pb_enum *en = calloc(1, sizeof *en);
    char *name = NULL;
    if (!en)
        return errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
    while ((rc = each_field(L, off, len, &f, &pos)) == 0) {
        if (f.num == 1) {
            if ((rc = set_str(L, &f, &name)))
                goto fail;
        } else if (f.num == 2 && f.wt == WT_LEN) {
            struct pb_enum_value v = {NULL, NULL, 0, 0};
            size_t p2 = f.off;
            while ((rc = each_field(L, f.off, f.len, &g, &p2)) == 0) {
                if (g.num == 1 && (rc = set_str(L, &g, &v.name)))
                    break;
                if (g.num == 2 && g.wt == WT_VARINT)
                    v.number = (int32_t)(uint32_t)g.v;
            }
            if (rc >= 0 && v.name && ident_ok(v.name) &&
                !(v.quoted = quote(v.name, "", &v.quoted_len)))
                rc = errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
            if (rc < 0 || !v.name || !ident_ok(v.name) ||
                grow((void **)&en->values, &cap, en->nvalues, sizeof *en->values)) {
                free(v.name);
                free(v.quoted);
                if (rc >= 0)
                    rc = bad_set(L, f.off, "an enum value without a valid name");
                goto fail;
            }
            en->values[en->nvalues++] = v;
        }
    }
    if (rc < 0)
        goto fail;
    if (!name || !ident_ok(name)) {
        rc = bad_set(L, off, "an enum without a valid name");
        goto fail;
    }
    if (!(en->full = join_name(scope, name)) ||
        grow((void **)&L->pb->enums, &L->pb->capenums, L->pb->nenums, sizeof *L->pb->enums)) {
        rc = errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    L->pb->enums[L->pb->nenums++] = en;
    free(name);
    return 0;
fail:
    free(name);
    enum_free(en);
    return rc;
}

static int parse_field(struct loader *L, size_t off, size_t len, struct pb_field *fd)
{
    struct wf f, g;
    size_t pos = off;
    int rc;
    memset(fd, 0, sizeof *fd);
    fd->oneof = -1;
    fd->packed = -1;
    while ((rc = each_field(L, off, len, &f, &pos)) == 0) {
        switch (f.num) {
        case 1: rc = set_str(L, &f, &fd->name); break;
        case 3: if (f.wt == WT_VARINT) fd->number = (int32_t)(uint32_t)f.v; break;
        case 4: if (f.wt == WT_VARINT) fd->label = (int)(f.v & 0xff); break;
        case 5: if (f.wt == WT_VARINT) fd->type = (int)(f.v & 0xff); break;
        case 6: rc = set_str(L, &f, &fd->type_name); break;
        case 9: if (f.wt == WT_VARINT) fd->oneof = (int32_t)(uint32_t)f.v; break;
        case 10: rc = set_str(L, &f, &fd->json_name); break;
        case 17: if (f.wt == WT_VARINT) fd->proto3_optional = f.v != 0; break;
        case 8: /* FieldOptions */
            if (f.wt != WT_LEN)
                break;
            for (size_t p2 = f.off; (rc = each_field(L, f.off, f.len, &g, &p2)) == 0;)
                if (g.num == 2 && g.wt == WT_VARINT)
                    fd->packed = g.v != 0;
            if (rc > 0)
                rc = 0;
            break;
        default: break;
        }
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (!fd->name || !ident_ok(fd->name))
        return bad_set(L, off, "a field without a valid name");
    if (!(fd->key = quote(fd->name, ":", &fd->key_len)))
        return errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
    if (fd->number < 1 || fd->number > 536870911 || fd->label < 1 || fd->label > 3 ||
        fd->type < 1 || fd->type > 18)
        return bad_set(L, off, "a field with an invalid number, label or type");
    if ((fd->type == T_MESSAGE || fd->type == T_ENUM || fd->type == T_GROUP) &&
        !fd->type_name)
        return bad_set(L, off, "a message or enum field without type_name");
    return 0;
}

static int by_number_cmp_ctx(const struct pb_msg *m, uint32_t a, uint32_t b)
{
    int32_t x = m->fields[a].number, y = m->fields[b].number;
    return x < y ? -1 : x > y;
}

/* Insertion sort: a message has few fields, and qsort has no context. */
static void sort_by_number(struct pb_msg *m)
{
    for (size_t i = 1; i < m->nfields; i++) {
        uint32_t v = m->by_number[i];
        size_t j = i;
        while (j > 0 && by_number_cmp_ctx(m, m->by_number[j - 1], v) > 0) {
            m->by_number[j] = m->by_number[j - 1];
            j--;
        }
        m->by_number[j] = v;
    }
}

static int parse_msg(struct loader *L, size_t off, size_t len, const char *scope,
                     int proto3, int depth)
{
    struct wf f, g;
    size_t pos = off;
    int rc;
    char *name = NULL;
    if (depth > MAX_DESC_NESTING)
        return bad_set(L, off, "message types nested too deeply");
    struct pb_msg *m = calloc(1, sizeof *m);
    if (!m)
        return errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
    m->proto3 = proto3;
    /* The name first: nested types are named after it. */
    while ((rc = each_field(L, off, len, &f, &pos)) == 0)
        if (f.num == 1 && (rc = set_str(L, &f, &name)))
            goto fail;
    if (rc < 0)
        goto fail;
    if (!name || !ident_ok(name)) {
        rc = bad_set(L, off, "a message type without a valid name");
        goto fail;
    }
    if (!(m->full = join_name(scope, name))) {
        rc = errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    for (pos = off; (rc = each_field(L, off, len, &f, &pos)) == 0;) {
        if (f.wt != WT_LEN)
            continue;
        switch (f.num) {
        case 2:
            if (grow((void **)&m->fields, &m->capfields, m->nfields, sizeof *m->fields)) {
                rc = errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
                goto fail;
            }
            rc = parse_field(L, f.off, f.len, &m->fields[m->nfields]);
            m->nfields++; /* released with the message even when half made */
            break;
        case 3: rc = parse_msg(L, f.off, f.len, m->full, proto3, depth + 1); break;
        case 4: rc = parse_enum(L, f.off, f.len, m->full); break;
        case 7: /* MessageOptions */
            for (size_t p2 = f.off; (rc = each_field(L, f.off, f.len, &g, &p2)) == 0;)
                if (g.num == 7 && g.wt == WT_VARINT)
                    m->map_entry = g.v != 0;
            if (rc > 0)
                rc = 0;
            break;
        case 8: m->noneofs++; break;
        default: break;
        }
        if (rc < 0)
            goto fail;
    }
    if (rc < 0)
        goto fail;
    if (m->nfields && !(m->by_number = malloc(m->nfields * sizeof *m->by_number))) {
        rc = errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < m->nfields; i++) {
        struct pb_field *fd = &m->fields[i];
        m->by_number[i] = (uint32_t)i;
        if (fd->oneof >= (int32_t)m->noneofs || fd->oneof < -1) {
            rc = bad_set(L, off, "a field with an invalid oneof_index");
            goto fail;
        }
        /* A proto3 `optional` is a oneof of one (synthetic); it is
         * presence, not a choice. */
        if (fd->proto3_optional)
            fd->oneof = -1;
        fd->presence = fd->label != L_REPEATED &&
                       (!proto3 || fd->proto3_optional || fd->oneof >= 0 ||
                        fd->type == T_MESSAGE || fd->type == T_GROUP);
    }
    sort_by_number(m);
    for (size_t i = 1; i < m->nfields; i++)
        if (m->fields[m->by_number[i]].number == m->fields[m->by_number[i - 1]].number) {
            rc = bad_set(L, off, "two fields with the same number");
            goto fail;
        }
    if (m->noneofs > L->pb->max_oneofs)
        L->pb->max_oneofs = m->noneofs;
    if (grow((void **)&L->pb->msgs, &L->pb->capmsgs, L->pb->nmsgs, sizeof *L->pb->msgs)) {
        rc = errmsg_set(L->e, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    L->pb->msgs[L->pb->nmsgs++] = m;
    free(name);
    return 0;
fail:
    free(name);
    msg_free(m);
    return rc;
}

static int parse_file(struct loader *L, size_t off, size_t len)
{
    struct wf f;
    size_t pos = off;
    int rc, proto3 = 0;
    char *package = NULL, *syntax = NULL;
    /* package (2) and syntax (12) first: types are named and read by them,
     * and protoc writes syntax after the types. */
    while ((rc = each_field(L, off, len, &f, &pos)) == 0) {
        if (f.num == 2 && (rc = set_str(L, &f, &package)))
            break;
        if (f.num == 12 && (rc = set_str(L, &f, &syntax)))
            break;
        if (f.num == 14 && f.wt == WT_VARINT) {
            rc = errmsg_set(L->e, WEIR_EUNSUPPORTED, "%s: Protobuf editions are not "
                            "supported (use syntax proto2 or proto3)", L->what);
            break;
        }
    }
    if (rc > 0) {
        proto3 = syntax && strcmp(syntax, "proto3") == 0;
        if (syntax && *syntax && !proto3 && strcmp(syntax, "proto2") != 0)
            rc = errmsg_set(L->e, WEIR_EUNSUPPORTED, "%s: syntax \"%s\" is not supported "
                            "(proto2 or proto3)", L->what, syntax);
    }
    for (pos = off; rc > 0 && (rc = each_field(L, off, len, &f, &pos)) == 0; rc = 1) {
        if (f.wt == WT_LEN && f.num == 4)
            rc = parse_msg(L, f.off, f.len, package ? package : "", proto3, 1);
        else if (f.wt == WT_LEN && f.num == 5)
            rc = parse_enum(L, f.off, f.len, package ? package : "");
        if (rc < 0)
            break;
    }
    free(package);
    free(syntax);
    return rc < 0 ? rc : 0;
}

static int cmp_msg(const void *a, const void *b)
{
    return strcmp((*(struct pb_msg *const *)a)->full, (*(struct pb_msg *const *)b)->full);
}

static int cmp_enum(const void *a, const void *b)
{
    return strcmp((*(struct pb_enum *const *)a)->full, (*(struct pb_enum *const *)b)->full);
}

static struct pb_msg *find_msg(const struct protobuf *pb, const char *name)
{
    if (*name == '.')
        name++;
    size_t lo = 0, hi = pb->nmsgs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(pb->msgs[mid]->full, name);
        if (c == 0)
            return pb->msgs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static struct pb_enum *find_enum(const struct protobuf *pb, const char *name)
{
    if (*name == '.')
        name++;
    size_t lo = 0, hi = pb->nenums;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(pb->enums[mid]->full, name);
        if (c == 0)
            return pb->enums[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static enum wkt wkt_of(const char *full)
{
    static const struct { const char *name; enum wkt w; } tab[] = {
        {"google.protobuf.Timestamp", WKT_TIMESTAMP},
        {"google.protobuf.Duration", WKT_DURATION},
        {"google.protobuf.DoubleValue", WKT_DOUBLE},
        {"google.protobuf.FloatValue", WKT_FLOAT},
        {"google.protobuf.Int64Value", WKT_INT64},
        {"google.protobuf.UInt64Value", WKT_UINT64},
        {"google.protobuf.Int32Value", WKT_INT32},
        {"google.protobuf.UInt32Value", WKT_UINT32},
        {"google.protobuf.BoolValue", WKT_BOOL},
        {"google.protobuf.StringValue", WKT_STRING},
        {"google.protobuf.BytesValue", WKT_BYTES},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(full, tab[i].name) == 0)
            return tab[i].w;
    return WKT_NONE;
}

static const struct pb_field *field_by_number(const struct pb_msg *m, uint32_t num)
{
    size_t lo = 0, hi = m->nfields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct pb_field *f = &m->fields[m->by_number[mid]];
        if ((uint32_t)f->number == num)
            return f;
        if ((uint32_t)f->number < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Resolve the types m uses, and theirs; refuse what is not supported. */
static int resolve(struct protobuf *pb, struct pb_msg *m, const char *what,
                   struct weir_errmsg *e, int depth)
{
    if (m->resolved)
        return 0;
    m->resolved = 1;
    if (depth > MAX_DESC_NESTING * 4)
        return errmsg_set(e, WEIR_EUNSUPPORTED, "%s: message types nest more than %d "
                          "levels deep", what, MAX_DESC_NESTING * 4);
    m->wkt = wkt_of(m->full);
    for (size_t i = 0; i < m->nfields; i++) {
        struct pb_field *f = &m->fields[i];
        if (f->type == T_GROUP)
            return errmsg_set(e, WEIR_EUNSUPPORTED, "%s: %s.%s is a group (proto2), "
                              "which weir does not support; make it a message field",
                              what, m->full, f->name);
        if (f->type == T_ENUM) {
            if (!(f->en = find_enum(pb, f->type_name)))
                return errmsg_set(e, WEIR_ENOTFOUND, "%s: %s.%s has type %s, which the "
                                  "descriptor set does not hold (make it with protoc "
                                  "--include_imports)", what, m->full, f->name,
                                  f->type_name);
            if (f->en->nvalues == 0)
                return errmsg_set(e, WEIR_EUNSUPPORTED, "%s: enum %s has no values",
                                  what, f->en->full);
        } else if (f->type == T_MESSAGE) {
            if (!(f->msg = find_msg(pb, f->type_name)))
                return errmsg_set(e, WEIR_ENOTFOUND, "%s: %s.%s has type %s, which the "
                                  "descriptor set does not hold (make it with protoc "
                                  "--include_imports)", what, m->full, f->name,
                                  f->type_name);
            int rc = resolve(pb, f->msg, what, e, depth + 1);
            if (rc)
                return rc;
            if (f->msg->map_entry) {
                const struct pb_field *k = field_by_number(f->msg, 1);
                const struct pb_field *v = field_by_number(f->msg, 2);
                if (f->label != L_REPEATED || !k || !v || k->label == L_REPEATED ||
                    v->label == L_REPEATED || k->type == T_MESSAGE || k->type == T_ENUM ||
                    k->type == T_BYTES || k->type == T_FLOAT || k->type == T_DOUBLE)
                    return errmsg_set(e, WEIR_EUNSUPPORTED, "%s: %s.%s: a map entry "
                                      "type weir cannot read (%s)", what, m->full,
                                      f->name, f->msg->full);
            }
        }
    }
    return 0;
}

void protobuf_free(struct protobuf *pb)
{
    if (!pb)
        return;
    for (size_t i = 0; i < pb->nmsgs; i++)
        msg_free(pb->msgs[i]);
    for (size_t i = 0; i < pb->nenums; i++)
        enum_free(pb->enums[i]);
    free(pb->msgs);
    free(pb->enums);
    free(pb);
}

const char *protobuf_message_name(const struct protobuf *pb)
{
    return pb->root->full;
}

static int not_found(const struct protobuf *pb, const char *what, const char *message,
                     struct weir_errmsg *e)
{
    char list[640];
    size_t o = 0, shown = 0;
    list[0] = '\0';
    for (size_t i = 0; i < pb->nmsgs; i++) {
        if (pb->msgs[i]->map_entry)
            continue;
        size_t n = strlen(pb->msgs[i]->full);
        if (o + n + 3 >= sizeof list - 32) {
            snprintf(list + o, sizeof list - o, ", and %zu more", pb->nmsgs - i);
            break;
        }
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", shown++ ? ", " : "",
                              pb->msgs[i]->full);
    }
    return errmsg_set(e, WEIR_ENOTFOUND, "%s: no message type \"%s\" in the descriptor "
                      "set; it has: %s", what, message, shown ? list : "(none)");
}

int protobuf_load_mem(const void *data, size_t len, const char *what,
                      const char *message, uint32_t max_depth,
                      struct protobuf **out, struct weir_errmsg *e)
{
    struct weir_errmsg tmp = {0};
    if (!e)
        e = &tmp;
    *out = NULL;
    struct protobuf *pb = calloc(1, sizeof *pb);
    if (!pb)
        return errmsg_set(e, WEIR_ENOMEM, "out of memory");
    pb->max_depth = max_depth ? max_depth : WEIR_DEFAULT_MAX_DEPTH;
    struct loader L = {pb, data, what, e};
    struct wf f;
    size_t pos = 0, files = 0;
    int rc;
    e->code = 0;
    while ((rc = each_field(&L, 0, len, &f, &pos)) == 0) {
        if (f.num != 1 || f.wt != WT_LEN) {
            rc = bad_set(&L, f.at, "a field that a FileDescriptorSet does not have");
            goto fail;
        }
        if ((rc = parse_file(&L, f.off, f.len)) != 0)
            goto fail;
        files++;
    }
    if (rc < 0)
        goto fail;
    if (files == 0) {
        rc = bad_set(&L, 0, "it holds no file");
        goto fail;
    }
    if (pb->nmsgs)
        qsort(pb->msgs, pb->nmsgs, sizeof *pb->msgs, cmp_msg);
    if (pb->nenums)
        qsort(pb->enums, pb->nenums, sizeof *pb->enums, cmp_enum);
    for (size_t i = 1; i < pb->nmsgs; i++)
        if (strcmp(pb->msgs[i]->full, pb->msgs[i - 1]->full) == 0) {
            rc = errmsg_set(e, WEIR_EPARSE, "%s: message type %s is defined twice",
                            what, pb->msgs[i]->full);
            goto fail;
        }
    if (!message || !*message) {
        rc = errmsg_set(e, WEIR_EINVAL, "%s: no message type given", what);
        goto fail;
    }
    if (!(pb->root = find_msg(pb, message))) {
        rc = not_found(pb, what, message, e);
        goto fail;
    }
    if ((rc = resolve(pb, pb->root, what, e, 0)) != 0)
        goto fail;
    if (pb->root->wkt != WKT_NONE || pb->root->map_entry) {
        rc = errmsg_set(e, WEIR_EUNSUPPORTED, "%s: %s cannot be a record (a record is "
                        "an object; use a message type that holds it)", what,
                        pb->root->full);
        goto fail;
    }
    *out = pb;
    return 0;
fail:
    protobuf_free(pb);
    return rc ? rc : WEIR_EPARSE;
}

int protobuf_load(const char *path, const char *message, uint32_t max_depth,
                  struct protobuf **out, struct weir_errmsg *e)
{
    struct stat st;
    uint8_t *data = NULL;
    size_t got = 0;
    int rc;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errmsg_set(e, weir_from_errno(errno), "descriptor set %s: %s", path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = errmsg_set(e, WEIR_EINVAL, "descriptor set %s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > PROTOBUF_MAX_SET_BYTES) {
        rc = errmsg_set(e, WEIR_ELIMIT, "descriptor set %s: larger than %u MiB", path,
                        PROTOBUF_MAX_SET_BYTES >> 20);
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        rc = errmsg_set(e, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = errmsg_set(e, WEIR_EIO, "descriptor set %s: %s", path,
                            n < 0 ? strerror(errno) : "shorter than its size");
            goto out;
        }
        got += (size_t)n;
    }
    char what[1100];
    snprintf(what, sizeof what, "descriptor set %s", path);
    rc = protobuf_load_mem(data, got, what, message, max_depth, out, e);
out:
    free(data);
    close(fd);
    return rc;
}

/* ---- JSON Schema ------------------------------------------------------ */

/* The message types being written, outermost first: a type that is on it
 * already is a tree, written as any object there. A stack, not a flag in
 * the type, so that pb stays read-only (several threads may derive). */
#define SCHEMA_MAX_NESTING (MAX_DESC_NESTING * 4)
struct spath {
    const struct pb_msg *m[SCHEMA_MAX_NESTING];
    int n;
};

static int schema_of_msg(const struct pb_msg *m, struct buf *b, struct spath *path);

static int schema_of_scalar(const struct pb_field *f, int type, struct buf *b,
                            struct spath *path)
{
    switch (type) {
    case T_DOUBLE:
    case T_FLOAT:
        return buf_puts(b, "{\"type\":[\"number\",\"null\"]}");
    case T_INT32: case T_SINT32: case T_SFIXED32:
        return buf_puts(b, "{\"type\":\"integer\",\"minimum\":-2147483648,"
                           "\"maximum\":2147483647}");
    case T_UINT32: case T_FIXED32:
        return buf_puts(b, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":4294967295}");
    case T_UINT64: case T_FIXED64:
        return buf_puts(b, "{\"type\":\"integer\",\"minimum\":0}");
    case T_INT64: case T_SINT64: case T_SFIXED64:
        return buf_puts(b, "{\"type\":\"integer\"}");
    case T_BOOL:
        return buf_puts(b, "{\"type\":\"boolean\"}");
    case T_STRING:
        return buf_puts(b, "{\"type\":\"string\"}");
    case T_BYTES:
        return buf_puts(b, "{\"type\":\"string\",\"contentEncoding\":\"base64\"}");
    case T_ENUM: {
        int rc = buf_puts(b, "{\"enum\":[");
        for (size_t i = 0; i < f->en->nvalues && !rc; i++) {
            /* Aliases (allow_alias) decode to the first name only. */
            int dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= f->en->values[j].number == f->en->values[i].number;
            if (dup)
                continue;
            if (i)
                rc = buf_putc(b, ',');
            if (!rc)
                rc = buf_appendf(b, "\"%s\"", f->en->values[i].name);
        }
        return rc ? rc : buf_puts(b, "]}");
    }
    case T_MESSAGE:
        return schema_of_msg(f->msg, b, path);
    default:
        return WEIR_EUNSUPPORTED;
    }
}

static int schema_of_wkt(enum wkt w, struct buf *b)
{
    switch (w) {
    case WKT_TIMESTAMP: return buf_puts(b, "{\"type\":\"string\",\"format\":\"date-time\"}");
    case WKT_DURATION: return buf_puts(b, "{\"type\":\"number\"}");
    case WKT_DOUBLE: case WKT_FLOAT: return buf_puts(b, "{\"type\":[\"number\",\"null\"]}");
    case WKT_INT64: return buf_puts(b, "{\"type\":\"integer\"}");
    case WKT_UINT64: return buf_puts(b, "{\"type\":\"integer\",\"minimum\":0}");
    case WKT_INT32: return buf_puts(b, "{\"type\":\"integer\",\"minimum\":-2147483648,"
                                       "\"maximum\":2147483647}");
    case WKT_UINT32: return buf_puts(b, "{\"type\":\"integer\",\"minimum\":0,"
                                        "\"maximum\":4294967295}");
    case WKT_BOOL: return buf_puts(b, "{\"type\":\"boolean\"}");
    case WKT_STRING: return buf_puts(b, "{\"type\":\"string\"}");
    case WKT_BYTES: return buf_puts(b, "{\"type\":\"string\",\"contentEncoding\":\"base64\"}");
    default: return WEIR_EINVAL;
    }
}

static int schema_of_msg(const struct pb_msg *m, struct buf *b, struct spath *path)
{
    if (m->wkt != WKT_NONE)
        return schema_of_wkt(m->wkt, b);
    int seen = path->n >= SCHEMA_MAX_NESTING;
    for (int i = 0; i < path->n && !seen; i++)
        seen = path->m[i] == m;
    if (seen)
        return buf_puts(b, "{\"type\":\"object\"}");
    path->m[path->n++] = m;
    int rc = buf_puts(b, "{\"type\":\"object\",\"additionalProperties\":false,"
                         "\"properties\":{");
    for (size_t i = 0; i < m->nfields && !rc; i++) {
        const struct pb_field *f = &m->fields[i];
        rc = buf_appendf(b, "%s\"%s\":", i ? "," : "", f->name);
        if (rc)
            break;
        if (f->type == T_MESSAGE && f->msg->map_entry) {
            rc = buf_puts(b, "{\"type\":\"object\",\"additionalProperties\":");
            if (!rc)
                rc = schema_of_scalar(field_by_number(f->msg, 2),
                                      field_by_number(f->msg, 2)->type, b, path);
            if (!rc)
                rc = buf_putc(b, '}');
        } else if (f->label == L_REPEATED) {
            rc = buf_puts(b, "{\"type\":\"array\",\"items\":");
            if (!rc)
                rc = schema_of_scalar(f, f->type, b, path);
            if (!rc)
                rc = buf_putc(b, '}');
        } else {
            rc = schema_of_scalar(f, f->type, b, path);
        }
    }
    if (!rc)
        rc = buf_puts(b, "},\"required\":[");
    int first = 1;
    for (size_t i = 0; i < m->nfields && !rc; i++) {
        if (m->fields[i].presence)
            continue;
        rc = buf_appendf(b, "%s\"%s\"", first ? "" : ",", m->fields[i].name);
        first = 0;
    }
    if (!rc)
        rc = buf_puts(b, "]}");
    path->n--;
    return rc;
}

int protobuf_json_schema(const struct protobuf *pb, struct buf *out)
{
    int rc = buf_puts(out, "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",");
    if (rc)
        return rc;
    size_t at = out->len;
    struct spath path;
    path.n = 0;
    rc = schema_of_msg(pb->root, out, &path);
    if (rc)
        return rc;
    /* Merge the root object into the outer braces: drop its '{'. */
    memmove(out->data + at, out->data + at + 1, out->len - at - 1);
    out->len--;
    out->data[out->len] = '\0';
    return 0;
}

struct schema *protobuf_schema(const struct protobuf *pb, const struct schema_opts *o,
                               struct weir_errmsg *e)
{
    struct buf b = BUF_INIT(WEIR_MAX_SCHEMA_BYTES);
    struct schema *s = NULL;
    int rc = protobuf_json_schema(pb, &b);
    if (rc)
        errmsg_set(e, rc, "message %s: cannot derive its JSON Schema: %s",
                   pb->root->full, weir_strerror(rc));
    else
        s = schema_compile(b.data, b.len, NULL, o, e);
    buf_release(&b);
    return s;
}

/* ---- decoding --------------------------------------------------------- */

/* One field seen on the wire (or a range a message is read from). */
struct occ {
    uint32_t fidx;      /* index in the message's fields */
    uint32_t seq;       /* order seen, for "last wins" */
    uint8_t wt;
    uint8_t skip;       /* a oneof member that a later member overrides */
    uint64_t v;
    size_t off, len;
    size_t at;          /* the tag, for messages */
};

/* Scratch entries kept between messages (48 bytes each): enough for
 * any ordinary message; more is freed after the message that needed it. */
#define SCRATCH_KEEP 65536

/* A map entry being gathered: its key text in d->keys, its entry bytes. */
struct ment {
    size_t key_off, key_len;
    uint32_t seq;
    size_t off, len;
};

struct protobuf_decoder {
    const struct protobuf *pb;
    const uint8_t *b;
    size_t len;
    struct buf *out;
    struct weir_errmsg *e;
    struct occ *occ;
    size_t nocc, capocc;
    struct ment *ment;
    size_t nment, capment;
    struct buf keys;
    uint64_t *win;      /* per oneof of the message being sorted: seq + 1 */
};

struct protobuf_decoder *protobuf_decoder_new(const struct protobuf *pb)
{
    struct protobuf_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->pb = pb;
    buf_init(&d->keys, (size_t)1 << 31);
    if (pb->max_oneofs && !(d->win = calloc(pb->max_oneofs, sizeof *d->win))) {
        free(d);
        return NULL;
    }
    return d;
}

void protobuf_decoder_free(struct protobuf_decoder *d)
{
    if (!d)
        return;
    free(d->occ);
    free(d->ment);
    free(d->win);
    buf_release(&d->keys);
    free(d);
}

static int fail_at(struct protobuf_decoder *d, int code, size_t at, const struct pb_msg *m,
                   const struct pb_field *f, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int fail_at(struct protobuf_decoder *d, int code, size_t at, const struct pb_msg *m,
                   const struct pb_field *f, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (f)
        return errmsg_set(d->e, code, "at byte %zu: field %s.%s (%d): %s", at, m->full,
                          f->name, (int)f->number, why);
    return errmsg_set(d->e, code, "at byte %zu: message %s: %s", at, m->full, why);
}

static int out_full(struct protobuf_decoder *d, int rc)
{
    if (rc == WEIR_ELIMIT)
        return errmsg_set(d->e, rc, "the decoded JSON is longer than %zu bytes",
                          d->out->max);
    return errmsg_set(d->e, rc, "%s", weir_strerror(rc));
}

static int wire_type_of(int type)
{
    switch (type) {
    case T_DOUBLE: case T_FIXED64: case T_SFIXED64: return WT_I64;
    case T_FLOAT: case T_FIXED32: case T_SFIXED32: return WT_I32;
    case T_STRING: case T_BYTES: case T_MESSAGE: return WT_LEN;
    default: return WT_VARINT;
    }
}

static int push_occ(struct protobuf_decoder *d, const struct occ *o)
{
    if (grow((void **)&d->occ, &d->capocc, d->nocc, sizeof *d->occ))
        return errmsg_set(d->e, WEIR_ENOMEM, "out of memory");
    d->occ[d->nocc++] = *o;
    return 0;
}

/* Decimal digits of v, without printf (which was half the decoding time). */
static int put_u64(struct buf *b, uint64_t v, int neg)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        tmp[--n] = '-';
    return buf_append(b, tmp + n, sizeof tmp - n);
}

static int put_i64(struct buf *b, int64_t v)
{
    return v < 0 ? put_u64(b, 0 - (uint64_t)v, 1) : put_u64(b, (uint64_t)v, 0);
}

static int put_double(struct buf *b, double v, int is_float)
{
    char s[40];
    if (!isfinite(v))
        return buf_puts(b, "null");
    /* Integral values (counts, set points) are common: no printf. */
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v && !(v == 0 && signbit(v)))
        return put_i64(b, (int64_t)v);
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        double back = strtod(s, NULL);
        if (is_float ? (float)back == (float)v : back == v)
            break;
    }
    return buf_puts(b, s);
}

static int put_enum(struct buf *b, const struct pb_enum *en, int32_t v)
{
    for (size_t i = 0; i < en->nvalues; i++)
        if (en->values[i].number == v)
            return buf_append(b, en->values[i].quoted, en->values[i].quoted_len);
    return put_i64(b, v);
}

/* A scalar of type `type` whose wire value is o (never WT_LEN packed). */
static int put_scalar(struct protobuf_decoder *d, const struct pb_msg *m,
                      const struct pb_field *f, int type, uint64_t v, size_t off,
                      size_t len)
{
    struct buf *b = d->out;
    switch (type) {
    case T_DOUBLE: {
        double x;
        memcpy(&x, &v, sizeof x);
        return put_double(b, x, 0);
    }
    case T_FLOAT: {
        uint32_t u = (uint32_t)v;
        float x;
        memcpy(&x, &u, sizeof x);
        return put_double(b, (double)x, 1);
    }
    case T_INT64: case T_SFIXED64: return put_i64(b, (int64_t)v);
    case T_UINT64: case T_FIXED64: return put_u64(b, v, 0);
    case T_INT32: case T_SFIXED32: return put_i64(b, (int32_t)(uint32_t)v);
    case T_UINT32: case T_FIXED32: return put_u64(b, (uint32_t)v, 0);
    case T_SINT32: {
        uint32_t u = (uint32_t)v;
        return put_i64(b, (int32_t)((u >> 1) ^ (0u - (u & 1))));
    }
    case T_SINT64:
        return put_i64(b, (int64_t)((v >> 1) ^ (0 - (v & 1))));
    case T_BOOL: return buf_puts(b, v ? "true" : "false");
    case T_ENUM: return put_enum(b, f->en, (int32_t)(uint32_t)v);
    case T_STRING:
        if (!json_utf8_valid((const char *)d->b + off, len))
            return fail_at(d, WEIR_EPARSE, off, m, f, "a string that is not valid UTF-8");
        return buf_put_json_string(b, (const char *)d->b + off, len);
    case T_BYTES: {
        int rc = buf_putc(b, '"');
        if (!rc)
            rc = buf_put_base64(b, d->b + off, len);
        return rc ? rc : buf_putc(b, '"');
    }
    default:
        return WEIR_EINVAL;
    }
}

/* The default of a field absent from the wire. */
static int put_default(struct protobuf_decoder *d, const struct pb_field *f, int type)
{
    switch (type) {
    case T_STRING: case T_BYTES: return buf_puts(d->out, "\"\"");
    case T_BOOL: return buf_puts(d->out, "false");
    case T_ENUM: return put_enum(d->out, f->en, f->en->values[0].number);
    case T_MESSAGE: return WEIR_EINVAL;
    default: return buf_putc(d->out, '0');
    }
}

static int decode_msg(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                      size_t n, uint32_t depth);
static int decode_value_of_entry(struct protobuf_decoder *d, const struct pb_msg *em,
                                 const struct pb_field *vf, size_t range, uint32_t depth);

/* Wrap a status from buf_* (which set no message) into e. */
static int st(struct protobuf_decoder *d, int rc)
{
    if (rc && d->e->code != rc)
        return out_full(d, rc);
    return rc;
}

/* The last varint/fixed value of field num across ranges occ[first..+n),
 * for the well-known types; *found 0 if none. LEN values give off/len. */
static int wkt_field(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                     size_t n, uint32_t num, int wt, struct wf *val, int *found)
{
    const char *why;
    size_t where;
    *found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t off = d->occ[first + i].off, end = off + d->occ[first + i].len;
        struct wf f;
        while (off < end) {
            if (next_field(d->b, end, &off, &f, &why, &where))
                return fail_at(d, WEIR_EPARSE, where, m, NULL, "%s", why);
            if (f.num != num)
                continue;
            if (f.wt != wt)
                return fail_at(d, WEIR_EPARSE, f.at, m, NULL,
                               "field %u has wire type %d, expected %d", num, f.wt, wt);
            *val = f;
            *found = 1;
        }
    }
    return 0;
}

static int put_timestamp(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                         size_t n, size_t at)
{
    struct wf s = {0}, ns = {0};
    int fs, fn, rc;
    if ((rc = wkt_field(d, m, first, n, 1, WT_VARINT, &s, &fs)) ||
        (rc = wkt_field(d, m, first, n, 2, WT_VARINT, &ns, &fn)))
        return rc;
    int64_t secs = fs ? (int64_t)s.v : 0;
    int32_t nanos = fn ? (int32_t)(uint32_t)ns.v : 0;
    /* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, as the spec bounds it. */
    if (secs < -62135596800LL || secs > 253402300799LL || nanos < 0 || nanos > 999999999)
        return fail_at(d, WEIR_EPARSE, at, m, NULL, "a Timestamp out of range "
                       "(seconds %lld, nanos %d)", (long long)secs, (int)nanos);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    int y, mo, dd;
    wtime_civil_from_days(days, &y, &mo, &dd);
    /* "YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z", by hand: printf was most
     * of the cost of a message with a Timestamp. */
    char t[40];
    int digits = !nanos ? 0 : nanos % 1000000 == 0 ? 3 : nanos % 1000 == 0 ? 6 : 9;
    int fields[] = {y, mo, dd, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60)};
    static const char seps[] = "--T::";
    size_t o = 0;
    t[o++] = '"';
    for (int i = 0; i < 6; i++) {
        int w = i == 0 ? 4 : 2, v = fields[i];
        for (int k = w - 1; k >= 0; k--, v /= 10)
            t[o + (size_t)k] = (char)('0' + v % 10);
        o += (size_t)w;
        if (i < 5)
            t[o++] = seps[i];
    }
    if (digits) {
        int v = nanos;
        for (int k = 9; k > digits; k--)
            v /= 10;
        t[o++] = '.';
        for (int k = digits - 1; k >= 0; k--, v /= 10)
            t[o + (size_t)k] = (char)('0' + v % 10);
        o += (size_t)digits;
    }
    t[o++] = 'Z';
    t[o++] = '"';
    return st(d, buf_append(d->out, t, o));
}

static int put_duration(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                        size_t n, size_t at)
{
    struct wf s = {0}, ns = {0};
    int fs, fn, rc;
    if ((rc = wkt_field(d, m, first, n, 1, WT_VARINT, &s, &fs)) ||
        (rc = wkt_field(d, m, first, n, 2, WT_VARINT, &ns, &fn)))
        return rc;
    int64_t secs = fs ? (int64_t)s.v : 0;
    int32_t nanos = fn ? (int32_t)(uint32_t)ns.v : 0;
    /* +-10,000 years, and nanos of the same sign, as the spec bounds it. */
    if (secs < -315576000000LL || secs > 315576000000LL || nanos < -999999999 ||
        nanos > 999999999 || (secs > 0 && nanos < 0) || (secs < 0 && nanos > 0))
        return fail_at(d, WEIR_EPARSE, at, m, NULL, "a Duration out of range "
                       "(seconds %lld, nanos %d)", (long long)secs, (int)nanos);
    int neg = secs < 0 || nanos < 0;
    unsigned long long as = (unsigned long long)(secs < 0 ? -secs : secs);
    int an = nanos < 0 ? -nanos : nanos;
    if (an == 0)
        return st(d, buf_appendf(d->out, "%s%llu", neg ? "-" : "", as));
    char frac[16];
    int k = snprintf(frac, sizeof frac, "%09d", an);
    while (k > 1 && frac[k - 1] == '0')
        frac[--k] = '\0';
    return st(d, buf_appendf(d->out, "%s%llu.%s", neg ? "-" : "", as, frac));
}

static int put_wrapper(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                       size_t n)
{
    static const int types[] = {
        [WKT_DOUBLE] = T_DOUBLE, [WKT_FLOAT] = T_FLOAT, [WKT_INT64] = T_INT64,
        [WKT_UINT64] = T_UINT64, [WKT_INT32] = T_INT32, [WKT_UINT32] = T_UINT32,
        [WKT_BOOL] = T_BOOL, [WKT_STRING] = T_STRING, [WKT_BYTES] = T_BYTES,
    };
    int type = types[m->wkt], found, rc;
    const struct pb_field *vf = field_by_number(m, 1);
    struct wf v = {0};
    if ((rc = wkt_field(d, m, first, n, 1, wire_type_of(type), &v, &found)))
        return rc;
    if (!found)
        return st(d, put_default(d, vf, type));
    return st(d, put_scalar(d, m, vf, type, v.v, v.off, v.len));
}

/* A value of field f (a message, or a scalar): occ[first..+n) are its
 * occurrences (messages: merged); scalars take the last. */
static int put_value(struct protobuf_decoder *d, const struct pb_msg *m,
                     const struct pb_field *f, size_t first, size_t n, uint32_t depth)
{
    if (f->type == T_MESSAGE) {
        const struct pb_msg *sub = f->msg;
        size_t at = n ? d->occ[first].at : 0; /* n 0: a map value not sent */
        switch (sub->wkt) {
        case WKT_NONE: return decode_msg(d, sub, first, n, depth + 1);
        case WKT_TIMESTAMP: return put_timestamp(d, sub, first, n, at);
        case WKT_DURATION: return put_duration(d, sub, first, n, at);
        default: return put_wrapper(d, sub, first, n);
        }
    }
    const struct occ *o = &d->occ[first + n - 1];
    return st(d, put_scalar(d, m, f, f->type, o->v, o->off, o->len));
}

/* Elements of a packed run: LEN bytes holding values back to back. */
static int put_packed(struct protobuf_decoder *d, const struct pb_msg *m,
                      const struct pb_field *f, const struct occ *o, int *count)
{
    size_t p = o->off, end = o->off + o->len;
    int wt = wire_type_of(f->type), rc;
    while (p < end) {
        uint64_t v = 0;
        size_t at = p;
        if (wt == WT_VARINT) {
            int r = get_varint(d->b, end, &p, &v);
            if (r)
                return fail_at(d, WEIR_EPARSE, at, m, f, "%s in a packed array",
                               r == -1 ? "truncated varint" : "varint longer than 10 bytes");
        } else {
            size_t w = wt == WT_I64 ? 8 : 4;
            if (end - p < w)
                return fail_at(d, WEIR_EPARSE, at, m, f, "truncated value in a packed array");
            for (size_t i = w; i-- > 0;)
                v = v << 8 | d->b[p + i];
            p += w;
        }
        if ((*count)++ && (rc = st(d, buf_putc(d->out, ','))))
            return rc;
        if ((rc = st(d, put_scalar(d, m, f, f->type, v, at, 0))))
            return rc;
    }
    return 0;
}

static int put_repeated(struct protobuf_decoder *d, const struct pb_msg *m,
                        const struct pb_field *f, size_t first, size_t n, uint32_t depth)
{
    int rc, count = 0;
    if (depth + 1 > d->pb->max_depth)
        return fail_at(d, WEIR_ELIMIT, n ? d->occ[first].at : 0, m, f,
                       "nesting deeper than max_depth (%u)", d->pb->max_depth);
    if ((rc = st(d, buf_putc(d->out, '['))))
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct occ o = d->occ[first + i];
        if (o.wt == WT_LEN && f->type != T_MESSAGE && f->type != T_STRING &&
            f->type != T_BYTES) {
            if ((rc = put_packed(d, m, f, &o, &count)))
                return rc;
            continue;
        }
        if (count++ && (rc = st(d, buf_putc(d->out, ','))))
            return rc;
        if ((rc = put_value(d, m, f, first + i, 1, depth + 1)))
            return rc;
    }
    return st(d, buf_putc(d->out, ']'));
}

static int cmp_ment(const void *a, const void *b, void *ctx)
{
    const struct ment *x = a, *y = b;
    const char *base = ctx;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(base + x->key_off, base + y->key_off, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* One entry's key as text into d->keys. */
static int map_key(struct protobuf_decoder *d, const struct pb_msg *em,
                   const struct pb_field *kf, const struct wf *k, int found)
{
    struct buf *save = d->out;
    int rc;
    if (kf->type == T_STRING) {
        if (!found)
            return 0;
        if (!json_utf8_valid((const char *)d->b + k->off, k->len))
            return fail_at(d, WEIR_EPARSE, k->off, em, kf, "a map key that is not valid UTF-8");
        return st(d, buf_append(&d->keys, d->b + k->off, k->len));
    }
    d->out = &d->keys;
    rc = found ? put_scalar(d, em, kf, kf->type, k->v, k->off, k->len)
               : put_default(d, kf, kf->type);
    d->out = save;
    return st(d, rc);
}

/* qsort_r is a GNU extension; weir builds with _GNU_SOURCE on glibc. */
static int put_map(struct protobuf_decoder *d, const struct pb_msg *m,
                   const struct pb_field *f, size_t first, size_t n, uint32_t depth)
{
    const struct pb_msg *em = f->msg;
    const struct pb_field *kf = field_by_number(em, 1), *vf = field_by_number(em, 2);
    size_t mbase = d->nment, kbase = d->keys.len;
    int rc = 0;
    if (depth + 1 > d->pb->max_depth)
        return fail_at(d, WEIR_ELIMIT, n ? d->occ[first].at : 0, m, f,
                       "nesting deeper than max_depth (%u)", d->pb->max_depth);
    for (size_t i = 0; i < n; i++) {
        struct occ o = d->occ[first + i];
        struct wf k = {0};
        int found;
        if ((rc = wkt_field(d, em, first + i, 1, 1, wire_type_of(kf->type), &k, &found)))
            goto out;
        size_t koff = d->keys.len;
        if ((rc = map_key(d, em, kf, &k, found)))
            goto out;
        if (grow((void **)&d->ment, &d->capment, d->nment, sizeof *d->ment)) {
            rc = errmsg_set(d->e, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        d->ment[d->nment++] = (struct ment){koff, d->keys.len - koff, o.seq, o.off, o.len};
    }
    if (d->nment > mbase)
        qsort_r(d->ment + mbase, d->nment - mbase, sizeof *d->ment, cmp_ment, d->keys.data);
    if ((rc = st(d, buf_putc(d->out, '{'))))
        goto out;
    int count = 0;
    for (size_t i = mbase; i < d->nment; i++) {
        struct ment me = d->ment[i];
        if (i + 1 < d->nment && d->ment[i + 1].key_len == me.key_len &&
            memcmp(d->keys.data + d->ment[i + 1].key_off, d->keys.data + me.key_off,
                   me.key_len) == 0)
            continue; /* a later entry has the same key: it wins */
        if (count++ && (rc = st(d, buf_putc(d->out, ','))))
            goto out;
        if ((rc = st(d, buf_put_json_string(d->out, d->keys.data + me.key_off, me.key_len))) ||
            (rc = st(d, buf_putc(d->out, ':'))))
            goto out;
        /* The value: the entry's field 2, read like a one-field message. */
        size_t obase = d->nocc;
        struct occ range = {.off = me.off, .len = me.len, .at = me.off};
        if ((rc = push_occ(d, &range)))
            goto out;
        rc = decode_value_of_entry(d, em, vf, obase, depth + 1);
        d->nocc = obase;
        if (rc)
            goto out;
    }
    rc = st(d, buf_putc(d->out, '}'));
out:
    d->nment = mbase;
    buf_truncate(&d->keys, kbase);
    return rc;
}

static int packable(int type)
{
    return type != T_STRING && type != T_BYTES && type != T_MESSAGE && type != T_GROUP;
}

static int cmp_occ(const void *a, const void *b)
{
    const struct occ *x = a, *y = b;
    if (x->fidx != y->fidx)
        return x->fidx < y->fidx ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Step 1: the fields of m found in the ranges occ[first..+n), pushed above
 * them, sorted by (field, order seen); oneof members that a later member
 * of the same oneof overrides are marked skip. *base is where they start.
 */
static int collect(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                   size_t n, size_t *base)
{
    const char *why;
    size_t where;
    uint32_t seq = 0;
    int rc;
    *base = d->nocc;
    for (size_t i = 0; i < n; i++) {
        size_t off = d->occ[first + i].off, end = off + d->occ[first + i].len;
        struct wf w;
        while (off < end) {
            if (next_field(d->b, end, &off, &w, &why, &where))
                return fail_at(d, WEIR_EPARSE, where, m, NULL, "%s", why);
            const struct pb_field *f = field_by_number(m, w.num);
            if (!f)
                continue; /* unknown: skipped */
            int want = wire_type_of(f->type);
            if (w.wt != want && !(w.wt == WT_LEN && f->label == L_REPEATED && packable(f->type)))
                return fail_at(d, WEIR_EPARSE, w.at, m, f, "wire type %d, expected %d",
                               w.wt, want);
            struct occ o = {(uint32_t)(f - m->fields), seq++, (uint8_t)w.wt, 0, w.v,
                            w.off, w.len, w.at};
            if ((rc = push_occ(d, &o)))
                return rc;
        }
    }
    size_t cnt = d->nocc - *base;
    if (cnt == 0)
        return 0;
    struct occ *v = d->occ + *base;
    if (cnt <= 32) {
        /* Usually sorted already (encoders write fields in order). */
        for (size_t i = 1; i < cnt; i++) {
            struct occ x = v[i];
            size_t j = i;
            while (j > 0 && cmp_occ(&v[j - 1], &x) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
    } else {
        qsort(v, cnt, sizeof *v, cmp_occ);
    }
    if (m->noneofs == 0)
        return 0;
    memset(d->win, 0, m->noneofs * sizeof *d->win);
    for (size_t i = 0; i < cnt; i++) {
        int32_t one = m->fields[v[i].fidx].oneof;
        if (one >= 0 && d->win[one] < (uint64_t)v[i].seq + 1)
            d->win[one] = (uint64_t)v[i].seq + 1;
    }
    for (size_t i = 0; i < cnt;) {
        size_t j = i;
        while (j < cnt && v[j].fidx == v[i].fidx)
            j++;
        int32_t one = m->fields[v[i].fidx].oneof;
        if (one >= 0 && d->win[one] != (uint64_t)v[j - 1].seq + 1)
            for (size_t k = i; k < j; k++)
                v[k].skip = 1;
        i = j;
    }
    return 0;
}

static int decode_value_of_entry(struct protobuf_decoder *d, const struct pb_msg *em,
                                 const struct pb_field *vf, size_t range, uint32_t depth)
{
    size_t base;
    int rc = collect(d, em, range, 1, &base);
    if (rc)
        return rc;
    size_t vidx = (size_t)(vf - em->fields), i = base, end = d->nocc;
    while (i < end && d->occ[i].fidx != vidx)
        i++;
    size_t j = i;
    while (j < end && d->occ[j].fidx == vidx)
        j++;
    if (j > i)
        return put_value(d, em, vf, i, j - i, depth);
    if (vf->type == T_MESSAGE)
        return put_value(d, em, vf, end, 0, depth);
    return st(d, put_default(d, vf, vf->type));
}

static int decode_msg(struct protobuf_decoder *d, const struct pb_msg *m, size_t first,
                      size_t n, uint32_t depth)
{
    size_t base;
    int rc;
    if (depth > d->pb->max_depth)
        return fail_at(d, WEIR_ELIMIT, n ? d->occ[first].at : 0, m, NULL,
                       "nesting deeper than max_depth (%u)", d->pb->max_depth);
    if ((rc = collect(d, m, first, n, &base)))
        return rc;
    size_t end = d->nocc, i = base;
    int count = 0;
    if ((rc = st(d, buf_putc(d->out, '{'))))
        return rc;
    for (size_t fi = 0; fi < m->nfields && !rc; fi++) {
        const struct pb_field *f = &m->fields[fi];
        size_t j = i;
        while (j < end && d->occ[j].fidx == fi)
            j++;
        size_t run = i, nrun = j - i;
        i = j;
        if (nrun && d->occ[run].skip)
            continue;
        int map = f->type == T_MESSAGE && f->msg->map_entry;
        int repeated = f->label == L_REPEATED;
        if (!map && !repeated && !nrun && f->presence)
            continue;
        if ((count++ && (rc = st(d, buf_putc(d->out, ',')))) ||
            (rc = st(d, buf_append(d->out, f->key, f->key_len))))
            break;
        if (map)
            rc = put_map(d, m, f, run, nrun, depth);
        else if (repeated)
            rc = put_repeated(d, m, f, run, nrun, depth);
        else if (nrun || f->type == T_MESSAGE)
            rc = put_value(d, m, f, nrun ? run : end, nrun, depth);
        else
            rc = st(d, put_default(d, f, f->type));
    }
    d->nocc = base;
    if (rc)
        return rc;
    return st(d, buf_putc(d->out, '}'));
}

int protobuf_decode(struct protobuf_decoder *d, const void *data, size_t len,
                    struct buf *out, struct weir_errmsg *e)
{
    struct weir_errmsg tmp;
    d->e = e ? e : &tmp;
    d->e->code = 0;
    d->e->text[0] = '\0';
    d->b = data;
    d->len = len;
    d->out = out;
    d->nocc = 0;
    d->nment = 0;
    buf_reset(&d->keys);
    buf_reset(out);
    struct occ whole = {.off = 0, .len = len, .at = 0};
    int rc = push_occ(d, &whole);
    if (!rc)
        rc = decode_msg(d, d->pb->root, 0, 1, 1);
    d->nocc = 0;
    /* A huge message (an unpacked array of 100,000 numbers) should not
     * pin its scratch for the life of the decoder. */
    if (d->capocc > SCRATCH_KEEP) {
        free(d->occ);
        d->occ = NULL;
        d->capocc = 0;
    }
    if (d->capment > SCRATCH_KEEP) {
        free(d->ment);
        d->ment = NULL;
        d->capment = 0;
    }
    if (d->keys.cap > SCRATCH_KEEP * 16)
        buf_release(&d->keys);
    if (rc)
        buf_reset(out);
    return rc;
}
