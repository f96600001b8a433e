// Pictures of a task's simulation without a display (mbmpo.Env(render_mode="rgb_array")):
// MuJoCo's own renderer (mjv_updateScene, mjr_render) in an OpenGL context made through EGL, on
// its surfaceless platform. On a machine without a GPU, Mesa's EGL draws with llvmpipe on the CPU
// (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri); where a GPU driver provides EGL, it draws there.
// libEGL is opened when the first renderer is made, so nothing else in the library needs it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/envs/environment.hpp"

namespace mbmpo {

class Renderer {
 public:
  // An offscreen frame buffer of width x height for the task's model, seen from its CameraView.
  // Error saying why when there is no EGL or no OpenGL context can be made.
  Renderer(const MujocoModel& model, int width, int height);
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  int width() const;
  int height() const;
  // The environment's present state: [height][width][3] RGB bytes, the top row first.
  std::vector<std::uint8_t> render(const Environment& env);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mbmpo
