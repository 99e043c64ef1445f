/* Generates one image with genvis' C API and writes it as PNG (with its parameters).
 *   genvis_example_c [OUT.png] [PROMPT] [MODEL]     (MODEL: default = the built-in model) */
#include <genvis/genvis.h>

#include <stdio.h>

static int on_step(int step, int total, void* user_data) {
  *(int*)user_data = step;
  (void)total;
  return 0; /* non-zero would cancel */
}

int main(int argc, char** argv) {
  const char* out = argc > 1 ? argv[1] : "example.png";
  genvis_load_options load;
  genvis_load_options_init(&load);
  if (argc > 3) load.model = argv[3];
  genvis_pipeline* pipeline = NULL;
  genvis_status status = genvis_pipeline_load(&load, &pipeline);
  if (status != GENVIS_OK) {
    fprintf(stderr, "error: %s\n", genvis_last_error());
    return (int)status;
  }
  char* info = NULL;
  if (genvis_pipeline_info_json(pipeline, &info) == GENVIS_OK) {
    printf("genvis %s, pipeline %s\n", genvis_version(), info);
    genvis_string_free(info);
  }

  genvis_request request;
  genvis_request_init(&request);
  request.prompt = argc > 2 ? argv[2] : "grinning face";
  request.seed = 42;
  int last_step = 0;
  request.progress = on_step;
  request.user_data = &last_step;
  genvis_image* images = NULL;
  int count = 0;
  status = genvis_generate(pipeline, &request, &images, &count);
  if (status == GENVIS_OK) status = genvis_write_png(&images[0], out);
  if (status == GENVIS_OK)
    printf("wrote %s (%dx%d) after %d steps\n%s\n", out, images[0].width, images[0].height, last_step,
           images[0].parameters ? images[0].parameters : "");
  else
    fprintf(stderr, "error: %s\n", genvis_last_error());
  genvis_images_free(images, count);

  /* A bad request is refused with a status and one line naming the field. */
  if (status == GENVIS_OK) {
    request.batch = 1000;
    if (genvis_generate(pipeline, &request, &images, &count) == GENVIS_ERROR_USAGE)
      printf("refused as expected: %s\n", genvis_last_error());
  }
  genvis_pipeline_free(pipeline);
  return (int)status;
}
