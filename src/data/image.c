/* JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory into 8-bit RGB.
 *
 * Both libraries report errors by calling a handler that must not return;
 * ours longjmp back to the decode function (libjpeg's default handler calls
 * exit(), libpng's default prints to stderr).  Everything that must survive
 * the longjmp lives in a context struct reached through a pointer that is
 * never modified after setjmp, so no local variable can be clobbered. */
#include "lc_data.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#define MAX_SIDE 16384
/* libjpeg's own buffers: a progressive file keeps every coefficient (about
 * 3 bytes per pixel at 4:2:0, 6 at 4:4:4), so this admits progressive
 * images up to about 9000 x 9000 pixels; baseline ones need far less. */
#define JPEG_MAX_MEMORY ((long)256 << 20)

void lc_image_deinit(lc_image *im)
{
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

/* ---- JPEG ---- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us &pub */
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    int eof_warning;           /* the data ended early (libjpeg pads with gray and warns) */
    uint8_t *row;              /* scratch for CMYK rows */
    uint8_t *rgb;
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jmp, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    /* level < 0: a warning (corrupt data libjpeg can recover from); never print. */
    jpeg_ctx *c = (jpeg_ctx *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) c->eof_warning = 1;
}

static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

static lc_status decode_jpeg(const uint8_t *bytes, size_t len, const char *where, jpeg_ctx *c, lc_image *out)
{
    struct jpeg_decompress_struct cinfo;
    cinfo.err = jpeg_std_error(&c->pub);
    c->pub.error_exit = jpeg_on_error;
    c->pub.emit_message = jpeg_on_message;
    c->pub.output_message = jpeg_silent;
    if (setjmp(c->jmp)) {
        int code = c->pub.msg_code;
        unsigned iw = cinfo.image_width, ih = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        free(c->row);
        free(c->rgb);
        if (code == JERR_NO_BACKING_STORE || code == JERR_OUT_OF_MEMORY)
            return LC_ERR(LC_ERR_UNSUPPORTED, "%s: JPEG of %ux%u pixels needs more than the %ld MiB layca gives the "
                          "decoder (a large progressive file?)", where, iw, ih, JPEG_MAX_MEMORY >> 20);
        return LC_ERR(LC_ERR_FORMAT, "%s: corrupt JPEG: %s", where, c->msg);
    }
    jpeg_create_decompress(&cinfo);
    /* libjpeg's own buffers (whole-image coefficients of progressive files)
     * stay bounded whatever size a header claims */
    cinfo.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_mem_src(&cinfo, (const unsigned char *)bytes, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.image_width == 0 || cinfo.image_height == 0 || cinfo.image_width > MAX_SIDE ||
        cinfo.image_height > MAX_SIDE) {
        lc_status st = LC_ERR(LC_ERR_FORMAT, "%s: JPEG size %ux%u is outside 1..%d per side", where,
                              (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, MAX_SIDE);
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* grayscale -> RGB is done by libjpeg */
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    if (c->eof_warning) { /* a multi-scan file is read whole by now */
        jpeg_destroy_decompress(&cinfo);
        return LC_ERR(LC_ERR_FORMAT, "%s: corrupt JPEG: the data ends early (truncated file)", where);
    }
    if (cinfo.output_components != (cmyk ? 4 : 3)) {
        lc_status st = LC_ERR(LC_ERR_FORMAT, "%s: JPEG decodes to %d components, expected %d", where,
                              cinfo.output_components, cmyk ? 4 : 3);
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    c->rgb = malloc(w * h * 3);
    if (cmyk) c->row = malloc(w * 4);
    if (!c->rgb || (cmyk && !c->row)) {
        jpeg_destroy_decompress(&cinfo);
        free(c->rgb);
        free(c->row);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory for a %zux%zu image", where, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW row = cmyk ? c->row : c->rgb + y * w * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
        /* Past the end of the data libjpeg would make up gray rows for the
         * rest of the image: a few hundred bytes claiming 16384 x 16384
         * pixels would cost seconds and most of a gigabyte.  Stop now. */
        if (c->eof_warning) break;
        if (cmyk) {
            /* Adobe writes inverted CMYK: the stored values are 255 - ink. */
            uint8_t *o = c->rgb + y * w * 3;
            for (size_t x = 0; x < w; x++) {
                unsigned k = c->row[4 * x + 3];
                for (int j = 0; j < 3; j++) o[3 * x + j] = (uint8_t)((c->row[4 * x + j] * k + 127) / 255);
            }
        }
    }
    if (!c->eof_warning) jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(c->row);
    c->row = NULL;
    if (c->eof_warning) {
        free(c->rgb);
        return LC_ERR(LC_ERR_FORMAT, "%s: corrupt JPEG: the data ends early (truncated file)", where);
    }
    out->w = (int)w;
    out->h = (int)h;
    out->rgb = c->rgb;
    return LC_OK;
}

/* ---- PNG ---- */

typedef struct png_ctx {
    jmp_buf jmp;
    char msg[256];
    const uint8_t *bytes;
    size_t len, pos;
    uint8_t *rgb;
    png_bytep *rows;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    longjmp(c->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep data, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) png_error(png, "unexpected end of data (truncated file)");
    memcpy(data, c->bytes + c->pos, n);
    c->pos += n;
}

static lc_status decode_png(const uint8_t *bytes, size_t len, const char *where, png_ctx *c, lc_image *out)
{
    c->bytes = bytes;
    c->len = len;
    c->pos = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    if (!png) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory (png_create_read_struct)", where);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory (png_create_info_struct)", where);
    }
    if (setjmp(c->jmp)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(c->rows);
        free(c->rgb);
        return LC_ERR(LC_ERR_FORMAT, "%s: corrupt PNG: %s", where, c->msg);
    }
    png_set_user_limits(png, MAX_SIDE, MAX_SIDE);
    png_set_read_fn(png, c, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    /* Transforms to 8-bit RGB. */
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w * 3 || png_get_channels(png, info) != 3) {
        lc_status st = LC_ERR(LC_ERR_FORMAT, "%s: PNG (color type %d, depth %d) does not convert to 8-bit RGB (%zu bytes per row for width %u)",
                              where, type, depth, rowbytes, (unsigned)w);
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    c->rgb = malloc((size_t)w * h * 3);
    c->rows = malloc((size_t)h * sizeof *c->rows);
    if (!c->rgb || !c->rows) {
        png_destroy_read_struct(&png, &info, NULL);
        free(c->rgb);
        free(c->rows);
        return LC_ERR(LC_ERR_NOMEM, "%s: out of memory for a %ux%u image", where, (unsigned)w, (unsigned)h);
    }
    for (size_t y = 0; y < h; y++) c->rows[y] = c->rgb + y * (size_t)w * 3;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(c->rows);
    out->w = (int)w;
    out->h = (int)h;
    out->rgb = c->rgb;
    return LC_OK;
}

lc_status lc_image_decode(const uint8_t *bytes, size_t len, const char *where, lc_image *out)
{
    memset(out, 0, sizeof *out);
    if (!where) where = "<memory>";
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (bytes && len >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
        jpeg_ctx *c = calloc(1, sizeof *c);
        if (!c) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", where);
        lc_status st = decode_jpeg(bytes, len, where, c, out);
        free(c);
        return st;
    }
    if (bytes && len >= 8 && memcmp(bytes, png_sig, 8) == 0) {
        png_ctx *c = calloc(1, sizeof *c);
        if (!c) return LC_ERR(LC_ERR_NOMEM, "%s: out of memory", where);
        lc_status st = decode_png(bytes, len, where, c, out);
        free(c);
        return st;
    }
    if (!bytes || len == 0) return LC_ERR(LC_ERR_FORMAT, "%s: empty file (expected a JPEG or PNG image)", where);
    return LC_ERR(LC_ERR_FORMAT, "%s: not a JPEG or PNG image (starts with %02x %02x %02x %02x)", where, bytes[0],
                  len > 1 ? bytes[1] : 0, len > 2 ? bytes[2] : 0, len > 3 ? bytes[3] : 0);
}
