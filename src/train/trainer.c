/* The trainer object: set-up, steps, epochs, evaluation, and the whole run
 * (lc_train_run) with its checkpoint cadence, stop requests and non-finite
 * losses. */
#include "trainer_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the train section and flags ---- */

void lc_train_spec_defaults(lc_train_spec *t)
{
    if (!t->optimizer[0]) snprintf(t->optimizer, sizeof t->optimizer, "sgd");
    if (t->layca < 0) t->layca = 0;
    if (isnan(t->lr)) t->lr = 0.01;
    if (isnan(t->momentum)) t->momentum = !strcmp(t->optimizer, "sgd_amom") ? 0.9 : 0.0;
    if (isnan(t->alpha)) t->alpha = 0.0;
    if (isnan(t->weight_decay)) t->weight_decay = 0.0;
    if (t->nesterov < 0) t->nesterov = 0;
    if (t->n_milestones < 0) t->n_milestones = 0;
    if (isnan(t->factor)) t->factor = 1.0;
    if (t->epochs < 0) t->epochs = 1;
    if (t->batch < 0) t->batch = 128;
    if (t->seed < 0) t->seed = 1;
}

double lc_train_schedule_lr(const lc_train_spec *t, int epoch)
{
    double lr = t->lr;
    for (int i = 0; i < t->n_milestones; i++)
        if (epoch >= t->milestones[i]) lr *= t->factor;
    return lr;
}

void lc_train_spec_overlay(lc_train_spec *dst, const lc_train_spec *src)
{
    if (src->optimizer[0]) memcpy(dst->optimizer, src->optimizer, sizeof dst->optimizer);
    if (src->layca >= 0) dst->layca = src->layca;
    if (!isnan(src->lr)) dst->lr = src->lr;
    if (!isnan(src->momentum)) dst->momentum = src->momentum;
    if (!isnan(src->alpha)) dst->alpha = src->alpha;
    if (!isnan(src->weight_decay)) dst->weight_decay = src->weight_decay;
    if (src->nesterov >= 0) dst->nesterov = src->nesterov;
    if (src->n_milestones >= 0) {
        dst->n_milestones = src->n_milestones;
        memcpy(dst->milestones, src->milestones, sizeof dst->milestones);
        dst->factor = src->factor;
    }
    /* the run's length is one setting: --epochs replaces the file's steps
     * and --steps its epochs */
    if (src->epochs >= 0) {
        dst->epochs = src->epochs;
        dst->steps = -1;
    }
    if (src->steps >= 0) {
        dst->steps = src->steps;
        dst->epochs = -1;
    }
    if (src->batch >= 0) dst->batch = src->batch;
    if (src->seed >= 0) dst->seed = src->seed;
}

void lc_train_opts_init(lc_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->log_every = -1;
    lc_train_spec_unset(&o->spec);
}

/* Eq. 1 layer-wise multiplier of kernel layer l out of L. */
static double layer_multiplier(int l, int L, double alpha)
{
    if (L <= 1 || alpha == 0.0) return 1.0;
    if (alpha < 0) return pow(1.0 + alpha, 5.0 * l / (L - 1));
    return pow(1.0 - alpha, 5.0 * (L - 1 - l) / (L - 1));
}

void lc_train_result_free(lc_train_result *r)
{
    free(r->rotation);
    free(r->norm);
    r->rotation = r->norm = NULL;
    r->n_layers = 0;
}

uint64_t lc_trainer_file_hash(const char *path, lc_status *st)
{
    uint8_t *b;
    size_t n;
    *st = lc_file_read(path, &b, &n);
    if (*st != LC_OK) return 0;
    uint64_t h = lc_hash64(b, n, 0);
    free(b);
    return h;
}

void lc_trainer_destroy(lc_trainer *t)
{
    if (!t) return;
    lc_trainer_progress_end(t);
    lc_optim_destroy(t->opt);
    lc_exec_destroy(t->ex);
    lc_rt_destroy(t->rt);
    lc_graph_destroy(t->g);
    lc_batcher_deinit(&t->tb);
    lc_dataset_deinit(&t->train);
    lc_dataset_deinit(&t->test);
    lc_dataset_deinit(&t->val);
    free(t->xbuf);
    free(t->ybuf);
    free(t->idx);
    free(t->host_params);
    free(t->dist_buf);
    free(t->dist_bk);
    free(t->dist_pb);
    free(t->dist_last);
    free(t->dist_order);
    free(t->rates);
    free(t->mult);
    free(t->layer_of_kernel);
    free(t->layer_name);
    free(t->rot_opt);
    free(t->norm_opt);
    free(t->rot);
    free(t->norm);
    lc_gating_free(&t->gate);
    lc_metrics_close(t);
    free(t);
}

bool lc_trainer_done(const lc_trainer *t) { return t->done; }
int64_t lc_trainer_steps_done(const lc_trainer *t) { return t->step; }

/* ---- set-up ---- */

/* The model file under the flags, and the checkpoint folder. */
static lc_status setup_spec(lc_trainer *t)
{
    const lc_train_opts *o = &t->o;
    lc_train_spec file;
    LC_TRY(lc_model_load(o->model_path, &t->g, &file));
    lc_train_spec_overlay(&file, &o->spec);
    lc_train_spec_defaults(&file);
    t->spec = file;
    LC_TRY(lc_optim_kind_parse(t->spec.optimizer, &t->kind));
    lc_status st;
    t->model_hash = lc_trainer_file_hash(o->model_path, &st);
    LC_TRY(st);
    if (o->init_path) {
        t->init_hash = lc_trainer_file_hash(o->init_path, &st);
        LC_TRY(st);
    }
    if (o->checkpoint_dir) {
        snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s", o->checkpoint_dir);
    } else if (o->save_path || o->metrics_path) {
        const char *p = o->save_path ? o->save_path : o->metrics_path;
        const char *slash = strrchr(p, '/');
        if (slash) snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%.*s/checkpoints", (int)(slash - p), p);
        else snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "checkpoints");
    }
    if ((o->checkpoint_every > 0 || o->checkpoint_every_epochs > 0) && !t->ckpt_dir[0])
        return LC_ERR(LC_ERR_INVALID, "--checkpoint-every needs a folder: give --checkpoint-dir, --save or --metrics");
    /* a folder is made only when checkpoints are asked for; a stop request
     * then writes into it too */
    if (o->checkpoint_every <= 0 && o->checkpoint_every_epochs <= 0 && !o->stop) t->ckpt_dir[0] = 0;
    return LC_OK;
}

lc_status lc_train_check_input(const lc_graph *g, const lc_dataset *d, const char *spec)
{
    const lc_shape *s = &g->nodes[g->input].shape;
    char b[64];
    int64_t in_numel = lc_shape_numel(s);
    if (lc_dataset_example_size(d) != in_numel)
        return LC_ERR(LC_ERR_INVALID, "%s: examples have %d x %d x %d = %lld values, model '%s' takes %s", spec, d->c,
                      d->h, d->w, (long long)lc_dataset_example_size(d), g->name, lc_shape_str(s, b, sizeof b));
    /* the same count in another layout (a channels-last [h, w, c]) would
     * train on scrambled examples: a flat input, [c, h, w], or [h, w] for
     * one channel */
    bool ok = s->rank == 1 || (s->rank == 3 && s->dims[0] == d->c && s->dims[1] == d->h && s->dims[2] == d->w) ||
              (s->rank == 2 && d->c == 1 && s->dims[0] == d->h && s->dims[1] == d->w);
    if (!ok)
        return LC_ERR(LC_ERR_INVALID, "%s: examples are [%d, %d, %d] (channels, height, width), model '%s' takes %s: "
                      "the same number of values in another layout (use \"shape\": [%d, %d, %d], or [%lld] for a "
                      "flat input)", spec, d->c, d->h, d->w, g->name, lc_shape_str(s, b, sizeof b), d->c, d->h, d->w,
                      (long long)in_numel);
    return LC_OK;
}

static lc_status setup_data(lc_trainer *t)
{
    const lc_train_opts *o = &t->o;
    lc_graph *g = t->g;
    lc_data_opts dopts = o->data;
    dopts.seed = (uint64_t)t->spec.seed;
    dopts.classes = g->classes;
    LC_TRY(lc_data_open3(o->data_spec, &dopts, &t->train, &t->val, &t->test, &t->dinfo, t->data_desc,
                         sizeof t->data_desc));
    LC_TRY(lc_train_check_input(g, &t->train, o->data_spec));
    if (t->train.classes > g->classes)
        return LC_ERR(LC_ERR_INVALID, "%s: the data has %d classes, model '%s' has %d outputs", o->data_spec,
                      t->train.classes, g->name, g->classes);
    if (t->train.n == 0) return LC_ERR(LC_ERR_INVALID, "%s: no training examples", o->data_spec);
    LC_INFO("data: %s", t->data_desc);
    t->batch = (int)LC_MIN((int64_t)t->spec.batch, t->train.n);
    return LC_OK;
}

/* --train-only: freeze every parameter but the node's; returns the node. */
static lc_status setup_train_only(lc_trainer *t, int *trained)
{
    lc_graph *g = t->g;
    *trained = -1;
    if (!t->o.train_only) return LC_OK;
    int id = lc_graph_find(g, t->o.train_only);
    *trained = id;
    bool has = false;
    for (int i = 0; i < g->n_params; i++) {
        lc_node *pn = &g->nodes[g->params[i].node];
        pn->trainable = pn->owner == id && id >= 0;
        has |= pn->trainable;
    }
    if (!has)
        return LC_ERR(LC_ERR_INVALID, "--train-only '%s': model '%s' has no node of that name with parameters",
                      t->o.train_only, g->name);
    return LC_OK;
}

lc_optim_tensor *lc_train_optim_tensors(const lc_graph *g, bool all_trainable)
{
    lc_optim_tensor *ot = calloc((size_t)g->n_params + 1, sizeof *ot);
    for (int i = 0; ot && i < g->n_params; i++) {
        const lc_node *pn = &g->nodes[g->params[i].node];
        bool tr = all_trainable || (pn->trainable && g->params[i].grad_node >= 0);
        ot[i] = (lc_optim_tensor){.offset = g->params[i].offset, .numel = g->params[i].numel, .trainable = tr,
                                  .is_kernel = pn->is_kernel};
    }
    return ot;
}

static lc_status setup_optim(lc_trainer *t)
{
    lc_graph *g = t->g;
    const lc_train_spec *spec = &t->spec;
    lc_optim_config oc;
    lc_optim_config_defaults(&oc, t->kind);
    oc.geometry = t->o.optim_geometry;
    if (t->kind == LC_OPTIM_SGD || t->kind == LC_OPTIM_SGD_AMOM) oc.momentum = spec->momentum;
    oc.nesterov = spec->nesterov != 0;
    oc.weight_decay = spec->weight_decay;
    oc.layca = spec->layca != 0;
    oc.fuse = !t->o.no_fuse;
    oc.layca_skip_non_kernel = t->o.layca_skip_non_kernel;
    int L = lc_graph_kernel_layers(g, NULL, 0);
    lc_optim_tensor *ot = lc_train_optim_tensors(g, false);
    int *kl = malloc((size_t)(L > 0 ? L : 1) * sizeof *kl);
    t->rates = calloc((size_t)g->n_params + 1, sizeof *t->rates);
    t->mult = calloc((size_t)g->n_params + 1, sizeof *t->mult);
    if (!ot || !kl || !t->rates || !t->mult) {
        free(ot);
        free(kl);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    /* layer multipliers: a kernel gets eq. 1's factor for its index in
     * forward order; a bias follows its layer's kernel */
    lc_graph_kernel_layers(g, kl, L);
    for (int i = 0; i < g->n_params; i++) {
        const lc_node *pn = &g->nodes[g->params[i].node];
        t->mult[i] = 1.0;
        for (int l = 0; l < L; l++) {
            const lc_node *kn = &g->nodes[g->params[kl[l]].node];
            if (kn->owner == pn->owner && pn->owner >= 0) t->mult[i] = layer_multiplier(l, L, spec->alpha);
        }
    }
    free(kl);
    lc_status st = lc_optim_create(&t->opt, t->rt, &oc, ot, g->n_params, g->param_floats, lc_exec_params(t->ex),
                                   lc_exec_grads(t->ex));
    free(ot);
    return st;
}

/* Kernel layers: the optimizer lists them in tensor-table order, the
 * metrics in forward order. */
static lc_status setup_layers(lc_trainer *t)
{
    lc_graph *g = t->g;
    t->L = lc_optim_kernel_count(t->opt);
    int n = t->L > 0 ? t->L : 1;
    t->layer_of_kernel = calloc((size_t)n, sizeof *t->layer_of_kernel);
    t->layer_name = calloc((size_t)n, sizeof *t->layer_name);
    t->rot_opt = calloc((size_t)n, sizeof(double));
    t->norm_opt = calloc((size_t)n, sizeof(double));
    t->rot = calloc((size_t)n, sizeof(double));
    t->norm = calloc((size_t)n, sizeof(double));
    int *fwd = calloc((size_t)n, sizeof *fwd);
    if (!t->layer_of_kernel || !t->layer_name || !t->rot_opt || !t->norm_opt || !t->rot || !t->norm || !fwd) {
        free(fwd);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    int nf = lc_graph_kernel_layers(g, fwd, n);
    int j = 0;
    for (int i = 0; i < g->n_params && j < t->L; i++) {
        if (!g->nodes[g->params[i].node].is_kernel) continue;
        int l = 0;
        while (l < nf && fwd[l] != i) l++;
        t->layer_of_kernel[j++] = l < nf ? l : 0;
    }
    for (int l = 0; l < nf && l < n; l++) {
        const lc_node *pn = &g->nodes[g->params[fwd[l]].node];
        snprintf(t->layer_name[l], LC_NAME_MAX, "%s", pn->owner >= 0 ? g->nodes[pn->owner].name : pn->name);
    }
    free(fwd);
    return LC_OK;
}

/* The cosine silhouette of the loss gradient at node `sid`'s output over
 * the first `count` test examples, in evaluation mode (the paper's
 * feedback silhouette). */
static lc_status feedback_silhouette(lc_trainer *t, double *out)
{
    lc_graph *g = t->g;
    int sid = t->sil, count = t->o.silhouette_samples > 0 ? t->o.silhouette_samples : 1000;
    int gid = g->nodes[sid].grad;
    const lc_dataset *d = &t->test;
    int n = (int)LC_MIN((int64_t)count, d->n);
    int64_t dim = lc_shape_numel(&g->nodes[sid].shape), es = lc_dataset_example_size(d);
    float *fb = malloc((size_t)(n * dim) * sizeof(float) + 4);
    if (!fb) return LC_ERR(LC_ERR_NOMEM, "out of memory for the feedback of %d examples", n);
    float acc[3];
    lc_status st = lc_exec_stats_get(t->ex, acc); /* evaluation must not disturb the epoch's sums */
    if (st == LC_OK) st = lc_exec_set_mode(t->ex, false);
    for (int i = 0; i < n && st == LC_OK; i += t->lbatch) {
        int nb = LC_MIN(t->lbatch, n - i);
        st = lc_exec_set_batch(t->ex, d->x + (int64_t)i * es, d->y + i, nb);
        if (st == LC_OK && t->gate.n) {
            for (int k = 0; k < nb; k++) t->idx[k] = i + k;
            st = lc_gating_upload(t, 2, t->idx, nb);
        }
        if (st == LC_OK) st = lc_exec_forward(t->ex);
        if (st == LC_OK) st = lc_exec_backward(t->ex);
        if (st == LC_OK) st = lc_exec_read_node(t->ex, gid, fb + (int64_t)i * dim);
    }
    lc_status st2 = lc_exec_set_mode(t->ex, true);
    if (st == LC_OK) st = st2;
    if (st == LC_OK) st = lc_exec_stats_set(t->ex, acc);
    if (st == LC_OK) st = lc_silhouette_cosine(fb, d->y, n, (int)dim, g->classes, out);
    free(fb);
    return st;
}

lc_status lc_trainer_create(lc_trainer **out, const lc_train_opts *o)
{
    *out = NULL;
    if (!o->model_path || !o->data_spec) return LC_ERR(LC_ERR_INVALID, "training needs a model file and a data spec");
    lc_trainer *t = calloc(1, sizeof *t);
    if (!t) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    t->o = *o;
    t->metrics_fd = -1;
    t->resumed_from = -1;
    t->last_ckpt_step = -1;
    t->sil = -1;
    t->trl = t->tra = t->tel = t->tea = t->tea5 = t->vl = t->va = t->va5 = t->sil_value = NAN;
    t->running_loss = NAN;
    lc_status st;
#define CHECK(x) do { st = (x); if (st != LC_OK) goto fail; } while (0)
    CHECK(setup_spec(t));
    CHECK(lc_train_dist_begin(t));
    /* outputs are checked before anything slow happens */
    CHECK(lc_trainer_check_paths(t));
    CHECK(setup_data(t));
    CHECK(lc_train_dist_batch(t));
    lc_graph *g = t->g;
    int trained;
    CHECK(setup_train_only(t, &trained));
    t->idx = malloc((size_t)t->lbatch * sizeof *t->idx);
    t->host_params = malloc((size_t)(g->param_floats ? g->param_floats : 1) * 4);
    if (!t->idx || !t->host_params) CHECK(LC_ERR(LC_ERR_NOMEM, "out of memory"));
    lc_graph_init_params(g, t->host_params, (uint64_t)t->spec.seed);
    if (o->init_path) CHECK(lc_model_load_params_map(o->init_path, g, t->host_params, o->init_map));

    double t0 = lc_now_s();
    lc_rt_opts ro = t->o.rt;
    ro.selector = t->o.device;
    ro.device_only = o->device_only;
    CHECK(lc_rt_create_opts(&t->rt, &ro));
    LC_INFO("device: %s (%s, %s)%s", t->rt->info.name, lc_rt_device_type_name(t->rt->info.type),
            t->rt->info.platform_name, o->device_only ? ", device-only" : "");
    if (o->fixed_gating) {
        /* the trained layer's own ReLU stays free: the ReLU right after it */
        int keep = -1;
        for (int i = 0; trained >= 0 && i < g->n_nodes; i++)
            if (g->nodes[i].op == LC_OP_RELU && g->nodes[i].inputs[0] == trained) keep = i;
        CHECK(lc_gating_setup(t, t->host_params, keep));
    }
    if (o->silhouette) {
        t->sil = lc_graph_find(g, o->silhouette);
        if (t->sil < 0 || lc_op_kind(g->nodes[t->sil].op) != 'F')
            CHECK(LC_ERR(LC_ERR_INVALID, "--silhouette '%s': model '%s' has no layer node of that name", o->silhouette,
                         g->name));
        /* the silhouette reads the node's gradient after the whole backward pass */
        g->nodes[t->sil].keep_value = true;
    }
    /* compile and plan (a frozen prefix gets no backward pass) */
    CHECK(lc_exec_compile(g, t->lbatch, true, NULL));
    if (t->sil >= 0 && g->nodes[t->sil].grad < 0)
        CHECK(LC_ERR(LC_ERR_INVALID, "--silhouette '%s': no gradient reaches this node (is anything before it trained?)",
                     o->silhouette));
    LC_INFO("model '%s': %d nodes, %d kernel layers, %lld trainable parameters; memory plan at batch %d: "
            "activations %.2f MiB, parameters+gradients %.2f MiB",
            g->name, g->n_forward, lc_graph_kernel_layers(g, NULL, 0), (long long)lc_graph_trainable_count(g),
            t->lbatch, (double)g->act_floats * 4 / 1048576.0, (double)g->param_floats * 8 / 1048576.0);
    CHECK(lc_exec_check_memory(t->rt, g, lc_optim_arenas(t->kind))); /* the whole plan, before any allocation */
    lc_exec_opts xo = {.host_conv = o->host_conv};
    CHECK(lc_exec_create_opts(&t->ex, t->rt, g, &xo));
    /* dropout masks (each rank of a data-parallel run draws its own) */
    lc_exec_set_seed(t->ex, (uint64_t)t->spec.seed ^ ((uint64_t)t->rank * 0x9e3779b97f4a7c15ULL));
    CHECK(lc_exec_write_params(t->ex, t->host_params));
    CHECK(setup_optim(t));
    CHECK(setup_layers(t));
    CHECK(lc_rt_finish(t->rt));
    LC_INFO("ready in %.2f s: %d programs built from source, %d loaded from the cache; launches per step: "
            "%d forward, %d backward, %d optimizer",
            lc_now_s() - t0, t->rt->programs_built, t->rt->programs_from_cache, lc_exec_launch_counts(t->ex).forward,
            lc_exec_launch_counts(t->ex).backward, lc_optim_launches_per_step(t->opt));

    int64_t es = lc_dataset_example_size(&t->train);
    t->xbuf = malloc((size_t)t->lbatch * (size_t)es * 4);
    t->ybuf = malloc((size_t)t->lbatch * 4);
    if (!t->xbuf || !t->ybuf) CHECK(LC_ERR(LC_ERR_NOMEM, "out of memory"));
    CHECK(lc_batcher_init(&t->tb, &t->train, t->batch, !o->no_shuffle, (uint64_t)t->spec.seed));
    CHECK(lc_batcher_set_shard(&t->tb, t->rank, t->ranks));
    if (o->flip || o->shift > 0) CHECK(lc_batcher_set_augment(&t->tb, o->flip, o->shift));
    t->per_epoch = (t->train.n + t->batch - 1) / t->batch;
    t->epochs = t->spec.epochs;
    t->total_steps = t->per_epoch * t->epochs;
    if (t->spec.steps > 0) {
        t->epochs = (int)((t->spec.steps + t->per_epoch - 1) / t->per_epoch);
        t->total_steps = t->spec.steps;
    }
    t->every = o->eval_every > 0 ? o->eval_every : 1;
    t->log_every = o->log_every >= 0 ? o->log_every : (int)(t->total_steps / 200 > 1 ? t->total_steps / 200 : 1);
    lc_trainer_build_settings(t);

    char path[2048] = "";
    if (o->resume) {
        /* a folder without checkpoints yet starts the run (a job that is
         * always launched with --resume); a missing file is an error */
        struct stat s;
        bool exists = stat(o->resume, &s) == 0;
        if (!exists && !strcmp(o->resume, t->ckpt_dir)) {
            LC_INFO("%s holds no checkpoint yet: starting from step 0", o->resume);
        } else if (!exists) {
            CHECK(LC_ERR(LC_ERR_IO, "--resume %s: no such checkpoint file or folder", o->resume));
        } else if (S_ISDIR(s.st_mode)) {
            if (lc_checkpoint_latest(o->resume, path, sizeof path, NULL) != LC_OK) {
                LC_INFO("%s holds no checkpoint yet: starting from step 0", o->resume);
                path[0] = 0;
            }
        } else {
            snprintf(path, sizeof path, "%s", o->resume);
        }
    }
    if (path[0]) {
        CHECK(lc_trainer_load_checkpoint(t, path));
        LC_INFO("resumed from %s at step %lld (epoch %d, %lld steps into it)", path, (long long)t->step,
                t->epoch + (t->epoch_open ? 1 : 0), (long long)t->in_epoch);
    } else {
        CHECK(lc_metrics_open_fresh(t));
        CHECK(lc_record_settings(t));
    }
    LC_INFO("training: %s%s, %s %g, batch %d, %d epoch%s (%lld steps each, %lld in all)", t->spec.layca ? "layca-" : "",
            t->spec.optimizer, t->spec.layca ? "rho" : "lr", t->spec.lr, t->batch, t->epochs, t->epochs == 1 ? "" : "s",
            (long long)t->per_epoch, (long long)t->total_steps);
    t->t_start = t->last_print = lc_now_s();
    if (t->sil >= 0 && t->resumed_from < 0) {
        /* the feedback silhouette before training (epoch 0) */
        CHECK(feedback_silhouette(t, &t->sil_value));
        CHECK(lc_record_silhouette(t, 0));
        if (!t->o.quiet && t->o.progress != LC_PROGRESS_QUIET && !t->o.progress_fn)
            fprintf(stderr, "epoch 0  feedback silhouette at %s: %.4f\n", o->silhouette, t->sil_value);
    }
    *out = t;
    return LC_OK;
fail:
#undef CHECK
    lc_trainer_destroy(t);
    return st;
}

/* ---- steps and epochs ---- */

lc_status lc_trainer_evaluate(lc_trainer *t, int split, double *loss, double *acc, double *acc5)
{
    const lc_dataset *d = lc_trainer_split(t, split);
    int64_t es = lc_dataset_example_size(d);
    float keep[3];
    LC_TRY(lc_exec_stats_get(t->ex, keep)); /* the epoch's training sums survive */
    float zero[3] = {0, 0, 0};
    LC_TRY(lc_exec_stats_set(t->ex, zero));
    LC_TRY(lc_exec_set_mode(t->ex, false));
    lc_status st = LC_OK;
    int64_t lo, hi; /* this rank's share of the split */
    lc_train_dist_shard(t, d->n, &lo, &hi);
    for (int64_t i = lo; i < hi && st == LC_OK; i += t->lbatch) {
        int n = (int)LC_MIN((int64_t)t->lbatch, hi - i);
        st = lc_exec_set_batch(t->ex, d->x + i * es, d->y + i, n);
        if (st == LC_OK && t->gate.n) {
            for (int k = 0; k < n; k++) t->idx[k] = (int32_t)(i + k);
            st = lc_gating_upload(t, split, t->idx, n);
        }
        if (st == LC_OK) st = lc_exec_forward(t->ex);
    }
    lc_status st2 = lc_exec_set_mode(t->ex, true);
    LC_TRY(st);
    LC_TRY(st2);
    double v[3];
    LC_TRY(lc_exec_stats5(t->ex, &v[0], &v[1], &v[2], false));
    LC_TRY(lc_exec_stats_set(t->ex, keep));
    LC_TRY(lc_train_dist_sum(t, v, 3));
    double ls = v[0], c = v[1], c5 = v[2];
    *loss = d->n ? ls / (double)d->n : NAN;
    *acc = d->n ? c / (double)d->n : NAN;
    *acc5 = d->n ? c5 / (double)d->n : NAN;
    return LC_OK;
}

/* The first kernel layer (forward order) whose weights or gradient hold a
 * non-finite value, as "gradient of layer 'fc1'"; "" when none does. */
static lc_status find_nonfinite(lc_trainer *t, char *where, size_t cap)
{
    lc_graph *g = t->g;
    where[0] = 0;
    float *grads = malloc((size_t)(g->param_floats ? g->param_floats : 1) * 4);
    if (!grads) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    lc_status st = lc_exec_read_params(t->ex, t->host_params);
    if (st == LC_OK) st = lc_exec_read_grads(t->ex, grads);
    int L = lc_graph_kernel_layers(g, NULL, 0);
    int *kl = malloc((size_t)(L > 0 ? L : 1) * sizeof *kl);
    if (st == LC_OK && !kl) st = LC_ERR(LC_ERR_NOMEM, "out of memory");
    if (st == LC_OK) lc_graph_kernel_layers(g, kl, L);
    for (int pass = 0; pass < 2 && st == LC_OK && !where[0]; pass++) {
        const float *a = pass ? grads : t->host_params;
        for (int l = 0; l < L && !where[0]; l++) {
            int owner = g->nodes[g->params[kl[l]].node].owner;
            for (int i = 0; i < g->n_params && !where[0]; i++) {
                if (g->nodes[g->params[i].node].owner != owner) continue;
                const lc_param *p = &g->params[i];
                for (int64_t k = 0; k < p->numel; k++)
                    if (!isfinite(a[p->offset + k])) {
                        snprintf(where, cap, "%s of '%s' (layer %d of %d)", pass ? "the gradient" : "the weights",
                                 g->nodes[p->node].name, l + 1, L);
                        break;
                    }
            }
        }
    }
    free(kl);
    free(grads);
    return st;
}

/* A loss record for the window since the epoch's previous one, every
 * log_every steps and at the epoch's end. */
static lc_status log_loss(lc_trainer *t, const float acc[3], bool epoch_end)
{
    int64_t n = t->pending_seen - t->win_seen;
    if (t->log_every <= 0 || n <= 0 || (t->pending_step % t->log_every && !epoch_end)) return LC_OK;
    lc_loss_rec r = {.epoch = t->pending_epoch, .step = (double)t->pending_step, .lr = t->lr,
                     .loss = ((double)acc[0] - t->win_acc[0]) / (double)n,
                     .acc = ((double)acc[1] - t->win_acc[1]) / (double)n, .examples = (double)n};
    memcpy(t->win_acc, acc, sizeof t->win_acc);
    t->win_seen = t->pending_seen;
    return lc_record_loss(t, &r);
}

/* The accumulators read after step pending_step (one step behind): the
 * running loss, the loss record, and the non-finite policy. */
lc_status lc_trainer_watch_loss(lc_trainer *t, bool epoch_end)
{
    if (!lc_exec_stats_pending(t->ex)) return LC_OK;
    float acc[3];
    LC_TRY(lc_exec_stats_collect(t->ex, acc));
    LC_TRY(lc_train_dist_acc(t, acc));
    int64_t upto = t->pending_step;
    double loss = t->pending_seen > 0 ? acc[0] / (double)t->pending_seen : NAN;
    t->running_loss = loss;
    LC_TRY(log_loss(t, acc, epoch_end));
    if (isfinite(acc[0]) || t->nonfinite_seen) return LC_OK;
    t->nonfinite_seen = true;
    char where[256];
    LC_TRY(lc_rt_finish(t->rt));
    LC_TRY(find_nonfinite(t, where, sizeof where));
    const char *w = where[0] ? where : "no weights or gradients (the activations overflowed)";
    lc_status st = lc_record_nonfinite(t, upto, loss, w);
    if (t->o.on_nonfinite == LC_NONFINITE_CONTINUE) {
        LC_WARN("step %lld: the training loss is not finite (lr %g); first non-finite: %s; going on "
                "(--on-nonfinite continue)", (long long)upto, t->lr, w);
        return st;
    }
    t->done = true;
    if (st != LC_OK) return st;
    return LC_ERR(LC_ERR_INVALID, "step %lld (epoch %d): the training loss is not finite (lr %g); first non-finite: %s; "
                  "lower the learning rate, or give --on-nonfinite continue to go on", (long long)upto, t->epoch + 1,
                  t->lr, w);
}

static lc_status begin_epoch(lc_trainer *t)
{
    t->lr = lc_train_schedule_lr(&t->spec, t->epoch);
    for (int i = 0; i < t->g->n_params; i++) t->rates[i] = t->lr * t->mult[i];
    LC_TRY(lc_optim_set_rates(t->opt, t->rates));
    float zero[3] = {0, 0, 0};
    LC_TRY(lc_exec_stats_set(t->ex, zero));
    memset(t->win_acc, 0, sizeof t->win_acc);
    t->win_seen = 0;
    lc_batcher_begin_epoch(&t->tb);
    t->in_epoch = 0;
    t->seen = 0;
    t->running_loss = NAN;
    t->epoch_open = true;
    return LC_OK;
}

/* "rotation fc1 0.012 fc2 0.020 fc3 0.031" (first to last layer, names cut
 * at 12 characters), or quantiles when there are many layers */
static void rotation_summary(const lc_trainer *t, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "  rotation");
    if (t->L <= 8) {
        for (int l = 0; l < t->L && o < len; l++)
            o += (size_t)snprintf(buf + o, len - o, " %.12s %.3f", t->layer_name[l], t->rot[l]);
        return;
    }
    double lo = t->rot[0], hi = t->rot[0], sum = 0;
    for (int l = 0; l < t->L; l++) {
        lo = fmin(lo, t->rot[l]);
        hi = fmax(hi, t->rot[l]);
        sum += t->rot[l];
    }
    snprintf(buf + o, len - o, " first %.3f last %.3f min %.3f mean %.3f max %.3f (%d layers)", t->rot[0],
             t->rot[t->L - 1], lo, sum / t->L, hi, t->L);
}

static lc_status end_epoch(lc_trainer *t, bool last)
{
    int e = t->epoch;
    LC_TRY(lc_trainer_watch_loss(t, true));
    double v[2];
    LC_TRY(lc_exec_stats(t->ex, &v[0], &v[1], false)); /* synchronises */
    LC_TRY(lc_train_dist_sum(t, v, 2));
    double ls = v[0], c = v[1];
    t->trl = ls / (double)(t->seen ? t->seen : 1);
    t->tra = c / (double)(t->seen ? t->seen : 1);
    t->running_loss = t->trl;
    t->epoch_open = false;
    t->epoch = e + 1;
    if (last) t->done = true;
    if (!isfinite(t->trl)) LC_WARN("epoch %d: the training loss is not finite (lr too high?)", e + 1);
    if ((e + 1) % t->every && !last) {
        lc_trainer_progress(t, true, NULL);
        return LC_OK;
    }
    bool printing = !t->o.quiet && t->o.progress != LC_PROGRESS_QUIET;
    if ((printing || t->o.progress_fn) && !last && t->L > 0) {
        /* for the progress line only: the rotation at the epoch's end */
        LC_TRY(lc_optim_rotation(t->opt, t->rot_opt, t->norm_opt));
        for (int j = 0; j < t->L; j++) t->rot[t->layer_of_kernel[j]] = t->rot_opt[j];
    }
    if (t->val.n > 0) LC_TRY(lc_trainer_evaluate(t, 1, &t->vl, &t->va, &t->va5));
    LC_TRY(lc_trainer_evaluate(t, 2, &t->tel, &t->tea, &t->tea5));
    LC_TRY(lc_record_eval(t, t->elapsed_before + lc_now_s() - t->t_start));
    if (t->sil >= 0) {
        LC_TRY(feedback_silhouette(t, &t->sil_value));
        LC_TRY(lc_record_silhouette(t, e + 1));
    }
    char rs[600] = "", line[1024];
    if (t->L > 0) rotation_summary(t, rs, sizeof rs);
    if (t->sil >= 0) snprintf(rs + strlen(rs), sizeof rs - strlen(rs), "  silhouette %.4f", t->sil_value);
    snprintf(line, sizeof line,
             "epoch %d/%d  step %lld  lr %.4g  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  (%.1f steps/s)%s",
             e + 1, t->epochs, (long long)t->step, t->lr, t->trl, 100 * t->tra, t->tel, 100 * t->tea,
             t->train_time > 0 ? (double)t->steps_here / t->train_time : 0.0, rs);
    lc_trainer_progress(t, true, line);
    return LC_OK;
}

lc_status lc_trainer_step(lc_trainer *t)
{
    if (t->done) return LC_ERR(LC_ERR_INVALID, "the run is over (%lld steps)", (long long)t->step);
    double t0 = lc_now_s();
    if (!t->epoch_open) LC_TRY(begin_epoch(t));
    int n = lc_batcher_next(&t->tb, t->xbuf, t->ybuf), n_global = t->tb.last_global;
    if (n_global <= 0) return LC_ERR(LC_ERR_INVALID, "epoch %d has no batch left", t->epoch + 1);
    if (n > 0) { /* a rank may have no example of the epoch's last, short batch */
        LC_TRY(lc_exec_set_batch(t->ex, t->xbuf, t->ybuf, n));
        if (t->gate.n) LC_TRY(lc_gating_upload(t, 0, t->tb.order + t->tb.last_start, n));
        LC_TRY(lc_exec_forward(t->ex));
        if (t->ranks == 1) LC_TRY(lc_exec_backward(t->ex));
    }
    /* ranks > 1: the backward pass overlapped with the gradients' exchange,
     * whose result is the mean over the ranks */
    LC_TRY(lc_train_dist_grads(t, n, n_global));
    /* rotation: once per epoch after its first batch (as the paper), every
     * --rotation-every steps, and after the last step */
    bool last_step = t->step + 1 == t->total_steps;
    bool rot = (t->in_epoch == 0 && t->epoch % t->every == 0) ||
               (t->o.rotation_every > 0 && (t->step + 1) % t->o.rotation_every == 0) || last_step;
    if (rot) lc_optim_request_rotation(t->opt);
    LC_TRY(lc_optim_step(t->opt));
    t->step++;
    t->in_epoch++;
    t->seen += n_global;
    /* the loss after the previous step (ready by now), then a read of this one */
    LC_TRY(lc_trainer_watch_loss(t, false));
    LC_TRY(lc_exec_stats_request(t->ex));
    t->pending_seen = t->seen;
    t->pending_step = t->step;
    t->pending_epoch = t->epoch + (double)t->in_epoch / (double)t->per_epoch;
    if (rot) LC_TRY(lc_record_rotation(t, t->epoch + (double)t->in_epoch / (double)t->per_epoch, t->step));
    t->train_time += lc_now_s() - t0;
    t->steps_here++;
    bool epoch_over = t->in_epoch == t->per_epoch || last_step;
    if (epoch_over) return end_epoch(t, last_step);
    lc_trainer_progress(t, false, NULL);
    return LC_OK;
}

lc_status lc_trainer_epoch(lc_trainer *t)
{
    do LC_TRY(lc_trainer_step(t));
    while (t->epoch_open && !t->done);
    return LC_OK;
}

/* ---- outputs ---- */

lc_status lc_trainer_save_weights(lc_trainer *t, const char *path)
{
    LC_TRY(lc_exec_read_params(t->ex, t->host_params));
    char mean[400] = "", std[400] = "", nstats[8];
    size_t a = 0, b = 0;
    for (int c = 0; c < t->dinfo.nstats; c++) {
        a += (size_t)snprintf(mean + a, sizeof mean - a, "%s%.17g", c ? "," : "", t->dinfo.mean[c]);
        b += (size_t)snprintf(std + b, sizeof std - b, "%s%.17g", c ? "," : "", t->dinfo.std[c]);
    }
    snprintf(nstats, sizeof nstats, "%d", t->dinfo.nstats);
    bool norm = !t->o.data.no_normalize || t->o.data.fixed_nstats > 0;
    const char *meta[] = {"layca.normalisation", norm ? (t->dinfo.nstats > 1 ? "per-channel" : "global") : "none",
                          "layca.norm_mean", mean, "layca.norm_std", std, "layca.data", t->o.data_spec,
                          "layca.steps", NULL, NULL};
    char steps[32];
    snprintf(steps, sizeof steps, "%lld", (long long)t->step);
    meta[9] = steps;
    (void)nstats;
    return lc_model_save_params_meta(path, t->g, t->host_params, meta);
}

lc_status lc_trainer_result(lc_trainer *t, lc_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->steps = t->step;
    res->epochs = t->epochs;
    res->train_loss = t->trl;
    res->train_acc = t->tra;
    res->test_loss = t->tel;
    res->test_acc = t->tea;
    res->test_top5 = t->tea5;
    res->val_loss = t->vl;
    res->val_acc = t->va;
    res->silhouette = t->sil_value;
    res->seconds = t->train_time;
    res->steps_per_s = t->train_time > 0 ? (double)t->steps_here / t->train_time : 0;
    res->device_bytes = lc_exec_device_bytes(t->ex);
    res->programs_built = t->rt->programs_built;
    res->programs_from_cache = t->rt->programs_from_cache;
    res->launches_forward = lc_exec_launch_counts(t->ex).forward;
    res->launches_backward = lc_exec_launch_counts(t->ex).backward;
    res->launches_optimizer = lc_optim_launches_per_step(t->opt);
    res->resumed_from = t->resumed_from;
    res->ranks = t->ranks;
    res->allreduce_s = t->dist_s;
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s", t->last_ckpt);
    res->n_layers = t->L;
    res->rotation = malloc((size_t)(t->L > 0 ? t->L : 1) * sizeof(double));
    res->norm = malloc((size_t)(t->L > 0 ? t->L : 1) * sizeof(double));
    if (!res->rotation || !res->norm) {
        lc_train_result_free(res);
        return LC_ERR(LC_ERR_NOMEM, "out of memory");
    }
    if (t->L > 0) {
        memcpy(res->rotation, t->rot, (size_t)t->L * sizeof(double));
        memcpy(res->norm, t->norm, (size_t)t->L * sizeof(double));
    }
    return LC_OK;
}

/* ---- the whole run ---- */

static bool checkpoint_due(const lc_trainer *t)
{
    const lc_train_opts *o = &t->o;
    if (o->checkpoint_every > 0 && t->step % o->checkpoint_every == 0) return true;
    return o->checkpoint_every_epochs > 0 && !t->epoch_open && t->epoch % o->checkpoint_every_epochs == 0;
}

lc_status lc_train_run(const lc_train_opts *o, lc_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->silhouette = NAN;
    res->resumed_from = -1;
    lc_trainer *t;
    LC_TRY(lc_trainer_create(&t, o));
    lc_status st = LC_OK;
    int stop = 0;
    while (!t->done && st == LC_OK) {
        stop = o->stop ? (int)*o->stop : 0;
        st = lc_train_dist_stop(t, &stop);
        if (st != LC_OK || stop) break;
        st = lc_trainer_step(t);
        if (st == LC_OK && !t->done && checkpoint_due(t)) st = lc_trainer_checkpoint(t, NULL, 0);
    }
    if (st == LC_OK && stop) {
        lc_trainer_progress_end(t);
        if (t->ckpt_dir[0] && t->step > 0 && t->last_ckpt_step != t->step) st = lc_trainer_checkpoint(t, NULL, 0);
        if (st == LC_OK && t->rank == 0)
            LC_WARN("stopped by signal %d at step %lld%s%s", stop, (long long)t->step,
                    t->last_ckpt[0] ? "; resume from the checkpoint " : "; no checkpoint written", t->last_ckpt);
    }
    if (st == LC_OK) st = lc_train_dist_same_weights(t);
    if (st == LC_OK && !stop && o->save_path && t->rank == 0) {
        st = lc_trainer_save_weights(t, o->save_path);
        if (st == LC_OK) LC_INFO("saved the final weights to %s", o->save_path);
    }
    if (st == LC_OK) lc_train_dist_report(t);
    if (st == LC_OK) st = lc_metrics_sync(t);
    if (st == LC_OK) {
        st = lc_trainer_result(t, res);
        res->stop_signal = stop;
    }
    lc_trainer_destroy(t);
    return st;
}
