/*
 * pbdecode.c - decode binary Protobuf messages with weir's decoder
 * (schema/protobuf.h), for tests and for looking at a payload by hand:
 *
 *   pbdecode DESCRIPTOR_SET TYPE FILE...   one JSON line per FILE (each
 *                                          file is one message); exit 1
 *                                          if one does not decode
 *   pbdecode DESCRIPTOR_SET TYPE --schema  the derived JSON Schema
 */
#include "core/buf.h"
#include "schema/protobuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int slurp(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    char tmp[65536];
    size_t n;
    if (!f)
        return -1;
    buf_reset(b);
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (buf_append(b, tmp, n) != 0)
            break;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct protobuf *pb = NULL;
    struct weir_errmsg e = {0};
    struct buf in = BUF_INIT(64u << 20), out = BUF_INIT(256u << 20);
    int rc = 0;
    if (argc < 4) {
        fprintf(stderr, "usage: pbdecode DESCRIPTOR_SET TYPE (--schema | FILE...)\n");
        return 2;
    }
    if (protobuf_load(argv[1], argv[2], 0, &pb, &e) != 0) {
        fprintf(stderr, "pbdecode: %s\n", e.text);
        return 2;
    }
    if (strcmp(argv[3], "--schema") == 0) {
        rc = protobuf_json_schema(pb, &out) != 0;
        if (!rc)
            printf("%s\n", out.data);
        goto done;
    }
    struct protobuf_decoder *d = protobuf_decoder_new(pb);
    for (int i = 3; i < argc && d; i++) {
        if (slurp(argv[i], &in) != 0) {
            fprintf(stderr, "pbdecode: cannot read %s\n", argv[i]);
            rc = 1;
        } else if (protobuf_decode(d, in.data ? in.data : "", in.len, &out, &e) != 0) {
            fprintf(stderr, "pbdecode: %s: %s\n", argv[i], e.text);
            rc = 1;
        } else {
            printf("%s\n", out.data);
        }
    }
    protobuf_decoder_free(d);
done:
    protobuf_free(pb);
    buf_release(&in);
    buf_release(&out);
    return rc;
}
