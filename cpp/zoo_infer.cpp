// zoo_infer: run a zoo TorchScript artifact (scripted or traced) or AOTInductor package (method aoti, a .pt2 of
// compiled kernels) on images and print the detections as JSON.
//
//   zoo_infer ARTIFACT.pt|ARTIFACT.pt2 --keys boxes,labels,scores[,masks|,keypoints,keypoints_scores] [--batch N] IMAGE...
//
// The artifact holds the whole model (normalise, resize, pad, heads, NMS, box rescaling, mask pasting), so the caller
// only decodes each image to float [3,H,W] in [0,1] and passes a list of them: any number for a scripted artifact,
// exactly its batch (--batch, default 1) per call for a traced one. The outputs are one flat list: for image i and
// key j, out[i * len(keys) + j] (the keys are the manifest's `outputs`, in order). Coordinates are in the input
// image's pixels, as with zoo.load in Python. Verify the artifact first: ARTIFACT=$(zoo path NAME ... --method M).
#include <dlfcn.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#ifndef ZOO_LIBPYTHON
#define ZOO_LIBPYTHON ""
#endif
#ifndef ZOO_TORCH_PYTHON
#define ZOO_TORCH_PYTHON ""
#endif
#ifndef ZOO_TORCHVISION_OPS
#define ZOO_TORCHVISION_OPS ""
#endif
#ifndef ZOO_TORCHVISION_IMAGE
#define ZOO_TORCHVISION_IMAGE ""
#endif

static void die(const std::string& msg) {
  std::cerr << "zoo_infer: error: " << msg << std::endl;
  std::exit(2);
}

static void load_library(const char* env, const char* fallback, const char* what) {
  const char* path = std::getenv(env) ? std::getenv(env) : fallback;
  if (!path || !*path) die(std::string("no path for ") + what + " (set " + env + ")");
  if (!dlopen(path, RTLD_NOW | RTLD_GLOBAL)) die(std::string("cannot load ") + what + " " + path + ": " + dlerror());
}

// torchvision's own decoder (libjpeg/libpng inside its wheel), registered as image::decode_image.
static at::Tensor read_image(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("cannot read image " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto data = torch::from_blob(bytes.data(), {(int64_t)bytes.size()}, torch::kUInt8).clone();
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("image::decode_image", "")
                       .typed<at::Tensor(const at::Tensor&, int64_t, bool)>();
  at::Tensor rgb = op.call(data, /*ImageReadMode.RGB*/ 3, true);
  // contiguous: the decoder returns a channels-last view, and an AOTInductor package reads its inputs with the
  // strides it was compiled for (measured: 0-1 detections instead of 14 on a strided image)
  return rgb.to(torch::kFloat32).div_(255.0).contiguous();
}

// torchvision's scripted detectors warn on every call that they return (losses, detections): expected, not news
struct QuietWarnings : c10::WarningHandler {
  void process(const c10::Warning& w) override {
    if (w.msg().find("always returns a (Losses, Detections)") == std::string::npos)
      std::cerr << "warning: " << w.msg() << std::endl;
  }
};

static std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

static void print_values(std::ostream& os, const at::Tensor& t) {
  // nested JSON lists of a tensor's values
  if (t.dim() == 0) {
    if (t.scalar_type() == torch::kInt64) os << t.item<int64_t>();
    else os << t.item<double>();
    return;
  }
  os << "[";
  for (int64_t i = 0; i < t.size(0); ++i) {
    if (i) os << ",";
    print_values(os, t[i]);
  }
  os << "]";
}

static const char* dtype_name(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return "float32";
    case torch::kInt64: return "int64";
    default: return "other";
  }
}

int main(int argc, char** argv) {
  std::string artifact, keys_arg = "boxes,labels,scores";
  int64_t batch = 0;  // 0: all images in one call (scripted artifacts)
  std::vector<std::string> images;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keys" && i + 1 < argc) keys_arg = argv[++i];
    else if (a == "--batch" && i + 1 < argc) batch = std::stoll(argv[++i]);
    else if (artifact.empty()) artifact = a;
    else images.push_back(a);
  }
  if (artifact.empty() || images.empty())
    die("usage: zoo_infer ARTIFACT.pt|ARTIFACT.pt2 --keys boxes,labels,scores[,...] [--batch N] IMAGE...");
  auto keys = split(keys_arg, ',');

  // torchvision's operator library links libpython and torch's libtorch_python: load them first, globally, so that
  // no LD_LIBRARY_PATH is needed
  load_library("ZOO_LIBPYTHON", ZOO_LIBPYTHON, "libpython (torchvision's operators need it)");
  load_library("ZOO_TORCH_PYTHON", ZOO_TORCH_PYTHON, "libtorch_python (torchvision's operators need it)");
  load_library("ZOO_TORCHVISION_OPS", ZOO_TORCHVISION_OPS, "torchvision operators (nms, roi_align)");
  load_library("ZOO_TORCHVISION_IMAGE", ZOO_TORCHVISION_IMAGE, "torchvision image decoders");

  static QuietWarnings quiet;
  c10::WarningUtils::set_warning_handler(&quiet);
  // an AOTInductor package (.pt2, method aoti) or TorchScript (.pt): both take the images as a list and return the
  // flat outputs
  bool aoti = artifact.size() > 4 && artifact.compare(artifact.size() - 4, 4, ".pt2") == 0;
  torch::jit::Module module;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;
  try {
    if (aoti) package = std::make_unique<torch::inductor::AOTIModelPackageLoader>(artifact);
    else module = torch::jit::load(artifact, torch::kCPU);
  } catch (const std::exception& e) {
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));  // the loader goes on to list every file of the archive
    die("cannot load " + artifact + (aoti ? " as an AOTInductor package (method aoti; a .pt2 of method export is a "
                                            "Python ExportedProgram, not loadable here)" : "") + ": " + why);
  }
  if (!aoti) module.eval();
  torch::NoGradGuard no_grad;

  std::vector<at::Tensor> inputs;
  for (auto& p : images) inputs.push_back(read_image(p));
  int64_t step = batch > 0 ? batch : (int64_t)inputs.size();
  std::vector<at::Tensor> flat;
  for (size_t start = 0; start < inputs.size(); start += step) {
    std::vector<at::Tensor> chunk;
    for (int64_t k = 0; k < step; ++k) chunk.push_back(inputs[std::min(start + k, inputs.size() - 1)]);  // pad a fixed batch
    std::vector<at::Tensor> out;
    try {
      if (aoti) out = package->run(chunk);
      else for (const auto& t : module.forward({c10::List<at::Tensor>(chunk)}).toList().vec()) out.push_back(t.toTensor());
    } catch (const std::exception& e) {
      die(std::string("the artifact failed on ") + std::to_string(step) + " image(s) (an aoti or traced artifact takes "
          "exactly its batch: --batch): " + e.what());
    }
    if ((int64_t)out.size() != step * (int64_t)keys.size())
      die("the artifact returned " + std::to_string(out.size()) + " outputs for " + std::to_string(step) + " images x " +
          std::to_string(keys.size()) + " keys: do --keys and --batch match the artifact?");
    for (size_t k = 0; k < std::min<size_t>(step, inputs.size() - start) * keys.size(); ++k) flat.push_back(out[k]);
  }

  std::cout.precision(9);
  std::cout << "{\"artifact\": \"" << artifact << "\", \"detections\": [";
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) std::cout << ", ";
    std::cout << "{\"image\": \"" << images[i] << "\", \"size\": [" << inputs[i].size(1) << ", " << inputs[i].size(2) << "]";
    for (size_t j = 0; j < keys.size(); ++j) {
      const at::Tensor& t = flat[i * keys.size() + j];
      std::cout << ", \"" << keys[j] << "\": {\"dtype\": \"" << dtype_name(t) << "\", \"shape\": [";
      for (int64_t d = 0; d < t.dim(); ++d) std::cout << (d ? ", " : "") << t.size(d);
      std::cout << "]";
      if (keys[j] == "masks") std::cout << ", \"sum\": " << t.sum().item<double>() << ", \"area_over_half\": " << (t > 0.5).sum().item<int64_t>();
      else { std::cout << ", \"values\": "; print_values(std::cout, t); }
      std::cout << "}";
    }
    std::cout << "}";
  }
  std::cout << "]}" << std::endl;
  return 0;
}
