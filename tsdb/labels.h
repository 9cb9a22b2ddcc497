/*
 * Label sets: the identity of a series.  A series is its canonical label
 * set: labels sorted by name (bytewise), no two with the same name, no empty
 * value (an empty value means "label absent", as in Prometheus).  The metric
 * name is the label "__name__".
 *
 * Canonical bytes (storage-format.md section "Label set encoding") are what
 * the index stores and what the series hash is computed over.
 *
 * Limits (storage-format.md section "Limits"), each reported with the limit
 * and the series named in the error text:
 */
#ifndef TSDB_LABELS_H
#define TSDB_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why 64: a series with more labels is a modelling error, and the postings
 * written per series grow with the count. */
#define TSDB_MAX_LABELS 64
/* Name and value bounds keep a postings key (name, 0x00, value) within
 * LMDB's 511-byte key limit: 128 + 1 + 380 = 509. */
#define TSDB_MAX_LABEL_NAME  128
#define TSDB_MAX_LABEL_VALUE 380
/* Canonical encoding of one label set, upper bound. */
#define TSDB_MAX_LABELS_BYTES                                                  \
    (TSDB_MAX_LABELS * (TSDB_MAX_LABEL_NAME + TSDB_MAX_LABEL_VALUE + 4))

struct tsdb_label {
    const char *name;  /* NUL-terminated */
    const char *value; /* NUL-terminated UTF-8 */
};

/* A decoded label set that owns its strings (one allocation). */
struct tsdb_labels {
    struct tsdb_label *v; /* sorted by name */
    size_t n;
    char *strings; /* backing store of every name and value */
};

/*
 * Puts v[0..*n) into canonical form in place: drops labels whose value is
 * empty (updating *n) and sorts by name.  Then validates it: metric name
 * matches [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*, values
 * valid UTF-8 without NUL, no duplicate names, the limits above.
 * Returns TSDB_OK, TSDB_EINVAL (bad name, bad UTF-8, duplicate, no labels
 * left) or TSDB_ELIMIT; in both error cases err receives a message naming
 * the label, the limit where one was hit, and the series.
 */
int tsdb_labels_normalize(struct tsdb_label *v, size_t *n, char *err,
                          size_t errlen);

/* True if s is a valid metric name / label name as Prometheus defines. */
bool tsdb_metric_name_valid(const char *s, size_t len);
bool tsdb_label_name_valid(const char *s, size_t len);

/*
 * Writes the canonical encoding of the normalized set v[0..n) to out.
 * Returns TSDB_OK with *len set, or TSDB_EFULL if cap is too small.
 */
int tsdb_labels_encode(const struct tsdb_label *v, size_t n, uint8_t *out,
                       size_t cap, size_t *len);

/*
 * Decodes canonical bytes into out (caller owns, free with
 * tsdb_labels_release).  Returns TSDB_OK, TSDB_ECORRUPT (bad lengths, not
 * sorted, bad names) or TSDB_ENOMEM.
 */
int tsdb_labels_decode(const uint8_t *p, size_t len, struct tsdb_labels *out);

/* Frees what tsdb_labels_decode allocated; safe on a zeroed struct. */
void tsdb_labels_release(struct tsdb_labels *ls);

/* The series hash: XXH3-64 (seed 0) of the canonical encoding. */
uint64_t tsdb_labels_hash(const uint8_t *enc, size_t len);

/* Copies v[0..n) (need not be normalized) into out, one allocation that
 * tsdb_labels_release frees.  TSDB_OK or TSDB_ENOMEM. */
int tsdb_labels_copy(const struct tsdb_label *v, size_t n,
                     struct tsdb_labels *out);

/* Prometheus's order of label sets, which API answers are sorted by: pair
 * by pair, name then value (bytewise), then the shorter set first. */
int tsdb_labels_cmp(const struct tsdb_labels *a, const struct tsdb_labels *b);

/* The value of label name in ls, or NULL. */
const char *tsdb_labels_get(const struct tsdb_labels *ls, const char *name);

/*
 * Formats v[0..n) as Prometheus writes a series, metric{a="b",c="d"}, into
 * out (always NUL-terminated, cut with "..." if cap is too small).
 */
void tsdb_labels_format(const struct tsdb_label *v, size_t n, char *out,
                        size_t cap);

#endif
