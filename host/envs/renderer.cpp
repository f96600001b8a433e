#include "host/envs/renderer.hpp"

#include <mujoco/mujoco.h>

#include <cstring>
#include <mutex>

#include "host/core/error.hpp"

#ifdef MBMPO_WITH_EGL
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <dlfcn.h>
#endif

namespace mbmpo {

#ifdef MBMPO_WITH_EGL
namespace {

// The EGL calls the renderer makes, from libEGL.so.1 opened at run time.
struct Egl {
  PFNEGLGETPROCADDRESSPROC get_proc_address = nullptr;
  PFNEGLGETDISPLAYPROC get_display = nullptr;
  PFNEGLINITIALIZEPROC initialize = nullptr;
  PFNEGLCHOOSECONFIGPROC choose_config = nullptr;
  PFNEGLBINDAPIPROC bind_api = nullptr;
  PFNEGLCREATECONTEXTPROC create_context = nullptr;
  PFNEGLDESTROYCONTEXTPROC destroy_context = nullptr;
  PFNEGLMAKECURRENTPROC make_current = nullptr;
  PFNEGLGETERRORPROC get_error = nullptr;
  EGLDisplay display = EGL_NO_DISPLAY;
  EGLConfig config = nullptr;
  std::string failure;  // why rendering cannot work here (empty: it can)
};

std::string hex(unsigned value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%04x", value);
  return text;
}

// One display for the process, initialised on first use.
Egl& egl() {
  static Egl e = [] {
    Egl x;
    void* library = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char* why = dlerror();
      x.failure = "libEGL.so.1 cannot be opened (" + std::string(why ? why : "not found") +
                  "); install EGL and an OpenGL driver, e.g. Debian's libegl1 libegl-mesa0 libgl1-mesa-dri";
      return x;
    }
    const auto symbol = [&](const char* name) { return dlsym(library, name); };
    x.get_proc_address = reinterpret_cast<PFNEGLGETPROCADDRESSPROC>(symbol("eglGetProcAddress"));
    x.get_display = reinterpret_cast<PFNEGLGETDISPLAYPROC>(symbol("eglGetDisplay"));
    x.initialize = reinterpret_cast<PFNEGLINITIALIZEPROC>(symbol("eglInitialize"));
    x.choose_config = reinterpret_cast<PFNEGLCHOOSECONFIGPROC>(symbol("eglChooseConfig"));
    x.bind_api = reinterpret_cast<PFNEGLBINDAPIPROC>(symbol("eglBindAPI"));
    x.create_context = reinterpret_cast<PFNEGLCREATECONTEXTPROC>(symbol("eglCreateContext"));
    x.destroy_context = reinterpret_cast<PFNEGLDESTROYCONTEXTPROC>(symbol("eglDestroyContext"));
    x.make_current = reinterpret_cast<PFNEGLMAKECURRENTPROC>(symbol("eglMakeCurrent"));
    x.get_error = reinterpret_cast<PFNEGLGETERRORPROC>(symbol("eglGetError"));
    if (!x.get_proc_address || !x.get_display || !x.initialize || !x.choose_config || !x.bind_api ||
        !x.create_context || !x.destroy_context || !x.make_current || !x.get_error) {
      x.failure = "libEGL.so.1 lacks the EGL 1.4 calls";
      return x;
    }
    // Surfaceless (Mesa): no window system at all. Otherwise the default display, which needs one.
    const auto platform_display =
        reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(x.get_proc_address("eglGetPlatformDisplayEXT"));
    if (platform_display) x.display = platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
    if (x.display == EGL_NO_DISPLAY) x.display = x.get_display(EGL_DEFAULT_DISPLAY);
    EGLint major = 0, minor = 0;
    if (x.display == EGL_NO_DISPLAY || !x.initialize(x.display, &major, &minor)) {
      x.failure = "EGL has no display here (eglInitialize: " + hex(unsigned(x.get_error())) +
                  "); Mesa's surfaceless platform (libegl-mesa0) renders without one";
      return x;
    }
    const EGLint attributes[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                                 EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_COLOR_BUFFER_TYPE, EGL_RGB_BUFFER,
                                 EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    EGLint count = 0;
    if (!x.choose_config(x.display, attributes, &x.config, 1, &count) || count < 1) {
      x.failure = "EGL offers no OpenGL configuration with 8-bit colour and a depth buffer (" +
                  hex(unsigned(x.get_error())) + ")";
      return x;
    }
    if (!x.bind_api(EGL_OPENGL_API)) x.failure = "EGL cannot bind desktop OpenGL (" + hex(unsigned(x.get_error())) + ")";
    return x;
  }();
  return e;
}

// A context is current on one thread at a time; MuJoCo's OpenGL function table is global.
std::mutex& render_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

struct Renderer::Impl {
  int width = 0, height = 0;
  mjModel* model = nullptr;  // a copy, with an offscreen buffer of the frame's size
  mjData* data = nullptr;    // the environment's state copied in for each frame
  EGLContext context = EGL_NO_CONTEXT;
  mjvScene scene;
  mjvCamera camera;
  mjvOption option;
  mjrContext gl;
  bool gl_made = false;
  CameraView view{};

  // Empty MuJoCo structures, so the destructor can free whatever the constructor got to make.
  Impl() {
    mjv_defaultScene(&scene);
    mjv_defaultCamera(&camera);
    mjv_defaultOption(&option);
    mjr_defaultContext(&gl);
  }

  void make_current() {
    if (!egl().make_current(egl().display, EGL_NO_SURFACE, EGL_NO_SURFACE, context)) {
      throw Error("rendering: eglMakeCurrent failed (" + hex(unsigned(egl().get_error())) + ")");
    }
  }
  void release() { egl().make_current(egl().display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT); }

  ~Impl() {
    if (gl_made) {
      std::lock_guard<std::mutex> lock(render_mutex());
      make_current();
      mjr_freeContext(&gl);
      release();
    }
    mjv_freeScene(&scene);
    if (context != EGL_NO_CONTEXT) egl().destroy_context(egl().display, context);
    if (data) mj_deleteData(data);
    if (model) mj_deleteModel(model);
  }
};

Renderer::Renderer(const MujocoModel& model, int width, int height) : impl_(new Impl) {
  MBMPO_CHECK_INPUT(width >= 1 && width <= 8192 && height >= 1 && height <= 8192,
                    "rendering: width and height must be in [1, 8192], got ", width, " and ", height);
  const Egl& e = egl();
  if (!e.failure.empty()) throw Error("rendering is not available: " + e.failure);
  Impl& r = *impl_;
  r.width = width;
  r.height = height;
  r.model = mj_copyModel(nullptr, model.get());
  r.data = r.model ? mj_makeData(r.model) : nullptr;
  if (!r.data) throw Error("rendering: MuJoCo could not copy the model of task " + model.task().name);
  r.model->vis.global.offwidth = width;
  r.model->vis.global.offheight = height;
  // The tasks' models are physics only (no lights, materials or colours): a brighter headlight, a
  // blue-grey floor and sand-coloured bodies make frames readable (the copy only; no physics).
  for (int i = 0; i < 3; ++i) {
    r.model->vis.headlight.ambient[i] = 0.35f;
    r.model->vis.headlight.diffuse[i] = 0.7f;
  }
  for (int g = 0; g < r.model->ngeom; ++g) {
    const bool floor = r.model->geom_type[g] == mjGEOM_PLANE;
    const float colour[4] = {floor ? 0.35f : 0.85f, floor ? 0.42f : 0.6f, floor ? 0.5f : 0.4f, 1.f};
    std::memcpy(r.model->geom_rgba + 4 * g, colour, sizeof colour);
  }
  r.view = model.task().camera;
  const CameraView& view = r.view;
  mjv_defaultFreeCamera(r.model, &r.camera);
  r.camera.distance = view.distance;
  r.camera.elevation = view.elevation;
  const EGLint version[] = {EGL_NONE};
  r.context = e.create_context(e.display, e.config, EGL_NO_CONTEXT, version);
  if (r.context == EGL_NO_CONTEXT) {
    throw Error("rendering: EGL could not make an OpenGL context (" + hex(unsigned(e.get_error())) + ")");
  }
  std::lock_guard<std::mutex> lock(render_mutex());
  r.make_current();
  mjv_makeScene(r.model, &r.scene, 2000);
  mjr_makeContext(r.model, &r.gl, mjFONTSCALE_100);
  r.gl_made = true;
  mjr_setBuffer(mjFB_OFFSCREEN, &r.gl);
  const bool sized = r.gl.offWidth >= width && r.gl.offHeight >= height;
  r.release();
  if (!sized) throw Error("rendering: the offscreen buffer is smaller than " + std::to_string(width) + "x" +
                          std::to_string(height));
}

Renderer::~Renderer() = default;

int Renderer::width() const { return impl_->width; }
int Renderer::height() const { return impl_->height; }

std::vector<std::uint8_t> Renderer::render(const Environment& env) {
  Impl& r = *impl_;
  MBMPO_CHECK(env.model().get()->nq == r.model->nq && env.model().get()->nv == r.model->nv,
              "rendering: the environment is of another task than this renderer");
  mj_copyData(r.data, r.model, env.data());  // the renderer reads a copy: the environment is untouched
  // The camera looks at the tracked body's centre of mass. (MuJoCo's tracking camera eases towards
  // it from frame to frame, so one state would not always give one picture.)
  if (r.view.track_body >= 0) {
    for (int i = 0; i < 3; ++i) r.camera.lookat[i] = r.data->subtree_com[3 * r.view.track_body + i];
  }
  const std::size_t row = std::size_t(r.width) * 3;
  std::vector<std::uint8_t> bottom_up(row * std::size_t(r.height)), picture(bottom_up.size());
  {
    std::lock_guard<std::mutex> lock(render_mutex());
    r.make_current();
    mjv_updateScene(r.model, r.data, &r.option, nullptr, &r.camera, mjCAT_ALL, &r.scene);
    const mjrRect viewport{0, 0, r.width, r.height};
    mjr_setBuffer(mjFB_OFFSCREEN, &r.gl);
    mjr_render(viewport, &r.scene, &r.gl);
    mjr_readPixels(bottom_up.data(), nullptr, viewport, &r.gl);
    r.release();
  }
  for (int y = 0; y < r.height; ++y) {  // OpenGL's first row is the bottom one
    std::memcpy(picture.data() + std::size_t(y) * row, bottom_up.data() + std::size_t(r.height - 1 - y) * row, row);
  }
  return picture;
}

#else  // built without the EGL headers

struct Renderer::Impl {};

Renderer::Renderer(const MujocoModel&, int, int) {
  throw Error("rendering is not available: this build has no EGL (install libegl-dev and rebuild)");
}
Renderer::~Renderer() = default;
int Renderer::width() const { return 0; }
int Renderer::height() const { return 0; }
std::vector<std::uint8_t> Renderer::render(const Environment&) { return {}; }

#endif

}  // namespace mbmpo
