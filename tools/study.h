/* `layca study NAME [options]`: the Layca paper's studies as commands.  A
 * study is a list of training runs (each one lc_train_run, in this process,
 * with its own folder under OUT/runs/), a results table beside the paper's
 * numbers and figures.  Finished runs are skipped, so a stopped study
 * restarts where it stopped. */
#ifndef LC_STUDY_CLI_H
#define LC_STUDY_CLI_H

#include "lc_dist.h"

/* argv[0] is "study", argv[1] the study's name.  Returns the exit code:
 * 0 done (or stopped by --max-runs), 1 a run failed or another error,
 * 2 a usage error. */
int lc_study_main(int argc, char **argv, lc_dist *dist);

#endif
