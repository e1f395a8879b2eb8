/* Model files (JSON -> IR) and checkpoints (safetensors).  The only module
 * that includes cJSON.h.  Parsers work over (bytes, length) with no global
 * state. */
#ifndef LC_MODEL_H
#define LC_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "lc_core.h"
#include "lc_ir.h"

#define LC_MAX_MILESTONES 32

/* The optional "train" section.  Unset numbers are NaN / -1 / empty
 * strings, so command-line flags can override what the file sets and the
 * trainer fills the remaining defaults. */
typedef struct lc_train_spec {
    char optimizer[32];     /* "sgd", ... ; "" = unset */
    int layca;              /* -1 unset, 0/1 */
    double lr, momentum, alpha, weight_decay;
    int nesterov;           /* -1 unset */
    int n_milestones;       /* -1 unset */
    int milestones[LC_MAX_MILESTONES];
    double factor;
    int epochs, batch;      /* -1 unset */
    int64_t steps;          /* -1 unset */
    int64_t seed;           /* -1 unset */
} lc_train_spec;
void lc_train_spec_unset(lc_train_spec *t);

/* Parses a model file's text.  `where` names the file in messages, e.g.
 * "models/x.json: nodes[3].units: expected a positive integer, got -5".
 * On success *out is a graph (forward nodes, loss included, not compiled). */
lc_status lc_model_parse(const char *text, size_t len, const char *where, lc_graph **out, lc_train_spec *train);
lc_status lc_model_load(const char *path, lc_graph **out, lc_train_spec *train);

/* ---- safetensors ---- */
/* Element types (little endian, the host's).  Parameters are F32; the
 * others carry checkpoint state (optimizer sums, data order). */
typedef enum lc_st_dtype { LC_ST_F32 = 0, LC_ST_F64, LC_ST_I32, LC_ST_I64, LC_ST_U8 } lc_st_dtype;
const char *lc_st_dtype_name(lc_st_dtype d); /* "F32", ... */
size_t lc_st_dtype_size(lc_st_dtype d);

typedef struct lc_st_tensor {
    char name[128];
    int rank;
    int64_t shape[LC_MAX_RANK];
    const float *data;      /* F32 values; NULL for other dtypes */
    lc_st_dtype dtype;      /* LC_ST_F32 (0) unless set */
    const void *raw;        /* values of any dtype: written when set (else data); on read,
                             * set for every dtype and possibly unaligned (use memcpy) */
} lc_st_tensor;

/* Writes tensors atomically; metadata is a NULL-terminated list of
 * key/value string pairs (may be NULL). */
lc_status lc_safetensors_write(const char *path, const lc_st_tensor *t, int n, const char *const *metadata);

/* Parsed file: tensors point into `bytes` (kept alive by the caller). */
typedef struct lc_st_file {
    lc_st_tensor *tensors;
    int n;
    uint8_t *bytes;         /* owned file contents */
    int n_meta;             /* "__metadata__" string pairs, owned */
    char **meta_key, **meta_value;
} lc_st_file;
/* The metadata value of key, or NULL. */
const char *lc_st_file_meta(const lc_st_file *f, const char *key);
lc_status lc_safetensors_parse(uint8_t *bytes, size_t len, const char *where, lc_st_file *out); /* takes bytes */
lc_status lc_safetensors_load(const char *path, lc_st_file *out);
void lc_st_file_deinit(lc_st_file *f);
const lc_st_tensor *lc_st_file_find(const lc_st_file *f, const char *name);

/* Graph parameters <-> safetensors, PyTorch names and layouts. */
lc_status lc_model_save_params(const char *path, const lc_graph *g, const float *params);
/* The same with more metadata pairs (NULL-terminated key/value list). */
lc_status lc_model_save_params_meta(const char *path, const lc_graph *g, const float *params,
                                    const char *const *extra_meta);
/* Every parameter must be present with the right shape; extra tensors are
 * an error too (a checkpoint of another model). */
lc_status lc_model_load_params(const char *path, const lc_graph *g, float *params);
/* The same with a name map (NULL or "": none): "FROM=TO,FROM=TO" renames
 * the file's tensor FROM, or FROM.<rest> to TO.<rest> (a prefix: a whole
 * module such as PyTorch's "features.0=conv1"); the first pair that applies
 * wins.  PyTorch's batchnorm counters (integer "<name>.num_batches_tracked")
 * are ignored with a note. */
lc_status lc_model_load_params_map(const char *path, const lc_graph *g, float *params, const char *map);

#endif
