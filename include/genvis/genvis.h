/* genvis C API: opaque handles, plain structs and status codes, for programs in C and for other
 * languages' bindings. Link with libgenvis (find_package(genvis) -> genvis::genvis).
 *
 *   genvis_load_options lo;  genvis_load_options_init(&lo);      // lo.model = NULL: built-in model
 *   genvis_pipeline* p = NULL;
 *   if (genvis_pipeline_load(&lo, &p) != GENVIS_OK) { fprintf(stderr, "%s\n", genvis_last_error()); return 1; }
 *   genvis_request r;  genvis_request_init(&r);
 *   r.prompt = "grinning face";  r.seed = 42;
 *   genvis_image* images = NULL;  int count = 0;
 *   if (genvis_generate(p, &r, &images, &count) == GENVIS_OK) genvis_write_png(&images[0], "face.png");
 *   genvis_images_free(images, count);
 *   genvis_pipeline_free(p);
 *
 * Every function returns a genvis_status; on failure genvis_last_error() gives one line naming the
 * request field or file at fault (thread-local, valid until the thread's next genvis call). */
#ifndef GENVIS_GENVIS_H
#define GENVIS_GENVIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Values are fixed (append only). */
typedef enum genvis_status {
  GENVIS_OK = 0,
  GENVIS_ERROR_RUNTIME = 1,   /* I/O failure, out of memory, ... */
  GENVIS_ERROR_USAGE = 2,     /* a bad request field or argument */
  GENVIS_ERROR_LOAD = 3,      /* a model, weight file, image or config could not be loaded */
  GENVIS_ERROR_CANCELLED = 4  /* the progress callback or genvis_pipeline_cancel() stopped the run */
} genvis_status;

typedef struct genvis_pipeline genvis_pipeline;

/* 8-bit RGB, rows top to bottom: width * height * 3 bytes. Images the library returns own their
 * data and parameters (free them with genvis_images_free). */
typedef struct genvis_image {
  int width, height;
  uint8_t* rgb;
  char* parameters; /* A1111 generation parameters, NUL-terminated, or NULL */
} genvis_image;

typedef struct genvis_load_options {
  const char* model;    /* model folder or single file; NULL or "" = the built-in model */
  const char* device;   /* "auto" (default), "cpu", "cuda", "cuda:N" */
  const char* dtype;    /* "auto" (default), "f32", "bf16", "f16" */
  const char* pipeline; /* force a pipeline class; NULL = from the model */
} genvis_load_options;

/* Called after each step; return non-zero to cancel the run (GENVIS_ERROR_CANCELLED). */
typedef int (*genvis_progress_fn)(int step, int total, void* user_data);

typedef struct genvis_request {
  const char* prompt;
  const char* negative_prompt; /* NULL = none */
  uint64_t seed;               /* image i uses seed + i */
  int steps;                   /* 0 = the model's default */
  double guidance;             /* < 0 = the model's default */
  const char* sampler;         /* NULL = the model's default */
  int width, height;           /* 0 = the init image's, else the model's native size */
  int batch;                   /* images made together (default 1) */
  const genvis_image* init_image; /* img2img / inpainting, or NULL */
  const genvis_image* mask;       /* inpainting (white >= 50% is repainted), or NULL */
  double strength;             /* < 0 = default (0.75; 1 with a mask) */
  const char* extras_json;     /* per-family settings, e.g. "{\"clip_skip\": 2}", or NULL */
  genvis_progress_fn progress; /* or NULL */
  void* user_data;             /* passed to progress */
} genvis_request;

void genvis_load_options_init(genvis_load_options* options);
void genvis_request_init(genvis_request* request);

genvis_status genvis_pipeline_load(const genvis_load_options* options, genvis_pipeline** out);
void genvis_pipeline_free(genvis_pipeline* pipeline);
/* The pipeline's class, family, native size, supported requests and defaults, as JSON; free the
 * string with genvis_string_free. */
genvis_status genvis_pipeline_info_json(genvis_pipeline* pipeline, char** json);
/* Asks a running genvis_generate on this pipeline (from another thread) to stop at its next step. */
void genvis_pipeline_cancel(genvis_pipeline* pipeline);

/* On success *images holds *count images (the request's batch). */
genvis_status genvis_generate(genvis_pipeline* pipeline, const genvis_request* request, genvis_image** images,
                              int* count);
void genvis_images_free(genvis_image* images, int count);

genvis_status genvis_write_png(const genvis_image* image, const char* path);
/* Reads any PNG as 8-bit RGB; free with genvis_images_free(image, 1). */
genvis_status genvis_read_png(const char* path, genvis_image** image);

/* Trains a recipe ("ldm", "contrastive", "classifier", ...) from its JSON config into out_dir. */
genvis_status genvis_train(const char* recipe, const char* config_path, const char* out_dir, int resume);

const char* genvis_last_error(void);
const char* genvis_version(void);
void genvis_string_free(char* s);

#ifdef __cplusplus
}
#endif

#endif /* GENVIS_GENVIS_H */
