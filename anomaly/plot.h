/*
 * tsdb-replay --plot: an SVG of replayed series, one panel per series:
 * the observed values, the expected value, the band and the anomaly
 * windows (steps during an event), with time and value axes and a legend,
 * readable in any browser without other tools.
 */
#ifndef ANOMALY_PLOT_H
#define ANOMALY_PLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "tsdb/labels.h"

/* Panels per file: past it, further series are left out of the plot
 * (the text report still covers them). */
#define PLOT_MAX_SERIES 12

struct plot_series;
struct plot;

struct plot_series *plot_series_new(const struct tsdb_labels *ls);
/* A series titled by text (a CSV file's path) instead of labels. */
struct plot_series *plot_series_titled(const char *title);
/* Panels p can still take. */
size_t plot_room(const struct plot *p);
int plot_series_add(struct plot_series *s, int64_t t, double v, double exp,
                    double lo, double hi, bool active);
void plot_series_free(struct plot_series *s);

struct plot *plot_new(void);
/* Takes s as a panel titled by detector and the series' labels. */
int plot_add(struct plot *p, const char *detector, struct plot_series *s);
/* TSDB_OK or TSDB_EIO. */
int plot_write(const struct plot *p, const char *path);
void plot_free(struct plot *p);

#endif
