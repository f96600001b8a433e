// The tasks' MuJoCo XML models (host/envs/assets/*.xml), compiled into the binary by CMake so
// mbmpo runs from any directory.
#pragma once

namespace mbmpo::assets {
extern const char* const kHalfCheetahXml;
extern const char* const kHopperXml;
extern const char* const kWalker2dXml;
extern const char* const kAntXml;
extern const char* const kSwimmerXml;
extern const char* const kInvertedPendulumXml;
}  // namespace mbmpo::assets
