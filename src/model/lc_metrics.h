/* Reading a run's metrics file (JSON lines written by the trainer), for
 * plots and study summaries. */
#ifndef LC_METRICS_H
#define LC_METRICS_H

#include "lc_core.h"

typedef struct lc_eval_rec {
    double epoch, step, lr, train_loss, train_acc, test_loss, test_acc;
} lc_eval_rec;

typedef struct lc_rot_rec {
    double epoch, step;
    double *rotation, *norm; /* [n_layers] each, in the file's layer order */
} lc_rot_rec;

typedef struct lc_metrics {
    lc_eval_rec *eval;
    int n_eval;
    lc_rot_rec *rot;
    int n_rot;
    int n_layers;
    char (*layer)[64];       /* layer names, forward order */
} lc_metrics;

/* Strict: a malformed line is an error naming the file and line number;
 * rotation lines must all list the same layers in the same order. */
lc_status lc_metrics_parse(const char *text, size_t len, const char *where, lc_metrics *out);
lc_status lc_metrics_load(const char *path, lc_metrics *out);
void lc_metrics_deinit(lc_metrics *m);

#endif
