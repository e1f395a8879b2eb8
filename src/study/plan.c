/* Resolving a study: defaults for its scale, the model's train section, the
 * list of runs and the parameters kept in study.json; the check of those
 * parameters against a study already in the folder. */
#include "study_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* an error in the options (the caller shows its usage hint) */
static lc_status usage_err(study *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lc_status usage_err(study *S, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    S->usage = true;
    return LC_ERR(LC_ERR_INVALID, "%s", msg);
}

/* milestones of a schedule meant for `from` epochs, moved to `to` epochs
 * proportionally (the ones that fall on epoch 0, past the end or onto an
 * earlier one are dropped) */
static schedule sched_scale(const schedule *s, int from, int to)
{
    schedule r = {.n = 0, .factor = s->factor};
    if (from <= 0 || from == to) return *s;
    for (int i = 0; i < s->n; i++) {
        int m = (int)lround((double)s->ms[i] * to / from);
        if (m <= 0 || m >= to || (r.n && m <= r.ms[r.n - 1])) continue;
        r.ms[r.n++] = m;
    }
    return r;
}

static run *add_run(study *S, const char *id)
{
    if (S->n_runs >= MAX_RUNS) return NULL;
    run *r = &S->runs[S->n_runs++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->optimizer, sizeof r->optimizer, "sgd");
    r->momentum = 0;
    r->epochs = S->epochs;
    r->steps = S->steps;
    r->batch = S->batch;
    r->seed = S->seed;
    r->paper_idx = -1;
    r->x = NAN;
    r->test_acc = r->test_loss = r->train_acc = r->train_loss = r->train_s = r->wall_s = NAN;
    r->steps_done = r->epochs_done = r->rot_med = r->rot_min = r->rot_max = NAN;
    if (S->o.fail_run && !strcmp(S->o.fail_run, id)) r->fail = true;
    return r;
}

static void run_config(const study *S, run *r)
{
    char sc[256], mom[32];
    lc_study_sched_str(&r->sched, sc, sizeof sc);
    if (isnan(r->momentum)) snprintf(mom, sizeof mom, "default");
    else snprintf(mom, sizeof mom, "%.9g", r->momentum);
    snprintf(r->config, sizeof r->config,
             "model=%s data=%s optimizer=%s layca=%d lr=%.9g momentum=%s alpha=%.9g weight_decay=%.9g epochs=%d "
             "steps=%lld batch=%d schedule=%s seed=%lld per_class=%d train_subset=%lld test_subset=%lld "
             "train_only=%s fixed_gating=%d flip=%d eval_every=%d",
             S->model, S->data, r->optimizer, r->layca, r->lr, mom, r->alpha, r->weight_decay, r->epochs,
             (long long)r->steps, r->batch, sc, (long long)r->seed, S->per_class, (long long)S->train_subset,
             (long long)S->test_subset, r->train_only[0] ? r->train_only : "-", r->fixed, S->flip, S->eval_every);
}

static void params_line(lc_strbuf *b, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void params_line(lc_strbuf *b, const char *key, const char *fmt, ...)
{
    char v[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    lc_strbuf_printf(b, ",\n  \"%s\": %s", key, v);
}

static void list_str(char *buf, size_t len, const double *v, int n)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, "%s%.9g", i ? ", " : "", v[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
}

static lc_status resolve_model(study *S)
{
    lc_graph *g;
    lc_train_spec ts;
    LC_TRY(lc_model_load(S->model, &g, &ts));
    lc_train_spec_defaults(&ts);
    S->mspec = ts;
    snprintf(S->model_name, sizeof S->model_name, "%s", g->name);
    int count = 0;
    char nm[32];
    for (; count < 1000; count++) {
        snprintf(nm, sizeof nm, "dense%d", count);
        if (lc_graph_find(g, nm) < 0) break;
    }
    S->n_layers_toy = count - 1; /* the last dense is the classifier, never trained alone */
    lc_graph_destroy(g);
    if (!strcmp(S->model_name, "cifar10_vgg")) S->task = TASK_C10;
    else if (!strcmp(S->model_name, "resnet32_cifar100")) S->task = TASK_C100;
    else if (!strcmp(S->model_name, "tiny_imagenet_cnn")) S->task = TASK_TINY;
    else if (!strcmp(S->model_name, "wilson_vgg")) S->task = TASK_WILSON;
    else if (!strcmp(S->model_name, "mlp11")) S->task = TASK_MNIST;
    return LC_OK;
}

/* A model of the project: models/NAME here (the project folder), else in
 * the installed share folder (LAYCA_DATADIR/models); into S->model.  False
 * when neither exists. */
static bool find_project_model(study *S, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "models/%s", name);
    if (!lc_study_file_exists(p)) snprintf(p, sizeof p, "%s/models/%s", LAYCA_DATADIR, name);
    if (!lc_study_file_exists(p)) return false;
    snprintf(S->model, sizeof S->model, "%s", p);
    return true;
}

static lc_status resolve_toy(study *S)
{
    const int paper_steps = 4000, paper_reps = 10;
    const int quick_steps = 300, quick_reps = 2;
    if (!S->o.model) {
        if (!find_project_model(S, "mlp11.json"))
            return usage_err(S, "mnist-toy: models/mlp11.json is neither here nor in %s/models; run from the project "
                               "folder or give --model", LAYCA_DATADIR);
    }
    LC_TRY(resolve_model(S));
    if (S->n_layers_toy < 1)
        return usage_err(S, "mnist-toy: model '%s' has no hidden layers named dense0, dense1, ... before its last dense layer",
                           S->model);
    bool pool = false;
    if (!S->o.data) {
        char dir[1024];
        const char *def = S->o.mnist_default && *S->o.mnist_default ? S->o.mnist_default : "../shared/data/mnist";
        snprintf(dir, sizeof dir, "%s", S->o.mnist ? S->o.mnist : def);
        char img[1100], lab[1100];
        snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte.gz", dir);
        snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte.gz", dir);
        if (!lc_study_file_exists(img)) { /* raw files */
            snprintf(img, sizeof img, "%s/t10k-images-idx3-ubyte", dir);
            snprintf(lab, sizeof lab, "%s/t10k-labels-idx1-ubyte", dir);
        }
        if (!lc_study_file_exists(img) || !lc_study_file_exists(lab)) {
            return LC_ERR(LC_ERR_NOT_FOUND, "mnist-toy: no MNIST test set (t10k-images-idx3-ubyte[.gz], "
                          "t10k-labels-idx1-ubyte[.gz]) in %s; give --mnist DIR", dir);
        }
        snprintf(S->data, sizeof S->data, "idx:%s,%s", img, lab);
        pool = true;
    }
    int steps = S->steps > 0 ? (int)S->steps : S->quick ? quick_steps : paper_steps;
    int reps = S->o.reps > 0 ? S->o.reps : S->quick ? quick_reps : paper_reps;
    double lr = isnan(S->o.lr) ? 10.0 : S->o.lr;
    int batch = S->batch > 0 ? S->batch : 100;
    if (S->per_class < 0 && S->train_subset < 0) S->per_class = 10;
    if (S->per_class < 0) S->per_class = 0;
    if (S->train_subset < 0) S->train_subset = 0;
    if (S->test_subset < 0) S->test_subset = 0;
    if (S->eval_every < 0) S->eval_every = steps;
    S->flip = 0;
    int64_t seed0 = S->seed >= 0 ? S->seed : 0;
    if (steps != paper_steps) lc_study_note(S, "%d full-batch steps per run instead of the paper's %d", steps, paper_steps);
    if (reps != paper_reps) lc_study_note(S, "%d repetition%s instead of the paper's %d", reps, reps == 1 ? "" : "s", paper_reps);
    if (pool)
        lc_study_note(S, "training images: %d per class drawn from the 10,000 MNIST test images (seed = repetition), tested on "
                "the other %d; the paper draws from the 60k training set and tests on all 10k (not available here)",
             S->per_class, 10000 - 10 * S->per_class);
    if (S->task != TASK_MNIST) lc_study_note(S, "model %s is not the paper's mlp11: the paper's numbers are not shown", S->model);
    if (lr != 10.0 || batch < 100) lc_study_note(S, "lr %g, batch %d (paper: lr 10, full batch of 100)", lr, batch);

    lc_strbuf *b = &S->params;
    params_line(b, "steps", "%d", steps);
    params_line(b, "repetitions", "%d", reps);
    params_line(b, "first_seed", "%lld", (long long)seed0);
    params_line(b, "lr", "%.9g", lr);
    params_line(b, "batch", "%d", batch);
    params_line(b, "layers", "%d", S->n_layers_toy);
    params_line(b, "modes", "%s", "[\"normal\", \"fixed\"]");
    for (int rep = 0; rep < reps; rep++)
        for (int l = 0; l < S->n_layers_toy; l++)
            for (int m = 0; m < 2; m++) {
                char id[64];
                snprintf(id, sizeof id, "r%d-dense%d-%s", rep, l, m ? "fixed" : "normal");
                run *r = add_run(S, id);
                if (!r) return usage_err(S, "%s", "too many runs");
                r->lr = lr;
                r->epochs = -1;
                r->steps = steps;
                r->batch = batch;
                r->seed = seed0 + rep;
                r->rep = rep;
                r->layer = l;
                r->x = l;
                r->fixed = m == 1;
                snprintf(r->group, sizeof r->group, "%s", m ? "fixed" : "normal");
                snprintf(r->train_only, sizeof r->train_only, "dense%d", l);
                r->paper_idx = S->task == TASK_MNIST && l < 10 ? l : -1;
            }
    return LC_OK;
}

/* epochs, batch, data subsets and schedule of the CNN studies */
static void resolve_cnn_common(study *S, int paper_epochs)
{
    const int quick_epochs = 3;
    const int64_t quick_train = 2000, quick_test = 1000;
    int model_epochs = S->mspec.epochs;
    if (paper_epochs <= 0) paper_epochs = model_epochs;
    if (S->epochs <= 0 && S->steps <= 0) S->epochs = S->quick ? LC_MIN(quick_epochs, model_epochs) : model_epochs;
    if (S->batch <= 0) S->batch = S->mspec.batch;
    if (S->seed < 0) S->seed = S->mspec.seed;
    if (S->quick && S->per_class < 0 && S->train_subset < 0) {
        S->train_subset = quick_train;
        lc_study_note(S, "training examples: a seeded draw of %lld (paper: the whole training set)", (long long)quick_train);
    }
    /* the test subset is a seeded draw (kept in order), so it covers every
     * class even where the split is sorted by class (image folders) */
    if (S->quick && S->test_subset < 0) {
        S->test_subset = quick_test;
        lc_study_note(S, "test examples: a seeded draw of %lld (paper: the whole test set)", (long long)quick_test);
    }
    if (S->per_class < 0) S->per_class = 0;
    if (S->train_subset < 0) S->train_subset = 0;
    if (S->test_subset < 0) S->test_subset = 0;
    if (S->eval_every < 0) S->eval_every = 1;
    const char *ref = S->task == TASK_NONE && paper_epochs == model_epochs ? "the model file's" : "the paper's";
    if (S->steps > 0) lc_study_note(S, "%lld steps per run instead of %s %d epochs", (long long)S->steps, ref, paper_epochs);
    else if (S->epochs != paper_epochs) lc_study_note(S, "%d epochs per run instead of %s %d", S->epochs, ref, paper_epochs);
    if (S->batch != 128) lc_study_note(S, "batch %d (paper: 128)", S->batch);
    if (S->task == TASK_NONE)
        lc_study_note(S, "model '%s' is none of the paper's networks: its numbers are shown for reference only", S->model_name);
    if (!strncmp(S->data, "images:", 7) && (S->task == TASK_C10 || S->task == TASK_WILSON))
        lc_study_note(S, "CIFAR-10 read from JPEG re-encodings (pixels differ slightly from the official binary release)");
}

/* the schedule for a run: --schedule / --no-schedule, else `base` (meant for
 * `base_epochs`) scaled to the run's epochs */
static schedule pick_schedule(study *S, const schedule *base, int base_epochs, const char *what)
{
    if (S->o.sched_set == 1) return S->o.sched;
    if (S->o.sched_set == 0) return (schedule){.n = 0, .factor = 1};
    if (S->steps > 0 || S->epochs == base_epochs) return *base;
    schedule s = sched_scale(base, base_epochs, S->epochs);
    char a[256], c[256];
    lc_study_sched_str(base, a, sizeof a);
    lc_study_sched_str(&s, c, sizeof c);
    lc_study_note(S, "%sschedule %s of %d epochs scaled to %d epochs: %s", what, a, base_epochs, S->epochs, c);
    return s;
}

static void params_common(study *S)
{
    lc_strbuf *b = &S->params;
    params_line(b, "epochs", "%d", S->steps > 0 ? -1 : S->epochs);
    params_line(b, "steps", "%lld", (long long)(S->steps > 0 ? S->steps : -1));
    params_line(b, "batch", "%d", S->batch);
    params_line(b, "seed", "%lld", (long long)S->seed);
    params_line(b, "per_class", "%d", S->per_class);
    params_line(b, "train_subset", "%lld", (long long)S->train_subset);
    params_line(b, "test_subset", "%lld", (long long)S->test_subset);
    params_line(b, "eval_every", "%d", S->eval_every);
    params_line(b, "flip", "%s", S->flip ? "true" : "false");
}

static lc_status resolve_alpha_lr(study *S)
{
    LC_TRY(resolve_model(S));
    if (S->flip < 0) S->flip = 0;
    resolve_cnn_common(S, 0);
    schedule base = {.n = S->mspec.n_milestones, .factor = S->mspec.factor};
    memcpy(base.ms, S->mspec.milestones, sizeof base.ms);
    schedule sc = pick_schedule(S, &base, S->mspec.epochs, "");
    char scs[256];
    lc_study_sched_str(&sc, scs, sizeof scs);
    params_common(S);
    params_line(&S->params, "schedule", "\"%s\"", scs);
    char ls[1024];
    if (S->kind == LC_STUDY_ALPHA_SWEEP) {
        double lr_layca = isnan(S->o.lr_layca) ? 1.0 / 27 : S->o.lr_layca;
        double lr_sgd = isnan(S->o.lr_sgd) ? 1.0 : S->o.lr_sgd;
        const double *al = S->o.n_alphas ? S->o.alphas : lc_study_paper_alphas;
        int na = S->o.n_alphas ? S->o.n_alphas : 13;
        if (S->o.n_alphas) lc_study_note(S, "alpha values %d of the paper's 13 (--alphas)", na);
        if (S->task == TASK_C100 || S->task == TASK_TINY)
            if (isnan(S->o.lr_sgd)) lc_study_note(S, "SGD lr 1 (the paper's CIFAR-10 best; it used 3^-1 for %s: --lr-sgd 0.3333)",
                                       S->task == TASK_C100 ? "CIFAR-100" : "Tiny ImageNet");
        params_line(&S->params, "lr_layca", "%.9g", lr_layca);
        params_line(&S->params, "lr_sgd", "%.9g", lr_sgd);
        list_str(ls, sizeof ls, al, na);
        params_line(&S->params, "alphas", "%s", ls);
        for (int i = 0; i < na; i++)
            for (int k = 0; k < 2; k++) {
                char id[64];
                snprintf(id, sizeof id, "%s-alpha%+.2f", k ? "sgd" : "layca", al[i]);
                run *r = add_run(S, id);
                if (!r) return usage_err(S, "%s", "too many runs");
                r->layca = k == 0;
                r->lr = k ? lr_sgd : lr_layca;
                r->alpha = al[i];
                r->sched = sc;
                r->x = al[i];
                snprintf(r->group, sizeof r->group, "%s", k ? "sgd" : "layca");
                for (int j = 0; j < 13; j++)
                    if (fabs(al[i] - lc_study_paper_alphas[j]) < 1e-9) r->paper_idx = j;
            }
    } else {
        double grid[10];
        for (int i = 0; i < 10; i++) grid[i] = pow(3.0, 2 - i); /* 3^2 .. 3^-7 */
        const double *lv = S->o.n_lrs ? S->o.lrs : grid;
        int nl = S->o.n_lrs ? S->o.n_lrs : 10;
        if (S->o.n_lrs) lc_study_note(S, "learning rates from --lrs instead of the paper's 3^2 .. 3^-7");
        list_str(ls, sizeof ls, lv, nl);
        params_line(&S->params, "lrs", "%s", ls);
        for (int i = 0; i < nl; i++) {
            char id[64];
            snprintf(id, sizeof id, "sgd-lr%.6g", lv[i]);
            run *r = add_run(S, id);
            if (!r) return usage_err(S, "%s", "too many runs");
            r->lr = lv[i];
            r->sched = sc;
            r->x = lv[i];
            snprintf(r->group, sizeof r->group, "sgd");
            for (int j = 0; j < 10; j++) /* paper list: 3^-7 .. 3^2 */
                if (fabs(log(lv[i]) / log(3.0) - (j - 7)) < 1e-6) r->paper_idx = j;
        }
    }
    return LC_OK;
}

static lc_status resolve_optim_wd(study *S)
{
    LC_TRY(resolve_model(S));
    if (S->flip < 0) S->flip = 1;
    resolve_cnn_common(S, 250);
    if (S->task != TASK_WILSON && S->task != TASK_NONE)
        lc_study_note(S, "the paper ran this study on the Wilson et al. VGG (models/wilson_vgg.json), not on %s", S->model_name);
    schedule plain = {.n = 9, .ms = {25, 50, 75, 100, 125, 150, 175, 200, 225}, .factor = 0.5};
    schedule lay = {.n = 3, .ms = {100, 170, 220}, .factor = 0.2};
    schedule sp = pick_schedule(S, &plain, 250, "without Layca: ");
    schedule sl = pick_schedule(S, &lay, 250, "with Layca: ");
    char a[256], c[256];
    lc_study_sched_str(&sp, a, sizeof a);
    lc_study_sched_str(&sl, c, sizeof c);
    params_common(S);
    params_line(&S->params, "schedule_without_layca", "\"%s\"", a);
    if (!S->flip) lc_study_note(S, "no horizontal flips (the paper's V1 augmentation)");
    if (S->kind == LC_STUDY_OPTIMIZERS) {
        params_line(&S->params, "schedule_layca", "\"%s\"", c);
        if (!S->n_optims)
            for (int k = 0; k < 5; k++) snprintf(S->optims[S->n_optims++], sizeof S->optims[0], "%s", lc_study_paper_optims[k].name);
        else lc_study_note(S, "optimizers from --optimizers");
        lc_strbuf ol = {0};
        for (int k = 0; k < S->n_optims; k++) lc_strbuf_printf(&ol, "%s\"%s\"", k ? ", " : "[", S->optims[k]);
        lc_strbuf_printf(&ol, "]");
        params_line(&S->params, "optimizers", "%s", ol.s ? ol.s : "[]");
        lc_strbuf_free(&ol);
        for (int k = 0; k < S->n_optims; k++) {
            int p = 0;
            while (p < 5 && strcmp(lc_study_paper_optims[p].name, S->optims[k])) p++;
            for (int m = 0; m < 2; m++) {
                char id[64];
                snprintf(id, sizeof id, "%s-%s", lc_study_paper_optims[p].name, m ? "layca" : "l2");
                run *r = add_run(S, id);
                if (!r) return usage_err(S, "%s", "too many runs");
                snprintf(r->optimizer, sizeof r->optimizer, "%s", lc_study_paper_optims[p].name);
                r->layca = m;
                r->lr = m ? lc_study_paper_optims[p].rho : lc_study_paper_optims[p].lr;
                r->weight_decay = m ? 0 : 5e-4;
                r->momentum = !strcmp(r->optimizer, "sgd") ? 0 : !strcmp(r->optimizer, "sgd_amom") ? 0.9 : NAN;
                r->sched = m ? sl : sp;
                r->paper_idx = p;
                snprintf(r->group, sizeof r->group, "%s", lc_study_paper_optims[p].label);
            }
        }
    } else {
        double lr = isnan(S->o.lr) ? 0.5 : S->o.lr;
        if (lr != 0.5) lc_study_note(S, "SGD lr %g (paper: 0.5)", lr);
        params_line(&S->params, "lr", "%.9g", lr);
        params_line(&S->params, "weight_decays", "%s", "[0.0005, 0]");
        for (int m = 0; m < 2; m++) {
            run *r = add_run(S, m ? "sgd-wd0" : "sgd-wd0.0005");
            if (!r) return usage_err(S, "%s", "too many runs");
            r->lr = lr;
            r->weight_decay = m ? 0 : 5e-4;
            r->sched = sp;
            r->x = r->weight_decay;
            r->paper_idx = m;
            snprintf(r->group, sizeof r->group, "sgd");
        }
    }
    return LC_OK;
}

lc_status lc_study_resolve(study *S)
{
    S->runs = calloc(MAX_RUNS, sizeof *S->runs);
    if (!S->runs) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (S->o.model) snprintf(S->model, sizeof S->model, "%s", S->o.model);
    if (S->o.data) snprintf(S->data, sizeof S->data, "%s", S->o.data);
    if (S->kind != LC_STUDY_MNIST_TOY) {
        if (!S->o.model && S->quick && find_project_model(S, "small_cnn.json")) {
            lc_study_note(S, "model %s (quick scale without --model; the paper's networks are larger)", S->model);
        }
        if (!S->model[0] || !S->data[0]) {
            const char *ex = S->kind == LC_STUDY_OPTIMIZERS || S->kind == LC_STUDY_WEIGHT_DECAY ? "models/wilson_vgg.json" : "models/cifar10_vgg.json";
            return usage_err(S, "study %s needs %s, e.g. layca study %s --model %s --data images:/tmp/cifar10 "
                               "(tools/datasets.sh cifar10-jpeg /tmp/cifar10 extracts the CIFAR-10 JPEGs there)",
                               S->name, S->model[0] ? "--data" : S->data[0] ? "--model" : "--model and --data", S->name, ex);
        }
    }
    lc_strbuf *b = &S->params;
    lc_strbuf_printf(b, "{\n  \"format\": \"layca-study/1\"");
    params_line(b, "study", "\"%s\"", S->name);
    params_line(b, "scale", "\"%s\"", S->quick ? "quick" : "paper");
    lc_status rc;
    if (S->kind == LC_STUDY_MNIST_TOY) rc = resolve_toy(S);
    else if (S->kind == LC_STUDY_ALPHA_SWEEP || S->kind == LC_STUDY_LR_GRID) rc = resolve_alpha_lr(S);
    else rc = resolve_optim_wd(S);
    if (rc != LC_OK) return rc;
    /* the model and data after resolution, with their paths as given */
    lc_strbuf head = {0};
    lc_study_json_str(&head, S->model);
    params_line(b, "model", "%s", head.s);
    lc_strbuf_free(&head);
    lc_study_json_str(&head, S->data);
    params_line(b, "data", "%s", head.s);
    lc_strbuf_free(&head);
    lc_strbuf ids = {0};
    lc_strbuf_printf(&ids, "[");
    for (int i = 0; i < S->n_runs; i++) {
        run_config(S, &S->runs[i]);
        lc_strbuf_printf(&ids, "%s\"%s\"", i ? ", " : "", S->runs[i].id);
    }
    lc_strbuf_printf(&ids, "]");
    params_line(b, "runs", "%s", ids.s);
    lc_strbuf_free(&ids);
    lc_strbuf_printf(b, "\n}\n");
    if (b->oom) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (S->o.fail_run) {
        bool found = false;
        for (int i = 0; i < S->n_runs; i++) found |= S->runs[i].fail;
        if (!found) return usage_err(S, "fail_run '%s': no run of that id", S->o.fail_run);
    }
    return LC_OK;
}


/* A value of study.json as text for a message: arrays as "[a, b]". */
static void value_text(const cJSON *v, char *buf, size_t len)
{
    if (!v) { snprintf(buf, len, "(none)"); return; }
    size_t o = 0;
    buf[0] = 0;
    if (cJSON_IsArray(v)) o += (size_t)snprintf(buf, len, "[");
    for (const cJSON *e = cJSON_IsArray(v) ? v->child : v; e && o < len; e = cJSON_IsArray(v) ? e->next : NULL) {
        char *t = cJSON_PrintUnformatted(e);
        o += (size_t)snprintf(buf + o, len - o, "%s%s", cJSON_IsArray(v) && e != v->child ? ", " : "", t ? t : "?");
        cJSON_free(t);
    }
    if (cJSON_IsArray(v) && o < len) snprintf(buf + o, len - o, "]");
}

/* "key value (stored: old)" for the first differences, their number */
static int describe_changes(const cJSON *now, const cJSON *old, char *diff, size_t cap)
{
    size_t o = 0;
    int nd = 0;
    diff[0] = 0;
    for (const cJSON *it = now ? now->child : NULL; it; it = it->next) {
        const cJSON *ov = cJSON_IsObject(old) ? cJSON_GetObjectItemCaseSensitive(old, it->string) : NULL;
        char nv[512], oldv[512];
        value_text(it, nv, sizeof nv);
        value_text(ov, oldv, sizeof oldv);
        if (!strcmp(nv, oldv)) continue;
        if (nd++ < 4 && o < cap)
            o += (size_t)snprintf(diff + o, cap - o, "%s%s %.120s (stored: %.120s)", o ? "; " : "", it->string, nv, oldv);
    }
    return nd;
}

lc_status lc_study_check_params(const study *S)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/study.json", S->out);
    if (!lc_study_file_exists(path)) return LC_OK;
    uint8_t *data;
    size_t len;
    LC_TRY(lc_file_read(path, &data, &len));
    if (len == S->params.len && !memcmp(data, S->params.s, len)) {
        free(data);
        return LC_OK;
    }
    cJSON *old = cJSON_ParseWithLength((const char *)data, len);
    cJSON *now = cJSON_Parse(S->params.s);
    free(data);
    char diff[2048];
    int nd = describe_changes(now, old, diff, sizeof diff);
    cJSON_Delete(old);
    cJSON_Delete(now);
    if (!nd) snprintf(diff, sizeof diff, "the file's layout");
    if (S->o.force) {
        fprintf(S->log, "study: %s holds other parameters (%s); going on under --force: runs whose settings changed "
                        "are rerun\n", path, diff);
        return LC_OK;
    }
    return LC_ERR(LC_ERR_INVALID, "%s holds a study with other parameters: %s%s; use the same options, another --out, "
                  "or --force to go on with the new ones (runs whose settings changed are rerun)",
                  path, diff, nd > 4 ? "; ..." : "");
}
