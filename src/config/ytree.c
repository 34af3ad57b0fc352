/*
 * ytree.c - libyaml events into struct ynode (see ytree.h).
 *
 * The parser keeps its own stack of open collections (bounded by
 * max_depth), so a deeply nested input costs neither recursion here nor
 * unbounded memory. ytree_free recurses, but only max_depth deep.
 */
#include "config/ytree.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static struct ynode *node_new(enum ynode_kind kind, const yaml_event_t *ev)
{
    struct ynode *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = (int)ev->start_mark.line + 1;
    }
    return n;
}

static int is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)ev->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static void append_child(struct ynode *parent, struct ynode *child)
{
    if (parent->last)
        parent->last->next = child;
    else
        parent->first = child;
    parent->last = child;
    parent->n++;
}

static int parser_error(const yaml_parser_t *p, int *line, char *msg, size_t cap)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(msg, cap, "out of memory");
        *line = 0;
        return WEIR_ENOMEM;
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset; the line is where the
         * scanner had got to, which is close enough to point at. */
        *line = (int)p->mark.line + 1;
        snprintf(msg, cap, "%s (byte %zu)", problem, p->problem_offset);
    } else {
        *line = (int)p->problem_mark.line + 1;
        if (p->context)
            snprintf(msg, cap, "%s %s", problem, p->context);
        else
            snprintf(msg, cap, "%s", problem);
    }
    return WEIR_EPARSE;
}

int ytree_parse(const char *text, size_t len, int max_depth,
                struct ynode **root, int *line, char *msg, size_t cap)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct ynode **stack = NULL;
    int depth = 0, docs = 0, rc = WEIR_ENOMEM;
    *root = NULL;
    *line = 0;
    if (!yaml_parser_initialize(&p)) {
        snprintf(msg, cap, "out of memory");
        return WEIR_ENOMEM;
    }
    stack = calloc((size_t)max_depth + 1, sizeof *stack);
    if (!stack) {
        snprintf(msg, cap, "out of memory");
        goto fail;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parser_error(&p, line, msg, cap);
            goto fail;
        }
        struct ynode *n = NULL;
        int done = 0;
        rc = WEIR_EPARSE;
        *line = (int)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                snprintf(msg, cap, "more than one YAML document (a second '---'); "
                         "a config is one document");
                goto fail_ev;
            }
            break;
        case YAML_ALIAS_EVENT:
            snprintf(msg, cap, "YAML aliases (*%s) are not supported; write the value out",
                     (const char *)ev.data.alias.anchor);
            goto fail_ev;
        case YAML_SCALAR_EVENT:
            if (!(n = node_new(YNODE_SCALAR, &ev)))
                goto nomem;
            n->len = ev.data.scalar.length;
            n->text = malloc(n->len + 1);
            if (!n->text) {
                free(n);
                goto nomem;
            }
            memcpy(n->text, ev.data.scalar.value, n->len);
            n->text[n->len] = '\0';
            n->is_null = is_null_scalar(&ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth >= max_depth) {
                snprintf(msg, cap, "nested deeper than %d levels", max_depth);
                goto fail_ev;
            }
            n = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQ : YNODE_MAP, &ev);
            if (!n)
                goto nomem;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        if (n) {
            struct ynode *parent = depth > 0 ? stack[depth - 1] : NULL;
            if (!parent) {
                *root = n;
            } else {
                if (parent->kind == YNODE_MAP && parent->n % 2 == 0 &&
                    n->kind != YNODE_SCALAR) {
                    ytree_free(n);
                    snprintf(msg, cap, "a mapping key must be a plain string, "
                             "not a list or a mapping");
                    goto fail_ev;
                }
                if (parent->kind == YNODE_MAP && parent->n % 2 == 1)
                    n->key_line = parent->last->line;
                append_child(parent, n);
            }
            if (n->kind != YNODE_SCALAR)
                stack[depth++] = n;
        }
        yaml_event_delete(&ev);
        if (done)
            break;
    }
    free(stack);
    yaml_parser_delete(&p);
    return 0;

nomem:
    snprintf(msg, cap, "out of memory");
    rc = WEIR_ENOMEM;
fail_ev:
    yaml_event_delete(&ev);
fail:
    free(stack);
    yaml_parser_delete(&p);
    ytree_free(*root);
    *root = NULL;
    return rc;
}

void ytree_free(struct ynode *root)
{
    if (!root)
        return;
    struct ynode *c = root->first;
    while (c) {
        struct ynode *next = c->next;
        ytree_free(c);
        c = next;
    }
    free(root->text);
    free(root->expanded);
    free(root);
}
