// `mbmpo info`: version, build options, the CUDA device or why none is usable, MuJoCo, threads.
#include <iomanip>
#include <memory>
#include <sstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.hpp"
#include "host/core/backend.hpp"
#include "host/core/build_info.hpp"

namespace mbmpo::app {

namespace {

struct InfoOptions {
  bool json = false;
};

nlohmann::json info_json() {
  const BuildInfo build = build_info();
  nlohmann::json out = {
      {"version", build.version},
      {"build_type", build.build_type},
      {"compiler", build.compiler},
      {"cuda_backend", build.cuda_backend},
      {"mujoco_version", build.mujoco_version},
      {"eigen_version", build.eigen_version},
      {"cpu_arch", build.cpu_arch},
      {"cpu_isa", build.cpu_isa},
      {"cpu_supports", build.cpu_supports},
      {"hardware_threads", build.hardware_threads},
      {"usable_cores", build.usable_cores},
  };
  if (build.cuda_backend) {
    out["cuda_architectures"] = build.cuda_architectures;
    out["cuda_compiler_version"] = build.cuda_compiler_version;
  }
  const CudaAvailability& cuda = cuda_availability();
  out["cuda_device_usable"] = cuda.usable;
  if (const auto device = cuda_device_info()) {
    out["cuda_device"] = {
        {"index", device->index},
        {"name", device->name},
        {"multiprocessors", device->multiprocessors},
        {"compute_capability", std::to_string(device->compute_capability_major) + "." +
                                   std::to_string(device->compute_capability_minor)},
        {"global_memory_bytes", device->global_memory_bytes},
        {"driver_version", device->driver_version},
        {"runtime_version", device->runtime_version},
    };
  } else {
    out["cuda_unusable_reason"] = cuda.reason;
  }
  out["default_device"] = to_string(resolve_backend(BackendChoice::automatic));
  return out;
}

void print_text(const nlohmann::json& info) {
  auto line = [](const char* key, const std::string& value) {
    std::cout << std::left << std::setw(20) << key << value << "\n";
  };
  line("mbmpo", info["version"].get<std::string>() + " (" +
                    info["build_type"].get<std::string>() + ", " +
                    info["compiler"].get<std::string>() + ")");
  line("cuda backend", info["cuda_backend"].get<bool>()
                           ? "built, nvcc " + info["cuda_compiler_version"].get<std::string>() +
                                 ", architectures " + info["cuda_architectures"].get<std::string>()
                           : "not built");
  if (info.contains("cuda_device")) {
    const auto& device = info["cuda_device"];
    const double gib = device["global_memory_bytes"].get<double>() / (1024.0 * 1024.0 * 1024.0);
    std::ostringstream text;
    text << "#" << device["index"].get<int>() << " " << device["name"].get<std::string>() << ", "
         << device["multiprocessors"].get<int>() << " SMs, " << std::fixed << std::setprecision(1)
         << gib << " GiB, compute capability " << device["compute_capability"].get<std::string>();
    line("cuda device", text.str());
  } else {
    line("cuda device", "none usable: " + info["cuda_unusable_reason"].get<std::string>());
  }
  line("default device", info["default_device"].get<std::string>());
  line("mujoco", info["mujoco_version"].get<std::string>());
  line("eigen", info["eigen_version"].get<std::string>());
  line("cpu instructions", info["cpu_isa"].get<std::string>() + ", this CPU runs " +
                               (info["cpu_supports"].get<std::string>().empty() ? std::string("(not x86)")
                                                                                : info["cpu_supports"].get<std::string>()));
  line("threads", std::to_string(info["hardware_threads"].get<int>()) + " hardware, " +
                      std::to_string(info["usable_cores"].get<int>()) + " usable (the CPU backend's team at most)");
}

}  // namespace

void add_info_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* info = app.add_subcommand("info", "Show the version, build, CUDA device and libraries");
  info->add_flag("--json", options->json, "Print one JSON object instead of text");
  info->callback([options, &action] {
    action = [options] {
      const nlohmann::json facts = info_json();
      if (options->json) {
        std::cout << facts.dump(2) << "\n";
      } else {
        print_text(facts);
      }
      return 0;
    };
  });
}

}  // namespace mbmpo::app
