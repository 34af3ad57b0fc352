/* cmd_validate.c - `weir validate` (being written). */
#include "cli/cli.h"
int cmd_validate(int argc, char **argv)
{
    fprintf(stderr, "weir validate: not built yet\n");
    return EXIT_RUNTIME;
}
