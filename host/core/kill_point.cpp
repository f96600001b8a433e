#include "host/core/kill_point.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

namespace mbmpo {
namespace {

struct KillAt {
  std::string name;
  long count = 0;  // 0: no point is armed
};

KillAt armed() {
  KillAt at;
  const char* text = std::getenv("MBMPO_KILL_AT");
  if (!text) return at;
  const char* colon = std::strrchr(text, ':');
  if (!colon) return at;
  at.name.assign(text, colon);
  at.count = std::strtol(colon + 1, nullptr, 10);
  return at;
}

}  // namespace

void kill_point(const char* name) {
  static KillAt at = armed();
  static long passed = 0;  // passes of the armed point (the trainer's points are on one thread)
  if (at.count <= 0 || at.name != name) return;
  if (++passed == at.count) std::raise(SIGKILL);
}

}  // namespace mbmpo
