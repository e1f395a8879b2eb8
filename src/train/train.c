/* Training loop, evaluation, metrics and progress. */
#include "lc_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* Flags (o->spec) override the model file's train section. */
static void overlay(lc_train_spec *dst, const lc_train_spec *src)
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
    if (src->epochs >= 0) dst->epochs = src->epochs;
    if (src->batch >= 0) dst->batch = src->batch;
    if (src->steps >= 0) dst->steps = src->steps;
    if (src->seed >= 0) dst->seed = src->seed;
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

typedef struct trainer {
    lc_graph *g;
    lc_rt *rt;
    lc_exec *ex;
    lc_optim *opt;
    lc_dataset train, val, test;
    lc_batcher tb;
    float *xbuf;
    int32_t *ybuf;
    float *host_params;
    double *rates, *mult;
    int batch;
    FILE *metrics;
    /* rotation monitoring: kernel layers in forward order */
    int L;
    int *layer_of_kernel;   /* optim kernel index -> forward layer index */
    char (*layer_name)[LC_NAME_MAX];
    double *rot_opt, *norm_opt, *rot, *norm;
} trainer;

static void trainer_free(trainer *t)
{
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
    free(t->host_params);
    free(t->rates);
    free(t->mult);
    free(t->layer_of_kernel);
    free(t->layer_name);
    free(t->rot_opt);
    free(t->norm_opt);
    free(t->rot);
    free(t->norm);
    if (t->metrics) fclose(t->metrics);
}

static lc_status evaluate(trainer *t, const lc_dataset *d, double *loss, double *acc)
{
    int64_t es = lc_dataset_example_size(d);
    LC_TRY(lc_exec_stats(t->ex, NULL, NULL, true));
    for (int64_t i = 0; i < d->n; i += t->batch) {
        int n = (int)LC_MIN((int64_t)t->batch, d->n - i);
        LC_TRY(lc_exec_set_batch(t->ex, d->x + i * es, d->y + i, n));
        LC_TRY(lc_exec_forward(t->ex));
    }
    double ls, c;
    LC_TRY(lc_exec_stats(t->ex, &ls, &c, true));
    *loss = d->n ? ls / (double)d->n : NAN;
    *acc = d->n ? c / (double)d->n : NAN;
    return LC_OK;
}

/* Reads each kernel layer's rotation and norm (after the step that was
 * made with a request) and writes a "rotation" line. */
static lc_status record_rotation(trainer *t, double epoch, int64_t step)
{
    LC_TRY(lc_optim_rotation(t->opt, t->rot_opt, t->norm_opt));
    for (int j = 0; j < t->L; j++) {
        t->rot[t->layer_of_kernel[j]] = t->rot_opt[j];
        t->norm[t->layer_of_kernel[j]] = t->norm_opt[j];
    }
    if (!t->metrics) return LC_OK;
    fprintf(t->metrics, "{\"kind\": \"rotation\", \"epoch\": %.6f, \"step\": %lld, \"rotation\": {", epoch,
            (long long)step);
    for (int l = 0; l < t->L; l++) fprintf(t->metrics, "%s\"%s\": %.7g", l ? ", " : "", t->layer_name[l], t->rot[l]);
    fprintf(t->metrics, "}, \"norm\": {");
    for (int l = 0; l < t->L; l++) fprintf(t->metrics, "%s\"%s\": %.7g", l ? ", " : "", t->layer_name[l], t->norm[l]);
    fprintf(t->metrics, "}}\n");
    fflush(t->metrics);
    return LC_OK;
}

/* "rotation 0.012 0.020 0.031" (first to last layer), or quantiles when
 * there are many layers */
static void rotation_summary(const trainer *t, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "  rotation");
    if (t->L <= 8) {
        for (int l = 0; l < t->L && o < len; l++) o += (size_t)snprintf(buf + o, len - o, " %.3f", t->rot[l]);
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

static void write_metrics(FILE *f, int epoch, int64_t step, double lr, double trl, double tra, double val,
                          double vaa, double tel, double tea, double secs)
{
    if (!f) return;
    fprintf(f, "{\"kind\": \"eval\", \"epoch\": %d, \"step\": %lld, \"lr\": %.9g, \"train_loss\": %.6f, \"train_acc\": %.6f, ",
            epoch, (long long)step, lr, trl, tra);
    if (!isnan(vaa)) fprintf(f, "\"val_loss\": %.6f, \"val_acc\": %.6f, ", val, vaa);
    fprintf(f, "\"test_loss\": %.6f, \"test_acc\": %.6f, \"time_s\": %.3f}\n", tel, tea, secs);
    fflush(f);
}

lc_status lc_train_run(const lc_train_opts *o, lc_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->silhouette = NAN;
    trainer T = {0};
    trainer *t = &T;
    lc_status st;
#define CHECK(x) do { st = (x); if (st != LC_OK) goto done; } while (0)
    lc_train_spec spec;
    CHECK(lc_model_load(o->model_path, &t->g, &spec));
    overlay(&spec, &o->spec);
    lc_train_spec_defaults(&spec);
    lc_optim_kind kind;
    CHECK(lc_optim_kind_parse(spec.optimizer, &kind));

    /* data */
    lc_data_opts dopts = o->data;
    dopts.seed = (uint64_t)spec.seed;
    dopts.classes = t->g->classes;
    lc_data_info dinfo;
    char desc[512];
    CHECK(lc_data_open3(o->data_spec, &dopts, &t->train, &t->val, &t->test, &dinfo, desc, sizeof desc));
    lc_graph *g = t->g;
    int64_t in_numel = lc_shape_numel(&g->nodes[g->input].shape);
    if (lc_dataset_example_size(&t->train) != in_numel) {
        char b[64];
        st = LC_ERR(LC_ERR_INVALID, "%s: examples have %d x %d x %d = %lld values, model '%s' takes %s", o->data_spec,
                    t->train.c, t->train.h, t->train.w, (long long)lc_dataset_example_size(&t->train), g->name,
                    lc_shape_str(&g->nodes[g->input].shape, b, sizeof b));
        goto done;
    }
    if (t->train.classes > g->classes) {
        st = LC_ERR(LC_ERR_INVALID, "%s: the data has %d classes, model '%s' has %d outputs", o->data_spec,
                    t->train.classes, g->name, g->classes);
        goto done;
    }
    if (t->train.n == 0) { st = LC_ERR(LC_ERR_INVALID, "%s: no training examples", o->data_spec); goto done; }
    LC_INFO("data: %s", desc);
    t->batch = (int)LC_MIN((int64_t)spec.batch, t->train.n);

    if (o->fixed_gating || o->silhouette) {
        st = LC_ERR(LC_ERR_UNSUPPORTED, "fixed gating and the feedback silhouette are not available yet");
        goto done;
    }
    if (o->train_only) {
        int id = lc_graph_find(g, o->train_only);
        bool has = false;
        for (int i = 0; i < g->n_params; i++) {
            lc_node *pn = &g->nodes[g->params[i].node];
            pn->trainable = pn->owner == id && id >= 0;
            has |= pn->trainable;
        }
        if (!has) {
            st = LC_ERR(LC_ERR_INVALID, "--train-only '%s': model '%s' has no node of that name with parameters",
                        o->train_only, g->name);
            goto done;
        }
    }
    /* compile and plan (a frozen prefix gets no backward pass) */
    CHECK(lc_graph_compile(g, t->batch, true, NULL));
    int L = lc_graph_kernel_layers(g, NULL, 0);
    LC_INFO("model '%s': %d nodes, %d kernel layers, %lld trainable parameters; memory plan at batch %d: "
            "activations %.2f MiB, parameters+gradients %.2f MiB",
            g->name, g->n_forward, L, (long long)lc_graph_trainable_count(g), t->batch,
            (double)g->act_floats * 4 / 1048576.0, (double)g->param_floats * 8 / 1048576.0);

    /* device */
    double t0 = lc_now_s();
    CHECK(lc_rt_create(&t->rt, o->device, false));
    LC_INFO("device: %s (%s, %s)", t->rt->info.name, lc_rt_device_type_name(t->rt->info.type), t->rt->info.platform_name);
    CHECK(lc_exec_create(&t->ex, t->rt, g));

    t->host_params = malloc((size_t)(g->param_floats ? g->param_floats : 1) * 4);
    if (!t->host_params) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    lc_graph_init_params(g, t->host_params, (uint64_t)spec.seed);
    if (o->init_path) CHECK(lc_model_load_params(o->init_path, g, t->host_params));
    CHECK(lc_exec_write_params(t->ex, t->host_params));

    lc_optim_config oc;
    lc_optim_config_defaults(&oc, kind);
    if (kind == LC_OPTIM_SGD || kind == LC_OPTIM_SGD_AMOM) oc.momentum = spec.momentum;
    oc.nesterov = spec.nesterov != 0;
    oc.weight_decay = spec.weight_decay;
    oc.layca = spec.layca != 0;
    oc.fuse = !o->no_fuse;
    oc.layca_skip_non_kernel = o->layca_skip_non_kernel;
    lc_optim_tensor *ot = calloc((size_t)g->n_params + 1, sizeof *ot);
    t->rates = calloc((size_t)g->n_params + 1, sizeof *t->rates);
    t->mult = calloc((size_t)g->n_params + 1, sizeof *t->mult);
    if (!ot || !t->rates || !t->mult) { free(ot); st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    /* layer multipliers: a kernel gets eq. 1's factor for its index in
     * forward order; a bias follows its layer's kernel */
    int *kl = malloc((size_t)(L > 0 ? L : 1) * sizeof *kl);
    if (!kl) { free(ot); st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    lc_graph_kernel_layers(g, kl, L);
    for (int i = 0; i < g->n_params; i++) {
        const lc_node *pn = &g->nodes[g->params[i].node];
        ot[i] = (lc_optim_tensor){.offset = g->params[i].offset, .numel = g->params[i].numel,
                                  .trainable = pn->trainable && g->params[i].grad_node >= 0, .is_kernel = pn->is_kernel};
        t->mult[i] = 1.0;
        for (int l = 0; l < L; l++) {
            const lc_node *kn = &g->nodes[g->params[kl[l]].node];
            if (kn->owner == pn->owner && pn->owner >= 0) t->mult[i] = layer_multiplier(l, L, spec.alpha);
        }
    }
    free(kl);
    st = lc_optim_create(&t->opt, t->rt, &oc, ot, g->n_params, g->param_floats, lc_exec_params(t->ex),
                         lc_exec_grads(t->ex));
    free(ot);
    if (st != LC_OK) goto done;
    /* kernel layers: the optimizer lists them in tensor-table order, the
     * metrics in forward order */
    t->L = lc_optim_kernel_count(t->opt);
    {
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
            st = LC_ERR(LC_ERR_NOMEM, "out of memory");
            goto done;
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
    }
    CHECK(lc_rt_finish(t->rt));
    double setup_s = lc_now_s() - t0;
    LC_INFO("ready in %.2f s: %d programs built from source, %d loaded from the cache; launches per step: "
            "%d forward, %d backward, %d optimizer",
            setup_s, t->rt->programs_built, t->rt->programs_from_cache, lc_exec_launch_counts(t->ex).forward,
            lc_exec_launch_counts(t->ex).backward, lc_optim_launches_per_step(t->opt));

    if (o->metrics_path) {
        t->metrics = fopen(o->metrics_path, "w");
        if (!t->metrics) { st = LC_ERR(LC_ERR_IO, "%s: cannot write the metrics file", o->metrics_path); goto done; }
    }

    int64_t es = lc_dataset_example_size(&t->train);
    t->xbuf = malloc((size_t)t->batch * (size_t)es * 4);
    t->ybuf = malloc((size_t)t->batch * 4);
    if (!t->xbuf || !t->ybuf) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    CHECK(lc_batcher_init(&t->tb, &t->train, t->batch, !o->no_shuffle, (uint64_t)spec.seed));
    if (o->flip || o->shift > 0) CHECK(lc_batcher_set_augment(&t->tb, o->flip, o->shift));

    int64_t per_epoch = (t->train.n + t->batch - 1) / t->batch;
    int epochs = spec.epochs;
    if (spec.steps > 0) epochs = (int)((spec.steps + per_epoch - 1) / per_epoch);
    LC_INFO("training: %s%s, %s %g, batch %d, %d epoch%s (%lld steps each)", spec.layca ? "layca-" : "",
            spec.optimizer, spec.layca ? "rho" : "lr", spec.lr, t->batch, epochs, epochs == 1 ? "" : "s", (long long)per_epoch);

    /* evaluation, and the per-epoch rotation record, every `every` epochs */
    int every = o->eval_every > 0 ? o->eval_every : 1;
    int64_t step = 0;
    double train_time = 0, t_start = lc_now_s();
    double trl = NAN, tra = NAN, tel = NAN, tea = NAN, vl = NAN, va = NAN;
    for (int e = 0; e < epochs; e++) {
        double lr = lc_train_schedule_lr(&spec, e);
        for (int i = 0; i < g->n_params; i++) t->rates[i] = lr * t->mult[i];
        CHECK(lc_optim_set_rates(t->opt, t->rates));
        CHECK(lc_exec_stats(t->ex, NULL, NULL, true));
        lc_batcher_begin_epoch(&t->tb);
        double te0 = lc_now_s();
        int64_t seen = 0, in_epoch = 0;
        int n;
        while ((spec.steps <= 0 || step < spec.steps) && (n = lc_batcher_next(&t->tb, t->xbuf, t->ybuf)) > 0) {
            CHECK(lc_exec_set_batch(t->ex, t->xbuf, t->ybuf, n));
            CHECK(lc_exec_forward(t->ex));
            CHECK(lc_exec_backward(t->ex));
            /* rotation: once per epoch after its first batch (as the paper),
             * every --rotation-every steps, and after the last step */
            bool last_step = spec.steps > 0 && step + 1 == spec.steps;
            bool rot = (in_epoch == 0 && e % every == 0) ||
                       (o->rotation_every > 0 && (step + 1) % o->rotation_every == 0) || last_step;
            if (rot) lc_optim_request_rotation(t->opt);
            CHECK(lc_optim_step(t->opt));
            step++;
            in_epoch++;
            seen += n;
            if (rot) CHECK(record_rotation(t, e + (double)in_epoch / (double)per_epoch, step));
        }
        bool last = e + 1 == epochs;
        if (last && !(spec.steps > 0 && step == spec.steps) && in_epoch > 1)
            CHECK(record_rotation(t, (double)(e + 1), step));
        double ls, c;
        CHECK(lc_exec_stats(t->ex, &ls, &c, true)); /* synchronises */
        train_time += lc_now_s() - te0;
        trl = ls / (double)(seen ? seen : 1);
        tra = c / (double)(seen ? seen : 1);
        if (!isfinite(trl)) LC_WARN("epoch %d: the training loss is not finite (lr too high?)", e + 1);
        if ((e + 1) % every && !last) continue;
        if (!o->quiet && !last && t->L > 0) {
            /* for the progress line only: the rotation at the epoch's end */
            CHECK(lc_optim_rotation(t->opt, t->rot_opt, t->norm_opt));
            for (int j = 0; j < t->L; j++) t->rot[t->layer_of_kernel[j]] = t->rot_opt[j];
        }
        if (t->val.n > 0) CHECK(evaluate(t, &t->val, &vl, &va));
        CHECK(evaluate(t, &t->test, &tel, &tea));
        write_metrics(t->metrics, e + 1, step, lr, trl, tra, vl, va, tel, tea, lc_now_s() - t_start);
        if (!o->quiet) {
            char rs[512] = "";
            if (t->L > 0) rotation_summary(t, rs, sizeof rs);
            fprintf(stderr, "epoch %d/%d  step %lld  lr %.4g  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  (%.1f steps/s)%s\n",
                    e + 1, epochs, (long long)step, lr, trl, 100 * tra, tel, 100 * tea,
                    train_time > 0 ? (double)step / train_time : 0.0, rs);
        }
    }
    res->epochs = epochs;
    if (o->save_path) {
        CHECK(lc_exec_read_params(t->ex, t->host_params));
        CHECK(lc_model_save_params(o->save_path, g, t->host_params));
        LC_INFO("saved the final weights to %s", o->save_path);
    }
    res->steps = step;
    res->train_loss = trl;
    res->train_acc = tra;
    res->test_loss = tel;
    res->test_acc = tea;
    res->val_loss = vl;
    res->val_acc = va;
    res->seconds = train_time;
    res->steps_per_s = train_time > 0 ? (double)step / train_time : 0;
    res->device_bytes = lc_exec_device_bytes(t->ex);
    res->programs_built = t->rt->programs_built;
    res->programs_from_cache = t->rt->programs_from_cache;
    res->launches_forward = lc_exec_launch_counts(t->ex).forward;
    res->launches_backward = lc_exec_launch_counts(t->ex).backward;
    res->launches_optimizer = lc_optim_launches_per_step(t->opt);
    res->n_layers = t->L;
    res->rotation = malloc((size_t)(t->L > 0 ? t->L : 1) * sizeof(double));
    res->norm = malloc((size_t)(t->L > 0 ? t->L : 1) * sizeof(double));
    if (res->rotation && res->norm && t->L > 0) {
        memcpy(res->rotation, t->rot, (size_t)t->L * sizeof(double));
        memcpy(res->norm, t->norm, (size_t)t->L * sizeof(double));
    }
    st = LC_OK;
done:
#undef CHECK
    trainer_free(t);
    return st;
}
