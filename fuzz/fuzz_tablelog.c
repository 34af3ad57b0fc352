/*
 * fuzz_tablelog.c - libFuzzer target for the table log's file parsers
 * (src/store/tablelog.c): commit and checkpoint files.
 *
 * The first byte picks the grammar (even: commit, odd: checkpoint); the
 * rest is the file. Whatever parses is written back, parsed and written
 * again, and the two writings must be identical (tl_parse_*_text abort()s
 * otherwise); whatever does not parse must be reported as WEIR_ECORRUPT
 * with the file name in the message, never another code.
 *
 *   make fuzz && build/fuzz/fuzz_tablelog -max_total_time=600 fuzz/corpus/tablelog
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/tablelog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int checkpoint = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct weir_errmsg e;
    memset(&e, 0, sizeof(e));
    int rc = checkpoint ? tl_parse_checkpoint_text("F.json", text, len, &e)
                        : tl_parse_commit_text("F.json", text, len, &e);
    if (rc != 0 && (rc != WEIR_ECORRUPT || !strstr(e.text, "F.json"))) {
        fprintf(stderr, "unexpected: %d %s\n", rc, e.text);
        abort();
    }
    return 0;
}
