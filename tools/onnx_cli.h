/* `layca import` and `layca export`: ONNX models in and out (docs/onnx.md). */
#ifndef LC_ONNX_CLI_H
#define LC_ONNX_CLI_H

/* argv[0] is "import" / "export".  Returns the exit code: 0 done, 1 an
 * error, 2 a usage error. */
int lc_onnx_import_main(int argc, char **argv);
int lc_onnx_export_main(int argc, char **argv);

#endif
