/*
 * cmd_gc.c - `weir gc`: retention (raw, Parquet, quarantine), recovery,
 * vacuum and leftovers of crashed queries (store/compact.h, docs/lake.md).
 * Options and reporting are shared with `weir compact` (cmd_compact.c).
 */
#include "cli/cli.h"

int cmd_gc(int argc, char **argv)
{
    return cmd_maint(M_GC, argc, argv);
}
