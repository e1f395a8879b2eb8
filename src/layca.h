/* layca's public API: the umbrella header of the installed library
 * (include/layca/layca.h; `pkg-config --cflags --libs layca`).  Each module's
 * header documents its part; docs/api.md has a walk-through with a
 * complete example.
 *
 *   lc_core.h   status codes, the error message, logging
 *   lc_ir.h     the graph IR and its passes, the op registry
 *   lc_model.h  model files (JSON) and weights (safetensors)
 *   lc_rt.h     OpenCL devices, programs, buffers, GEMM
 *   lc_exec.h   the step executor
 *   lc_optim.h  the optimizers (Layca around SGD, Adam, ...), rotation
 *   lc_data.h   data sets and batches
 *   lc_train.h  the trainer: a training run with metrics and checkpoints
 *   lc_metrics.h, lc_study.h, lc_plot.h  metrics files, studies, figures */
#ifndef LAYCA_H
#define LAYCA_H

#include "lc_core.h"
#include "lc_data.h"
#include "lc_exec.h"
#include "lc_ir.h"
#include "lc_metrics.h"
#include "lc_model.h"
#include "lc_optim.h"
#include "lc_plot.h"
#include "lc_rt.h"
#include "lc_study.h"
#include "lc_train.h"

#endif
