// How many seeds run together in one process at most (`mbmpo train --seeds`): the size of the
// per-seed key tables a launch carries (NoiseSeeds in host/policy/policy_ops_cpu.hpp).
#pragma once

namespace mbmpo {

constexpr int kMaxSeedsTogether = 64;

}  // namespace mbmpo
