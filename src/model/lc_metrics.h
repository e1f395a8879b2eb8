/* A run's metrics file: JSON lines, one object per record, "kind" naming
 * it ("settings", "eval", "loss", "rotation", "silhouette", "nonfinite").  The
 * writers below (the trainer's) and lc_metrics_parse (plots, studies) are
 * the file's one definition.  A number that is not finite is written as
 * null, with "nonfinite": true on its line, so the file stays JSON. */
#ifndef LC_METRICS_H
#define LC_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "lc_core.h"
#include "lc_ir.h"

typedef struct lc_eval_rec {
    double epoch, step, lr, train_loss, train_acc, test_loss, test_acc;
    double test_top5;
    bool has_val;                      /* the run holds out a validation split */
    double val_loss, val_acc, val_top5;
    double time_s;                     /* seconds of training so far */
} lc_eval_rec;

/* The training loss and accuracy over the steps since the previous loss
 * record of the same epoch (a window of `examples` examples), after `step`. */
typedef struct lc_loss_rec {
    double epoch, step, lr, loss, acc, examples;
} lc_loss_rec;

typedef struct lc_rot_rec {
    double epoch, step;
    double *rotation, *norm; /* [n_layers] each, in the file's layer order */
} lc_rot_rec;

typedef struct lc_metrics {
    lc_eval_rec *eval;
    int n_eval;
    lc_loss_rec *loss;
    int n_loss;
    lc_rot_rec *rot;
    int n_rot;
    int n_layers;
    char (*layer)[LC_NAME_MAX]; /* layer names, forward order */
} lc_metrics;

/* Strict: a malformed line is an error naming the file and line number;
 * rotation lines must all list the same layers in the same order. */
lc_status lc_metrics_parse(const char *text, size_t len, const char *where, lc_metrics *out);
lc_status lc_metrics_load(const char *path, lc_metrics *out);
void lc_metrics_deinit(lc_metrics *m);

/* Writers: each appends one record's line to b, without the newline. */
/* {"kind": "settings", KEY: VALUE..., "layers": [...]}; values are JSON text */
void lc_metrics_line_settings(lc_strbuf *b, int n, const char *const *keys, const char *const *values, int n_layers,
                              char (*layer)[LC_NAME_MAX]);
/* epoch and step are whole numbers */
void lc_metrics_line_eval(lc_strbuf *b, const lc_eval_rec *r);
void lc_metrics_line_loss(lc_strbuf *b, const lc_loss_rec *r);
/* r's arrays hold n_layers values, in the order of `layer` */
void lc_metrics_line_rotation(lc_strbuf *b, const lc_rot_rec *r, int n_layers, char (*layer)[LC_NAME_MAX]);
void lc_metrics_line_silhouette(lc_strbuf *b, int epoch, int64_t step, const char *node, double value);
/* a non-finite training loss at `step`; `where` names the first layer holding one */
void lc_metrics_line_nonfinite(lc_strbuf *b, int epoch, int64_t step, double loss, const char *where);

#endif
