// Early stopping of the dynamics models, the rule of the authors' code: after each epoch
//   avg <- p * avg + (1 - p) * validation_loss
// and a model stops once its average rises above the previous epoch's. The average starts at
// 1.5x the first loss (the previous at 2x) so that the first epochs cannot stop a model.
#pragma once

#include <vector>

namespace mbmpo {

class RollingEarlyStopping {
 public:
  RollingEarlyStopping(int models, double persistency)
      : persistency_(persistency), average_(models), previous_(models), stopped_(models, false) {}

  // Feeds one epoch's validation losses; returns whether each model has stopped (now or before).
  const std::vector<bool>& update(const std::vector<double>& validation_loss) {
    const std::size_t models = average_.size();
    if (first_) {
      for (std::size_t k = 0; k < models; ++k) {
        const double v = validation_loss[k];
        average_[k] = v >= 0 ? 1.5 * v : v / 1.5;
        previous_[k] = v >= 0 ? 2.0 * v : v / 2.0;
      }
      first_ = false;
    }
    for (std::size_t k = 0; k < models; ++k) {
      average_[k] = persistency_ * average_[k] + (1 - persistency_) * validation_loss[k];
      if (previous_[k] < average_[k]) stopped_[k] = true;
      previous_[k] = average_[k];
    }
    return stopped_;
  }
  const std::vector<bool>& stopped() const { return stopped_; }

 private:
  double persistency_;
  bool first_ = true;
  std::vector<double> average_, previous_;
  std::vector<bool> stopped_;
};

}  // namespace mbmpo
