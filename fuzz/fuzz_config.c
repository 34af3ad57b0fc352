/*
 * fuzz_config.c - libFuzzer target for the config loader.
 *
 * Any bytes, parsed as a config: no crash, no leak, no sanitizer report,
 * and a property beyond that: whatever loads, its dump (weir check's
 * output) loads again and dumps to the same text. A dump that does not
 * read back would make `weir check` lie about the effective config.
 *
 *   make fuzz && build/fuzz/fuzz_config -dict=fuzz/fuzz_config.dict \
 *       fuzz/corpus/config
 */
#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weir_config cfg, again;
    struct weir_errmsg err = {0};
    struct buf d1 = BUF_INIT(64u << 20), d2 = BUF_INIT(64u << 20);

    if (config_load_string("fuzz.yaml", (const char *)data, size, "/fuzz", &cfg, &err) != 0) {
        /* Every failure says something and stays NUL-terminated. */
        if (err.text[0] == '\0' || strlen(err.text) >= sizeof err.text)
            abort();
        config_release(&cfg);
        return 0;
    }
    if (config_dump(&cfg, &d1) != 0)
        abort();
    if (config_load_string("dump.yaml", d1.data, d1.len, "/elsewhere", &again, &err) != 0) {
        fprintf(stderr, "dump does not load: %s\n---\n%s---\n", err.text, d1.data);
        abort();
    }
    if (config_dump(&again, &d2) != 0)
        abort();
    /* The first line names the file; compare what follows. */
    const char *a = strchr(d1.data, '\n'), *b = strchr(d2.data, '\n');
    if (!a || !b || strcmp(a, b) != 0) {
        fprintf(stderr, "dump differs after a round trip\n---\n%s---\n%s---\n", d1.data, d2.data);
        abort();
    }
    buf_release(&d1);
    buf_release(&d2);
    config_release(&again);
    config_release(&cfg);
    return 0;
}
