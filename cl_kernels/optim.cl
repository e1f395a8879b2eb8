/* Optimizer updates over the whole parameter arena in one launch.  Tensors
 * are aligned to LC_GROUP floats and the gaps hold zeros, so each work-group
 * of LC_GROUP work-items belongs to exactly one tensor; lr[group] is that
 * tensor's rate (schedule x layer multiplier, 0 for frozen tensors). */
#ifndef LC_GROUP
#define LC_GROUP 256
#endif

/* SGD with momentum (Keras form: v = mu v - lr g; w += v; Nesterov:
 * w += mu v - lr g), L2 weight decay as Keras l2: g += 2 wd w. */
__kernel void lc_sgd_step(__global float *w, __global const float *g, __global float *v,
                          __global const float *lr, float mu, float wd, int nesterov, int n)
{
    int i = get_global_id(0);
    if (i >= n) return;
    float rate = lr[i / LC_GROUP];
    float gi = g[i] + 2.0f * wd * w[i];
    if (mu == 0.0f) {
        w[i] -= rate * gi;
        return;
    }
    float vi = mu * v[i] - rate * gi;
    v[i] = vi;
    w[i] += nesterov ? mu * vi - rate * gi : vi;
}
