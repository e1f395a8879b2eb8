/* Fuzz target: the metrics reader (lc_metrics_parse). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_fuzz.h"
#include "lc_metrics.h"

const char *lc_fuzz_metrics(const uint8_t *data, size_t size)
{
    char *text = (char *)lc_fuzz_copy(data, size);
    if (!text) return NULL;
    lc_metrics m;
    lc_error_clear();
    lc_status st = lc_metrics_parse(text, size, "fuzz.jsonl", &m);
    free(text);
    if (st != LC_OK) {
        const char *why = lc_fuzz_check_error(st);
        if (!why && (m.eval || m.rot || m.layer || m.n_eval || m.n_rot)) why = "outputs not cleared after an error";
        return why;
    }
    lc_fuzz_accepted++;
    const char *why = NULL;
    if (m.n_eval < 0 || m.n_rot < 0 || m.n_layers < 0) why = "negative counts";
    if (!why && m.n_rot > 0 && !m.layer) why = "rotation records without layer names";
    for (int l = 0; l < m.n_layers && !why && m.layer; l++)
        if (memchr(m.layer[l], 0, sizeof m.layer[l]) == NULL) why = "a layer name that is not terminated";
    volatile double sink = 0;
    for (int i = 0; i < m.n_rot && !why; i++)
        if (m.n_layers > 0) sink += m.rot[i].rotation[m.n_layers - 1] + m.rot[i].norm[m.n_layers - 1];
    for (int i = 0; i < m.n_eval && !why; i++)
        if (isnan(m.eval[i].epoch)) why = "an evaluation record without an epoch";
    (void)sink;
    lc_metrics_deinit(&m);
    return why;
}
