/* SVG plots of replayed series (plot.h). */
#include "anomaly/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsdb/error.h"

#define WIDTH   1000
#define PANEL_H 240
#define LEFT    80
#define RIGHT   20
#define TOP     46
#define BOTTOM  40
/* Points drawn per line: more than a screen has pixels is noise. */
#define MAX_DRAWN 2000

struct plot_series {
    char title[512];
    size_t n, cap;
    int64_t *t;
    double *v, *exp, *lo, *hi;
    bool *active;
};

struct plot {
    size_t n;
    struct plot_series *panels[PLOT_MAX_SERIES];
    char detector[PLOT_MAX_SERIES][130];
};

struct plot_series *plot_series_new(const struct tsdb_labels *ls)
{
    struct plot_series *s = calloc(1, sizeof(*s));

    if (s != NULL)
        tsdb_labels_format(ls->v, ls->n, s->title, sizeof(s->title));
    return s;
}

struct plot_series *plot_series_titled(const char *title)
{
    struct plot_series *s = calloc(1, sizeof(*s));

    if (s != NULL)
        snprintf(s->title, sizeof(s->title), "%s", title);
    return s;
}

size_t plot_room(const struct plot *p)
{
    return PLOT_MAX_SERIES - p->n;
}

int plot_series_add(struct plot_series *s, int64_t t, double v, double exp,
                    double lo, double hi, bool active)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *nt = realloc(s->t, cap * sizeof(*nt));
        double *nv = realloc(s->v, cap * sizeof(*nv));
        double *ne = realloc(s->exp, cap * sizeof(*ne));
        double *nl = realloc(s->lo, cap * sizeof(*nl));
        double *nh = realloc(s->hi, cap * sizeof(*nh));
        bool *na = realloc(s->active, cap * sizeof(*na));

        if (nt)
            s->t = nt;
        if (nv)
            s->v = nv;
        if (ne)
            s->exp = ne;
        if (nl)
            s->lo = nl;
        if (nh)
            s->hi = nh;
        if (na)
            s->active = na;
        if (!nt || !nv || !ne || !nl || !nh || !na)
            return TSDB_ENOMEM;
        s->cap = cap;
    }
    s->t[s->n] = t;
    s->v[s->n] = v;
    s->exp[s->n] = exp;
    s->lo[s->n] = lo;
    s->hi[s->n] = hi;
    s->active[s->n] = active;
    s->n++;
    return TSDB_OK;
}

void plot_series_free(struct plot_series *s)
{
    if (s == NULL)
        return;
    free(s->t);
    free(s->v);
    free(s->exp);
    free(s->lo);
    free(s->hi);
    free(s->active);
    free(s);
}

struct plot *plot_new(void)
{
    return calloc(1, sizeof(struct plot));
}

int plot_add(struct plot *p, const char *detector, struct plot_series *s)
{
    if (p->n == PLOT_MAX_SERIES) {
        plot_series_free(s);
        return TSDB_OK;
    }
    snprintf(p->detector[p->n], sizeof(p->detector[0]), "%s", detector);
    p->panels[p->n++] = s;
    return TSDB_OK;
}

void plot_free(struct plot *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        plot_series_free(p->panels[i]);
    free(p);
}

/* ---- drawing ---- */

struct frame {
    double x0, y0, w, h; /* the plotting area */
    int64_t tmin, tmax;
    double vmin, vmax;
};

static double fx(const struct frame *f, int64_t t)
{
    return f->x0 + f->w * (double)(t - f->tmin) /
                       (double)(f->tmax > f->tmin ? f->tmax - f->tmin : 1);
}

static double fy(const struct frame *f, double v)
{
    return f->y0 + f->h - f->h * (v - f->vmin) / (f->vmax - f->vmin);
}

static void escape(FILE *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", o);
        else if (*s == '>')
            fputs("&gt;", o);
        else if (*s == '&')
            fputs("&amp;", o);
        else if (*s == '"')
            fputs("&quot;", o);
        else
            fputc(*s, o);
    }
}

static void bounds(const struct plot_series *s, struct frame *f)
{
    f->tmin = s->t[0];
    f->tmax = s->t[s->n - 1];
    f->vmin = INFINITY;
    f->vmax = -INFINITY;
    for (size_t i = 0; i < s->n; i++) {
        const double xs[3] = {s->v[i], s->lo[i], s->hi[i]};

        for (int k = 0; k < 3; k++) {
            if (isfinite(xs[k]) && xs[k] < f->vmin)
                f->vmin = xs[k];
            if (isfinite(xs[k]) && xs[k] > f->vmax)
                f->vmax = xs[k];
        }
    }
    if (!isfinite(f->vmin)) {
        f->vmin = 0;
        f->vmax = 1;
    }
    if (f->vmax - f->vmin < 1e-12) {
        f->vmin -= 0.5;
        f->vmax += 0.5;
    }
    f->vmin -= (f->vmax - f->vmin) * 0.05;
    f->vmax += (f->vmax - f->vmin) * 0.05;
}

static void axes(FILE *o, const struct frame *f)
{
    fprintf(o,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"none\" stroke=\"#888\"/>\n",
            f->x0, f->y0, f->w, f->h);
    for (int i = 0; i <= 4; i++) {
        double v = f->vmin + (f->vmax - f->vmin) * i / 4;
        int64_t t = f->tmin + (f->tmax - f->tmin) * i / 4;
        time_t secs = (time_t)(t / 1000);
        char label[32];
        struct tm tm;

        fprintf(o,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#eee\"/>\n",
                f->x0, f->x0 + f->w, fy(f, v), fy(f, v));
        fprintf(o,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                "font-size=\"11\">%.4g</text>\n",
                f->x0 - 6, fy(f, v) + 4, v);
        gmtime_r(&secs, &tm);
        strftime(label, sizeof(label), "%m-%d %H:%M", &tm);
        /* The end ticks sit inside the frame, so their text is not cut. */
        fprintf(o,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" "
                "font-size=\"11\">%s</text>\n",
                fx(f, t), f->y0 + f->h + 16,
                i == 0   ? "start"
                : i == 4 ? "end"
                         : "middle",
                label);
    }
}

/* Red windows over the steps during events. */
static void windows(FILE *o, const struct frame *f, const struct plot_series *s)
{
    for (size_t i = 0; i < s->n; i++) {
        size_t j = i;

        if (!s->active[i])
            continue;
        while (j + 1 < s->n && s->active[j + 1])
            j++;
        fprintf(o,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\" fill=\"#e33\" fill-opacity=\"0.18\"/>\n",
                fx(f, s->t[i]), f->y0,
                fmax(fx(f, s->t[j]) - fx(f, s->t[i]), 2.0), f->h);
        i = j;
    }
}

/* The band as polygons over the runs of steps where it is known. */
static void band(FILE *o, const struct frame *f, const struct plot_series *s,
                 size_t every)
{
    for (size_t i = 0; i < s->n;) {
        size_t j = i;

        if (!isfinite(s->lo[i]) || !isfinite(s->hi[i])) {
            i++;
            continue;
        }
        while (j + 1 < s->n && isfinite(s->lo[j + 1]) && isfinite(s->hi[j + 1]))
            j++;
        fputs("<polygon fill=\"#4a90d9\" fill-opacity=\"0.2\" points=\"", o);
        for (size_t k = i; k <= j; k += every)
            fprintf(o, "%.1f,%.1f ", fx(f, s->t[k]), fy(f, s->hi[k]));
        for (size_t k = j + 1; k-- > i;)
            if ((k - i) % every == 0)
                fprintf(o, "%.1f,%.1f ", fx(f, s->t[k]), fy(f, s->lo[k]));
        fputs("\"/>\n", o);
        i = j + 1;
    }
}

static void line(FILE *o, const struct frame *f, const struct plot_series *s,
                 const double *v, size_t every, const char *style)
{
    bool open = false;

    for (size_t k = 0; k < s->n; k += every) {
        if (!isfinite(v[k])) {
            if (open)
                fputs("\"/>\n", o);
            open = false;
            continue;
        }
        if (!open)
            fprintf(o, "<polyline fill=\"none\" %s points=\"", style);
        open = true;
        fprintf(o, "%.1f,%.1f ", fx(f, s->t[k]), fy(f, v[k]));
    }
    if (open)
        fputs("\"/>\n", o);
}

static void legend(FILE *o)
{
    fputs("<g font-size=\"12\">"
          "<line x1=\"80\" x2=\"100\" y1=\"16\" y2=\"16\" stroke=\"#222\" "
          "stroke-width=\"1.5\"/><text x=\"105\" y=\"20\">observed</text>"
          "<line x1=\"180\" x2=\"200\" y1=\"16\" y2=\"16\" stroke=\"#1f5fa8\" "
          "stroke-dasharray=\"4 3\"/><text x=\"205\" y=\"20\">expected</text>"
          "<rect x=\"280\" y=\"10\" width=\"20\" height=\"12\" "
          "fill=\"#4a90d9\" fill-opacity=\"0.2\"/>"
          "<text x=\"305\" y=\"20\">band</text>"
          "<rect x=\"350\" y=\"10\" width=\"20\" height=\"12\" fill=\"#e33\" "
          "fill-opacity=\"0.18\"/><text x=\"375\" y=\"20\">anomaly</text>"
          "<text x=\"450\" y=\"20\">times in UTC</text>"
          "</g>\n",
          o);
}

static void panel(FILE *o, const char *detector, const struct plot_series *s,
                  double y)
{
    struct frame f = {
        LEFT, y + 22, WIDTH - LEFT - RIGHT, PANEL_H - 22 - BOTTOM, 0, 0, 0, 0};
    size_t every = s->n > MAX_DRAWN ? (s->n + MAX_DRAWN - 1) / MAX_DRAWN : 1;

    fprintf(o,
            "<text x=\"%d\" y=\"%.1f\" font-size=\"13\" "
            "font-weight=\"bold\">",
            LEFT, y + 14);
    escape(o, detector);
    fputs(" ", o);
    escape(o, s->title);
    fputs("</text>\n", o);
    if (s->n == 0)
        return;
    bounds(s, &f);
    axes(o, &f);
    windows(o, &f, s);
    band(o, &f, s, every);
    line(o, &f, s, s->exp, every,
         "stroke=\"#1f5fa8\" stroke-dasharray=\"4 3\"");
    line(o, &f, s, s->v, every, "stroke=\"#222\" stroke-width=\"1.2\"");
}

int plot_write(const struct plot *p, const char *path)
{
    FILE *o = fopen(path, "w");
    int height = TOP + (int)(p->n ? p->n : 1) * PANEL_H;
    bool ok;

    if (o == NULL)
        return TSDB_EIO;
    fprintf(o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" font-family=\"sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            WIDTH, height);
    legend(o);
    if (p->n == 0)
        fputs("<text x=\"80\" y=\"70\">no series with values in the "
              "range</text>\n",
              o);
    for (size_t i = 0; i < p->n; i++)
        panel(o, p->detector[i], p->panels[i], TOP + (double)i * PANEL_H);
    fputs("</svg>\n", o);
    ok = !ferror(o);
    ok = fclose(o) == 0 && ok;
    return ok ? TSDB_OK : TSDB_EIO;
}
