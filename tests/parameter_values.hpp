// Every parameter value of a model, in order: to compare models, or a model before and after.
// Read through the host seam, so it serves a model on any backend.
#pragma once

#include <vector>

namespace hcnn::testing {

template <class M>
std::vector<typename M::value_type> parameter_values(M& model) {
  std::vector<typename M::value_type> all;
  for (auto& p : model.parameters())
    read_on_host(p.param->value, [&](auto values) { all.insert(all.end(), values.begin(), values.end()); });
  return all;
}

}  // namespace hcnn::testing
