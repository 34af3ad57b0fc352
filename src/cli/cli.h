/*
 * cli.h - the subcommands of the weir binary.
 *
 * main.c dispatches argv[1] through a table of struct cli_cmd. Each
 * subcommand lives in its own file, cmd_<name>.c, parses its own options
 * (getopt_long, with --help printing its usage to stdout, exit 0) and
 * returns an exit code:
 *
 *   0 success, 1 the work found problems (invalid records, failed checks),
 *   2 usage or configuration errors, 3 runtime failure.
 */
#ifndef WEIR_CLI_CLI_H
#define WEIR_CLI_CLI_H

#include <stdio.h>

enum {
    EXIT_OK = 0,
    EXIT_PROBLEMS = 1,
    EXIT_USAGE = 2,
    EXIT_RUNTIME = 3,
};

struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary; /* one line for `weir --help` */
    const char *usage;   /* full text for `weir NAME --help` */
};

/* The table (main.c), ended by a NULL name. */
extern const struct cli_cmd cli_commands[];

/* Print cmd's usage to f. */
void cli_usage(const struct cli_cmd *cmd, FILE *f);

/* Look up a command by name; NULL if unknown. */
const struct cli_cmd *cli_find(const char *name);

/* Report a usage error for cmd on stderr ("weir CMD: msg" + hint) and
 * return EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct weir_config;
/* Load -c FILE (NULL: the embedded default) into cfg for subcommand cmd;
 * prints the error and returns EXIT_USAGE on failure, 0 on success. */
int cli_load_config(const char *cmd, const char *path, struct weir_config *cfg);

/* Subcommands. */
int cmd_version(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_requeue(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_optimize(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_replay(int argc, char **argv);

/* The lake's maintenance commands share their options (cmd_compact.c). */
enum cli_maint { M_COMPACT = 0, M_OPTIMIZE, M_GC };
int cmd_maint(enum cli_maint m, int argc, char **argv);

#endif
