// Named moments of a training run at which the kill test (tests/apps/test_kill_and_resume.cpp)
// stops the process with SIGKILL, so that a kill lands exactly where it is meant to, in the middle
// of a checkpoint write included, rather than wherever a timer happens to fall.
//
// MBMPO_KILL_AT=NAME:N kills the process the Nth time (counting from 1) it passes kill_point(NAME).
// Unset, as everywhere outside that test, a point costs one comparison.
#pragma once

namespace mbmpo {

void kill_point(const char* name);

}  // namespace mbmpo
