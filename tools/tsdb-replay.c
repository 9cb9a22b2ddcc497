/*
 * tsdb-replay: runs detectors offline.  Two modes, chosen by their flag:
 * --data replays stored history through detector definitions exactly as
 * the live scheduler would have (anomaly/replay_db.c) and reports the
 * events; --csv replays "timestamp,value" files (the NAB layout) through
 * one model and writes per file "timestamp,value,anomaly_score", ready
 * for nab-score (anomaly/replay_csv.c).  This file only reads flags; each
 * mode checks the flags it uses.  Exit status: 0 done, 1 the run failed,
 * 2 bad flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomaly/model.h"
#include "anomaly/replay_csv.h"
#include "anomaly/replay_db.h"
#include "query/duration.h"
#include "tsdb/log.h"
#include "tsdb/error.h"

#define MAX_INPUTS 4096

struct flags {
    const char *inputs[MAX_INPUTS];
    size_t ninputs;
    bool csv;
    const char *model, *out;
    const char *names[ANOMALY_MAX_PARAMS], *values[ANOMALY_MAX_PARAMS];
    char *pairs[ANOMALY_MAX_PARAMS]; /* k=v copies the two point into */
    size_t nparams;
    struct anomaly_replay_opts o;
    struct replay_db_opts db; /* --data mode */
    bool has_start, has_end;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tsdb-replay --data DIR --detector FILE --start T "
               "--end T [flags]\n"
               "       tsdb-replay --csv FILE|DIR... --model NAME "
               "[--param k=v]... --out DIR [flags]\n\n"
               "Replays the stored history of DIR (read-only: tsdbd may run "
               "on it) through\nthe detectors of FILE ({\"NAME\": "
               "{definition}, ...}, as --detectors of\ntsdbd) step by step, "
               "exactly as the live scheduler would have from T on\n(after "
               "learning quietly from each detector's history before it), "
               "and prints\nthe events it would have raised and a summary "
               "per series.\n\n"
               "  --data DIR          the data folder\n"
               "  --detector FILE     detector definitions\n"
               "  --start T, --end T  RFC 3339 or Unix seconds\n"
               "  --json              the report as JSON\n"
               "  --plot FILE.svg     draw each series (at most 12), its "
               "expected band and\n"
               "                      the anomaly windows (also with --csv: "
               "one panel per\n"
               "                      file, the windows its anomalous "
               "steps)\n"
               "  --save-state        hand the learned model states to the "
               "live detector\n"
               "                      of the same name (DIR/detectors/"
               "NAME.state), which\n"
               "                      loads them when it is next created or "
               "started\n\n"
               "Replays CSV files of \"timestamp,value\" (the NAB layout) "
               "through a model\nand writes timestamp,value,anomaly_score per "
               "file under the same relative\npath in DIR.  A folder is walked "
               "for *.csv, keeping its sub-folders.\n\n"
               "  --csv FILE|DIR...   inputs (every argument up to the next "
               "flag)\n"
               "  --model NAME        ewma, holt_winters or seasonal_robust\n"
               "  --param k=v         a model parameter (repeatable); "
               "season=DUR sets the season\n"
               "  --out DIR           output folder, created as needed\n"
               "  --interval DUR      evaluation step (default: each file's "
               "most common spacing)\n"
               "  --season DUR        the season, e.g. 1d (same as "
               "--param season=DUR)\n"
               "  --sensitivity X     band half-width in deviations "
               "(default 3)\n"
               "  --min-deviation X   smallest absolute deviation that can be "
               "anomalous (default 0)\n"
               "  --strict            a bad row fails the run (default: "
               "skipped, counted, reported)\n"
               "  --time-passes N     run the model N more times over each "
               "file, for the speed figure\n"
               "  --help              this text\n"
               "On a terminal, progress is shown on stderr.  The last line on "
               "stderr sums up\nfiles, rows, bad rows and the model's speed in "
               "samples per CPU second.\n");
}

static int bad_flag(const char *flag, const char *why)
{
    fprintf(stderr, "tsdb-replay: %s: %s (see --help)\n", flag, why);
    return 2;
}

static int take_duration(const char *flag, const char *v, int64_t *ms)
{
    if (!v || query_parse_duration(v, ms) != TSDB_OK || *ms <= 0)
        return bad_flag(flag, "expected a duration such as 5m or 1d");
    return 0;
}

static int take_time(const char *flag, const char *v, int64_t *ms)
{
    if (query_parse_time(v, ms) != TSDB_OK)
        return bad_flag(flag, "expected RFC 3339 or Unix seconds");
    return 0;
}

static int take_number(const char *flag, const char *v, double *x)
{
    char *end;

    if (!v || (*x = strtod(v, &end), end == v || *end || *x < 0))
        return bad_flag(flag, "expected a number >= 0");
    return 0;
}

static int take_param(struct flags *f, const char *kv)
{
    char *eq, *copy;

    if (!kv || !(eq = strchr(kv, '=')) || eq == kv)
        return bad_flag("--param", "expected k=v");
    if (strncmp(kv, "season=", 7) == 0)
        return take_duration("--param season", eq + 1, &f->o.season_ms);
    if (f->nparams == ANOMALY_MAX_PARAMS)
        return bad_flag("--param", "too many parameters");
    copy = strdup(kv);
    if (!copy)
        return bad_flag("--param", "out of memory");
    copy[eq - kv] = '\0';
    f->pairs[f->nparams] = copy;
    f->names[f->nparams] = copy;
    f->values[f->nparams++] = copy + (eq - kv) + 1;
    return 0;
}

static int take_inputs(struct flags *f, int argc, char **argv, int *i)
{
    f->csv = true;
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
        if (f->ninputs == MAX_INPUTS)
            return bad_flag("--csv", "too many inputs; give a folder");
        f->inputs[f->ninputs++] = argv[++*i];
    }
    return f->ninputs ? 0 : bad_flag("--csv", "expected files or folders");
}

/* One flag at argv[*i]; 0, or the exit status for a bad one. */
static int take_flag(struct flags *f, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    double x;
    int rc;

    if (strcmp(a, "--csv") == 0)
        return take_inputs(f, argc, argv, i);
    if (strcmp(a, "--strict") == 0)
        return f->o.strict = true, 0;
    if (strcmp(a, "--json") == 0)
        return f->db.json = true, 0;
    if (strcmp(a, "--save-state") == 0)
        return f->db.save_state = true, 0;
    if (!v)
        return bad_flag(a, "unknown flag, or its value is missing");
    ++*i;
    if (strcmp(a, "--model") == 0)
        return f->model = v, 0;
    if (strcmp(a, "--data") == 0)
        return f->db.data = v, 0;
    if (strcmp(a, "--detector") == 0)
        return f->db.detectors = v, 0;
    if (strcmp(a, "--plot") == 0)
        return f->db.plot = v, 0;
    if (strcmp(a, "--start") == 0)
        return f->has_start = true, take_time(a, v, &f->db.start);
    if (strcmp(a, "--end") == 0)
        return f->has_end = true, take_time(a, v, &f->db.end);
    if (strcmp(a, "--out") == 0)
        return f->out = v, 0;
    if (strcmp(a, "--param") == 0)
        return take_param(f, v);
    if (strcmp(a, "--interval") == 0)
        return take_duration(a, v, &f->o.interval_ms);
    if (strcmp(a, "--season") == 0)
        return take_duration(a, v, &f->o.season_ms);
    if (strcmp(a, "--sensitivity") == 0)
        return take_number(a, v, &f->o.sensitivity);
    if (strcmp(a, "--min-deviation") == 0)
        return take_number(a, v, &f->o.min_deviation);
    if (strcmp(a, "--time-passes") == 0) {
        if ((rc = take_number(a, v, &x)) == 0)
            f->o.time_passes = (unsigned)x;
        return rc;
    }
    return bad_flag(a, "unknown flag");
}

static int check_csv_flags(struct flags *f)
{
    size_t n;
    const struct anomaly_model *const *all = anomaly_models(&n);
    char err[512];

    if (!f->csv)
        return bad_flag("mode", "give --csv FILE|DIR...");
    if (!f->out)
        return bad_flag("--out", "missing: the output folder");
    if (!f->model)
        return bad_flag("--model", "missing: the model's name");
    f->o.model = anomaly_model_find(f->model);
    if (!f->o.model) {
        fprintf(stderr,
                "tsdb-replay: --model: unknown model \"%s\" (known:", f->model);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", all[i]->name);
        fprintf(stderr, ")\n");
        return 2;
    }
    if (f->o.sensitivity <= 0)
        return bad_flag("--sensitivity", "must be above 0");
    f->o.names = f->names;
    f->o.values = f->values;
    f->o.nparams = f->nparams;
    if (anomaly_replay_check(&f->o, err, sizeof(err)) != TSDB_OK) {
        fprintf(stderr, "tsdb-replay: --model %s: %s\n", f->model, err);
        return 2;
    }
    return 0;
}

static int check_db_flags(const struct flags *f)
{
    if (f->csv)
        return bad_flag("--data", "give --data or --csv, not both");
    if (!f->db.detectors)
        return bad_flag("--detector", "missing: the definitions file");
    if (!f->has_start || !f->has_end)
        return bad_flag("--start/--end", "missing: the range to replay");
    return 0;
}

static int run_db(struct flags *f)
{
    char err[1024];
    int rc;

    f->db.progress = isatty(2);
    rc = replay_db_run(&f->db, stdout, err, sizeof(err));
    if (rc != TSDB_OK) {
        fprintf(stderr, "tsdb-replay: %s\n", err);
        return 1;
    }
    return 0;
}

static int run_csv(struct flags *f)
{
    struct anomaly_replay_stats st;
    char err[512];
    int rc;

    f->o.progress = isatty(2);
    if (f->db.plot != NULL && (f->o.plot = plot_new()) == NULL)
        return 1;
    rc = anomaly_replay_csv(&f->o, f->inputs, f->ninputs, f->out, &st, err,
                            sizeof(err));
    if (rc == TSDB_OK && f->o.plot != NULL &&
        plot_write(f->o.plot, f->db.plot) != TSDB_OK) {
        snprintf(err, sizeof(err), "cannot write %s", f->db.plot);
        rc = TSDB_EIO;
    }
    plot_free(f->o.plot);
    if (rc != TSDB_OK) {
        fprintf(stderr, "tsdb-replay: %s\n", err);
        return 1;
    }
    fprintf(stderr,
            "tsdb-replay: %llu files, %llu rows, %llu bad rows skipped; "
            "model %s: %.0f samples per CPU second\n",
            (unsigned long long)st.files, (unsigned long long)st.rows,
            (unsigned long long)st.bad_rows, f->o.model->name,
            st.step_cpu_s > 0 ? (double)st.steps_timed / st.step_cpu_s : 0);
    return 0;
}

int main(int argc, char **argv)
{
    struct flags f;
    int rc = 0;

    memset(&f, 0, sizeof(f));
    /* A tool's output is its report: the storage's start-up lines are
     * noise here, its warnings are not. */
    tsdb_log_level = TSDB_LOG_WARN;
    anomaly_replay_opts_init(&f.o);
    for (int i = 1; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        rc = take_flag(&f, argc, argv, &i);
    }
    if (rc == 0 && f.db.data != NULL) {
        rc = check_db_flags(&f);
        if (rc == 0)
            rc = run_db(&f);
    } else if (rc == 0) {
        rc = check_csv_flags(&f);
        if (rc == 0)
            rc = run_csv(&f);
    }
    for (size_t i = 0; i < f.nparams; i++)
        free(f.pairs[i]);
    return rc;
}
