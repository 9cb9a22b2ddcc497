/*
 * PromQL functions whose arguments are instant vectors and scalars: the
 * element-wise maths and date functions, label_replace and label_join,
 * histogram_quantile, absent, sort, timestamp, vector and scalar.  Which
 * functions keep the metric name follows Prometheus 2.42 (protocols.md
 * section 3): only label_replace, label_join, sort and sort_desc here.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <float.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/eval_internal.h"
#include "query/funcs.h"
#include "tsdb/error.h"

/* ---- element-wise functions ---- */

enum elem_fn {
    EL_ABS,
    EL_CEIL,
    EL_FLOOR,
    EL_EXP,
    EL_SQRT,
    EL_LN,
    EL_LOG2,
    EL_LOG10,
    EL_SGN,
    EL_ACOS,
    EL_ACOSH,
    EL_ASIN,
    EL_ASINH,
    EL_ATAN,
    EL_ATANH,
    EL_COS,
    EL_COSH,
    EL_SIN,
    EL_SINH,
    EL_TAN,
    EL_TANH,
    EL_DEG,
    EL_RAD,
    EL_ROUND,
    EL_CLAMP,
    EL_CLAMP_MIN,
    EL_CLAMP_MAX,
    EL_DAY_OF_MONTH,
    EL_DAY_OF_WEEK,
    EL_DAY_OF_YEAR,
    EL_DAYS_IN_MONTH,
    EL_HOUR,
    EL_MINUTE,
    EL_MONTH,
    EL_YEAR,
    EL_TIMESTAMP,
};

static const struct {
    const char *name;
    enum elem_fn fn;
} elem_fns[] = {
    {"abs", EL_ABS},
    {"ceil", EL_CEIL},
    {"floor", EL_FLOOR},
    {"exp", EL_EXP},
    {"sqrt", EL_SQRT},
    {"ln", EL_LN},
    {"log2", EL_LOG2},
    {"log10", EL_LOG10},
    {"sgn", EL_SGN},
    {"acos", EL_ACOS},
    {"acosh", EL_ACOSH},
    {"asin", EL_ASIN},
    {"asinh", EL_ASINH},
    {"atan", EL_ATAN},
    {"atanh", EL_ATANH},
    {"cos", EL_COS},
    {"cosh", EL_COSH},
    {"sin", EL_SIN},
    {"sinh", EL_SINH},
    {"tan", EL_TAN},
    {"tanh", EL_TANH},
    {"deg", EL_DEG},
    {"rad", EL_RAD},
    {"round", EL_ROUND},
    {"clamp", EL_CLAMP},
    {"clamp_min", EL_CLAMP_MIN},
    {"clamp_max", EL_CLAMP_MAX},
    {"day_of_month", EL_DAY_OF_MONTH},
    {"day_of_week", EL_DAY_OF_WEEK},
    {"day_of_year", EL_DAY_OF_YEAR},
    {"days_in_month", EL_DAYS_IN_MONTH},
    {"hour", EL_HOUR},
    {"minute", EL_MINUTE},
    {"month", EL_MONTH},
    {"year", EL_YEAR},
    {"timestamp", EL_TIMESTAMP},
};

static bool is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A calendar field of Unix time v (seconds, UTC), as Go's time package
 * gives it; NaN for a time gmtime cannot represent. */
static double date_field(enum elem_fn fn, double v)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    time_t secs;
    struct tm tm;

    if (!(v > -1e17 && v < 1e17))
        return NAN;
    secs = (time_t)v; /* toward zero, as Go's int64(v) */
    if (gmtime_r(&secs, &tm) == NULL)
        return NAN;
    switch (fn) {
    case EL_DAY_OF_MONTH:
        return tm.tm_mday;
    case EL_DAY_OF_WEEK:
        return tm.tm_wday;
    case EL_DAY_OF_YEAR:
        return tm.tm_yday + 1;
    case EL_DAYS_IN_MONTH:
        if (tm.tm_mon == 1 && is_leap((long)tm.tm_year + 1900))
            return 29;
        return mdays[tm.tm_mon];
    case EL_HOUR:
        return tm.tm_hour;
    case EL_MINUTE:
        return tm.tm_min;
    case EL_MONTH:
        return tm.tm_mon + 1;
    default:
        return (double)tm.tm_year + 1900;
    }
}

/*
 * Natural log as Prometheus computes it on x86-64.  Go's assembly log
 * reads the exponent bits without normalising a subnormal first, so for
 * 0 < x < 2^-1022 it answers log(1 + mantissa / 2^52) - 1023 ln 2 (about
 * -709.09) instead of the true value (down to -744.4).  Reproduced so
 * that answers match; every other input goes to the C library.
 */
static double go_log(double x)
{
    if (x > 0 && x < DBL_MIN) {
        uint64_t bits;

        memcpy(&bits, &x, sizeof(bits));
        bits &= (1ULL << 52) - 1;
        return log1p((double)bits / 4503599627370496.0) - 1023 * M_LN2;
    }
    return log(x);
}

static double sgn(double v)
{
    if (v < 0)
        return -1;
    if (v > 0)
        return 1;
    return v; /* 0, -0 and NaN stay themselves */
}

/* Applies fn to x with per-step arguments a and b; false: no output. */
static bool elem_apply(enum elem_fn fn, double x, double a, double b,
                       double *out)
{
    switch (fn) {
    case EL_ABS:
        *out = fabs(x);
        break;
    case EL_CEIL:
        *out = ceil(x);
        break;
    case EL_FLOOR:
        *out = floor(x);
        break;
    case EL_EXP:
        *out = exp(x);
        break;
    case EL_SQRT:
        *out = sqrt(x);
        break;
    case EL_LN:
        *out = go_log(x);
        break;
    case EL_LOG2:
        *out = log2(x);
        break;
    case EL_LOG10:
        *out = go_log(x) * (1 / M_LN10);
        break;
    case EL_SGN:
        *out = sgn(x);
        break;
    case EL_ACOS:
        *out = acos(x);
        break;
    case EL_ACOSH:
        *out = acosh(x);
        break;
    case EL_ASIN:
        *out = asin(x);
        break;
    case EL_ASINH:
        *out = asinh(x);
        break;
    case EL_ATAN:
        *out = atan(x);
        break;
    case EL_ATANH:
        *out = atanh(x);
        break;
    case EL_COS:
        *out = cos(x);
        break;
    case EL_COSH:
        *out = cosh(x);
        break;
    case EL_SIN:
        *out = sin(x);
        break;
    case EL_SINH:
        *out = sinh(x);
        break;
    case EL_TAN:
        *out = tan(x);
        break;
    case EL_TANH:
        *out = tanh(x);
        break;
    case EL_DEG:
        *out = x * 180 / M_PI;
        break;
    case EL_RAD:
        *out = x * M_PI / 180;
        break;
    case EL_ROUND:
        *out = query_round(x, a);
        break;
    case EL_CLAMP:
        return query_clamp(x, a, b, out);
    case EL_CLAMP_MIN:
        *out = query_clamp_min(x, a);
        break;
    case EL_CLAMP_MAX:
        *out = query_clamp_max(x, a);
        break;
    case EL_TIMESTAMP:
        *out = x;
        break;
    default:
        *out = date_field(fn, x);
        break;
    }
    return true;
}

struct elemctx {
    struct qctx *c;
    const struct qgrid *g;
    enum elem_fn fn;
    double *a, *b;
    bool step_time; /* timestamp() of a computed vector: the step's time */
    struct qmap *merge;
    qemit_fn emit;
    void *ectx;
};

static int elem_series(void *ctx, struct qser *s)
{
    struct elemctx *x = ctx;

    for (size_t k = 0; k < s->n; k++) {
        double in = x->step_time ? (double)qgrid_at(x->g, k) / 1000.0 : s->v[k];

        if (s->has[k])
            s->has[k] = elem_apply(x->fn, in, x->a ? x->a[k] : 1,
                                   x->b ? x->b[k] : 0, &s->v[k]);
    }
    return ev_pass_on(x->c, s, true, x->merge, x->emit, x->ectx);
}

/* A date function without argument: one series {} at every step. */
static int date_of_steps(struct qctx *c, enum elem_fn fn, const struct qgrid *g,
                         qemit_fn emit, void *ectx)
{
    struct qser *s = qser_new(c, NULL, 0, g->n);

    if (s == NULL)
        return c->rc;
    for (size_t k = 0; k < g->n; k++) {
        s->has[k] = 1;
        s->v[k] = date_field(fn, (double)(qgrid_at(g, k) / 1000));
    }
    return emit(ectx, s);
}

static int alloc_scalar(struct qctx *c, const struct query_node *arg,
                        const struct qgrid *g, double **out)
{
    *out = malloc(g->n * sizeof(double));
    if (*out == NULL)
        return ev_nomem(c);
    return ev_scalar(c, arg, g, *out);
}

static int call_elem(struct qctx *c, const struct query_node *n,
                     enum elem_fn fn, const struct qgrid *g, qemit_fn emit,
                     void *ectx)
{
    struct elemctx x = {c, g, fn, NULL, NULL, false, NULL, emit, ectx};
    const struct query_node *arg;
    struct qmap m;
    int rc = TSDB_OK;

    if (n->u.call.nargs == 0)
        return date_of_steps(c, fn, g, emit, ectx);
    arg = n->u.call.args[0];
    if (n->u.call.nargs > 1)
        rc = alloc_scalar(c, n->u.call.args[1], g, &x.a);
    if (rc == TSDB_OK && n->u.call.nargs > 2)
        rc = alloc_scalar(c, n->u.call.args[2], g, &x.b);
    qmap_init(&m, g->n);
    if (ev_names_vary(arg))
        x.merge = &m;
    if (rc == TSDB_OK && fn == EL_TIMESTAMP &&
        ev_unparen(arg)->kind == QUERY_NODE_SELECTOR) {
        rc = ev_selector(c, ev_unparen(arg), g, true, elem_series, &x);
    } else if (rc == TSDB_OK) {
        x.step_time = fn == EL_TIMESTAMP;
        rc = ev_vector(c, arg, g, elem_series, &x);
    }
    if (rc == TSDB_OK && x.merge != NULL)
        rc = qset_emit(c, &m.set, emit, ectx);
    qmap_release(c, &m);
    free(x.a);
    free(x.b);
    return rc;
}

/* ---- label_replace, label_join ---- */

/* Go's regexp.Expand: $1, ${1}, $name, ${name}, $$; a group that does
 * not exist or did not take part gives "", and "$1x" names group "1x". */
static int expand(pcre2_code *re, const char *tmpl, const char *subject,
                  const PCRE2_SIZE *ov, uint32_t ngroups, char **out)
{
    size_t cap = strlen(tmpl) + 64, len = 0;
    char *buf = malloc(cap);
    const char *p = tmpl;

#define APPEND(src, n)                                                         \
    do {                                                                       \
        size_t n_ = (n);                                                       \
        if (len + n_ + 1 > cap) {                                              \
            char *nb;                                                          \
            while (len + n_ + 1 > cap)                                         \
                cap *= 2;                                                      \
            nb = realloc(buf, cap);                                            \
            if (nb == NULL) {                                                  \
                free(buf);                                                     \
                return TSDB_ENOMEM;                                            \
            }                                                                  \
            buf = nb;                                                          \
        }                                                                      \
        memcpy(buf + len, (src), n_);                                          \
        len += n_;                                                             \
    } while (0)

    if (buf == NULL)
        return TSDB_ENOMEM;
    while (*p != '\0') {
        const char *d = strchr(p, '$'), *name, *end;
        size_t nlen;
        bool brace;
        long num = -1;

        if (d == NULL) {
            APPEND(p, strlen(p));
            break;
        }
        APPEND(p, (size_t)(d - p));
        p = d + 1;
        if (*p == '$') {
            APPEND("$", 1);
            p++;
            continue;
        }
        brace = *p == '{';
        name = brace ? p + 1 : p;
        for (end = name;
             *end == '_' || (*end >= '0' && *end <= '9') ||
             (*end >= 'a' && *end <= 'z') || (*end >= 'A' && *end <= 'Z');
             end++)
            ;
        nlen = (size_t)(end - name);
        if (nlen == 0 || (brace && *end != '}')) {
            APPEND("$", 1); /* malformed: the $ is text */
            continue;
        }
        p = brace ? end + 1 : end;
        num = 0;
        for (size_t i = 0; i < nlen; i++) {
            if (name[i] < '0' || name[i] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (name[i] - '0');
        }
        if (num >= 0 && name[0] == '0' && nlen > 1)
            num = -1;
        if (num < 0) {
            char tmp[256];
            int idx;

            if (nlen >= sizeof(tmp))
                continue;
            memcpy(tmp, name, nlen);
            tmp[nlen] = '\0';
            idx = pcre2_substring_number_from_name(re, (PCRE2_SPTR)tmp);
            if (idx <= 0)
                continue;
            num = idx;
        }
        if ((uint32_t)num < ngroups && ov[2 * num] != PCRE2_UNSET)
            APPEND(subject + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
    buf[len] = '\0';
    *out = buf;
    return TSDB_OK;
#undef APPEND
}

/* s's labels with dst set to value (removed when value is ""). */
static int set_label(struct qctx *c, struct qser *s, const char *dst,
                     const char *value)
{
    struct tsdb_label *v = malloc((s->ls.n + 1) * sizeof(*v));
    size_t n = 0;
    bool placed = value[0] == '\0';
    int rc;

    if (v == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < s->ls.n; i++) {
        int d = strcmp(s->ls.v[i].name, dst);

        if (d > 0 && !placed) {
            v[n++] = (struct tsdb_label){dst, value};
            placed = true;
        }
        if (d != 0)
            v[n++] = s->ls.v[i];
    }
    if (!placed)
        v[n++] = (struct tsdb_label){dst, value};
    rc = qser_set_labels(c, s, v, n);
    free(v);
    return rc;
}

static const char *label_or_empty(const struct tsdb_labels *ls,
                                  const char *name)
{
    const char *v = tsdb_labels_get(ls, name);

    return v ? v : "";
}

struct relabel {
    struct qctx *c;
    bool join;
    const char *dst, *repl, *src, *sep;
    const struct query_node *const *srcs;
    size_t nsrcs;
    pcre2_code *re;
    pcre2_match_data *md;
    struct qmap *merge;
};

static int relabel_series(void *ctx, struct qser *s)
{
    struct relabel *x = ctx;
    char *value = NULL;
    int rc = TSDB_OK;

    if (x->join) {
        size_t len = 1;

        for (size_t i = 0; i < x->nsrcs; i++)
            len += strlen(label_or_empty(&s->ls, ev_string(x->srcs[i])->p)) +
                   strlen(x->sep);
        value = malloc(len);
        if (value == NULL)
            rc = ev_nomem(x->c);
        else
            value[0] = '\0';
        for (size_t i = 0; rc == TSDB_OK && i < x->nsrcs; i++) {
            if (i > 0)
                strcat(value, x->sep);
            strcat(value, label_or_empty(&s->ls, ev_string(x->srcs[i])->p));
        }
    } else {
        const char *subject = label_or_empty(&s->ls, x->src);
        int m = pcre2_match(x->re, (PCRE2_SPTR)subject, strlen(subject), 0, 0,
                            x->md, NULL);

        if (m >= 0 &&
            expand(x->re, x->repl, subject, pcre2_get_ovector_pointer(x->md),
                   pcre2_get_ovector_count(x->md), &value) != TSDB_OK)
            rc = ev_nomem(x->c);
    }
    if (rc == TSDB_OK && value != NULL)
        rc = set_label(x->c, s, x->dst, value);
    free(value);
    if (rc != TSDB_OK) {
        qser_free(x->c, s);
        return rc;
    }
    return qmap_merge(x->c, x->merge, s);
}

static int call_relabel(struct qctx *c, const struct query_node *n,
                        const struct qgrid *g, qemit_fn emit, void *ectx)
{
    struct relabel x;
    struct qmap m;
    const char *fn = n->u.call.fn->name;
    int rc = TSDB_OK;

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.join = strcmp(fn, "label_join") == 0;
    x.dst = ev_string(n->u.call.args[1])->p;
    if (x.join) {
        x.sep = ev_string(n->u.call.args[2])->p;
        x.srcs = (const struct query_node *const *)n->u.call.args + 3;
        x.nsrcs = n->u.call.nargs - 3;
        for (size_t i = 0; i < x.nsrcs; i++) {
            const struct query_str *s = ev_string(x.srcs[i]);

            if (!tsdb_label_name_valid(s->p, s->len))
                return ev_fail(c, QUERY_ERR_EXECUTION,
                               "invalid source label name in label_join(): "
                               "%s",
                               s->p);
        }
    } else {
        const struct query_str *re = ev_string(n->u.call.args[4]);
        size_t plen = re->len + 8;
        char *pat = malloc(plen);
        int errcode;
        PCRE2_SIZE erroff;

        x.repl = ev_string(n->u.call.args[2])->p;
        x.src = ev_string(n->u.call.args[3])->p;
        if (pat == NULL)
            return ev_nomem(c);
        snprintf(pat, plen, "^(?:%s)$", re->p);
        x.re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                             &erroff, NULL);
        free(pat);
        if (x.re == NULL)
            return ev_fail(c, QUERY_ERR_EXECUTION,
                           "invalid regular expression in label_replace(): "
                           "%s",
                           re->p);
        x.md = pcre2_match_data_create_from_pattern(x.re, NULL);
        if (x.md == NULL)
            rc = ev_nomem(c);
    }
    if (rc == TSDB_OK && !tsdb_label_name_valid(x.dst, strlen(x.dst)))
        rc = ev_fail(c, QUERY_ERR_EXECUTION,
                     "invalid destination label name in %s(): %s", fn, x.dst);
    qmap_init(&m, g->n);
    x.merge = &m;
    if (rc == TSDB_OK)
        rc = ev_vector(c, n->u.call.args[0], g, relabel_series, &x);
    if (rc == TSDB_OK)
        rc = qset_emit(c, &m.set, emit, ectx);
    qmap_release(c, &m);
    pcre2_match_data_free(x.md);
    pcre2_code_free(x.re);
    return rc;
}

/* ---- histogram_quantile ---- */

static bool parse_le(const char *s, double *out)
{
    char *end;

    if (s == NULL || *s == '\0')
        return false;
    *out = strtod(s, &end);
    return *end == '\0';
}

/* Labels of s without le, and without __name__ unless keep_name. */
static int without_le(struct qctx *c, const struct qser *s, bool keep_name,
                      struct tsdb_labels *out)
{
    struct tsdb_label *v = malloc((s->ls.n + 1) * sizeof(*v));
    size_t n = 0;
    int rc;

    if (v == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < s->ls.n; i++) {
        const char *name = s->ls.v[i].name;

        if (strcmp(name, "le") == 0 ||
            (!keep_name && strcmp(name, "__name__") == 0))
            continue;
        v[n++] = s->ls.v[i];
    }
    rc = tsdb_labels_copy(v, n, out);
    free(v);
    return rc == TSDB_OK ? TSDB_OK : ev_nomem(c);
}

static int call_histogram_quantile(struct qctx *c, const struct query_node *n,
                                   const struct qgrid *g, qemit_fn emit,
                                   void *ectx)
{
    struct qset in;
    struct qmap groups, out;
    double *q = NULL, *le = NULL;
    size_t *group = NULL, *first = NULL, *members = NULL;
    struct query_bucket *b = NULL;
    int rc;

    qset_init(&in);
    qmap_init(&groups, 1);
    qmap_init(&out, g->n);
    rc = alloc_scalar(c, n->u.call.args[0], g, &q);
    if (rc == TSDB_OK)
        rc = ev_collect(c, n->u.call.args[1], g, &in);
    if (rc == TSDB_OK) {
        le = malloc((in.n + 1) * sizeof(*le));
        group = malloc((in.n + 1) * sizeof(*group));
        members = malloc((in.n + 1) * sizeof(*members));
        b = malloc((in.n + 1) * sizeof(*b));
        if (le == NULL || group == NULL || b == NULL || members == NULL)
            rc = ev_nomem(c);
    }
    /* Histograms are told apart by every label but le, the name too. */
    for (size_t i = 0; rc == TSDB_OK && i < in.n; i++) {
        struct tsdb_labels key;
        struct qser *gs;

        group[i] = SIZE_MAX;
        if (!parse_le(tsdb_labels_get(&in.v[i]->ls, "le"), &le[i]))
            continue;
        rc = without_le(c, in.v[i], true, &key);
        if (rc == TSDB_OK)
            rc = qmap_get(c, &groups, &key, &gs, &group[i]);
        tsdb_labels_release(&key);
    }
    /* Each group's buckets, members[first[g] .. first[g + 1]). */
    if (rc == TSDB_OK) {
        first = calloc(groups.set.n + 2, sizeof(*first));
        if (first == NULL)
            rc = ev_nomem(c);
    }
    for (size_t i = 0; rc == TSDB_OK && i < in.n; i++)
        if (group[i] != SIZE_MAX)
            first[group[i] + 2]++;
    for (size_t gi = 2; rc == TSDB_OK && gi < groups.set.n + 2; gi++)
        first[gi] += first[gi - 1];
    for (size_t i = 0; rc == TSDB_OK && i < in.n; i++)
        if (group[i] != SIZE_MAX)
            members[first[group[i] + 1]++] = i;
    for (size_t gi = 0; rc == TSDB_OK && gi < groups.set.n; gi++) {
        struct tsdb_labels ls;
        struct qser *res;

        rc = without_le(c, groups.set.v[gi], false, &ls);
        if (rc != TSDB_OK)
            break;
        res = qser_new_take(c, &ls, g->n);
        if (res == NULL) {
            rc = c->rc;
            break;
        }
        for (size_t k = 0; k < g->n; k++) {
            size_t nb = 0;

            for (size_t m = first[gi]; m < first[gi + 1]; m++) {
                size_t i = members[m];

                if (in.v[i]->has[k])
                    b[nb++] = (struct query_bucket){le[i], in.v[i]->v[k]};
            }
            if (nb == 0)
                continue;
            res->has[k] = 1;
            res->v[k] = query_histogram_quantile(q[k], b, nb);
        }
        rc = qmap_merge(c, &out, res);
    }
    if (rc == TSDB_OK)
        rc = qset_emit(c, &out.set, emit, ectx);
    qmap_release(c, &out);
    qmap_release(c, &groups);
    qset_release(c, &in);
    free(q);
    free(le);
    free(group);
    free(first);
    free(members);
    free(b);
    return rc;
}

/* ---- absent, sort, vector ---- */

int ev_absent_labels(struct qctx *c, const struct query_node *arg,
                     struct tsdb_labels *out)
{
    const struct query_node *sel = ev_unparen(arg);
    struct tsdb_label *v;
    size_t n = 0, nm;
    int rc;

    if (sel->kind == QUERY_NODE_MATRIX)
        sel = sel->u.matrix.sel;
    if (sel->kind != QUERY_NODE_SELECTOR)
        return tsdb_labels_copy(NULL, 0, out) == TSDB_OK ? TSDB_OK
                                                         : ev_nomem(c);
    nm = sel->u.sel.nmatchers;
    v = malloc((nm + 1) * sizeof(*v));
    if (v == NULL)
        return ev_nomem(c);
    /* A label gets its value from its one equality matcher; a label with
     * any other matcher, or two, is left out. */
    for (size_t i = 0; i < nm; i++) {
        const struct query_matcher *m = &sel->u.sel.matchers[i];
        bool keep = m->op == QUERY_MATCH_EQ && m->value.len > 0;

        if (strcmp(m->name.p, "__name__") == 0)
            continue;
        for (size_t j = 0; keep && j < nm; j++)
            if (j != i && strcmp(sel->u.sel.matchers[j].name.p, m->name.p) == 0)
                keep = false;
        if (keep)
            v[n++] = (struct tsdb_label){m->name.p, m->value.p};
    }
    rc = qlabels_sorted(c, v, n, out);
    free(v);
    return rc;
}

struct presence {
    struct qctx *c;
    uint8_t *any;
};

static int mark_present(void *ctx, struct qser *s)
{
    struct presence *x = ctx;

    for (size_t k = 0; k < s->n; k++)
        x->any[k] |= s->has[k];
    qser_free(x->c, s);
    return TSDB_OK;
}

static int call_absent(struct qctx *c, const struct query_node *n,
                       const struct qgrid *g, qemit_fn emit, void *ectx)
{
    struct presence x = {c, calloc(g->n, 1)};
    struct tsdb_labels ls;
    struct qser *s;
    int rc;

    if (x.any == NULL)
        return ev_nomem(c);
    rc = ev_vector(c, n->u.call.args[0], g, mark_present, &x);
    if (rc == TSDB_OK)
        rc = ev_absent_labels(c, n->u.call.args[0], &ls);
    if (rc != TSDB_OK) {
        free(x.any);
        return rc;
    }
    s = qser_new_take(c, &ls, g->n);
    if (s == NULL) {
        free(x.any);
        return c->rc;
    }
    for (size_t k = 0; k < g->n; k++) {
        s->has[k] = !x.any[k];
        s->v[k] = 1;
    }
    free(x.any);
    if (qser_empty(s)) {
        qser_free(c, s);
        return TSDB_OK;
    }
    return emit(ectx, s);
}

/* sort and sort_desc order an instant vector by value, NaN last; a range
 * query's result is ordered by labels whatever they do. */
static int cmp_by_value(const void *a, const void *b, void *desc)
{
    double x = (*(struct qser *const *)a)->v[0];
    double y = (*(struct qser *const *)b)->v[0];

    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    if (x == y)
        return 0;
    return ((x < y) != *(bool *)desc) ? -1 : 1;
}

static int call_sort(struct qctx *c, const struct query_node *n,
                     const struct qgrid *g, qemit_fn emit, void *ectx)
{
    bool desc = strcmp(n->u.call.fn->name, "sort_desc") == 0;
    struct qset in;
    int rc;

    if (g->n != 1)
        return ev_vector(c, n->u.call.args[0], g, emit, ectx);
    qset_init(&in);
    rc = ev_collect(c, n->u.call.args[0], g, &in);
    if (rc == TSDB_OK) {
        if (in.n > 1)
            qsort_r(in.v, in.n, sizeof(*in.v), cmp_by_value, &desc);
        rc = qset_emit(c, &in, emit, ectx);
    }
    qset_release(c, &in);
    return rc;
}

static int call_vector(struct qctx *c, const struct query_node *n,
                       const struct qgrid *g, qemit_fn emit, void *ectx)
{
    struct qser *s = qser_new(c, NULL, 0, g->n);
    int rc;

    if (s == NULL)
        return c->rc;
    rc = ev_scalar(c, n->u.call.args[0], g, s->v);
    if (rc != TSDB_OK) {
        qser_free(c, s);
        return rc;
    }
    memset(s->has, 1, g->n);
    return emit(ectx, s);
}

int ev_call(struct qctx *c, const struct query_node *n, const struct qgrid *g,
            qemit_fn emit, void *ectx)
{
    const char *fn = n->u.call.fn->name;

    for (size_t i = 0; i < sizeof(elem_fns) / sizeof(elem_fns[0]); i++)
        if (strcmp(elem_fns[i].name, fn) == 0)
            return call_elem(c, n, elem_fns[i].fn, g, emit, ectx);
    if (strcmp(fn, "label_replace") == 0 || strcmp(fn, "label_join") == 0)
        return call_relabel(c, n, g, emit, ectx);
    if (strcmp(fn, "histogram_quantile") == 0)
        return call_histogram_quantile(c, n, g, emit, ectx);
    if (strcmp(fn, "absent") == 0)
        return call_absent(c, n, g, emit, ectx);
    if (strcmp(fn, "sort") == 0 || strcmp(fn, "sort_desc") == 0)
        return call_sort(c, n, g, emit, ectx);
    if (strcmp(fn, "vector") == 0)
        return call_vector(c, n, g, emit, ectx);
    /* Native-histogram functions: float samples are never histograms, so
     * they select nothing, as Prometheus answers for float data. */
    if (strcmp(fn, "histogram_count") == 0 ||
        strcmp(fn, "histogram_sum") == 0 ||
        strcmp(fn, "histogram_fraction") == 0)
        return TSDB_OK;
    return ev_fail(c, QUERY_ERR_BAD_DATA, "function %s() is not implemented",
                   fn);
}

/* ---- scalar-valued functions ---- */

struct single {
    struct qctx *c;
    double *out;
    uint32_t *count;
};

static int count_samples(void *ctx, struct qser *s)
{
    struct single *x = ctx;

    for (size_t k = 0; k < s->n; k++)
        if (s->has[k] && x->count[k]++ == 0)
            x->out[k] = s->v[k];
    qser_free(x->c, s);
    return TSDB_OK;
}

int ev_call_scalar(struct qctx *c, const struct query_node *n,
                   const struct qgrid *g, double *out)
{
    const char *fn = n->u.call.fn->name;
    struct single x = {c, out, NULL};
    int rc;

    if (strcmp(fn, "time") == 0) {
        for (size_t k = 0; k < g->n; k++)
            out[k] = (double)qgrid_at(g, k) / 1000.0;
        return TSDB_OK;
    }
    if (strcmp(fn, "pi") == 0) {
        for (size_t k = 0; k < g->n; k++)
            out[k] = M_PI;
        return TSDB_OK;
    }
    if (strcmp(fn, "scalar") != 0)
        return ev_fail(c, QUERY_ERR_BAD_DATA,
                       "function %s() is not implemented", fn);
    x.count = calloc(g->n, sizeof(*x.count));
    if (x.count == NULL)
        return ev_nomem(c);
    rc = ev_vector(c, n->u.call.args[0], g, count_samples, &x);
    for (size_t k = 0; k < g->n; k++)
        if (x.count[k] != 1)
            out[k] = NAN;
    free(x.count);
    return rc;
}
