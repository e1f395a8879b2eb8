/* The lowering of conv2d and its gradients (exec_int.h's header comment). */
#include "exec_int.h"

/* Sizes of a conv2d node (forward node `c`; conv_dims: exec_host.h). */
conv_dims lcx_conv_dims_of(const lc_graph *g, const lc_node *c)
{
    const lc_node *x = &g->nodes[c->inputs[0]];
    conv_dims d = {.cin = x->shape.dims[0], .h = x->shape.dims[1], .w = x->shape.dims[2], .cout = c->units,
                   .oh = c->shape.dims[1], .ow = c->shape.dims[2], .kh = c->kh, .kw = c->kw, .sh = c->sh,
                   .sw = c->sw, .pt = c->pad_t, .pl = c->pad_l};
    d.ohw = d.oh * d.ow;
    d.K = d.cin * d.kh * d.kw;
    return d;
}

static lc_status im2col(lc_exec *ex, llist *L, int id, loc col, loc x, int nc, const conv_dims *d)
{
    lc_arg a[] = {LC_ARG(col.buf), LC_ARG(col.off), LC_ARG(x.buf), LC_ARG(x.off), LC_ARG(nc), LC_ARG(d->cin),
                  LC_ARG(d->h), LC_ARG(d->w), LC_ARG(d->kh), LC_ARG(d->kw), LC_ARG(d->sh), LC_ARG(d->sw),
                  LC_ARG(d->pt), LC_ARG(d->pl), LC_ARG(d->oh), LC_ARG(d->ow)};
    if (ex->gpu)
        return KERN_ND(ex, L, id, P_CONV, "lc_gpu_im2col", a, (size_t)d->ohw, (size_t)nc, (size_t)d->cin);
    return KERN(ex, L, id, P_CONV, "lc_im2col", a, 2, (size_t)nc * (size_t)d->oh, (size_t)d->K, 0);
}

static lc_status col2im(lc_exec *ex, llist *L, int id, loc dx, loc col, int nc, const conv_dims *d)
{
    lc_arg a[] = {LC_ARG(dx.buf), LC_ARG(dx.off), LC_ARG(col.buf), LC_ARG(col.off), LC_ARG(nc), LC_ARG(d->cin),
                  LC_ARG(d->h), LC_ARG(d->w), LC_ARG(d->kh), LC_ARG(d->kw), LC_ARG(d->sh), LC_ARG(d->sw),
                  LC_ARG(d->pt), LC_ARG(d->pl), LC_ARG(d->oh), LC_ARG(d->ow)};
    if (ex->gpu)
        return KERN_ND(ex, L, id, P_CONV, "lc_gpu_col2im", a, (size_t)d->h * (size_t)d->w, (size_t)nc,
                       (size_t)d->cin);
    return KERN(ex, L, id, P_CONV, "lc_col2im", a, 1, (size_t)nc * (size_t)d->cin * (size_t)d->h, 0, 0);
}

/* t[c, nc*hw] <- y[nc, c, hw] */
static lc_status to_cn(lc_exec *ex, llist *L, int id, loc t, loc y, int nc, int c, int hw)
{
    lc_arg a[] = {LC_ARG(t.buf), LC_ARG(t.off), LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(nc), LC_ARG(c), LC_ARG(hw)};
    if (ex->gpu) return KERN_ND(ex, L, id, P_CONV, "lc_gpu_nc_to_cn", a, (size_t)hw, (size_t)nc, (size_t)c);
    return KERN(ex, L, id, P_CONV, "lc_nc_to_cn", a, 1, (size_t)nc * (size_t)c, 0, 0);
}

/* y[nc, c, hw] <- t[c, nc*hw] (+ b) (ReLU when relu) */
static lc_status to_nc(lc_exec *ex, llist *L, int id, loc y, loc t, loc b, int has_bias, int relu, int nc, int c,
                       int hw)
{
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off),   LC_ARG(t.buf), LC_ARG(t.off), LC_ARG(b.buf), LC_ARG(b.off),
                  LC_ARG(has_bias), LC_ARG(relu), LC_ARG(nc),    LC_ARG(c),     LC_ARG(hw)};
    if (ex->gpu) return KERN_ND(ex, L, id, P_CONV, "lc_gpu_cn_to_nc", a, (size_t)hw, (size_t)c, (size_t)nc);
    return KERN(ex, L, id, P_CONV, "lc_cn_to_nc", a, 1, (size_t)nc * (size_t)c, 0, 0);
}

/* y[nb, c, hw] += b (when has_bias), then ReLU (when relu), in place */
static lc_status bias_relu(lc_exec *ex, llist *L, int id, loc y, loc b, int has_bias, int relu, int nb, int c, int hw)
{
    if (!has_bias && !relu) return LC_OK;
    if (ex->gpu) {
        lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(has_bias),
                      LC_ARG(relu),  LC_ARG(nb),    LC_ARG(c),     LC_ARG(hw)};
        return KERN_ND(ex, L, id, P_CONV, "lc_gpu_channel_bias", a, (size_t)hw, (size_t)c, (size_t)nb);
    }
    int planes = nb * c;
    lc_arg a[] = {LC_ARG(y.buf), LC_ARG(y.off), LC_ARG(b.buf), LC_ARG(b.off), LC_ARG(has_bias),
                  LC_ARG(relu),  LC_ARG(c),     LC_ARG(hw),    LC_ARG(planes)};
    return KERN(ex, L, id, P_CONV, "lc_channel_bias", a, 1, (size_t)planes, 0, 0);
}

/* The device conv schedule of node id (GPU style; LC_EXEC_CONV_GEMM in
 * CPU style, where only that one exists). */
static int dconv_of(const lc_exec *ex, int id)
{
    if (!ex->gpu) return LC_EXEC_CONV_GEMM;
    int v = ex->dconv ? ex->dconv[id] : 0;
    return v ? v : LC_EXEC_CONV_GEMM;
}

lc_status lcx_lower_conv(lc_exec *ex, llist *L, int id, int nb)
{
    lc_graph *g = ex->g;
    lc_node *nd = &g->nodes[id];
    const lc_node *c = nd->op == LC_OP_CONV2D ? nd : &g->nodes[nd->fwd];
    conv_dims d = lcx_conv_dims_of(g, c);
    loc y = lcx_where(ex, id);
    int hw = d.h * d.w;
    bool fwd = nd->op == LC_OP_CONV2D;
    int relu = fwd && nd->act_relu, has_bias = fwd && c->bias;
    loc b = has_bias ? lcx_where(ex, c->inputs[2]) : (loc){ex->params, 0};
    if (ex->host_conv && ex->host_conv[id]) {
        launch *x = lcx_push(L);
        if (!x) return LC_ERR(LC_ERR_NOMEM, "out of memory");
        x->kind = L_HOST_CONV;
        x->node = id;
        x->nb = nb;
        /* the host schedules add the bias; a fused ReLU follows */
        if (relu) LC_TRY(lcx_relu_inplace(ex, L, id, y, (cl_ulong)nb * (cl_ulong)d.cout * (cl_ulong)d.ohw));
        return LC_OK;
    }
    int sched = dconv_of(ex, id);
    bool pw = lc_exec_conv_pointwise(g, id);
    if (pw && ex->gpu && nd->op != LC_OP_CONV2D_DW) {
        /* 1x1 stride 1: x_n is already [cin, hw]; one strided-batched GEMM
         * over the examples */
        size_t in = (size_t)d.cin * hw, out = (size_t)d.cout * hw;
        if (fwd) /* y_n = W x_n */
            LC_TRY(lcx_gemm_sb(ex, L, id, false, false, (size_t)d.cout, (size_t)hw, (size_t)d.cin, lcx_where(ex, c->inputs[1]),
                           (size_t)d.cin, 0, lcx_where(ex, nd->inputs[0]), (size_t)hw, in, 0.0f, y, (size_t)hw, out,
                           (size_t)nb));
        else /* dx_n = W^T dy_n */
            LC_TRY(lcx_gemm_sb(ex, L, id, true, false, (size_t)d.cin, (size_t)hw, (size_t)d.cout, lcx_where(ex, nd->inputs[1]),
                           (size_t)d.cin, 0, lcx_where(ex, nd->inputs[0]), (size_t)hw, out, 0.0f, y, (size_t)hw, in,
                           (size_t)nb));
        return fwd ? bias_relu(ex, L, id, y, b, has_bias, relu, nb, d.cout, hw) : LC_OK;
    }
    if (pw && !ex->gpu) { /* 1x1 stride 1: x_n is already [cin, hw]; a GEMM per example */
        for (int n = 0; n < nb; n++) {
            if (fwd) { /* y_n = W x_n */
                LC_TRY(lcx_gemm(ex, L, id, false, false, (size_t)d.cout, (size_t)hw, (size_t)d.cin, lcx_where(ex, c->inputs[1]),
                            (size_t)d.cin, lcx_shift(lcx_where(ex, nd->inputs[0]), (int64_t)n * d.cin * hw), (size_t)hw,
                            lcx_shift(y, (int64_t)n * d.cout * hw), (size_t)hw));
            } else if (nd->op == LC_OP_CONV2D_DX) { /* dx_n = W^T dy_n */
                LC_TRY(lcx_gemm(ex, L, id, true, false, (size_t)d.cin, (size_t)hw, (size_t)d.cout, lcx_where(ex, nd->inputs[1]),
                            (size_t)d.cin, lcx_shift(lcx_where(ex, nd->inputs[0]), (int64_t)n * d.cout * hw), (size_t)hw,
                            lcx_shift(y, (int64_t)n * d.cin * hw), (size_t)hw));
            } else { /* dW (+)= dy_n x_n^T */
                LC_TRY(lcx_gemm_b(ex, L, id, false, true, (size_t)d.cout, (size_t)d.cin, (size_t)hw,
                              lcx_shift(lcx_where(ex, nd->inputs[0]), (int64_t)n * d.cout * hw), (size_t)hw,
                              lcx_shift(lcx_where(ex, nd->inputs[1]), (int64_t)n * d.cin * hw), (size_t)hw,
                              n ? 1.0f : 0.0f, y, (size_t)d.cin));
            }
        }
        return fwd ? bias_relu(ex, L, id, y, b, has_bias, relu, nb, d.cout, hw) : LC_OK;
    }
    /* im2col + GEMM over chunks (GPU style: the pointwise weight gradient
     * too, its "im2col" a layout change) */
    int chunk = lc_exec_conv_chunk(g, id, nb);
    if (nd->aux_offset < 0) return LC_ERR(LC_ERR_INVALID, "node '%s': conv workspace is not planned", nd->name);
    loc ws = lcx_aux_of(ex, id);
    loc col = ws, t = lcx_shift(ws, (int64_t)d.K * chunk * d.ohw);
    int slices = nd->op == LC_OP_CONV2D_DW && sched == LC_EXEC_CONV_BATCHED ? lc_exec_conv_dw_slices(g, id, nb) : 1;
    loc part = lcx_shift(ws, (int64_t)chunk * lc_exec_conv_ws_per_example(g, id)); /* split-K partial sums */
    for (int n0 = 0; n0 < nb; n0 += chunk) {
        int nc = nb - n0 < chunk ? nb - n0 : chunk;
        size_t cols = (size_t)nc * (size_t)d.ohw, ohw = (size_t)d.ohw;
        if (fwd) {
            loc x = lcx_shift(lcx_where(ex, nd->inputs[0]), (int64_t)n0 * d.cin * hw);
            loc yy = lcx_shift(y, (int64_t)n0 * d.cout * d.ohw);
            LC_TRY(im2col(ex, L, id, col, x, nc, &d));
            if (sched == LC_EXEC_CONV_BATCHED) { /* y_n = W col_n, straight into NCHW */
                LC_TRY(lcx_gemm_sb(ex, L, id, false, false, (size_t)d.cout, ohw, (size_t)d.K, lcx_where(ex, nd->inputs[1]),
                               (size_t)d.K, 0, col, cols, ohw, 0.0f, yy, ohw, (size_t)d.cout * ohw, (size_t)nc));
                LC_TRY(bias_relu(ex, L, id, yy, b, has_bias, relu, nc, d.cout, d.ohw));
            } else {
                LC_TRY(lcx_gemm(ex, L, id, false, false, (size_t)d.cout, cols, (size_t)d.K, lcx_where(ex, nd->inputs[1]),
                            (size_t)d.K, col, cols, t, cols));
                LC_TRY(to_nc(ex, L, id, yy, t, b, has_bias, relu, nc, d.cout, d.ohw));
            }
        } else if (nd->op == LC_OP_CONV2D_DX) {
            loc dy = lcx_shift(lcx_where(ex, nd->inputs[0]), (int64_t)n0 * d.cout * d.ohw);
            if (sched == LC_EXEC_CONV_BATCHED) { /* dcol_n = W^T dy_n, straight from NCHW */
                LC_TRY(lcx_gemm_sb(ex, L, id, true, false, (size_t)d.K, ohw, (size_t)d.cout, lcx_where(ex, nd->inputs[1]),
                               (size_t)d.K, 0, dy, ohw, (size_t)d.cout * ohw, 0.0f, col, cols, ohw, (size_t)nc));
            } else {
                LC_TRY(to_cn(ex, L, id, t, dy, nc, d.cout, d.ohw));
                LC_TRY(lcx_gemm(ex, L, id, true, false, (size_t)d.K, cols, (size_t)d.cout, lcx_where(ex, nd->inputs[1]),
                            (size_t)d.K, t, cols, col, cols));
            }
            LC_TRY(col2im(ex, L, id, lcx_shift(y, (int64_t)n0 * d.cin * hw), col, nc, &d));
        } else { /* CONV2D_DW */
            LC_TRY(to_cn(ex, L, id, t, lcx_shift(lcx_where(ex, nd->inputs[0]), (int64_t)n0 * d.cout * d.ohw), nc, d.cout,
                         d.ohw));
            LC_TRY(im2col(ex, L, id, col, lcx_shift(lcx_where(ex, nd->inputs[1]), (int64_t)n0 * d.cin * hw), nc, &d));
            int s = slices;
            size_t per_slice = (size_t)(g->dw_split_cols > 0 ? g->dw_split_cols : LC_DW_SPLIT_COLS);
            if ((size_t)s * per_slice > cols) s = (int)(cols / per_slice); /* a smaller last chunk */
            if (s > 1) {
                /* split-K: slice j = t[:, j*ks : (j+1)*ks] col[:, j*ks : (j+1)*ks]^T,
                 * the columns left over into slice s; then the slices added in order */
                size_t ks = cols / (size_t)s, rest = cols - ks * (size_t)s, wsz = (size_t)d.cout * (size_t)d.K;
                LC_TRY(lcx_gemm_sb(ex, L, id, false, true, (size_t)d.cout, (size_t)d.K, ks, t, cols, ks, col, cols, ks,
                               0.0f, part, (size_t)d.K, wsz, (size_t)s));
                if (rest)
                    LC_TRY(lcx_gemm(ex, L, id, false, true, (size_t)d.cout, (size_t)d.K, rest, lcx_shift(t, (int64_t)(ks * s)),
                                cols, lcx_shift(col, (int64_t)(ks * s)), cols, lcx_shift(part, (int64_t)(wsz * s)),
                                (size_t)d.K));
                cl_ulong count = wsz;
                int nsl = s + (rest > 0), acc = n0 > 0;
                lc_arg a[] = {LC_ARG(y.buf),  LC_ARG(y.off), LC_ARG(part.buf), LC_ARG(part.off),
                              LC_ARG(count), LC_ARG(nsl),   LC_ARG(acc)};
                LC_TRY(KERN_ND(ex, L, id, P_CONV, "lc_gpu_sum_slices", a, wsz, 1, 1));
            } else {
                LC_TRY(lcx_gemm_b(ex, L, id, false, true, (size_t)d.cout, (size_t)d.K, cols, t, cols, col, cols,
                              n0 ? 1.0f : 0.0f, y, (size_t)d.K));
            }
        }
    }
    return LC_OK;
}

/* ---- conv workspaces ---- */

static const lc_node *conv_of(const lc_graph *g, int id)
{
    const lc_node *n = &g->nodes[id];
    return n->op == LC_OP_CONV2D ? n : (n->fwd >= 0 ? &g->nodes[n->fwd] : n);
}

bool lc_exec_conv_pointwise(const lc_graph *g, int id)
{
    const lc_node *c = conv_of(g, id);
    return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pad_t == 0 && c->pad_l == 0 &&
           c->pad_b == 0 && c->pad_r == 0;
}

int64_t lc_exec_conv_ws_per_example(const lc_graph *g, int id)
{
    const lc_node *c = conv_of(g, id);
    const lc_node *x = &g->nodes[c->inputs[0]];
    int64_t k = (int64_t)x->shape.dims[0] * c->kh * c->kw;
    return (k + c->units) * c->shape.dims[1] * c->shape.dims[2];
}

int lc_exec_conv_dw_slices(const lc_graph *g, int id, int nb)
{
    const lc_node *n = &g->nodes[id];
    if (n->op != LC_OP_CONV2D_DW) return 1;
    const lc_node *c = conv_of(g, id);
    int64_t chunk = lc_exec_conv_chunk(g, id, nb), per = lc_exec_conv_ws_per_example(g, id);
    int64_t cols = chunk * c->shape.dims[1] * c->shape.dims[2];
    int64_t wsize = lc_shape_numel(&n->shape);
    int64_t s = cols / (g->dw_split_cols > 0 ? g->dw_split_cols : LC_DW_SPLIT_COLS);
    if (s > LC_DW_SPLIT_MAX) s = LC_DW_SPLIT_MAX;
    int64_t room = wsize > 0 ? chunk * per / 2 / wsize - 1 : 0; /* S + 1 slices within half the workspace */
    if (s > room) s = room;
    return s >= 2 ? (int)s : 1;
}

int lc_exec_conv_chunk(const lc_graph *g, int id, int nb)
{
    int64_t lim = g->workspace_limit > 0 ? g->workspace_limit : LC_WORKSPACE_DEFAULT;
    int64_t per = lc_exec_conv_ws_per_example(g, id);
    int64_t c = per > 0 ? lim / per : nb;
    if (c < 1) c = 1;
    return c < nb ? (int)c : nb;
}

