/* Runtime self-test kernel: y[i] = a * x[i] + y[i] for i < n.  The global size
 * may be rounded up past n, hence the guard. */
__kernel void lc_axpy(const int n, const float a, __global const float *x, __global float *y)
{
    int i = (int)get_global_id(0);
    if (i < n) y[i] = a * x[i] + y[i];
}
