// Generates one image with genvis' public C++ API and writes it as PNG (with its parameters).
//   genvis_example_cpp [OUT.png] [PROMPT] [MODEL]     (MODEL: default = the built-in model)
#include <genvis/genvis.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  namespace gv = genvis::api;
  const std::string out = argc > 1 ? argv[1] : "example.png";
  try {
    gv::LoadOptions load;
    if (argc > 3) load.model = argv[3];
    gv::Pipeline pipeline = gv::Pipeline::load(load);
    const gv::PipelineInfo info = pipeline.info();
    std::printf("model %s (%s), native size %dx%d, %d steps by default\n", info.name.c_str(), info.class_name.c_str(),
                info.native_width, info.native_height, info.default_steps);

    gv::GenerateRequest request;
    request.prompt = argc > 2 ? argv[2] : "grinning face";
    request.seed = 42;
    int last_step = 0;
    gv::GenerateResult result = pipeline.generate(request, {.progress = [&](int step, int total) {
      last_step = step;
      (void)total;
    }});
    const gv::Image& image = result.images.at(0);
    gv::write_png(image, out);
    std::printf("wrote %s (%dx%d) after %d steps\n%s\n", out.c_str(), image.width, image.height, last_step,
                image.parameters.c_str());

    // A request the model cannot serve is refused naming the field.
    request.steps = 0;
    try {
      pipeline.generate(request);
    } catch (const gv::Error& e) {
      std::printf("refused as expected (code %d): %s\n", static_cast<int>(e.code()), e.what());
    }
    return 0;
  } catch (const gv::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
