/* What the files of the study module share: the study, its runs, the
 * paper's numbers and small text helpers. */
#ifndef LC_STUDY_INTERNAL_H
#define LC_STUDY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "lc_study.h"
#include "lc_train.h"

#define MAX_RUNS 512

/* ---- the paper's numbers (reference section 6) ---- */

typedef enum { TASK_NONE, TASK_C10, TASK_C100, TASK_TINY, TASK_WILSON, TASK_MNIST } task_kind;
extern const char *const lc_study_task_title[];
extern const double lc_study_paper_alphas[13];
extern const double lc_study_paper_alpha_acc[4][2][13];
extern const double lc_study_paper_lr_acc[4][10];
extern const double lc_study_paper_toy[2][10];

typedef struct optim_paper {
    const char *name;       /* trainer name */
    const char *label;
    double lr, rho;         /* without Layca (+ L2 5e-4); Layca's rotation rate */
    double acc_plain, acc_layca, cos_plain; /* %, %, median final cosine distance (NaN: not given) */
} optim_paper;
extern const optim_paper lc_study_paper_optims[LC_STUDY_MAX_OPTIMIZERS];

/* ---- studies, runs ---- */

typedef enum { R_PENDING, R_OK, R_ERROR } run_status;
extern const char *const lc_study_status_names[];

typedef lc_study_schedule schedule;

typedef struct run {
    char id[64];
    /* settings */
    char optimizer[16];
    int layca;
    double lr, momentum, alpha, weight_decay; /* momentum NaN: the trainer's default */
    int epochs;
    int64_t steps;                            /* > 0: steps instead of epochs */
    int batch;
    schedule sched;
    int64_t seed;
    char train_only[32];
    bool fixed;
    bool fail;                                /* lc_study_opts.fail_run */
    char config[4096];
    /* labels */
    int rep, layer;
    char group[24];                           /* mnist mode, alpha-sweep optimizer, optimizer name */
    double x;                                 /* alpha, lr, weight decay */
    int paper_idx;                            /* index into the paper's list, -1 none */
    /* outcome */
    run_status status;
    bool loaded;                              /* finished in an earlier invocation */
    char message[1024];
    double test_acc, test_loss, train_acc, train_loss, train_s, wall_s;
    double steps_done, epochs_done;
    double rot_med, rot_min, rot_max;
    int n_layers;
} run;

struct lc_study {
    lc_study_kind kind;
    const char *name;
    lc_study_opts o;           /* the options as given */
    FILE *log;
    char out[1024];
    /* resolved (start from the options) */
    int epochs, batch, eval_every, per_class;
    int64_t steps, seed, train_subset, test_subset;
    int flip;
    int n_optims;
    char optims[LC_STUDY_MAX_OPTIMIZERS][16];
    bool quick;
    char model[1024], data[2400];
    char model_name[64];
    task_kind task;
    lc_train_spec mspec;       /* the model file's train section with the defaults */
    int n_layers_toy;          /* mnist-toy: hidden layers dense0.. */
    char notes[12][400];
    int n_notes;
    run *runs;
    int n_runs;
    lc_strbuf params;          /* study.json */
    bool usage;                /* the last error was the options' fault */
};
typedef struct lc_study study;

/* ---- helpers (study.c) ---- */

void lc_study_note(study *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a JSON string as the study's files write it (\n and \t as such) */
void lc_study_json_str(lc_strbuf *b, const char *s);
void lc_study_csv_str(lc_strbuf *b, const char *s);
bool lc_study_file_exists(const char *path);
const char *lc_study_fmt_g(char *buf, size_t len, double v);
const char *lc_study_fmt_pct(char *buf, size_t len, double frac);
void lc_study_fmt_paper(char *buf, size_t len, double v);
double lc_study_median(const double *v, int n, double *lo, double *hi);
void lc_study_sched_str(const schedule *s, char *buf, size_t len);
void lc_study_run_dir(const study *S, const run *r, char *buf, size_t len);
void lc_study_run_desc(const run *r, char *buf, size_t len);

/* ---- resolving (plan.c) ---- */

/* S->usage tells whether an error is the options' fault */
lc_status lc_study_resolve(study *S);
/* study.json against the stored one: an error unless equal or `force` */
lc_status lc_study_check_params(const study *S);

/* ---- results (results.c) ---- */

lc_status lc_study_write_result(const study *S, const run *r);
/* A finished run's result.json; false when there is none (or it is
 * unreadable, with a warning: the run is then done again). */
bool lc_study_load_result(const study *S, run *r, char *config, size_t clen);
lc_status lc_study_write_results(const study *S);
/* the summary table as text */
lc_status lc_study_table_text(const study *S, lc_strbuf *b);

/* ---- figures (figures.c) ---- */

/* Draws the study's figures; each file written is added to `list` as a
 * line "figure: PREFIX.{png,svg}". */
lc_status lc_study_figures(const study *S, lc_strbuf *list);

#endif
