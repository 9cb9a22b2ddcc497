/* Text for the project-wide result codes declared in error.h. */
#include "tsdb/error.h"

const char *tsdb_strerror(int code)
{
    switch (code) {
    case TSDB_OK:
        return "ok";
    case TSDB_ENOMEM:
        return "out of memory";
    case TSDB_EINVAL:
        return "invalid argument";
    case TSDB_ECORRUPT:
        return "corrupt data";
    case TSDB_ENOTFOUND:
        return "not found";
    case TSDB_EIO:
        return "input/output error";
    case TSDB_EMAPFULL:
        return "database map is full";
    case TSDB_ELIMIT:
        return "limit exceeded";
    case TSDB_EOUTOFORDER:
        return "out-of-order sample";
    case TSDB_EDUPLICATE:
        return "duplicate timestamp with a different value";
    case TSDB_EVERSION:
        return "unsupported format version";
    case TSDB_EFULL:
        return "buffer full";
    case TSDB_ECLOSED:
        return "database is closing";
    case TSDB_ELOCKED:
        return "data folder is in use by another process";
    }
    return "unknown error";
}
