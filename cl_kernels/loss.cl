/* Softmax cross-entropy, fused and numerically stable (max subtraction).
 * One work-item per example; classes are few.  Offsets are 64-bit. */

/* loss[i] = logsumexp(z_i) - z_i[label]; correct[2i] = top-1 hit (argmax
 * == label, ties to the lowest index), correct[2i+1] = top-5 hit (fewer
 * than 5 classes rank before the label, by the same tie rule); any NaN
 * logit is a miss for both. */
__kernel void lc_softmax_ce_fwd(__global float *loss, ulong loss_off, __global float *correct,
                                __global const float *z, ulong z_off, __global const int *labels, ulong lab_off,
                                int n, int classes)
{
    /* Work-items past n compute example n - 1 again and store nothing: no
     * divergent branch around log().  (In one, llvmpipe (Mesa 22) warned
     * "Treating load_kernel_arg in control flow as uniform": libclc's log
     * reads its tables through a hidden kernel argument.) */
    int i = get_global_id(0), e = min(i, n - 1);
    __global const float *zi = z + z_off + (size_t)e * classes;
    int y = labels[lab_off + e];
    float zy = zi[y], m = zi[0];
    int rank = 0, bad = 0;
    for (int c = 0; c < classes; c++) {
        m = fmax(m, zi[c]);
        rank += zi[c] > zy || (zi[c] == zy && c < y);
        bad |= isnan(zi[c]);
    }
    /* a NaN logit makes the prediction undefined: a miss, never a hit (NaN
     * compares false, so it would otherwise rank nothing above the label) */
    if (bad) rank = 1 << 30;
    float s = 0.0f;
    for (int c = 0; c < classes; c++) s += exp(zi[c] - m);
    float l = log(s) + m - zy;
    if (i < n) {
        loss[loss_off + i] = l;
        correct[2 * (size_t)i] = rank == 0 ? 1.0f : 0.0f;
        correct[2 * (size_t)i + 1] = rank < 5 ? 1.0f : 0.0f;
    }
}

/* dz = (softmax(z) - onehot(label)) / n : the gradient of the mean loss */
__kernel void lc_softmax_ce_bwd(__global float *dz, ulong dz_off, __global const float *z, ulong z_off,
                                __global const int *labels, ulong lab_off, int n, int classes)
{
    int i = get_global_id(0);
    if (i >= n) return;
    __global const float *zi = z + z_off + (size_t)i * classes;
    __global float *di = dz + dz_off + (size_t)i * classes;
    float m = zi[0];
    for (int c = 1; c < classes; c++) m = fmax(m, zi[c]);
    float s = 0.0f;
    for (int c = 0; c < classes; c++) s += exp(zi[c] - m);
    float inv = 1.0f / s, scale = 1.0f / (float)n;
    int y = labels[lab_off + i];
    for (int c = 0; c < classes; c++) di[c] = (exp(zi[c] - m) * inv - (c == y ? 1.0f : 0.0f)) * scale;
}

/* acc[0] += sum(loss[0..n)), acc[1] += top-1 hits, acc[2] += top-5 hits;
 * one work-group of LC_STATS_WG work-items (a power of two, chosen by the
 * executor within the device's and the kernel's limits). */
#ifndef LC_STATS_WG
#define LC_STATS_WG LC_RED_WG_CPU
#endif
__kernel __attribute__((reqd_work_group_size(LC_STATS_WG, 1, 1)))
void lc_loss_stats(__global float *acc, __global const float *loss, ulong loss_off, __global const float *correct,
                   int n)
{
    __local float sl[LC_STATS_WG], sc[LC_STATS_WG], s5[LC_STATS_WG];
    __global const float *lp = loss + loss_off;
    int t = get_local_id(0);
    float a = 0.0f, b = 0.0f, c = 0.0f;
    for (int i = t; i < n; i += LC_STATS_WG) {
        a += lp[i];
        b += correct[2 * i];
        c += correct[2 * i + 1];
    }
    sl[t] = a;
    sc[t] = b;
    s5[t] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (t == 0) {
        float x = 0.0f, y = 0.0f, w = 0.0f;
        for (int k = 0; k < LC_STATS_WG; k++) { x += sl[k]; y += sc[k]; w += s5[k]; }
        acc[0] += x;
        acc[1] += y;
        acc[2] += w;
    }
}
