/*
 * ytree.h - a YAML document as a small tree of nodes with line numbers
 * (internal to src/config/).
 *
 * Built from libyaml's event parser rather than its document loader so
 * that the things a config never needs are refused up front instead of
 * walked: aliases (a "billion laughs" document is a few hundred bytes),
 * nesting deeper than a bound, more than one document, and mapping keys
 * that are not scalars. Tags are ignored; scalars are text.
 */
#ifndef WEIR_CONFIG_YTREE_H
#define WEIR_CONFIG_YTREE_H

#include <stddef.h>

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
    enum ynode_kind kind;
    int line;               /* 1-based line where the node starts */
    int key_line;           /* a mapping's value: the line of its key, else 0 */
    int is_null;            /* plain scalar "", "~", "null", "Null", "NULL" */
    char *text;             /* scalar: NUL-terminated (may hold NULs: see len) */
    size_t len;
    char *expanded;         /* scalar: ${VAR} expansion, cached by the config */
    struct ynode *first;    /* children; a map's alternate key, value, ... */
    struct ynode *last;
    struct ynode *next;
    size_t n;               /* number of children (a map: twice its pairs) */
};

/*
 * Parse len bytes of text into *root (NULL for an empty stream). At most
 * max_depth nested collections. On failure returns WEIR_EPARSE (or
 * WEIR_ENOMEM) with *line and msg (cap bytes) describing the problem.
 */
int ytree_parse(const char *text, size_t len, int max_depth,
                struct ynode **root, int *line, char *msg, size_t cap);

/* Free a tree from ytree_parse. NULL is safe. */
void ytree_free(struct ynode *root);

#endif
