/*
 * cmd_optimize.c - `weir optimize`: merge each partition's small Parquet
 * files into one, in one commit (store/compact.h, docs/lake.md). Options
 * and reporting are shared with `weir compact` (cmd_compact.c).
 */
#include "cli/cli.h"

int cmd_optimize(int argc, char **argv)
{
    return cmd_maint(M_OPTIMIZE, argc, argv);
}
