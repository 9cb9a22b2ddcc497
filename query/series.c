/*
 * The evaluator's values: series over a grid of steps, sets of them, and
 * the label-set operations PromQL needs (order, equality, hash, copy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "query/eval_internal.h"
#include "tsdb/error.h"

bool labels_equal(const struct tsdb_labels *a, const struct tsdb_labels *b)
{
    return a->n == b->n && tsdb_labels_cmp(a, b) == 0;
}

uint64_t labels_hash(const struct tsdb_labels *ls)
{
    uint64_t h = 0;

    for (size_t i = 0; i < ls->n; i++) {
        h = XXH3_64bits_withSeed(ls->v[i].name, strlen(ls->v[i].name) + 1, h);
        h = XXH3_64bits_withSeed(ls->v[i].value, strlen(ls->v[i].value) + 1, h);
    }
    return h;
}

void labels_str(const struct tsdb_labels *ls, char *out, size_t cap)
{
    size_t len = 0;

    if (cap == 0)
        return;
    out[0] = '\0';
#define PUT(...)                                                               \
    do {                                                                       \
        if (len < cap)                                                         \
            len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__);        \
    } while (0)
    PUT("{");
    for (size_t i = 0; i < ls->n; i++)
        PUT("%s%s=\"%s\"", i ? ", " : "", ls->v[i].name, ls->v[i].value);
    PUT("}");
#undef PUT
}

static struct qser *qser_alloc(struct qctx *c, size_t n)
{
    struct qser *s;

    if (ev_hold(c, (int64_t)n) != TSDB_OK)
        return NULL;
    /* One block: the struct, the values, then the presence flags. */
    s = calloc(1, sizeof(*s) + n * sizeof(double) + n);
    if (s == NULL) {
        ev_hold(c, -(int64_t)n);
        ev_nomem(c);
        return NULL;
    }
    s->n = n;
    s->v = (double *)(s + 1);
    s->has = (uint8_t *)(s->v + n);
    return s;
}

struct qser *qser_new(struct qctx *c, const struct tsdb_label *v, size_t nl,
                      size_t n)
{
    struct qser *s = qser_alloc(c, n);

    if (s == NULL)
        return NULL;
    if (tsdb_labels_copy(v, nl, &s->ls) != TSDB_OK) {
        qser_free(c, s);
        ev_nomem(c);
        return NULL;
    }
    return s;
}

struct qser *qser_new_take(struct qctx *c, struct tsdb_labels *ls, size_t n)
{
    struct qser *s = qser_alloc(c, n);

    if (s == NULL) {
        tsdb_labels_release(ls);
        return NULL;
    }
    s->ls = *ls;
    memset(ls, 0, sizeof(*ls));
    return s;
}

int qlabels_sorted(struct qctx *c, struct tsdb_label *v, size_t n,
                   struct tsdb_labels *out)
{
    /* Insertion sort: label sets are short and nearly sorted already. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1].name, v[j].name) > 0; j--) {
            struct tsdb_label t = v[j];

            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return tsdb_labels_copy(v, n, out) == TSDB_OK ? TSDB_OK : ev_nomem(c);
}

void qser_free(struct qctx *c, struct qser *s)
{
    if (s == NULL)
        return;
    ev_hold(c, -(int64_t)s->n);
    tsdb_labels_release(&s->ls);
    free(s);
}

int qser_set_labels(struct qctx *c, struct qser *s, const struct tsdb_label *v,
                    size_t nl)
{
    struct tsdb_labels ls;

    if (tsdb_labels_copy(v, nl, &ls) != TSDB_OK)
        return ev_nomem(c);
    tsdb_labels_release(&s->ls);
    s->ls = ls;
    return TSDB_OK;
}

int qser_drop_name(struct qctx *c, struct qser *s)
{
    struct tsdb_label v[TSDB_MAX_LABELS + 1];
    size_t n = 0;
    bool found = false;

    for (size_t i = 0; i < s->ls.n; i++) {
        if (strcmp(s->ls.v[i].name, "__name__") == 0)
            found = true;
        else if (n < TSDB_MAX_LABELS + 1)
            v[n++] = s->ls.v[i];
    }
    return found ? qser_set_labels(c, s, v, n) : TSDB_OK;
}

bool qser_empty(const struct qser *s)
{
    for (size_t k = 0; k < s->n; k++)
        if (s->has[k])
            return false;
    return true;
}

void qset_init(struct qset *s)
{
    memset(s, 0, sizeof(*s));
}

void qset_release(struct qctx *c, struct qset *s)
{
    for (size_t i = 0; i < s->n; i++)
        qser_free(c, s->v[i]);
    free(s->v);
    qset_init(s);
}

int qset_push(struct qctx *c, struct qset *s, struct qser *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct qser **v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL) {
            qser_free(c, x);
            return ev_nomem(c);
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return TSDB_OK;
}

int qset_collect(void *ctx, struct qser *s)
{
    struct qcollect *k = ctx;

    return qset_push(k->c, k->set, s);
}

int qset_emit(struct qctx *c, struct qset *s, qemit_fn emit, void *ectx)
{
    int rc = TSDB_OK;
    size_t i;

    for (i = 0; i < s->n && rc == TSDB_OK; i++) {
        rc = emit(ectx, s->v[i]);
        s->v[i] = NULL;
    }
    for (; i < s->n; i++)
        qser_free(c, s->v[i]);
    s->n = 0;
    return rc;
}

/* ---- qmap ---- */

void qmap_init(struct qmap *m, size_t nsteps)
{
    memset(m, 0, sizeof(*m));
    m->nsteps = nsteps;
}

void qmap_release(struct qctx *c, struct qmap *m)
{
    qset_release(c, &m->set);
    free(m->slots);
    free(m->hashes);
    m->slots = NULL;
    m->hashes = NULL;
    m->nslots = 0;
}

static int qmap_grow(struct qctx *c, struct qmap *m)
{
    size_t n = m->nslots ? m->nslots * 2 : 64;
    uint32_t *slots = calloc(n, sizeof(*slots));
    uint64_t *hashes = malloc(n * sizeof(*hashes));

    if (slots == NULL || hashes == NULL) {
        free(slots);
        free(hashes);
        return ev_nomem(c);
    }
    for (size_t i = 0; i < m->nslots; i++) {
        size_t j;

        if (m->slots[i] == 0)
            continue;
        for (j = m->hashes[i] & (n - 1); slots[j] != 0; j = (j + 1) & (n - 1))
            ;
        slots[j] = m->slots[i];
        hashes[j] = m->hashes[i];
    }
    free(m->slots);
    free(m->hashes);
    m->slots = slots;
    m->hashes = hashes;
    m->nslots = n;
    return TSDB_OK;
}

int qmap_get(struct qctx *c, struct qmap *m, const struct tsdb_labels *ls,
             struct qser **out, size_t *idx)
{
    uint64_t h = labels_hash(ls);
    size_t j;
    struct qser *s;
    int rc;

    if ((m->set.n + 1) * 2 > m->nslots) {
        rc = qmap_grow(c, m);
        if (rc != TSDB_OK)
            return rc;
    }
    for (j = h & (m->nslots - 1); m->slots[j] != 0;
         j = (j + 1) & (m->nslots - 1)) {
        s = m->set.v[m->slots[j] - 1];
        if (m->hashes[j] == h && labels_equal(&s->ls, ls)) {
            *out = s;
            if (idx != NULL)
                *idx = m->slots[j] - 1;
            return TSDB_OK;
        }
    }
    s = qser_new(c, ls->v, ls->n, m->nsteps);
    if (s == NULL)
        return c->rc;
    rc = qset_push(c, &m->set, s);
    if (rc != TSDB_OK)
        return rc;
    m->slots[j] = (uint32_t)m->set.n;
    m->hashes[j] = h;
    *out = s;
    if (idx != NULL)
        *idx = m->set.n - 1;
    return TSDB_OK;
}

int qmap_merge(struct qctx *c, struct qmap *m, struct qser *s)
{
    struct qser *dst;
    int rc = qmap_get(c, m, &s->ls, &dst, NULL);

    for (size_t k = 0; rc == TSDB_OK && k < s->n; k++) {
        if (!s->has[k])
            continue;
        if (dst->has[k]) {
            rc = ev_fail(c, QUERY_ERR_EXECUTION,
                         "vector cannot contain metrics with the same "
                         "labelset");
            break;
        }
        dst->has[k] = 1;
        dst->v[k] = s->v[k];
    }
    qser_free(c, s);
    return rc;
}
