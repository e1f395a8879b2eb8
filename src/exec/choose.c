/* Per conv node choices made by timing. */
#include "exec_int.h"

/* ---- conv on the host or on the device: chosen per conv node by timing
 * (once per device and shape, cached like the GEMM backends) when the
 * device's buffers live in host memory; lc_exec_opts.host_conv forces one
 * (exec_int.h's header comment) ---- */

/* ---- device conv schedules (GPU style): chosen per conv node by timing
 * the ones that apply, once per device and shape (lc_rt_choice_*), or
 * forced by lc_exec_opts.device_conv ---- */

static double time_list(lc_exec *ex, const llist *L, int reps, double stop_above)
{
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        if (lc_rt_finish(ex->rt) != LC_OK) return 1e30;
        double t0 = lc_now_s();
        if (lcx_run(ex, L, 0, L->count) != LC_OK || lc_rt_finish(ex->rt) != LC_OK) return 1e30;
        double t = lc_now_s() - t0;
        if (r == 0 && t > stop_above) return t; /* the warm-up alone is too slow */
        if (r > 0 && t < best) best = t;
    }
    return best;
}

/* Times the conv node's candidates: the device lowering and the host
 * schedules that fit its workspace; *best gets 0 (device) or a schedule. */
static lc_status time_conv(lc_exec *ex, int id, int *best)
{
    const lc_graph *g = ex->g;
    const lc_node *nd = &g->nodes[id];
    int nb = g->planned_batch;
    const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
    conv_dims d = lcx_conv_dims_of(g, c);
    int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
    bool pw = lc_exec_conv_pointwise(g, id);
    int threads = lc_rt_host_threads(ex->rt);
    bool blk = !pw && lc_host_conv_blocked_threads(&d, nb, kind, threads, (size_t)nd->aux_floats) > 0;
    bool win = !pw && lc_host_wino_threads(&d, nb, kind, 2, threads, (size_t)nd->aux_floats) > 0;
    bool win4 = !pw && lc_host_wino_threads(&d, nb, kind, 4, threads, (size_t)nd->aux_floats) > 0;
    /* the usual winners first, so that a slow candidate stops after its
     * warm-up run (3 x the best so far) */
    int cand[5] = {HC_WINO4, HC_WINO, HC_BLOCKED, HC_CHUNKED, 0};
    double t[5] = {0, 0, 0, 0, 0}, tbest = 1e30;
    *best = 0;
    for (int i = 0; i < 5; i++) {
        if ((cand[i] == HC_BLOCKED && !blk) || (cand[i] == HC_WINO && !win) || (cand[i] == HC_WINO4 && !win4))
            continue;
        llist T = {0};
        ex->host_conv[id] = (uint8_t)cand[i];
        lc_status st = lcx_lower_conv(ex, &T, id, nb);
        if (st == LC_OK) t[i] = time_list(ex, &T, 3, 3 * tbest);
        lcx_llist_free(&T);
        if (st != LC_OK) return st;
        if (t[i] < tbest) { tbest = t[i]; *best = cand[i]; }
    }
    ex->host_conv[id] = 0;
    LC_DEBUG("conv node '%s' (%s): winograd 4 %.3f, winograd 2 %.3f, blocked %.3f, chunked %.3f, device %.3f ms "
             "(0: not applicable) -> %s",
             nd->name, lc_op_name(nd->op), t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, t[3] * 1e3, t[4] * 1e3,
             *best == HC_WINO4     ? "host winograd 4"
             : *best == HC_WINO    ? "host winograd 2"
             : *best == HC_BLOCKED ? "host blocked"
             : *best == HC_CHUNKED ? "host chunked"
                                   : "device");
    return LC_OK;
}

lc_status lcx_choose_conv(lc_exec *ex)
{
    lc_graph *g = ex->g;
    if (!lc_rt_host_blas_usable(ex->rt) || !lc_rt_host_sgemm_available()) return LC_OK;
    const char *force = ex->opts.host_conv;
    if (force && !strcmp(force, "device")) return LC_OK;
    int forced = !force ? 0 : !strcmp(force, "host-chunked")                            ? HC_CHUNKED
                 : !strcmp(force, "host-blocked")                           ? HC_BLOCKED
                 : !strcmp(force, "host-winograd")                          ? HC_WINO
                 : !strcmp(force, "host-winograd4") || !strcmp(force, "host") ? HC_WINO4
                                                                           : 0;
    ex->host_conv = calloc((size_t)g->n_nodes, sizeof *ex->host_conv);
    if (!ex->host_conv) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op != LC_OP_CONV2D && nd->op != LC_OP_CONV2D_DX && nd->op != LC_OP_CONV2D_DW) continue;
        const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
        conv_dims d = lcx_conv_dims_of(g, c);
        int nb = g->planned_batch, chunk = lc_exec_conv_chunk(g, i, nb);
        if (forced) {
            int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
            int th = lc_rt_host_threads(ex->rt);
            bool pw = lc_exec_conv_pointwise(g, i);
            bool blk = !pw && lc_host_conv_blocked_threads(&d, nb, kind, th, (size_t)nd->aux_floats) > 0;
            bool win = !pw && lc_host_wino_threads(&d, nb, kind, 2, th, (size_t)nd->aux_floats) > 0;
            bool win4 = !pw && lc_host_wino_threads(&d, nb, kind, 4, th, (size_t)nd->aux_floats) > 0;
            int s = forced;
            if (s == HC_WINO4 && !win4) s = HC_WINO; /* not 3x3 stride 1, or no room */
            if (s == HC_WINO && !win) s = HC_BLOCKED;
            if (s == HC_BLOCKED && !blk) s = HC_CHUNKED;
            ex->host_conv[i] = (uint8_t)s;
            continue;
        }
        char key[256];
        snprintf(key, sizeof key, "conv7|%s|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|t%d", lc_op_name(nd->op), d.cin,
                 d.h, d.w, d.cout, d.kh, d.kw, d.sh, d.sw, d.pt, d.pl, d.oh, d.ow, nb, chunk,
                 lc_rt_host_threads(ex->rt));
        int v = lc_rt_choice_get(ex->rt, key);
        if (v == HC_BLOCKED || v == HC_WINO || v == HC_WINO4) { /* a cached schedule must still fit */
            int kind = nd->op == LC_OP_CONV2D ? HC_FWD : nd->op == LC_OP_CONV2D_DX ? HC_DX : HC_DW;
            int th = lc_rt_host_threads(ex->rt);
            size_t ws = (size_t)nd->aux_floats;
            bool pw = lc_exec_conv_pointwise(g, i);
            bool fits = pw || (v == HC_BLOCKED ? lc_host_conv_blocked_threads(&d, nb, kind, th, ws)
                                               : lc_host_wino_threads(&d, nb, kind, v == HC_WINO ? 2 : 4, th, ws)) > 0;
            if (!fits) v = -1;
        }
        if (v < 0 || v > HC_WINO4) {
            LC_TRY(time_conv(ex, i, &v));
            lc_rt_choice_set(ex->rt, key, v);
        }
        ex->host_conv[i] = (uint8_t)v;
    }
    return LC_OK;
}

/* Whether the batched schedule applies to conv node id (the plain GEMM one
 * always does). */
static bool dconv_batched_applies(const lc_exec *ex, int id)
{
    const lc_graph *g = ex->g;
    const lc_node *nd = &g->nodes[id];
    if (nd->op == LC_OP_CONV2D_DW) return lc_exec_conv_dw_slices(g, id, g->planned_batch) > 1;
    return !lc_exec_conv_pointwise(g, id); /* a pointwise one is one batched GEMM anyway */
}

lc_status lcx_choose_device_conv(lc_exec *ex)
{
    lc_graph *g = ex->g;
    if (!ex->gpu) return LC_OK;
    ex->dconv = calloc((size_t)g->n_nodes, sizeof *ex->dconv);
    if (!ex->dconv) return LC_ERR(LC_ERR_NOMEM, "out of memory");
    int forced = ex->opts.device_conv;
    for (int i = 0; i < g->n_nodes; i++) {
        const lc_node *nd = &g->nodes[i];
        if (nd->op != LC_OP_CONV2D && nd->op != LC_OP_CONV2D_DX && nd->op != LC_OP_CONV2D_DW) continue;
        if (ex->host_conv && ex->host_conv[i]) continue;
        bool batched = dconv_batched_applies(ex, i);
        if (!batched || forced == LC_EXEC_CONV_GEMM) {
            ex->dconv[i] = LC_EXEC_CONV_GEMM;
            continue;
        }
        if (forced == LC_EXEC_CONV_BATCHED || ex->opts.plan_only) {
            ex->dconv[i] = forced == LC_EXEC_CONV_BATCHED ? LC_EXEC_CONV_BATCHED : LC_EXEC_CONV_GEMM;
            continue;
        }
        const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
        conv_dims d = lcx_conv_dims_of(g, c);
        int nb = g->planned_batch;
        char key[256];
        snprintf(key, sizeof key, "dconv1|%s|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d|%d", lc_op_name(nd->op), d.cin,
                 d.h, d.w, d.cout, d.kh, d.kw, d.sh, d.sw, d.pt, d.pl, d.oh, d.ow, nb, lc_exec_conv_chunk(g, i, nb),
                 lc_exec_conv_dw_slices(g, i, nb));
        int v = lc_rt_choice_get(ex->rt, key);
        if (v != LC_EXEC_CONV_GEMM && v != LC_EXEC_CONV_BATCHED) {
            double t[2] = {1e30, 1e30};
            for (int k = 0; k < 2; k++) {
                llist T = {0};
                ex->dconv[i] = (uint8_t)(k ? LC_EXEC_CONV_BATCHED : LC_EXEC_CONV_GEMM);
                lc_status st = lcx_lower_conv(ex, &T, i, nb);
                /* an untimed run first: CLBlast compiles the kernels of a GEMM shape on its first call */
                if (st == LC_OK) st = lcx_run(ex, &T, 0, T.count);
                if (st == LC_OK) t[k] = time_list(ex, &T, 3, k ? 3 * t[0] : 1e30);
                lcx_llist_free(&T);
                if (st != LC_OK && k == 1) { /* the batched schedule failed here: the plain one */
                    LC_DEBUG("conv node '%s': the batched schedule failed: %s", nd->name, lc_error_message());
                    lc_error_clear();
                    t[1] = 1e30;
                } else if (st != LC_OK) {
                    return st;
                }
            }
            v = t[1] < t[0] ? LC_EXEC_CONV_BATCHED : LC_EXEC_CONV_GEMM;
            LC_DEBUG("conv node '%s' (%s) on the device: gemm %.3f ms, batched %.3f ms -> %s", nd->name,
                     lc_op_name(nd->op), t[0] * 1e3, t[1] * 1e3, v == LC_EXEC_CONV_BATCHED ? "batched" : "gemm");
            lc_rt_choice_set(ex->rt, key, v);
        }
        ex->dconv[i] = (uint8_t)v;
    }
    return LC_OK;
}
