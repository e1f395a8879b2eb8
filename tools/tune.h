/* `layca tune MODEL.json`: CLBlast's tuners for a model's GEMM shapes on one
 * device; the parameters are stored per device and driver in the cache
 * folder, where lc_rt_create finds them. */
#ifndef LC_TUNE_H
#define LC_TUNE_H

/* argv[0] is "tune".  Returns the exit code: 0 done, 1 an error, 2 a usage
 * error. */
int lc_tune_main(int argc, char **argv);

#endif
