/*
 * One set of result codes for every module (tsdb, query, anomaly, http).
 * Actions return TSDB_OK (0) or a negative TSDB_E* code; results travel in
 * out-parameters.  No LMDB, errno or PCRE2 value leaves tsdb/: they are
 * mapped here and the original is logged where it happened.
 */
#ifndef TSDB_ERROR_H
#define TSDB_ERROR_H

enum tsdb_err {
    TSDB_OK = 0,
    TSDB_ENOMEM = -1,      /* allocation failed */
    TSDB_EINVAL = -2,      /* bad argument or bad input from a caller */
    TSDB_ECORRUPT = -3,    /* stored or received bytes fail validation */
    TSDB_ENOTFOUND = -4,   /* no such key, series or file */
    TSDB_EIO = -5,         /* read, write, fsync or mmap failed */
    TSDB_EMAPFULL = -6,    /* the LMDB map is full: raise --map-size */
    TSDB_ELIMIT = -7,      /* a documented limit was exceeded */
    TSDB_EOUTOFORDER = -8, /* sample older than the series' newest */
    TSDB_EDUPLICATE = -9,  /* same timestamp, different value */
    TSDB_EVERSION = -10,   /* on-disk format version we cannot read */
    TSDB_EFULL = -11,      /* a bounded buffer has no room left */
    TSDB_ECLOSED = -12,    /* the database is shutting down */
    TSDB_ELOCKED = -13,    /* another process holds the data folder */
};

/* A fixed, human-readable description of code; never NULL. */
const char *tsdb_strerror(int code);

#endif
