/* Inputs are sacred: before anything is computed, every output path (the
 * weights, the metrics, the checkpoint folder) is checked against every
 * input (the model file, --init, --resume, the data files and folders) and
 * against the other outputs, by path and by inode; existing outputs must be
 * regular files; and every output folder must exist and take a new file. */
#include "trainer_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct named_path {
    const char *what;   /* "--save", "the model file", ... */
    char path[PATH_MAX];
    bool folder;        /* a folder (data or checkpoints) */
    char kind[16];      /* data folders: the spec's kind ("mnist", "images", ...) */
} named_path;

/* The folder part of a path ("." for a bare name). */
static void folder_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* Absolute form of a path that may not exist yet: its folder resolved,
 * then its last component. */
static void canonical(const char *path, char *out, size_t cap)
{
    char real[PATH_MAX];
    if (realpath(path, real)) {
        snprintf(out, cap, "%s", real);
        return;
    }
    char dir[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int n = realpath(dir, real) ? snprintf(out, cap, "%s/%s", strcmp(real, "/") ? real : "", base)
                                : snprintf(out, cap, "%s", path);
    if (n < 0 || (size_t)n >= cap) snprintf(out, cap, "%s", path);
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ca[PATH_MAX], cb[PATH_MAX];
    canonical(a, ca, sizeof ca);
    canonical(b, cb, sizeof cb);
    return !strcmp(ca, cb);
}

/* The files and folders a data spec reads. */
static int data_inputs(const char *spec, named_path *out, int max)
{
    if (!spec) return 0;
    const char *colon = strchr(spec, ':');
    if (!colon || max < 2) return 0;
    const char *rest = colon + 1;
    int n = 0;
    if (!strncmp(spec, "idx:", 4)) {
        const char *comma = strchr(rest, ',');
        if (!comma) return 0;
        out[n] = (named_path){.what = "the data's images file"};
        snprintf(out[n++].path, PATH_MAX, "%.*s", (int)(comma - rest), rest);
        out[n] = (named_path){.what = "the data's labels file"};
        snprintf(out[n++].path, PATH_MAX, "%s", comma + 1);
        return n;
    }
    out[n] = (named_path){.what = "the data folder", .folder = true};
    snprintf(out[n].kind, sizeof out[n].kind, "%.*s", (int)LC_MIN((size_t)(colon - spec), sizeof out[n].kind - 1), spec);
    snprintf(out[n++].path, PATH_MAX, "%s", rest);
    return n;
}

/* Whether `path`, inside data folder `dir` of kind `kind`, is a file the
 * data reader reads: the idx files of mnist:, the batch and name files of
 * the CIFAR kinds, anything under the split folders of image folders. */
static bool is_data_file(const char *kind, const char *dir, const char *path)
{
    char cp[PATH_MAX], cd[PATH_MAX];
    if (!realpath(dir, cd)) return false;
    canonical(path, cp, sizeof cp);
    size_t n = strlen(cd);
    const char *rel = cp + n + 1; /* inside(): cp starts with cd + '/' */
    const char *base = strrchr(cp, '/') ? strrchr(cp, '/') + 1 : cp;
    if (!strcmp(kind, "mnist")) return !strncmp(base, "train-", 6) || !strncmp(base, "t10k-", 5);
    if (!strncmp(kind, "cifar", 5)) {
        size_t bl = strlen(base);
        return (bl > 4 && !strcmp(base + bl - 4, ".bin")) || strstr(base, ".meta") || strstr(base, "label_names");
    }
    return !strncmp(rel, "train/", 6) || !strncmp(rel, "test/", 5) || !strncmp(rel, "val/", 4) ||
           strstr(rel, "/train/") || strstr(rel, "/test/") || strstr(rel, "/val/");
}

/* Whether `path` lies inside folder `dir` (both resolved). */
static bool inside(const char *path, const char *dir)
{
    char cp[PATH_MAX], cd[PATH_MAX];
    canonical(path, cp, sizeof cp);
    if (!realpath(dir, cd)) return false;
    size_t n = strlen(cd);
    return !strncmp(cp, cd, n) && (cp[n] == '/' || (n == 1 && cd[0] == '/'));
}

/* An existing output must be a regular file (a symlink counts as its
 * target); its folder must exist and take a new file. */
static lc_status check_writable(const char *what, const char *path)
{
    struct stat s;
    if (stat(path, &s) == 0 && !S_ISREG(s.st_mode))
        return LC_ERR(LC_ERR_INVALID, "%s %s: exists and is not a regular file (%s); give a file path", what, path,
                      S_ISDIR(s.st_mode)                         ? "a folder"
                      : S_ISFIFO(s.st_mode)                      ? "a FIFO"
                      : S_ISCHR(s.st_mode) || S_ISBLK(s.st_mode) ? "a device"
                                                                 : "a special file");
    char dir[PATH_MAX];
    folder_of(path, dir, sizeof dir);
    struct stat d;
    if (stat(dir, &d) != 0 || !S_ISDIR(d.st_mode))
        return LC_ERR(LC_ERR_IO, "%s %s: the folder %s does not exist", what, path, dir);
    /* a real trial: permission bits mean little to root, and a read-only
     * mount or a full quota only shows on creation */
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.layca-probe-%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return LC_ERR(LC_ERR_IO, "%s %s: cannot create a file in %s: %s", what, path, dir, strerror(errno));
    close(fd);
    unlink(probe);
    return LC_OK;
}

lc_status lc_trainer_check_paths(lc_trainer *t)
{
    const lc_train_opts *o = &t->o;
    named_path in[16];
    int ni = 0;
    in[ni] = (named_path){.what = "the model file"};
    snprintf(in[ni++].path, PATH_MAX, "%s", o->model_path);
    if (o->init_path) {
        in[ni] = (named_path){.what = "--init"};
        snprintf(in[ni++].path, PATH_MAX, "%s", o->init_path);
    }
    if (o->resume) {
        struct stat s;
        bool dir = stat(o->resume, &s) == 0 && S_ISDIR(s.st_mode);
        /* a folder of checkpoints is also the output folder (it may not
         * exist before the first run) */
        if (!dir && !(t->ckpt_dir[0] && same_file(o->resume, t->ckpt_dir))) {
            in[ni] = (named_path){.what = "--resume"};
            snprintf(in[ni++].path, PATH_MAX, "%s", o->resume);
        }
    }
    ni += data_inputs(o->data_spec, in + ni, 4);
    for (int i = 0; o->more_inputs && o->more_inputs[i] && ni < (int)LC_COUNTOF(in); i++) {
        in[ni] = (named_path){.what = "an input"};
        snprintf(in[ni++].path, PATH_MAX, "%s", o->more_inputs[i]);
    }

    named_path out[3];
    int no = 0;
    if (o->save_path) {
        out[no] = (named_path){.what = "--save"};
        snprintf(out[no++].path, PATH_MAX, "%s", o->save_path);
    }
    if (o->metrics_path) {
        out[no] = (named_path){.what = "--metrics"};
        snprintf(out[no++].path, PATH_MAX, "%s", o->metrics_path);
    }
    if (t->ckpt_dir[0]) {
        out[no] = (named_path){.what = "the checkpoint folder", .folder = true};
        snprintf(out[no++].path, PATH_MAX, "%s", t->ckpt_dir);
    }

    for (int i = 0; i < no; i++) {
        for (int j = 0; j < i; j++)
            if (same_file(out[i].path, out[j].path) || (out[j].folder && inside(out[i].path, out[j].path)) ||
                (out[i].folder && inside(out[j].path, out[i].path)))
                return LC_ERR(LC_ERR_INVALID, "%s %s and %s %s name the same file or one lies inside the other; give "
                              "each output its own path", out[j].what, out[j].path, out[i].what, out[i].path);
        for (int k = 0; k < ni; k++) {
            struct stat s;
            bool exists = stat(out[i].path, &s) == 0;
            if (same_file(out[i].path, in[k].path))
                return LC_ERR(LC_ERR_INVALID, "%s %s would overwrite %s (an input); choose another path", out[i].what,
                              out[i].path, in[k].what);
            if (in[k].folder && exists && !out[i].folder && inside(out[i].path, in[k].path) &&
                is_data_file(in[k].kind, in[k].path, out[i].path))
                return LC_ERR(LC_ERR_INVALID, "%s %s would overwrite a data file of %s %s; choose another path",
                              out[i].what, out[i].path, in[k].what, in[k].path);
            /* a checkpoint folder only ever gains and drops its own ckpt-*
             * files; it must not be a data folder */
            if (out[i].folder && in[k].folder && same_file(in[k].path, out[i].path))
                return LC_ERR(LC_ERR_INVALID, "%s %s is %s; choose another folder", out[i].what, out[i].path,
                              in[k].what);
        }
    }
    for (int i = 0; i < no; i++) {
        if (out[i].folder) {
            /* the folder itself, or the nearest folder above it that exists
             * (it is made when the first checkpoint is written) */
            char probe[PATH_MAX + 64], dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", out[i].path);
            struct stat s;
            while (stat(dir, &s) != 0 && strrchr(dir, '/') && strrchr(dir, '/') != dir) *strrchr(dir, '/') = 0;
            if (stat(dir, &s) != 0) {
                snprintf(dir, sizeof dir, "."); /* a relative path whose first part is missing */
                if (stat(dir, &s) != 0)
                    return LC_ERR(LC_ERR_IO, "%s %s: the current folder: %s", out[i].what, out[i].path, strerror(errno));
            }
            if (!S_ISDIR(s.st_mode))
                return LC_ERR(LC_ERR_INVALID, "%s %s: %s is not a folder", out[i].what, out[i].path, dir);
            snprintf(probe, sizeof probe, "%s/.layca-probe-%ld", dir, (long)getpid());
            int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0)
                return LC_ERR(LC_ERR_IO, "%s %s: cannot create files in %s: %s", out[i].what, out[i].path, dir,
                              strerror(errno));
            close(fd);
            unlink(probe);
        } else {
            LC_TRY(check_writable(out[i].what, out[i].path));
        }
    }
    return LC_OK;
}
