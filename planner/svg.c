/* The planner's plot: one SVG, no dependencies. Along the depth (x: split
 * candidates in model order), the left axis shows the density after
 * quantization at 8/4/2 bits, the right axis the encoded bytes per token of
 * the job's codec with dense fp16 for reference; the plan's boundaries are
 * solid red lines, the baseline's dashed grey ones. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "planner_internal.h"

enum { W = 960, H = 420, L = 70, R = 80, TOP = 40, BOT = 110 };

static double xpos(int i, int n) { return L + (n > 1 ? (double)i * (W - L - R) / (n - 1) : 0); }
static double ypos(double v, double vmax) { return TOP + (H - TOP - BOT) * (1.0 - v / vmax); }

static void polyline(FILE *f, const double *v, int n, double vmax, const char *color,
                     const char *dash)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color, dash);
    for (int i = 0; i < n; i++) fprintf(f, "%.1f,%.1f ", xpos(i, n), ypos(v[i], vmax));
    fprintf(f, "\"/>\n");
}

static void cut_lines(FILE *f, const sq_plan_profile_t *p, const sq_plan_t *plan, const char *style)
{
    const int n = p->n_units - 1;
    for (int s = 1; plan && s < plan->stages; s++) {
        const double x = xpos(plan->st[s].begin - 1, n);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" %s/>\n", x, TOP, x, H - BOT,
                style);
    }
}

sq_status_t sq_plan_write_svg(const sq_plan_profile_t *p, const sq_plan_t *plan,
                              const sq_plan_t *baseline, const char *path)
{
    const int n = p->n_units - 1;
    if (n < 1) return sq_error_set(SQ_ERR_INVALID_ARG, "plot: the model has no split candidate");
    FILE *f = fopen(path, "w");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    double bmax = 0, v[3][1024], bytes[1024], fp16[1024];
    const int m = n < 1024 ? n : 1024;
    for (int i = 0; i < m; i++) {
        for (int b = 0; b < SQ_PLAN_N_BITS; b++) v[b][i] = p->cands[i].density[b];
        bytes[i] = sq_plan_cand_bytes(&p->cands[i]);
        fp16[i] = p->cands[i].fp16_bytes_per_token;
        if (fp16[i] > bmax) bmax = fp16[i];
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" "
               "height=\"100%%\" fill=\"white\"/>\n",
            W, H);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"15\">%s: density after quantization and "
               "encoded bytes per token along the depth (%d stages)</text>\n",
            L, p->model, plan->stages);
    /* axes and grid */
    for (int g = 0; g <= 4; g++) {
        const double y = ypos(g / 4.0, 1.0);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", L, y,
                W - R, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", L - 6, y + 4,
                25 * g);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\">%.0f</text>\n", W - R + 6, y + 4, bmax * g / 4.0);
    }
    fprintf(f, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">"
               "density (non-zero codes)</text>\n",
            (TOP + H - BOT) / 2, (TOP + H - BOT) / 2);
    fprintf(f, "<text x=\"%d\" y=\"%d\" transform=\"rotate(90 %d %d)\" text-anchor=\"middle\">"
               "bytes per token</text>\n",
            W - 20, (TOP + H - BOT) / 2, W - 20, (TOP + H - BOT) / 2);
    for (int i = 0; i < m; i++) {
        const double x = xpos(i, m);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" transform=\"rotate(-60 %.1f %d)\" "
                   "text-anchor=\"end\">%s</text>\n",
                x, H - BOT + 12, x, H - BOT + 12, p->cands[i].cand.name);
    }
    cut_lines(f, p, baseline, "stroke=\"#888\" stroke-width=\"2\" stroke-dasharray=\"6,4\"");
    cut_lines(f, p, plan, "stroke=\"#d62728\" stroke-width=\"2.5\"");
    static const char *colors[3] = {"#1f77b4", "#2ca02c", "#9467bd"};
    for (int b = 0; b < SQ_PLAN_N_BITS; b++) polyline(f, v[b], m, 1.0, colors[b], "");
    polyline(f, bytes, m, bmax, "#ff7f0e", " stroke-dasharray=\"2,0\"");
    polyline(f, fp16, m, bmax, "#000", " stroke-dasharray=\"4,3\"");
    /* legend */
    const char *names[] = {"density 8-bit", "density 4-bit", "density 2-bit",
                           "plan codec bytes/token", "fp16 bytes/token", "plan boundary",
                           "baseline boundary"};
    const char *lc[] = {colors[0], colors[1], colors[2], "#ff7f0e", "#000", "#d62728", "#888"};
    for (int i = 0; i < 7; i++) {
        const int x = L + (i % 4) * 210, y = H - 22 + (i / 4) * 14 - 12;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                   "stroke-width=\"3\"%s/>\n<text x=\"%d\" y=\"%d\">%s</text>\n",
                x, y, x + 24, y, lc[i], i == 4 || i == 6 ? " stroke-dasharray=\"4,3\"" : "",
                x + 30, y + 4, names[i]);
    }
    fprintf(f, "</svg>\n");
    if (fclose(f)) return sq_error_set(SQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return SQ_OK;
}
