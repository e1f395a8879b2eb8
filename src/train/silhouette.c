/* The silhouette coefficient with the cosine distance (as
 * sklearn.metrics.silhouette_score(X, labels, metric='cosine')): for each
 * example, a = mean distance to the other examples of its class, b = the
 * smallest mean distance to the examples of another class, s = (b - a) /
 * max(a, b) (0 for an example alone in its class); the score is the mean of
 * s.  Cosine distances come from one Gram matrix of the normalised rows. */
#include "lc_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lc_status lc_silhouette_cosine(const float *x, const int32_t *labels, int n, int d, int classes, double *out)
{
    *out = NAN;
    if (n < 2 || d < 1 || classes < 1) return LC_ERR(LC_ERR_INVALID, "silhouette: needs at least 2 examples");
    double *u = malloc((size_t)n * (size_t)d * sizeof *u);
    double *sum = calloc((size_t)classes, sizeof *sum);
    int *count = calloc((size_t)classes, sizeof *count);
    if (!u || !sum || !count) {
        free(u); free(sum); free(count);
        return LC_ERR(LC_ERR_NOMEM, "silhouette: out of memory for %d x %d", n, d);
    }
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= classes) {
            free(u); free(sum); free(count);
            return LC_ERR(LC_ERR_INVALID, "silhouette: label %d of example %d is not below %d", labels[i], i, classes);
        }
        count[labels[i]]++;
        double nn = 0;
        for (int k = 0; k < d; k++) nn += (double)x[(size_t)i * d + k] * x[(size_t)i * d + k];
        nn = sqrt(nn);
        /* a zero vector has cosine distance 1 to everything (cos = 0) */
        for (int k = 0; k < d; k++) u[(size_t)i * d + k] = nn > 0 ? x[(size_t)i * d + k] / nn : 0.0;
    }
    int used = 0;
    for (int c = 0; c < classes; c++) used += count[c] > 0;
    if (used < 2) {
        free(u); free(sum); free(count);
        return LC_ERR(LC_ERR_INVALID, "silhouette: needs examples of at least 2 classes");
    }
    double total = 0;
    for (int i = 0; i < n; i++) {
        memset(sum, 0, (size_t)classes * sizeof *sum);
        const double *ui = u + (size_t)i * d;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            const double *uj = u + (size_t)j * d;
            double dot = 0;
            for (int k = 0; k < d; k++) dot += ui[k] * uj[k];
            sum[labels[j]] += 1.0 - dot;
        }
        int ci = labels[i];
        if (count[ci] <= 1) continue; /* s = 0 */
        double a = sum[ci] / (count[ci] - 1), b = INFINITY;
        for (int c = 0; c < classes; c++)
            if (c != ci && count[c] > 0) b = fmin(b, sum[c] / count[c]);
        double m = fmax(a, b);
        total += m > 0 ? (b - a) / m : 0.0;
    }
    *out = total / n;
    free(u);
    free(sum);
    free(count);
    return LC_OK;
}
