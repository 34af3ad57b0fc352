/*
 * fuzz_protobuf.c - libFuzzer target for the Protobuf decoder and the
 * descriptor set reader (src/schema/protobuf.c).
 *
 * The first byte picks what the rest is:
 *   0xff         a descriptor set: load it, pick plant.v1.Reading if it is
 *                there, derive its schema, decode the rest of the input
 *                as one of its messages;
 *   odd          a plant.v1.Node message (a tree: deep nesting, max_depth 32);
 *   even         a plant.v1.Reading message (every scalar type, maps, oneof,
 *                Timestamp, ...).
 * Whatever decodes must be one JSON text the scanner takes, with no
 * newline; whatever fails must say at which byte.
 *
 * The descriptor set is fuzz/protobuf.desc, made from
 * tests/data/protobuf/plant.proto by
 *   protoc -I tests/data/protobuf --include_imports \
 *       --descriptor_set_out=fuzz/protobuf.desc tests/data/protobuf/plant.proto
 * (WEIR_FUZZ_PROTOBUF_DESC overrides the path).
 *
 *   make fuzz && build/fuzz/fuzz_protobuf -max_total_time=600 fuzz/corpus/protobuf
 */
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "schema/json.h"
#include "schema/protobuf.h"

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct protobuf *reading, *node;
static struct protobuf_decoder *dreading, *dnode;
static struct json_doc doc;
static struct buf out = BUF_INIT(1u << 20);

static struct protobuf *load(const char *path, const char *type, uint32_t depth)
{
    struct protobuf *pb = NULL;
    struct weir_errmsg e = {0};
    if (protobuf_load(path, type, depth, &pb, &e) != 0) {
        fprintf(stderr, "fuzz_protobuf: %s\n", e.text);
        exit(1);
    }
    return pb;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[PATH_MAX];
    const char *env = getenv("WEIR_FUZZ_PROTOBUF_DESC");
    if (env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        snprintf(path, sizeof path, "fuzz/protobuf.desc");
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
        } else if (*argc > 0) { /* build/fuzz/fuzz_protobuf -> ../../fuzz/ */
            char self[PATH_MAX];
            snprintf(self, sizeof self, "%s", (*argv)[0]);
            snprintf(path, sizeof path, "%s/../../fuzz/protobuf.desc", dirname(self));
        }
    }
    reading = load(path, "plant.v1.Reading", 0);
    node = load(path, "plant.v1.Node", 32);
    dreading = protobuf_decoder_new(reading);
    dnode = protobuf_decoder_new(node);
    CHECK(dreading && dnode);
    json_doc_init(&doc, 1000);
    return 0;
}

static void decode(struct protobuf_decoder *d, const uint8_t *p, size_t n)
{
    struct weir_errmsg e;
    int rc = protobuf_decode(d, p, n, &out, &e);
    if (rc == 0) {
        CHECK(out.len > 0 && !memchr(out.data, '\n', out.len));
        CHECK(json_scan(&doc, out.data, out.len) == JSON_OK);
    } else {
        CHECK(out.len == 0);
        CHECK(strncmp(e.text, "at byte ", 8) == 0 || rc == WEIR_ELIMIT ||
              rc == WEIR_ENOMEM);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode == 0xff) {
        struct protobuf *pb = NULL;
        struct weir_errmsg e;
        if (protobuf_load_mem(data, size, "fuzz", "plant.v1.Reading", 16, &pb, &e) != 0)
            return 0;
        struct buf js = BUF_INIT(64u << 20);
        CHECK(protobuf_json_schema(pb, &js) == 0);
        CHECK(json_scan(&doc, js.data, js.len) == JSON_OK);
        buf_release(&js);
        struct protobuf_decoder *d = protobuf_decoder_new(pb);
        CHECK(d);
        decode(d, data, size);
        protobuf_decoder_free(d);
        protobuf_free(pb);
    } else if (mode & 1) {
        decode(dnode, data, size);
    } else {
        decode(dreading, data, size);
    }
    return 0;
}
