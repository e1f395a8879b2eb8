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
    /* fixed gating: per gated ReLU, its mask node and the recorded on/off
     * bits of every example of each split (0 train, 1 val, 2 test) */
    int n_gates;
    int *gate_mask;         /* mask node ids */
    int64_t *gate_numel;
    uint8_t **gate_bits[3]; /* [n_gates][n_examples * numel] */
    float *gate_buf;
    int32_t *idx;           /* example indices of the current batch */
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
    for (int s = 0; s < 3; s++) {
        for (int k = 0; t->gate_bits[s] && k < t->n_gates; k++) free(t->gate_bits[s][k]);
        free(t->gate_bits[s]);
    }
    free(t->gate_mask);
    free(t->gate_numel);
    free(t->gate_buf);
    free(t->idx);
    if (t->metrics) fclose(t->metrics);
}

/* Uploads the recorded masks of the batch's examples (split s, indices idx). */
static lc_status upload_gates(trainer *t, int s, const int32_t *idx, int n)
{
    for (int k = 0; k < t->n_gates; k++) {
        int64_t m = t->gate_numel[k];
        for (int i = 0; i < n; i++) {
            const uint8_t *b = t->gate_bits[s][k] + (int64_t)idx[i] * m;
            float *d = t->gate_buf + (int64_t)i * m;
            for (int64_t j = 0; j < m; j++) d[j] = (float)b[j];
        }
        LC_TRY(lc_exec_set_input(t->ex, t->gate_mask[k], t->gate_buf, n));
    }
    return LC_OK;
}

static const lc_dataset *split_of(trainer *t, int s) { return s == 0 ? &t->train : s == 1 ? &t->val : &t->test; }

/* Fixed gating, step 1: with the initial weights, run an ungated copy of the
 * model over every split and record each ReLU's on/off pattern per example;
 * step 2: turn the ReLUs of g (except `keep`) into gates fed by those
 * patterns. */
static lc_status setup_fixed_gating(trainer *t, const char *model_path, const float *params, int keep)
{
    lc_graph *g = t->g, *g2 = NULL;
    lc_exec *ex2 = NULL;
    lc_status st;
    int *relu = malloc((size_t)g->n_nodes * sizeof *relu);
    int *mask_of = malloc((size_t)g->n_nodes * sizeof *mask_of);
    if (!relu || !mask_of) { free(relu); free(mask_of); return LC_ERR(LC_ERR_NOMEM, "out of memory"); }
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == LC_OP_RELU && i != keep) relu[n++] = i;
    t->n_gates = n;
    t->gate_mask = calloc((size_t)(n ? n : 1), sizeof *t->gate_mask);
    t->gate_numel = calloc((size_t)(n ? n : 1), sizeof *t->gate_numel);
    for (int s = 0; s < 3; s++) t->gate_bits[s] = calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    int64_t widest = 1;
    for (int k = 0; k < n; k++) {
        t->gate_numel[k] = lc_shape_numel(&g->nodes[relu[k]].shape);
        widest = LC_MAX(widest, t->gate_numel[k]);
    }
    t->gate_buf = malloc((size_t)(t->batch * widest) * sizeof(float));
    float *out = malloc((size_t)(t->batch * widest) * sizeof(float));
    if (!t->gate_mask || !t->gate_numel || !t->gate_bits[0] || !t->gate_bits[1] || !t->gate_bits[2] || !t->gate_buf || !out) {
        st = LC_ERR(LC_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the same model, ungated, forward only; parameters share the layout */
    if ((st = lc_model_load(model_path, &g2, NULL)) != LC_OK) goto done;
    for (int k = 0; k < n; k++) {
        /* read after the whole forward pass: keep them from being reused */
        int id = lc_graph_find(g2, g->nodes[relu[k]].name);
        if (id >= 0) g2->nodes[id].keep_value = true;
    }
    if ((st = lc_graph_compile(g2, t->batch, false, NULL)) != LC_OK) goto done;
    if ((st = lc_exec_create(&ex2, t->rt, g2)) != LC_OK) goto done;
    if ((st = lc_exec_set_mode(ex2, false)) != LC_OK) goto done;
    if ((st = lc_exec_write_params(ex2, params)) != LC_OK) goto done;
    for (int s = 0; s < 3; s++) {
        const lc_dataset *d = split_of(t, s);
        int64_t es = lc_dataset_example_size(d);
        for (int k = 0; k < n; k++) {
            t->gate_bits[s][k] = malloc((size_t)(d->n * t->gate_numel[k]) + 1);
            if (!t->gate_bits[s][k]) { st = LC_ERR(LC_ERR_NOMEM, "out of memory for the gating masks"); goto done; }
        }
        for (int64_t i = 0; i < d->n; i += t->batch) {
            int nb = (int)LC_MIN((int64_t)t->batch, d->n - i);
            if ((st = lc_exec_set_batch(ex2, d->x + i * es, d->y + i, nb)) != LC_OK) goto done;
            if ((st = lc_exec_forward(ex2)) != LC_OK) goto done;
            for (int k = 0; k < n; k++) {
                int id = lc_graph_find(g2, g->nodes[relu[k]].name);
                if ((st = lc_exec_read_node(ex2, id, out)) != LC_OK) goto done;
                uint8_t *b = t->gate_bits[s][k] + i * t->gate_numel[k];
                for (int64_t j = 0; j < nb * t->gate_numel[k]; j++) b[j] = out[j] > 0.0f;
            }
        }
    }
    if (lc_graph_gate_relus(g, keep, mask_of) != n) { st = LC_ERR(LC_ERR_INVALID, "gating the ReLUs failed"); goto done; }
    for (int k = 0; k < n; k++) t->gate_mask[k] = mask_of[relu[k]];
    LC_INFO("fixed gating: %d ReLUs hold their initial on/off pattern%s%s", n, keep >= 0 ? "; free: " : "",
            keep >= 0 ? g->nodes[keep].name : "");
    st = LC_OK;
done:
    lc_exec_destroy(ex2);
    lc_graph_destroy(g2);
    free(out);
    free(relu);
    free(mask_of);
    return st;
}

/* The cosine silhouette of the loss gradient at node `sid`'s output over
 * the first `count` test examples, in evaluation mode (the paper's
 * feedback silhouette). */
static lc_status feedback_silhouette(trainer *t, int sid, int count, double *out)
{
    lc_graph *g = t->g;
    int gid = g->nodes[sid].grad;
    const lc_dataset *d = &t->test;
    int n = (int)LC_MIN((int64_t)count, d->n);
    int64_t dim = lc_shape_numel(&g->nodes[sid].shape), es = lc_dataset_example_size(d);
    float *fb = malloc((size_t)(n * dim) * sizeof(float) + 4);
    if (!fb) return LC_ERR(LC_ERR_NOMEM, "out of memory for the feedback of %d examples", n);
    lc_status st = lc_exec_set_mode(t->ex, false);
    for (int i = 0; i < n && st == LC_OK; i += t->batch) {
        int nb = LC_MIN(t->batch, n - i);
        st = lc_exec_set_batch(t->ex, d->x + (int64_t)i * es, d->y + i, nb);
        if (st == LC_OK && t->n_gates) {
            for (int k = 0; k < nb; k++) t->idx[k] = i + k;
            st = upload_gates(t, 2, t->idx, nb);
        }
        if (st == LC_OK) st = lc_exec_forward(t->ex);
        if (st == LC_OK) st = lc_exec_backward(t->ex);
        if (st == LC_OK) st = lc_exec_read_node(t->ex, gid, fb + (int64_t)i * dim);
    }
    lc_status st2 = lc_exec_set_mode(t->ex, true);
    if (st == LC_OK) st = st2;
    if (st == LC_OK) st = lc_exec_stats(t->ex, NULL, NULL, true);
    if (st == LC_OK) st = lc_silhouette_cosine(fb, d->y, n, (int)dim, g->classes, out);
    free(fb);
    return st;
}

/* Evaluation mode (batch-norm running statistics, no dropout) over a whole
 * split; top-1 and top-5 accuracy. */
static lc_status evaluate(trainer *t, const lc_dataset *d, double *loss, double *acc, double *acc5)
{
    int split = d == &t->train ? 0 : d == &t->val ? 1 : 2;
    int64_t es = lc_dataset_example_size(d);
    LC_TRY(lc_exec_stats(t->ex, NULL, NULL, true));
    LC_TRY(lc_exec_set_mode(t->ex, false));
    lc_status st = LC_OK;
    for (int64_t i = 0; i < d->n && st == LC_OK; i += t->batch) {
        int n = (int)LC_MIN((int64_t)t->batch, d->n - i);
        st = lc_exec_set_batch(t->ex, d->x + i * es, d->y + i, n);
        if (st == LC_OK && t->n_gates) {
            for (int k = 0; k < n; k++) t->idx[k] = (int32_t)(i + k);
            st = upload_gates(t, split, t->idx, n);
        }
        if (st == LC_OK) st = lc_exec_forward(t->ex);
    }
    lc_status st2 = lc_exec_set_mode(t->ex, true);
    LC_TRY(st);
    LC_TRY(st2);
    double ls, c, c5;
    LC_TRY(lc_exec_stats5(t->ex, &ls, &c, &c5, true));
    *loss = d->n ? ls / (double)d->n : NAN;
    *acc = d->n ? c / (double)d->n : NAN;
    *acc5 = d->n ? c5 / (double)d->n : NAN;
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
                          double vaa, double vaa5, double tel, double tea, double tea5, double secs)
{
    if (!f) return;
    fprintf(f, "{\"kind\": \"eval\", \"epoch\": %d, \"step\": %lld, \"lr\": %.9g, \"train_loss\": %.6f, \"train_acc\": %.6f, ",
            epoch, (long long)step, lr, trl, tra);
    if (!isnan(vaa)) fprintf(f, "\"val_loss\": %.6f, \"val_acc\": %.6f, \"val_top5\": %.6f, ", val, vaa, vaa5);
    fprintf(f, "\"test_loss\": %.6f, \"test_acc\": %.6f, \"test_top5\": %.6f, \"time_s\": %.3f}\n", tel, tea, tea5, secs);
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

    int trained = -1;
    if (o->train_only) {
        int id = lc_graph_find(g, o->train_only);
        trained = id;
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
    t->idx = malloc((size_t)t->batch * sizeof *t->idx);
    t->host_params = malloc((size_t)(g->param_floats ? g->param_floats : 1) * 4);
    if (!t->idx || !t->host_params) { st = LC_ERR(LC_ERR_NOMEM, "out of memory"); goto done; }
    lc_graph_init_params(g, t->host_params, (uint64_t)spec.seed);
    if (o->init_path) CHECK(lc_model_load_params(o->init_path, g, t->host_params));

    /* device */
    double t0 = lc_now_s();
    CHECK(lc_rt_create_opts(&t->rt, &(lc_rt_opts){.selector = o->device, .device_only = o->device_only}));
    LC_INFO("device: %s (%s, %s)", t->rt->info.name, lc_rt_device_type_name(t->rt->info.type), t->rt->info.platform_name);

    if (o->fixed_gating) {
        /* the trained layer's own ReLU stays free: the ReLU right after it */
        int keep = -1;
        for (int i = 0; trained >= 0 && i < g->n_nodes; i++)
            if (g->nodes[i].op == LC_OP_RELU && g->nodes[i].inputs[0] == trained) keep = i;
        CHECK(setup_fixed_gating(t, o->model_path, t->host_params, keep));
    }
    int sil = -1;
    if (o->silhouette) {
        sil = lc_graph_find(g, o->silhouette);
        if (sil < 0 || lc_op_kind(g->nodes[sil].op) != 'F') {
            st = LC_ERR(LC_ERR_INVALID, "--silhouette '%s': model '%s' has no layer node of that name", o->silhouette,
                        g->name);
            goto done;
        }
    }
    /* the silhouette reads the node's gradient after the whole backward pass */
    if (sil >= 0) g->nodes[sil].keep_value = true;
    /* compile and plan (a frozen prefix gets no backward pass) */
    CHECK(lc_graph_compile(g, t->batch, true, NULL));
    if (sil >= 0 && g->nodes[sil].grad < 0) {
        st = LC_ERR(LC_ERR_INVALID, "--silhouette '%s': no gradient reaches this node (is anything before it trained?)",
                    o->silhouette);
        goto done;
    }
    int L = lc_graph_kernel_layers(g, NULL, 0);
    LC_INFO("model '%s': %d nodes, %d kernel layers, %lld trainable parameters; memory plan at batch %d: "
            "activations %.2f MiB, parameters+gradients %.2f MiB",
            g->name, g->n_forward, L, (long long)lc_graph_trainable_count(g), t->batch,
            (double)g->act_floats * 4 / 1048576.0, (double)g->param_floats * 8 / 1048576.0);

    CHECK(lc_exec_check_memory(t->rt, g, lc_optim_arenas(kind))); /* the whole plan, before any allocation */
    CHECK(lc_exec_create(&t->ex, t->rt, g));
    lc_exec_set_seed(t->ex, (uint64_t)spec.seed); /* dropout masks */
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

    if (sil >= 0) {
        /* the feedback silhouette before training (epoch 0) */
        CHECK(feedback_silhouette(t, sil, o->silhouette_samples > 0 ? o->silhouette_samples : 1000, &res->silhouette));
        if (t->metrics) {
            fprintf(t->metrics, "{\"kind\": \"silhouette\", \"epoch\": 0, \"step\": 0, \"node\": \"%s\", \"value\": %.6f}\n",
                    o->silhouette, res->silhouette);
            fflush(t->metrics);
        }
        if (!o->quiet) fprintf(stderr, "epoch 0  feedback silhouette at %s: %.4f\n", o->silhouette, res->silhouette);
    }
    /* evaluation, and the per-epoch rotation record, every `every` epochs */
    int every = o->eval_every > 0 ? o->eval_every : 1;
    int64_t step = 0;
    double train_time = 0, t_start = lc_now_s();
    double trl = NAN, tra = NAN, tel = NAN, tea = NAN, tea5 = NAN, vl = NAN, va = NAN, va5 = NAN;
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
            if (t->n_gates) CHECK(upload_gates(t, 0, t->tb.order + t->tb.pos - n, n));
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
        if (t->val.n > 0) CHECK(evaluate(t, &t->val, &vl, &va, &va5));
        CHECK(evaluate(t, &t->test, &tel, &tea, &tea5));
        write_metrics(t->metrics, e + 1, step, lr, trl, tra, vl, va, va5, tel, tea, tea5, lc_now_s() - t_start);
        if (sil >= 0) {
            CHECK(feedback_silhouette(t, sil, o->silhouette_samples > 0 ? o->silhouette_samples : 1000,
                                      &res->silhouette));
            if (t->metrics) {
                fprintf(t->metrics, "{\"kind\": \"silhouette\", \"epoch\": %d, \"step\": %lld, \"node\": \"%s\", \"value\": %.6f}\n",
                        e + 1, (long long)step, o->silhouette, res->silhouette);
                fflush(t->metrics);
            }
        }
        if (!o->quiet) {
            char rs[600] = "";
            if (t->L > 0) rotation_summary(t, rs, sizeof rs);
            if (sil >= 0) snprintf(rs + strlen(rs), sizeof rs - strlen(rs), "  silhouette %.4f", res->silhouette);
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
    res->test_top5 = tea5;
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
